"""Serve recorded native-API bodies (Anthropic, Gemini, Ollama, Cohere, Mistral) over real HTTP
on 127.0.0.1, so their own SDKs can stream them offline: in tests and tutorial notebooks.

The first path segment names the file: point an SDK at ``server.url(name)`` and it appends its
own path (``/v1/messages``, ``/v1beta/models/...:streamGenerateContent``, ``/api/chat``...),
which is ignored. The body goes out as recorded, in chunked encoding with a flush after each SSE
event or NDJSON line (as a live server sends them), with the Content-Type the real service used.
A file named ``...-httpNNN-...`` is an error body sent with status NNN. Only plain file names
inside ``directory`` are served.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_STATUS = re.compile(r"-http(\d{3})-")


def content_type(name: str) -> str:
    """The Content-Type the real service sends for a body of this kind."""
    if name.endswith(".ndjson"):
        return "application/stream+json" if name.startswith("cohere-") else "application/x-ndjson"
    if name.endswith(".json"):
        if name.startswith("gemini-") and _STATUS.search(name):
            return "text/event-stream"  # Gemini's errors on alt=sse (sic)
        return (
            "application/json; charset=UTF-8" if name.startswith("gemini-") else "application/json"
        )
    if name.startswith(("anthropic-", "mistral-")):
        return "text/event-stream; charset=utf-8"
    return "text/event-stream"


def pieces(body: bytes, name: str) -> list[bytes]:
    """The body cut where a live server flushes: after each SSE event or NDJSON line."""
    if name.endswith(".ndjson"):
        return body.splitlines(keepends=True)
    out, start = [], 0
    for m in re.finditer(rb"\r\n\r\n|\n\n", body):
        out.append(body[start : m.end()])
        start = m.end()
    if start < len(body):
        out.append(body[start:])
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet: a notebook's output stays clean
        pass

    def _serve(self) -> None:
        srv = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        body_in = self.rfile.read(length) if length else b""
        name = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        # never keep the request's credentials (x-api-key, Authorization, x-goog-api-key)
        headers = {k: v for k, v in self.headers.items() if "key" not in k.lower()}
        headers.pop("Authorization", None)
        srv.requests.append(
            {"method": self.command, "path": self.path, "headers": headers, "body": body_in}
        )
        body = srv.bodies.get(name)
        if body is None:
            path = srv.directory / name
            safe = name and not name.startswith(".") and "\\" not in name
            if not safe or path.parent != srv.directory or not path.is_file():
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = path.read_bytes()
        m = _STATUS.search(name)
        status = int(m.group(1)) if m else 200
        self.send_response(status)
        self.send_header("content-type", content_type(name))
        for k, v in srv.headers_for(name).items():
            self.send_header(k, v)
        if status != 200 or srv.content_length:
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for piece in pieces(body, name):
            if srv.delay:
                srv.closing.wait(srv.delay)
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            except OSError:  # the client hung up (Stop)
                srv.hangups += 1
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_POST = _serve
    do_GET = _serve


class RecordingServer:
    """``with RecordingServer(directory) as srv: client = Anthropic(base_url=srv.url(name))``.

    ``delay`` paces the events (seconds between flushes); ``headers`` adds response headers per
    file name (a request id...); ``content_length`` sends bodies whole instead of chunked.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        delay: float = 0.0,
        headers: Mapping[str, Mapping[str, str]] | None = None,
        content_length: bool = False,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.delay = delay
        self.content_length = content_length
        self.extra_headers = {k: dict(v) for k, v in (headers or {}).items()}
        self.requests: list[dict[str, Any]] = []
        self.bodies: dict[str, bytes] = {}
        self.hangups = 0
        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def headers_for(self, name: str) -> dict[str, str]:
        return self.extra_headers.get(name, {})

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"  # bound to 127.0.0.1 above

    def url(self, name: str) -> str:
        """The base URL to give an SDK to stream the recording ``name``."""
        return f"{self.root}/{name}"

    def add(self, name: str, body: bytes) -> str:
        """Serve ``body`` as ``name`` too (a body built from recorded pieces); its URL."""
        self.bodies[name] = body
        return self.url(name)

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordingServer({self.root}, {self.directory.name})"

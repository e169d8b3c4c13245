"""A tiny HTTP server for the native-provider recordings in ../shared/streams/providers.

The first path segment names the file (``http://127.0.0.1:PORT/<file>/v1/messages``), so each
SDK is pointed at ``base_url=server.url(name)`` and its own path is appended. The body is sent as
recorded, chunked at its event boundaries (a flush per event, like a live server), with the
Content-Type and status the INDEX says the real service sent. Each request is kept (method,
path, headers) so tests can check what the SDK asked for.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROVIDERS = Path(__file__).resolve().parents[1].parent / "shared" / "streams" / "providers"

# file -> (status, extra headers) for the non-200 bodies (INDEX.md)
SPECIAL: dict[str, tuple[int, dict[str, str]]] = {
    "anthropic-11-http529-overloaded.json": (
        529,
        {"request-id": "req_01G3LauajeH3QsoDKWHrMhaY", "x-should-retry": "true"},
    ),
    "gemini-10-http400-on-sse-endpoint.json": (400, {}),
    "ollama-06-http404-model-not-found.json": (404, {}),
}


def content_type(name: str) -> str:
    """The Content-Type the real service sent for this recording (INDEX.md's table)."""
    if name.startswith("anthropic-"):
        return "application/json" if name.endswith(".json") else "text/event-stream; charset=utf-8"
    if name.startswith("gemini-"):
        if name == "gemini-07-json-array-stream-safety-ratings.json":
            return "application/json; charset=UTF-8"
        return "text/event-stream"  # gemini-10's error body too (sic)
    if name.startswith("ollama-"):
        return "application/json" if name.endswith(".json") else "application/x-ndjson"
    if name.startswith("cohere-05"):
        return "application/stream+json"
    if name.startswith("mistral-"):
        return "text/event-stream; charset=utf-8"
    return "text/event-stream"


def pieces(body: bytes, name: str) -> list[bytes]:
    """The body cut where a live server would flush: after each SSE event or NDJSON line."""
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

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body_in = self.rfile.read(length) if length else b""
        name = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": body_in,
            }
        )
        path = PROVIDERS / name
        made = self.server.bodies.get(name)
        if made is None and (not name or "/" in name or name.startswith(".") or not path.is_file()):
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = made if made is not None else path.read_bytes()
        status, extra = SPECIAL.get(name, (200, {}))
        self.send_response(status)
        self.send_header("content-type", content_type(name))
        if name.startswith("anthropic-") and "request-id" not in extra:
            self.send_header("request-id", f"req_native_{name[:12]}")
        for k, v in extra.items():
            self.send_header(k, v)
        if status != 200 or self.server.content_length:
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for piece in pieces(body, name):
            if self.server.delay:
                self.server.gate.wait(self.server.delay)
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            except OSError:  # the client hung up (Stop)
                self.server.hangups += 1
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_POST = _serve
    do_GET = _serve


class NativeServer:
    """``with NativeServer() as srv: srv.url(name)``; ``delay`` paces the events (seconds)."""

    def __init__(self, delay: float = 0.0, content_length: bool = False) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.bodies = {}  # type: ignore[attr-defined]  # name -> bytes made by a test
        self.httpd.delay = delay  # type: ignore[attr-defined]
        self.httpd.content_length = content_length  # type: ignore[attr-defined]
        self.httpd.hangups = 0  # type: ignore[attr-defined]
        self.httpd.gate = threading.Event()  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.root}/{name}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def add(self, name: str, body: bytes) -> str:
        """Serve ``body`` (built by a test from recorded pieces) as ``name``; its URL."""
        self.httpd.bodies[name] = body  # type: ignore[attr-defined]
        return self.url(name)

    @property
    def hangups(self) -> int:
        return self.httpd.hangups  # type: ignore[attr-defined]

    def __enter__(self) -> NativeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.gate.set()  # type: ignore[attr-defined]
        self.httpd.shutdown()
        self.httpd.server_close()

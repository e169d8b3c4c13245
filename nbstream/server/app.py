"""The HTTP layer: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with chunked streaming.

Why the stdlib: no dependency, keep-alive works (chunked transfer encoding), and writes are plain
socket sends, so a failed write is a client disconnect we can record. Unpaced streams are written
in 64 KiB blocks, which is far faster than the openai SDK can parse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import select
import socket
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nbstream.server import demo, guard, resilience, tools, wire
from nbstream.server.chunklog import chunklog_stream
from nbstream.server.limits import AttemptCounter, RateLimit, RateLimiter
from nbstream.server.options import OptionError, RequestOptions, parse_request_options
from nbstream.server.replay import REPLAY_PREFIX, ReplayError, available, resolve, split_blocks

CREATED = 1767225600  # fixed "created" timestamp: demo chunks are identical across runs
FLUSH_BYTES = 64 * 1024
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
BUILTIN_MODELS = ("demo", "echo")
MAX_CHOICES = 16
# never kept in request records: credentials (OpenAI, Azure, proxies, cookies)
SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie", "openai-api-key"}
)
# Request records are for tests and notebooks, not an archive: a long session (or a client sending
# 50 MB prompts) must not grow the kernel. Bodies past MAX_RECORD_BODY are not kept (``body_size``
# says how big they were); past MAX_RECORD_BYTES in all, the oldest records are dropped.
MAX_RECORD_BODY = 1024 * 1024
MAX_RECORD_BYTES = 32 * 1024 * 1024
MAX_RECORD_HEADER = 1024  # characters kept of each header value (and of the path)
# Sockets: a request must arrive within REQUEST_TIMEOUT (idle keep-alive and half-open connections
# end then); a client that stops reading an answer is given WRITE_TIMEOUT. Past MAX_CONNECTIONS
# open connections, new ones get a 503 at once instead of a thread each.
REQUEST_TIMEOUT = 15.0
WRITE_TIMEOUT = 120.0
MAX_CONNECTIONS = 256
_FAULT_MESSAGES = {
    408: ("Request timed out (injected by the nbstream local server).", "timeout"),
    409: ("Conflict (injected by the nbstream local server).", "conflict"),
    429: ("Rate limit reached (injected by the nbstream local server).", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request (injected).", "server_error"),
    502: ("Bad gateway (injected by the nbstream local server).", "bad_gateway"),
    503: (
        "The engine is currently overloaded (injected by the nbstream local server).",
        "overloaded",
    ),
    504: ("Gateway timeout (injected by the nbstream local server).", "gateway_timeout"),
}


class _ClientGone(Exception):
    """The client closed the connection (a failed write or EOF seen while waiting)."""


class _ServerStopping(Exception):
    """The server is shutting down: end the stream at once."""


@dataclass
class RequestRecord:
    """What the server saw and did for one HTTP request (for tests and notebooks)."""

    request_id: str
    method: str
    path: str
    started: float
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    body_size: int = 0
    model: str | None = None
    options: RequestOptions | None = None
    stream: bool = False
    attempt: int = 0
    status: int | None = None
    chunks_sent: int = 0
    bytes_sent: int = 0
    disconnected: bool = False
    end_reason: str | None = None
    ended: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the server finished with this request (any outcome)."""
        return self._done.is_set()

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the request ended; False on timeout."""
        return self._done.wait(timeout)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    app: LocalServer

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, at most ``max_connections`` of them, each tracked so that
        ``stop()`` can wait for it; past the limit, a 503 from this (the accepting) thread."""
        app = self.app
        with app._threads_lock:
            full = len(app._threads) >= app.max_connections
            if not full and not app._stopping.is_set():
                thread = threading.Thread(
                    target=self._run_connection,
                    args=(request, client_address),
                    name=f"nbstream-conn-{self.server_address[1]}",
                    daemon=True,
                )
                app._threads.add(thread)
                thread.start()
                return
        _refuse(request, app.max_connections)
        self.shutdown_request(request)

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.app._threads_lock:
                self.app._threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients going away (resets, broken pipes) are normal here; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nbstream-local"
    sys_version = ""
    server: _HTTPServer

    # -- plumbing ---------------------------------------------------------------------------
    def setup(self) -> None:
        app = self.server.app
        # StreamRequestHandler applies it to the socket (typeshed declares it a ClassVar, but
        # setup() reads it from the instance: per-server values need the instance attribute)
        self.timeout = app.request_timeout  # type: ignore[misc]
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        app._connections.add(self.connection)
        if app._stopping.is_set():  # accepted while stop() was cutting connections
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def handle_one_request(self) -> None:
        # reading a request (line, headers, body) is bounded by request_timeout; answers get
        # write_timeout (set in _send_head): a slow reader is not a half-open connection
        with contextlib.suppress(OSError):
            self.connection.settimeout(self.server.app.request_timeout)
        super().handle_one_request()

    def finish(self) -> None:
        self.server.app._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (garbled request line, 414, 431, unknown method 501) in
        OpenAI's JSON error shape instead of an HTML page, closing the connection."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # not served: always answer with a status line
            self.request_version = "HTTP/1.0"
        short, long = self.responses.get(code, ("Error", ""))
        text = f"{message or short}: {explain or long}" if (explain or long) else message or short
        body = json.dumps(
            wire.error_body(text[:500], "invalid_request_error", None, "bad_request")
        ).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200:
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.app.verbose:
            super().log_message(format, *args)

    def _start_record(self) -> RequestRecord:
        headers = {
            k.lower(): v[:MAX_RECORD_HEADER]
            for k, v in self.headers.items()
            if k.lower() not in SECRET_HEADERS
        }
        record = RequestRecord(
            request_id="req_" + uuid.uuid4().hex,
            method=self.command,
            path=self.path[:MAX_RECORD_HEADER],
            started=time.monotonic(),
            headers=headers,
        )
        size = len(record.path) + sum(len(k) + len(v) for k, v in headers.items())
        self.server.app._add_record(record, size)
        return record

    def _admit(self, record: RequestRecord, post: bool = False) -> int | None:
        """Host (every method), then framing, size and type of a POST body, all before reading
        the body: returns the body length, or None after answering with the 4xx."""
        app = self.server.app
        try:
            guard.check_host(self.headers.get("Host"), app.host, app.port, app.allowed_hosts)
            return guard.check_post(self.headers, app.max_body_bytes) if post else 0
        except guard.Rejected as exc:
            self._reject(record, exc)
            return None

    def _reject(self, record: RequestRecord, exc: guard.Rejected) -> None:
        """Answer a refused request and close: its body (if any) is never read into memory."""
        self.close_connection = True
        record.end_reason = "rejected"
        extra = {**self.server.app._limiter_headers(), "Connection": "close"}
        self._send_error(
            record, exc.status, exc.message, param=exc.param, code=exc.code, extra=extra
        )
        _drain_and_close(self.connection)

    def _end(self, record: RequestRecord, reason: str) -> None:
        if record.end_reason is None:
            record.end_reason = reason
        record.ended = time.monotonic()
        record._done.set()

    def _send_head(
        self, record: RequestRecord, status: int, content_type: str, extra: dict[str, str]
    ) -> None:
        record.status = status
        with contextlib.suppress(OSError):
            self.connection.settimeout(self.server.app.write_timeout)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-request-id", record.request_id)
        self.send_header("openai-processing-ms", "1")
        for name, value in extra.items():
            self.send_header(name, value)

    def _send_bytes(
        self,
        record: RequestRecord,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        self._send_head(record, status, content_type, extra or self.server.app._limiter_headers())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
            record.bytes_sent += len(body)
        except OSError:
            record.disconnected = True
            self.close_connection = True
            self._end(record, "client_disconnected")
            return
        self._end(record, "complete" if status < 400 else "error_status")

    def _send_json(
        self, record: RequestRecord, status: int, obj: Any, extra: dict[str, str] | None = None
    ) -> None:
        self._send_bytes(record, status, json.dumps(obj).encode(), extra=extra)

    def _send_error(
        self,
        record: RequestRecord,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self._send_json(record, status, wire.error_body(message, type_, param, code), extra)

    # -- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        record = self._start_record()
        app = self.server.app
        if self._admit(record) is None:
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(record, 200, {"object": "list", "data": app.model_list()})
        elif path.startswith(("/v1/models/", "/models/")):
            name = path.split("/models/", 1)[1]
            entry = next((m for m in app.model_list() if m["id"] == name), None)
            if entry is None:
                self._send_error(
                    record,
                    404,
                    app.unknown_model_message(name),
                    param="model",
                    code="model_not_found",
                )
            else:
                self._send_json(record, 200, entry)
        elif path in ("", "/health", "/v1"):
            self._send_json(record, 200, {"status": "ok", "base_url": app.base_url})
        else:
            self._not_found(record)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        record = self._start_record()
        length = self._admit(record, post=True)
        if length is None:
            return
        try:
            self._post(record, self._read_body(length))
        except guard.Rejected as exc:
            self._reject(record, exc)
        except _ClientGone:
            self.close_connection = True
            if self.server.app._stopping.is_set():  # stop() cut the socket: not the client
                self._end(record, "server_stopped")
            else:
                record.disconnected = True
                self._end(record, "client_disconnected")
        except _ServerStopping:
            self.close_connection = True
            self._end(record, "server_stopped")
        except Exception as exc:  # a bug here must not kill the connection silently
            self.close_connection = True
            if record.status is None:
                self._send_error(record, 500, f"Local server error: {exc!r}", "server_error")
            self._end(record, f"server_error: {exc!r}")
            raise
        finally:
            if not record.done:
                self._end(record, "complete")

    def _method_not_allowed(self) -> None:
        record = self._start_record()
        if self._admit(record) is None:
            return
        # never read (nor trusted for framing): the connection closes after the answer
        self._reject(
            record,
            guard.Rejected(
                405,
                f"Method {self.command} is not supported by this local server: use GET for "
                "/v1/models and POST for /v1/chat/completions and /v1/responses.",
                "method_not_allowed",
            ),
        )

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed  # noqa: N815

    def _not_found(self, record: RequestRecord) -> None:
        self._send_error(
            record,
            404,
            f"Unknown endpoint {self.command} {self.path}. This local server offers "
            "GET /v1/models, POST /v1/chat/completions, POST /v1/responses "
            "and POST /v1/moderations.",
            code="unknown_url",
        )

    def _read_body(self, length: int) -> bytes:
        """``length`` bytes (already checked against max_body_bytes) within request_timeout."""
        if length <= 0:
            return b""
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            seconds = self.server.app.request_timeout
            raise guard.Rejected(
                408, f"The request body did not arrive within {seconds:g} s.", "request_timeout"
            ) from None
        except OSError:
            raise _ClientGone from None
        if len(raw) < length:
            raise _ClientGone  # EOF before the announced length
        return raw

    def _post(self, record: RequestRecord, raw: bytes) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/chat/completions", "/chat/completions"):
            api = "chat"
        elif path in ("/v1/responses", "/responses"):
            api = "responses"
        elif path in ("/v1/moderations", "/moderations"):
            self._moderations(record, raw)  # see nbstream/server/resilience.py
            return
        else:
            self._not_found(record)
            return
        body = guard.parse_json(raw)
        if not isinstance(body, dict):
            self._send_error(record, 400, "The request body must be a JSON object.")
            return
        app._keep_body(record, body, len(raw))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self._send_error(
                record,
                400,
                "Missing required parameter: 'model'. Try model='demo' with this local server.",
                param="model",
                code="missing_required_parameter",
            )
            return
        try:
            base, options = parse_request_options(model, body.get("nbstream"))
        except OptionError as exc:
            self._send_error(record, 400, str(exc), param=exc.param, code="invalid_nbstream_option")
            return
        record.model = base
        record.options = options
        record.stream = body.get("stream") is True
        if api == "chat" and not isinstance(body.get("messages"), list):
            self._send_error(
                record,
                400,
                "Missing required parameter: 'messages' (a list of {role, content} objects).",
                param="messages",
                code="missing_required_parameter",
            )
            return
        if api == "responses" and "input" not in body:
            self._send_error(
                record,
                400,
                "Missing required parameter: 'input' (a string or a list of input items).",
                param="input",
                code="missing_required_parameter",
            )
            return

        # what will be served (errors before any fault: a bad model is a bad request)
        replay_path: Path | None = None
        if base.startswith(REPLAY_PREFIX):
            try:
                replay_path = resolve(app.streams_dir, base[len(REPLAY_PREFIX) :])
            except ReplayError as exc:
                self._send_error(record, exc.status, str(exc), param="model", code=exc.code)
                return
        elif base not in BUILTIN_MODELS:
            self._send_error(
                record, 404, app.unknown_model_message(base), param="model", code="model_not_found"
            )
            return

        n = body.get("n", 1) if api == "chat" else 1
        if n is None:
            n = 1
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
            self._send_error(
                record,
                400,
                f"'n' must be an integer from 1 to {MAX_CHOICES}, got {n!r}.",
                param="n",
            )
            return
        plans = [self._plan_tokens(api, base, body, options, choice) for choice in range(n)]
        tokens, prompt_tokens, finish = plans[0]
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if api == "responses":
            max_tokens = body.get("max_output_tokens")
        thinking = demo.reasoning_tokens(options.reasoning) if options.reasoning else None
        answer = sum(len(p[0]) for p in plans) + len(thinking or ())
        cost = prompt_tokens + (max_tokens * n if isinstance(max_tokens, int) else answer)
        allowed, reset_s, rl_headers = app._limiter.take(cost)
        if not allowed:
            retry = _retry_headers(reset_s)
            self._send_error(
                record,
                429,
                f"Rate limit reached for {base} on this local server: retry in {reset_s:.2f} s "
                f"(limits: {app._limiter.limit}).",
                "requests",
                code="rate_limit_exceeded",
                extra={**rl_headers, **retry},
            )
            return

        key = options.key or hashlib.sha256(path.encode() + b"\0" + raw).hexdigest()
        record.attempt = app._attempts.next(key)
        if options.fail is not None and not (
            options.fail_times is not None and record.attempt > options.fail_times
        ):
            message, code = _FAULT_MESSAGES[options.fail]
            of = f" of {options.fail_times}" if options.fail_times is not None else ""
            type_ = "requests" if options.fail == 429 else "server_error"
            extra = {**rl_headers, **_retry_headers(options.retry_after)}
            if options.fail == 429:
                extra["x-ratelimit-remaining-requests"] = "0"
            self._send_error(
                record,
                options.fail,
                f"{message} Attempt {record.attempt}{of}.",
                type_,
                code=code,
                extra=extra,
            )
            return
        if options.fail_times is not None and record.attempt > options.fail_times:
            options = resilience.without_stream_faults(options)  # transient: Resume demos

        if replay_path is not None:
            self._serve_replay(record, replay_path, options, rl_headers)
            return
        ident = hashlib.sha256(path.encode() + b"\0" + json.dumps(body, sort_keys=True).encode())
        ident_hex = ident.hexdigest()[:24]
        created = CREATED
        wanted = tools.requested_calls(body, options.tool_calls)
        if wanted and n == 1:
            self._serve_tool_calls(record, api, body, base, wanted, ident_hex, prompt_tokens)
            return
        if api == "chat":
            chunk_id = "chatcmpl-" + ident_hex
            if not record.stream:
                completion = wire.chat_completion(
                    ["".join(p[0]) for p in plans],
                    chunk_id=chunk_id,
                    model=base,
                    created=created,
                    finish_reason=[p[2] for p in plans],
                    prompt_tokens=prompt_tokens,
                    completion_tokens=answer - len(thinking or ()),
                    reasoning=thinking,
                )
                self._wait_before_body(record, options)
                self._send_json(record, 200, completion, extra=rl_headers)
                return
            stream_options = body.get("stream_options") or {}
            include_usage = isinstance(stream_options, dict) and bool(
                stream_options.get("include_usage")
            )
            if n > 1:
                blocks = wire.chat_stream_choices(
                    [p[0] for p in plans],
                    chunk_id=chunk_id,
                    model=base,
                    created=created,
                    finish_reasons=[p[2] for p in plans],
                    include_usage=include_usage,
                    prompt_tokens=prompt_tokens,
                )
            else:
                blocks = wire.chat_stream(
                    tokens,
                    chunk_id=chunk_id,
                    model=base,
                    created=created,
                    finish_reason=finish,
                    include_usage=include_usage,
                    prompt_tokens=prompt_tokens,
                    reasoning=thinking,
                )
        else:
            response_id = "resp_" + ident_hex
            shape: dict[str, Any] = {
                "response_id": response_id,
                "model": base,
                "created": created,
                "input_tokens": prompt_tokens,
                "instructions": body.get("instructions"),
                "incomplete_reason": "max_output_tokens" if finish == "length" else None,
                "reasoning": thinking,
            }
            if not record.stream:
                full = wire.response_full(tokens, **shape)
                self._wait_before_body(record, options)
                self._send_json(record, 200, full, extra=rl_headers)
                return
            blocks = wire.responses_stream(tokens, **shape)
        self._stream(record, blocks, options, api, rl_headers)

    def _moderations(self, record: RequestRecord, raw: bytes) -> None:
        """``POST /v1/moderations``: deterministic trigger words (``resilience.py``)."""
        body = guard.parse_json(raw)
        if not isinstance(body, dict):
            self._send_error(record, 400, "Send a JSON object with 'input'.")
            return
        try:
            base, options = parse_request_options(str(body.get("model") or "moderation"), None)
        except OptionError as exc:
            self._send_error(record, 400, str(exc), param=exc.param, code="invalid_nbstream_option")
            return
        self.server.app._keep_body(record, body, len(raw))
        record.model, record.options = base, options
        self._wait_before_body(record, options)
        self._send_json(record, 200, resilience.moderation_response(body, base))

    def _serve_tool_calls(
        self,
        record: RequestRecord,
        api: str,
        body: dict[str, Any],
        base: str,
        count: int,
        ident: str,
        prompt_tokens: int,
    ) -> None:
        """The demo model answering with function calls (see ``tools.py``)."""
        options = record.options or RequestOptions()
        headers = self.server.app._limiter_headers()
        calls = tools.plan_calls(body, count, ident)
        common: dict[str, Any] = {"model": base, "created": CREATED}
        if api == "chat":
            if not record.stream:
                completion = wire.chat_completion(
                    "",
                    chunk_id="chatcmpl-" + ident,
                    finish_reason="tool_calls",
                    prompt_tokens=prompt_tokens,
                    completion_tokens=tools.argument_tokens(calls),
                    **common,
                )
                completion["choices"][0]["message"] = tools.chat_tool_message(calls)
                self._wait_before_body(record, options)
                self._send_json(record, 200, completion, extra=headers)
                return
            stream_options = body.get("stream_options") or {}
            blocks = tools.chat_tool_stream(
                calls,
                chunk_id="chatcmpl-" + ident,
                include_usage=isinstance(stream_options, dict)
                and bool(stream_options.get("include_usage")),
                prompt_tokens=prompt_tokens,
                **common,
            )
        else:
            extra: dict[str, Any] = {
                "input_tokens": prompt_tokens,
                "instructions": body.get("instructions"),
            }
            if not record.stream:
                full = tools.responses_tool_full(
                    calls, response_id="resp_" + ident, **common, **extra
                )
                self._wait_before_body(record, options)
                self._send_json(record, 200, full, extra=headers)
                return
            blocks = tools.responses_tool_stream(
                calls, response_id="resp_" + ident, **common, **extra
            )
        self._stream(record, blocks, options, api, headers)

    def _plan_tokens(
        self, api: str, base: str, body: dict[str, Any], options: RequestOptions, choice: int = 0
    ) -> tuple[list[str], int, str]:
        """(answer tokens, prompt token count, finish reason) of one choice of demo/echo."""
        if api == "chat":
            messages = body.get("messages") or []
            prompt_text, user_text = demo.chat_prompt_text(messages), demo.last_user_text(messages)
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
        else:
            prompt_text, user_text = demo.responses_input_text(body)
            instructions = body.get("instructions")
            if isinstance(instructions, str):
                prompt_text = instructions + "\n" + prompt_text
            limit = body.get("max_output_tokens")
        if base.startswith(REPLAY_PREFIX):
            return [], demo.count_tokens(prompt_text), "stop"
        if base == "echo" or options.echo:
            tokens = demo.tokenize(user_text)
            if options.tokens is not None:
                tokens = tokens[: options.tokens]
        else:
            tokens = demo.demo_tokens(options.tokens, choice)
            if api == "chat":  # Resume: continue a partial demo answer (resilience.py)
                tokens = resilience.continued_tokens(tokens, messages) or tokens
        finish = "stop"
        if isinstance(limit, int) and limit >= 0 and len(tokens) > limit:
            tokens = tokens[:limit]
            finish = "length"
        return tokens, demo.count_tokens(prompt_text), finish

    # -- writing -----------------------------------------------------------------------------
    def _wait(self, record: RequestRecord, seconds: float) -> None:
        """Sleep, watching the socket: a client that closes meanwhile is seen at once."""
        app = self.server.app
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            if app._stopping.is_set():
                raise _ServerStopping
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if _readable(sock, min(remaining, 0.05)):
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    raise _ClientGone from None
                if not peek:
                    raise _ClientGone
                # pipelined bytes (the next request): just wait, but stop() still ends the wait
                if app._stopping.wait(max(0.0, deadline - time.monotonic())):
                    raise _ServerStopping
                return

    def _wait_before_body(self, record: RequestRecord, options: RequestOptions) -> None:
        ttft = options.ttft if options.ttft is not None else self.server.app.ttft
        if ttft:
            self._wait(record, ttft)

    def _write_raw(self, record: RequestRecord, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError:
            raise _ClientGone from None
        record.bytes_sent += len(data)

    def _stream(
        self,
        record: RequestRecord,
        blocks: wire.Stream,
        options: RequestOptions,
        api: str,
        headers: dict[str, str],
        content_type: str = SSE_CONTENT_TYPE,
    ) -> None:
        """Send SSE blocks with chunked encoding, applying pacing and the injected faults."""
        app = self.server.app
        self._send_head(record, 200, content_type, headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        ttft = options.ttft if options.ttft is not None else app.ttft
        delay = options.chunk_delay(app.tokens_per_s)
        paced = bool(ttft or delay or options.stall_after is not None)
        pending: list[bytes] = []
        pending_size = 0
        pending_chunks = 0
        sent = 0  # chunks counted so far (buffered or written)

        def flush() -> None:
            nonlocal pending, pending_size, pending_chunks
            if not pending:
                return
            data = b"".join(pending)
            self._write_raw(record, b"%X\r\n%b\r\n" % (len(data), data))
            record.chunks_sent += pending_chunks
            pending, pending_size, pending_chunks = [], 0, 0

        def put(block: bytes, counted: bool) -> None:
            nonlocal pending_size, pending_chunks
            pending.append(block)
            pending_size += len(block)
            pending_chunks += counted
            if paced or pending_size >= FLUSH_BYTES:
                flush()

        malformed_done = stalled = False
        due = 0.0  # when the next paced chunk is due (monotonic)
        for block, counted in blocks:
            if app._stopping.is_set():
                raise _ServerStopping
            if counted:
                if options.disconnect_after is not None and sent >= options.disconnect_after:
                    flush()
                    self.close_connection = True  # no terminating chunk: the body is cut short
                    self._end(record, "injected_disconnect")
                    return
                if options.error_after is not None and sent >= options.error_after:
                    put(wire.injected_error_block(api, options.error_message, sent), False)
                    flush()
                    self._write_raw(record, b"0\r\n\r\n")
                    self._end(record, "injected_error")
                    return
                if (
                    options.malformed_after is not None
                    and sent >= options.malformed_after
                    and not malformed_done
                ):
                    malformed_done = True
                    put(wire.MALFORMED_BLOCK, False)
                if options.stall_after is not None and sent >= options.stall_after and not stalled:
                    stalled = True
                    flush()
                    self._wait(record, options.stall)
                    due = 0.0
                if sent == 0 and ttft:
                    flush()
                    self._wait(record, ttft)
                elif sent > 0 and delay:
                    # a schedule, not a sleep per chunk: the average rate stays exact
                    now = time.monotonic()
                    due = max(due + delay, now - delay) if due else now + delay
                    if due > now:
                        self._wait(record, due - now)
                sent += 1
            put(block, counted)
        flush()
        self._write_raw(record, b"0\r\n\r\n")
        self._end(record, "complete")

    def _serve_replay(
        self, record: RequestRecord, path: Path, options: RequestOptions, headers: dict[str, str]
    ) -> None:
        data = path.read_bytes()
        if path.suffix == ".json":
            self._wait_before_body(record, options)
            status = options.status or 400
            self._send_bytes(record, status, data, "application/json", extra=headers)
            return
        if path.suffix == ".jsonl":
            try:
                api, blocks = chunklog_stream(data, options.log_attempt)
            except ReplayError as exc:
                self._send_error(record, exc.status, str(exc), param="model", code=exc.code)
                return
            self._stream(record, blocks, options, api, headers)
            return
        blocks = split_blocks(data)
        api = (
            "responses"
            if b"\nevent: response." in data[:4096] or data.startswith(b"event:")
            else "chat"
        )
        self._stream(record, blocks, options, api, headers)


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether the socket has data or EOF within ``timeout`` (poll: no FD_SETSIZE limit)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(timeout * 1000))
    return bool(select.select([sock], [], [], timeout)[0])


def _drain_and_close(sock: socket.socket, quiet_s: float = 0.2, limit_s: float = 2.0) -> None:
    """End our side, then read and discard what the client is still sending for a moment.

    Closing a socket with unread bytes makes the kernel send a reset, which can destroy the 4xx we
    just wrote before the client reads it (a client still uploading a 50 MB body would see
    "connection reset" instead of the 413). Nothing read here is kept."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(quiet_s)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and sock.recv(65536):
            pass


def _refuse(sock: socket.socket, limit: int) -> None:
    """A 503 written by the accepting thread when every connection slot is taken."""
    body = json.dumps(
        wire.error_body(
            f"This local server already has {limit} open connections (max_connections); "
            "retry shortly.",
            "server_error",
            None,
            "too_many_connections",
        )
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        sock.settimeout(0.5)  # a fresh socket's buffer takes this at once; never block accepting
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)


def _retry_headers(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(0, math.ceil(seconds))),
        "retry-after-ms": str(max(0, int(round(seconds * 1000)))),
    }


class LocalServer:
    """The local server: start it, point a client at ``base_url``, read ``requests``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        streams_dir: str | Path | None = None,
        tokens_per_s: float | None = None,
        ttft: float = 0.0,
        rate_limit: RateLimit | None = None,
        verbose: bool = False,
        max_records: int = 10_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
        max_body_bytes: int = guard.DEFAULT_MAX_BODY_BYTES,
        allowed_hosts: tuple[str, ...] | list[str] = (),
        request_timeout: float = REQUEST_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.max_records = max_records  # oldest records are dropped past this (long sessions)
        self.max_record_bytes = max_record_bytes  # ... and past this many bytes kept in all
        self.max_body_bytes = max_body_bytes  # larger bodies get a 413 before being read
        self.allowed_hosts = tuple(allowed_hosts)  # extra names accepted in the Host header
        self.request_timeout = request_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self.requested_port = port
        self.streams_dir = Path(streams_dir) if streams_dir is not None else None
        self.tokens_per_s = tokens_per_s
        self.ttft = ttft
        self.verbose = verbose
        self._limiter = RateLimiter(rate_limit)
        self._attempts = AttemptCounter()
        self._records: list[RequestRecord] = []
        self._record_sizes: dict[str, int] = {}  # request_id -> bytes it holds
        self._record_bytes = 0
        self._total = 0  # requests seen since start or reset (records may have been dropped)
        self._records_lock = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()  # one per open connection
        self._threads_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> LocalServer:
        """Bind and serve in a daemon thread (idempotent)."""
        if self._httpd is not None:
            return self
        warning = guard.exposure_warning(self.host)
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        self._stopping.clear()  # a stopped server may be started again
        httpd = _HTTPServer((self.host, self.requested_port), _Handler)
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"nbstream-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections, release the port, and wait (up to ``timeout``)
        for every connection thread to end (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()  # paced streams and waits (ttft, stall) end on this
        httpd.shutdown()
        httpd.server_close()
        for conn in list(self._connections):  # wakes threads blocked reading or writing
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        if self._httpd is None:
            return self.requested_port
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to ``openai.OpenAI``: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalServer {self.base_url} {state}>"

    # observability
    def _add_record(self, record: RequestRecord, size: int) -> None:
        with self._records_lock:
            self._records.append(record)
            self._record_sizes[record.request_id] = 0
            self._total += 1
            self._account(record, size)
            self._records_lock.notify_all()

    def _keep_body(self, record: RequestRecord, body: Any, size: int) -> None:
        """Keep the decoded body in the record, unless it is too big to keep (see MAX_RECORD_*)."""
        record.body_size = size
        if size > min(MAX_RECORD_BODY, self.max_record_bytes):
            return
        with self._records_lock:
            record.body = body
            self._account(record, size * 2)  # decoded JSON takes more memory than its text

    def _account(self, record: RequestRecord, size: int) -> None:
        """Count ``size`` more bytes for ``record``, then drop the oldest records past the limits
        (the newest is always kept). Called with ``_records_lock`` held."""
        if record.request_id in self._record_sizes:  # not when dropped already
            self._record_sizes[record.request_id] += size
            self._record_bytes += size
        drop = 0
        over_bytes = self._record_bytes
        while drop < len(self._records) - 1 and (
            len(self._records) - drop > self.max_records or over_bytes > self.max_record_bytes
        ):
            over_bytes -= self._record_sizes.get(self._records[drop].request_id, 0)
            drop += 1
        for old in self._records[:drop]:
            self._record_bytes -= self._record_sizes.pop(old.request_id, 0)
        del self._records[:drop]

    @property
    def requests(self) -> list[RequestRecord]:
        """Records of every request so far, oldest first (a copy)."""
        with self._records_lock:
            return list(self._records)

    @property
    def last_request(self) -> RequestRecord | None:
        with self._records_lock:
            return self._records[-1] if self._records else None

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RequestRecord]:
        """Block until at least ``count`` requests arrived; raises ``TimeoutError``."""
        with self._records_lock:
            if not self._records_lock.wait_for(lambda: self._total >= count, timeout):
                raise TimeoutError(f"{self._total} of {count} requests arrived in {timeout} s")
            return list(self._records)

    def wait_idle(self, timeout: float = 10.0) -> list[RequestRecord]:
        """Block until every request so far has ended; raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        for record in self.requests:
            if not record.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"request {record.request_id} still running after {timeout} s")
        return self.requests

    def wait_for_disconnect(
        self, timeout: float = 10.0, request_id: str | None = None
    ) -> RequestRecord:
        """Block until a request (the first such, or ``request_id``) ended because the client
        went away; raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.requests:
                if record.disconnected and request_id in (None, record.request_id):
                    return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no client disconnect seen within {timeout} s")
            time.sleep(0.01)

    def reset(self) -> None:
        """Forget records, attempt counters and rate-limit usage (between scenarios)."""
        with self._records_lock:
            self._records.clear()
            self._record_sizes.clear()
            self._record_bytes = 0
            self._total = 0
        self._attempts.reset()
        self._limiter.reset()

    # models
    def model_list(self) -> list[dict[str, Any]]:
        names = list(BUILTIN_MODELS) + [REPLAY_PREFIX + n for n in available(self.streams_dir)]
        return [
            {"id": n, "object": "model", "created": CREATED, "owned_by": "nbstream"} for n in names
        ]

    def unknown_model_message(self, name: str) -> str:
        replay = (
            f"'replay:<file>' for a file in {self.streams_dir}"
            if self.streams_dir is not None
            else "'replay:<file>' when started with streams_dir"
        )
        return (
            f"The model {name!r} does not exist on the nbstream local server. "
            f"Use 'demo' (a Markdown answer), 'echo' (repeats your prompt) or {replay}; "
            "add options after '?', e.g. 'demo?ttft=0.5&tokens_per_s=20'. "
            "To use OpenAI instead, set OPENAI_API_KEY."
        )

    def _limiter_headers(self) -> dict[str, str]:
        return self._limiter.headers()

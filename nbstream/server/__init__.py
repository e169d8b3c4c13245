"""A local OpenAI-compatible server: nbstream's default when no API key is set, and its test bed.

Real HTTP/1.1 on 127.0.0.1 (ephemeral port by default), chunked streaming, keep-alive.

Quick start::

    from nbstream.server import serve
    with serve(streams_dir="../shared/streams") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        for chunk in client.chat.completions.create(model="demo", messages=[...], stream=True):
            ...
        server.requests[-1].chunks_sent

Endpoints
---------
``GET /v1/models`` (and ``/v1/models/{id}``), ``POST /v1/chat/completions``, ``POST /v1/responses``;
streamed (``"stream": true``, ``stream_options.include_usage`` honoured for chat) and not.
``POST /v1/moderations`` (trigger words) and Resume-style continuation of the demo answer: see
``nbstream/server/resilience.py``.
Every response has a unique ``x-request-id`` and
``x-ratelimit-limit|remaining|reset-requests|tokens`` headers. Errors use OpenAI's body
``{"error": {"message", "type", "param", "code"}}``: invalid JSON -> 400 ``invalid_json``; missing
model/messages/input -> 400 ``missing_required_parameter``; unknown model -> 404
``model_not_found`` (the message lists what exists); bad option -> 400 ``invalid_nbstream_option``;
unknown path -> 404 ``unknown_url``.

Every request is checked before it is read (``guard.py``, SECURITY.md): ``Host`` must be a loopback
name/IP with the server's port (or the configured host, or ``allowed_hosts``) -> else 421
``misdirected_request`` (400 when missing); a POST must be ``Content-Type: application/json`` ->
else 415; its ``Content-Length`` must be digits and at most ``max_body_bytes`` (8 MiB) -> else 400
/ 413, chunked request bodies -> 411; JSON nesting past 64 levels, bad UTF-8 and integers past
4,300 digits -> 400 ``invalid_json``. Sockets time out (``request_timeout`` 15 s to send a request,
``write_timeout`` 120 s for a client to read); past ``max_connections`` (256) open connections a
new one gets a 503 at once. ``stop()`` ends every connection thread, even mid-``ttft``.

Models
------
- ``demo``: a deterministic Markdown answer (headings, lists, fenced code, a table, inline and
  display math), one word-sized token per chunk. Same request -> same chunks (ids derive from the
  request body, ``created`` is fixed). ``nbstream.server.demo.demo_tokens(n)`` gives the tokens.
- ``echo``: streams the last user message back (tokenized the same way).
- ``replay:<file>``: a file of ``streams_dir`` byte for byte: ``.sse`` as ``text/event-stream``,
  ``.json`` as an HTTP 400 ``application/json`` body exactly as recorded (status overridable with
  ``status``). Only plain file names inside ``streams_dir``; path tricks get a 400.
  ``.jsonl``: an nbstream ChunkLog (format in :mod:`nbstream.run.log`) streamed again: one attempt
  (the last with chunks, or ``log_attempt``), each chunk's JSON as logged, ``event:`` lines for
  Responses logs, a logged mid-stream error payload at the end, ``[DONE]`` for finished chat logs;
  text-source logs become chat chunks.
  Faults and pacing apply to replays too (counted per SSE event carrying ``data:`` other than
  ``[DONE]``); with neither, the bytes sent equal the file.
- Tool calls: with option ``tool_calls`` (N, up to 8), or ``tool_choice="required"`` / a named
  function and ``tools`` in the request, ``demo`` answers with N parallel function calls instead of
  text (chat ``delta.tool_calls`` with id/name first, then argument fragments split at JSON
  punctuation, ``finish_reason="tool_calls"``; Responses ``function_call`` items with
  ``response.function_call_arguments.delta``). Arguments are built from each function's JSON
  schema (strings ``"example <name>"``, ``"Paris"`` for city/location, 1, 1.5, true, enum[0]);
  without ``tools`` the function is ``get_weather(city)``. See ``tools.py``.
- ``n`` (chat, 1-16): several choices, one per chunk, interleaved round-robin, each with its own
  role and finish chunk; choice i > 0 of ``demo`` is titled "(take i+1)"
  (``demo_tokens(count, choice=i)``).
- ``max_tokens`` / ``max_completion_tokens`` (chat) and ``max_output_tokens`` (Responses) cut the
  demo answer: ``finish_reason="length"`` / ``status="incomplete"``.

Request options
---------------
Given either in the model name after ``?`` (query-string syntax, for the ``%%stream`` magic:
``model="demo?disconnect_after=5&ttft=0.2"``) or in the request body's ``"nbstream"`` object (openai
SDK: ``extra_body={"nbstream": {"disconnect_after": 5, "ttft": 0.2}}``); the body wins on conflict.
Unknown names or bad values get a 400 that lists the valid options. Chunk positions count chunks
(SSE data events) already sent: ``..._after=0`` acts before the first chunk.

Pacing and the demo:
- ``ttft`` (s): wait before the first chunk (before the body when not streamed).
- ``tokens_per_s`` (alias ``rate``): chunks per second after the first.
- ``delay`` (s, alias ``trickle``): per-chunk delay, overrides ``tokens_per_s`` (the slow trickle).
- ``tokens`` (int): the demo answer has exactly this many content tokens (10k/100k benchmarks);
  with echo, caps the echo.
- ``echo`` (bool): echo the prompt instead of the demo answer (same as ``model="echo"``).
- ``reasoning`` (int): stream that many reasoning tokens before the answer: chat
  ``delta.reasoning_content`` chunks (vLLM/DeepSeek style; ``message.reasoning_content`` when not
  streamed), Responses a reasoning item with ``response.reasoning_summary_text.delta`` events;
  counted in usage as reasoning tokens. Not combined with ``n>1``.

Faults:
- ``fail`` (408/409/429/500/502/503/504): answer that status with an OpenAI error body and
  ``Retry-After`` (whole seconds) + ``retry-after-ms`` from ``retry_after`` (s, default 1.0),
  plus the ``x-ratelimit-*`` headers (``remaining-requests`` 0 for 429).
- ``fail_times`` (int): only the first K attempts fail (default: every attempt); it also makes
  the stream faults below transient (later attempts of the key stream cleanly: Resume demos).
  Attempts are counted per request key: ``key`` if given, else a hash of path + raw body, so
  the SDK's identical retries count up. A key idle for 60 s starts over (a re-run cell fails again).
- ``disconnect_after`` (N): after N chunks the server closes the connection without ending the
  chunked body (the client sees a broken stream).
- ``malformed_after`` (N): after N chunks, one ``data:`` line of invalid JSON; the stream goes on.
- ``error_after`` (N): after N chunks, a mid-stream error payload then the end of the body: chat
  ``data: {"error": {"message", "type": "server_error", "param": null, "code":
  "nbstream_injected_error"}}``; Responses ``event: error`` with ``{"type": "error", ...}``.
  ``error_message`` sets the message.
- ``stall_after`` (N) + ``stall`` (s, default 30): after N chunks, send nothing for S seconds.
- ``key`` (str): the attempt-counting key. ``status`` (int, 200-599): HTTP status for ``.json``
  replays.
- Bounds: waits (``ttft``, ``delay``, ``stall``, ``retry_after``) at most 3600 s, ``tokens_per_s``
  0 or at least 1/3600, strings at most 2,000 characters; past them a 400.
  ``log_attempt`` (int): which attempt of a ``.jsonl`` ChunkLog to replay.

Server-wide rate limit: ``serve(rate_limit=RateLimit(requests=10, tokens=5000, window_s=1.0))``.
Each request spends one request and (prompt tokens + max tokens, or the planned answer length)
tokens in a fixed window; over budget -> 429 ``rate_limit_exceeded`` with ``Retry-After`` /
``retry-after-ms`` = time to the window's reset and the ``x-ratelimit-*`` headers. Without it the
headers advertise 10,000 requests / 10,000,000 tokens per minute and nothing is enforced.

Observability
-------------
``LocalServer``: ``.base_url`` (``http://127.0.0.1:PORT/v1``), ``.url``, ``.port``, ``.requests`` (a
list of ``RequestRecord``: ``request_id``, ``method``, ``path``, ``headers`` (no credentials),
``body``, ``model``, ``options``, ``stream``, ``attempt``, ``status``, ``chunks_sent``,
``bytes_sent``, ``disconnected`` (the client went away before the end), ``end_reason``
(``complete``, ``client_disconnected``, ``injected_disconnect``, ``injected_error``,
``error_status``, ``server_stopped``), ``started``/``ended`` (``time.monotonic()``), ``.wait(t)``),
``.last_request``, ``.wait_for_requests(n, timeout)``, ``.wait_idle(timeout)``,
``.wait_for_disconnect(timeout, request_id=None)``, ``.reset()``, ``.stop()``. Only the last
``max_records`` (10,000) records, ``max_record_bytes`` (32 MiB) in all, are kept; a body over 1 MiB
is not kept (``body`` None, ``body_size`` its length); header values are cut at 1,024 characters.
``ProcessServer`` (``serve(process=True)``) has
``.base_url``, ``.url``, ``.process``, ``.stop()`` and no records.

Starting it
-----------
- ``serve(host="127.0.0.1", port=0, streams_dir=None, tokens_per_s=None, ttft=0.0,
  rate_limit=None, process=False, verbose=False)``: a context manager; stops on exit. Pacing
  arguments are server-wide defaults that request options override.
- ``LocalServer(...).start()`` / ``.stop()`` for manual control (also a context manager).
- ``start_background()``: the in-process default used by ``sources/client.py`` when no API key is
  set; idempotent, daemon threads, paced like a real model (60 tokens/s, 0.3 s to first token).
  ``stop_background()`` stops it.
- CLI: ``nbstream serve [--port N] [--host H] [--streams-dir D] [--tokens-per-s R] [--ttft S]
  [--limit-requests N] [--limit-tokens N] [--limit-window S] [--allow-host NAME]
  [--max-body-bytes N] [--verbose]`` (or
  ``python -m nbstream serve``) prints ``nbstream local server: http://127.0.0.1:PORT/v1``.
- pytest (``tests/conftest.py``): ``local_server`` (per test), ``module_server`` (per module),
  both replaying ``../shared/streams`` when present; ``shared_streams`` (the path, or a skip).
- ``bench/server_throughput.py``: the server's emission rate against the openai SDK loop.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from nbstream.server.app import LocalServer, RequestRecord
from nbstream.server.limits import RateLimit
from nbstream.server.options import RequestOptions

__all__ = [
    "BACKGROUND_TOKENS_PER_S",
    "BACKGROUND_TTFT",
    "LocalServer",
    "ProcessServer",
    "RateLimit",
    "RequestOptions",
    "RequestRecord",
    "serve",
    "start_background",
    "stop_background",
]

BACKGROUND_TOKENS_PER_S = 60.0
BACKGROUND_TTFT = 0.3

_background: LocalServer | None = None
_background_lock = threading.Lock()


class ProcessServer:
    """The server running in a child process (for benchmarks): ``base_url``, ``url``, ``stop()``."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.url = base_url.removesuffix("/v1")

    def stop(self) -> None:
        """Terminate the child process (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __repr__(self) -> str:
        return f"<ProcessServer {self.base_url} pid={self.process.pid}>"


_URL_LINE = re.compile(r"(http://[^\s]+/v1)")


def _start_process(
    host: str, port: int, streams_dir: Path | None, tokens_per_s: float | None, ttft: float
) -> ProcessServer:
    cmd = [sys.executable, "-m", "nbstream", "serve", "--host", host, "--port", str(port)]
    if streams_dir is not None:
        cmd += ["--streams-dir", str(streams_dir)]
    if tokens_per_s:
        cmd += ["--tokens-per-s", str(tokens_per_s)]
    if ttft:
        cmd += ["--ttft", str(ttft)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = _URL_LINE.search(line)
        if match:
            return ProcessServer(proc, match.group(1))
    proc.kill()
    proc.wait(timeout=5)
    raise RuntimeError("nbstream serve did not print its URL; output:\n" + "".join(lines))


@contextlib.contextmanager
def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    streams_dir: str | Path | None = None,
    tokens_per_s: float | None = None,
    ttft: float = 0.0,
    rate_limit: RateLimit | None = None,
    process: bool = False,
    verbose: bool = False,
) -> Iterator[LocalServer]:
    """Run the local server for the ``with`` block; yields a :class:`LocalServer`.

    ``tokens_per_s``/``ttft`` are server-wide defaults (requests may override them); by default
    chunks go out as fast as possible. ``process=True`` runs it in a child process (benchmarks) and
    yields a :class:`ProcessServer` instead (no request records).
    """
    if process:
        if rate_limit is not None:
            raise ValueError("rate_limit is not supported with process=True")
        child = _start_process(
            host, port, Path(streams_dir) if streams_dir else None, tokens_per_s, ttft
        )
        try:
            yield child  # type: ignore[misc]
        finally:
            child.stop()
        return
    server = LocalServer(
        host=host,
        port=port,
        streams_dir=streams_dir,
        tokens_per_s=tokens_per_s,
        ttft=ttft,
        rate_limit=rate_limit,
        verbose=verbose,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_background(
    *,
    tokens_per_s: float = BACKGROUND_TOKENS_PER_S,
    ttft: float = BACKGROUND_TTFT,
    streams_dir: str | Path | None = None,
) -> LocalServer:
    """The in-process default server (started once, reused; daemon thread, dies with the process).

    Paced like a real model (60 tokens/s, 0.3 s to first token) so streaming is visible; requests
    can still override with options. Arguments only apply when it is first started.
    """
    global _background
    with _background_lock:
        if _background is None or not _background.running:
            _background = LocalServer(
                tokens_per_s=tokens_per_s, ttft=ttft, streams_dir=streams_dir
            ).start()
        return _background


def stop_background() -> None:
    """Stop the in-process default server if it runs."""
    global _background
    with _background_lock:
        if _background is not None:
            _background.stop()
            _background = None

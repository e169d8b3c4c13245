"""Failures before (and around) the first token, as a person meets them: through ``nbstream.chat``
and ``nbstream.stream`` with the default randomness, the real openai client and real sockets on
127.0.0.1. Every one must end in a final status with a reason a person understands, the partial
text and the chunk log kept, and ``view.wait()`` returning - never "streaming" (issue 12 §3).

Why this file exists: every retry test used to inject ``rand``, and ``Resilience.rand=None`` (what
a user gets) crashed every self-timed backoff - closed port, DNS, timeouts, 5xx without
Retry-After. So nothing here injects randomness or clocks: retries are kept short with public
options only (``RetryPolicy(base_delay=..., max_delay=...)``), and one test runs the untouched
default ``Resilience()``.

Modes: ``waiting`` (the default: the call returns at the end) and ``background`` (returns at once,
``view.wait()`` waits). Sources: a ``ChatRequest`` made by ``nbstream.chat`` with a sync or an
async client or with none (nbstream's own request, no SDK: the same failures must read the same),
and a user's ``lambda`` around ``create(stream=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import nbstream
from nbstream.resilience.layer import Resilience
from nbstream.resilience.retry import RetryPolicy
from nbstream.server import LocalServer
from nbstream.sources.client import client_for

MODES = ["waiting", "background"]
# "own": no client of the user's (the endpoint ``%%stream --base-url`` gives): nbstream's own
# request, without the SDK (sources/openai_http.py); every failure must read the same
CLIENTS = ["sync", "async", "lambda", "own"]
ATTEMPTS = 2
# short, through public knobs only: the draw in [0, 0.1) is random.random, as for a user
QUICK = RetryPolicy(max_attempts=ATTEMPTS, base_delay=0.05, max_delay=0.1)
TIMEOUT = httpx2.Timeout(5.0, connect=0.3, read=0.3)
WAIT_S = 20  # view.wait() must return well before this


def quick() -> Resilience:
    return Resilience(retry=QUICK, session=None)


# ---- helpers: real sockets that misbehave --------------------------------------------------------


def closed_port() -> int:
    """A port nobody listens on: bound, read, closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class RawServer:
    """A TCP server on an ephemeral port; each connection goes to ``handler(conn)`` in a thread.
    It answers what a broken or slow server answers, which the local server is too polite for."""

    def __init__(self, handler: Callable[[socket.socket], None], backlog: int = 16) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.connections: list[socket.socket] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            read_request(conn)
            self.handler(conn)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()


def read_request(conn: socket.socket) -> None:
    """Read one HTTP request (head and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
    need = int(match.group(1)) if match else 0
    while len(body) < need:
        piece = conn.recv(65536)
        if not piece:
            return
        body += piece


def status_answer(status: int, headers: dict[str, str] | None = None) -> Callable[..., None]:
    body = json.dumps({"error": {"message": f"injected {status}", "type": "server_error"}})

    def handler(conn: socket.socket) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        conn.sendall(
            f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
        )

    return handler


def silent(conn: socket.socket) -> None:
    """Accept the request, never answer (until the client gives up)."""
    with contextlib.suppress(OSError):
        conn.recv(1)


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def sse_chunk(payload: dict[str, Any]) -> bytes:
    data = f"data: {json.dumps(payload)}\n\n".encode()  # ascii: lone halves as \\udXXX escapes
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def chat_chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def headers_then_stall(conn: socket.socket) -> None:
    conn.sendall(SSE_HEAD)
    with contextlib.suppress(OSError):
        conn.recv(1)


def text_then_stall(conn: socket.socket) -> None:
    conn.sendall(SSE_HEAD + sse_chunk(chat_chunk("partial ")))
    with contextlib.suppress(OSError):
        conn.recv(1)


def split_emoji(conn: socket.socket) -> None:
    """An untrusted server that cuts an emoji between its UTF-16 halves, plus a lone half."""
    body = b"".join(
        sse_chunk(chat_chunk(text))
        for text in ("a\ud83d", "\ude00b", "c\udc00d", "e\ud83d")  # the last half never pairs
    )
    done = b"data: [DONE]\n\n"
    body += sse_chunk(chat_chunk(finish="stop")) + f"{len(done):x}\r\n".encode() + done
    conn.sendall(SSE_HEAD + body + b"\r\n0\r\n\r\n")


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the SYN is dropped, connect() times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


# ---- how a person starts a stream ----------------------------------------------------------------


def start(
    base_url: str,
    client_kind: str,
    mode: str,
    *,
    resilience: Any = None,
    model: str = "m",
    **params: Any,
) -> nbstream.StreamView:
    """``nbstream.chat(...)`` (sync or async client, or none) or ``nbstream.stream(lambda:
    ...)``."""
    background = mode == "background"
    options = {"resilience": resilience if resilience is not None else quick()}
    messages = [{"role": "user", "content": "hi"}]
    if client_kind == "own":
        # the timeout as the SDK's per-request option, which the own request honours too
        return nbstream.chat(
            messages, model=model, client=client_for(base_url, "sk-test"), timeout=TIMEOUT,
            background=background, display=False, **options, **params,
        )  # fmt: skip
    if client_kind == "lambda":
        # a user's own client: its SDK retries are the user's setting (0 keeps the test short)
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=TIMEOUT)
        return nbstream.stream(
            lambda: client.chat.completions.create(
                model=model, messages=messages, stream=True, **params
            ),
            background=background,
            display=False,
            **options,
        )
    cls = openai.OpenAI if client_kind == "sync" else openai.AsyncOpenAI
    client = cls(base_url=base_url, api_key="sk-test", timeout=TIMEOUT)
    return nbstream.chat(
        messages, model=model, client=client, background=background, display=False,
        **options, **params,
    )  # fmt: skip


def ended(view: nbstream.StreamView, tmp_path: Path) -> str:
    """Wait for the end; check what every failure must leave behind. Returns the reason."""
    t0 = time.monotonic()
    view.wait(timeout=WAIT_S)
    assert time.monotonic() - t0 < WAIT_S
    assert view.status in ("done", "error", "stopped", "incomplete"), view.status
    assert view.run is not None and view.run.done
    # the chunk log tells the story and can be saved (no lone surrogate breaks it)
    records = list(view.log)
    assert records[0]["type"] == "request" and records[-1]["type"] == "end"
    assert records[-1]["status"] == view.status
    saved = view.log.to_jsonl(tmp_path / "run.jsonl")
    assert len(saved.read_text(encoding="utf-8").splitlines()) == len(records)
    # the widget's state is valid UTF-8 JSON and says the same
    snapshot = view.snapshot["versions"][-1]
    json.dumps(view.snapshot, ensure_ascii=False).encode("utf-8")
    assert snapshot["status"] == view.status
    assert view.mode == "idle"  # Stop is hidden and the view says why it ended
    return view.reason or ""


def attempts(view: nbstream.StreamView) -> int:
    return sum(1 for r in view.log if r["type"] == "request")


# ---- network failures before the first token -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_closed_port(client_kind: str, mode: str, tmp_path: Path) -> None:
    port = closed_port()
    view = start(f"http://127.0.0.1:{port}/v1", client_kind, mode)
    reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert f"could not connect to http://127.0.0.1:{port}" in reason.lower()
    assert "connection refused" in reason
    assert attempts(view) == ATTEMPTS  # retried with the default (random) backoff, no crash
    assert [r["type"] for r in view.log if r["type"] in ("retry", "giving_up")] == [
        "retry",
        "giving_up",
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", ["sync", "async", "own"])
def test_dns_failure(client_kind: str, mode: str, tmp_path: Path) -> None:
    view = start("http://nbstream-test.invalid/v1", client_kind, mode)
    reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "nbstream-test.invalid" in reason and "DNS" in reason
    assert attempts(view) == ATTEMPTS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_connect_timeout(client_kind: str, mode: str, tmp_path: Path) -> None:
    with full_backlog() as port:
        view = start(f"http://127.0.0.1:{port}/v1", client_kind, mode)
        reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "timed out" in reason and "connect" in reason.lower()
    assert attempts(view) == ATTEMPTS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_no_answer_read_timeout(client_kind: str, mode: str, tmp_path: Path) -> None:
    with RawServer(silent) as server:
        view = start(server.base_url, client_kind, mode)
        reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "timed out" in reason and "answer" in reason
    assert attempts(view) == ATTEMPTS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_headers_then_stall(client_kind: str, mode: str, tmp_path: Path) -> None:
    with RawServer(headers_then_stall) as server:
        view = start(server.base_url, client_kind, mode)
        reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "timed out" in reason and "answer" in reason


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_text_then_stall_keeps_the_partial_answer(
    client_kind: str, mode: str, tmp_path: Path
) -> None:
    with RawServer(text_then_stall) as server:
        view = start(server.base_url, client_kind, mode)
        reason = ended(view, tmp_path)
    assert (view.status, view.text) == ("incomplete", "partial ")
    assert "timed out" in reason
    assert [r["text"] if "text" in r else r["data"] for r in view.log.chunks()]  # kept


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
@pytest.mark.parametrize("status", [429, 503])
def test_status_without_retry_after(
    status: int, client_kind: str, mode: str, tmp_path: Path
) -> None:
    with RawServer(status_answer(status)) as server:
        view = start(server.base_url, client_kind, mode)
        reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert f"HTTP {status}" in reason and f"injected {status}" in reason
    if status == 429:
        assert "rate limit" in reason
    if client_kind != "lambda":  # (a lambda's SDK client retries by its own settings)
        assert attempts(view) == ATTEMPTS
        retry = next(r for r in view.log if r["type"] == "retry")
        assert retry["retry_after_s"] is None and 0 <= retry["delay_s"] < 0.1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", ["sync", "async", "own"])
@pytest.mark.parametrize("status", [429, 503])
def test_status_with_retry_after(
    status: int, client_kind: str, mode: str, local_server: LocalServer, tmp_path: Path
) -> None:
    view = start(
        local_server.base_url, client_kind, mode, model="demo",
        extra_body={"nbstream": {"fail": status, "retry_after": 0.05}},
    )  # fmt: skip
    reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert f"HTTP {status}" in reason
    retry = next(r for r in view.log if r["type"] == "retry")
    assert retry["retry_after_s"] == pytest.approx(0.05) and retry["delay_s"] == 0.05
    assert attempts(view) == ATTEMPTS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_tls_to_a_plain_http_port(
    client_kind: str, mode: str, local_server: LocalServer, tmp_path: Path
) -> None:
    url = local_server.base_url.replace("http://", "https://")
    view = start(url, client_kind, mode)
    reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "TLS" in reason and "http://" in reason  # what failed, and what to try


# ---- the defaults a person gets ----------------------------------------------------------------


def test_default_resilience_closed_port_ends_in_an_error(tmp_path: Path) -> None:
    """No options at all: the default Resilience() and its random backoff (4 attempts, waits of
    at most 0.5 + 1 + 2 s). This crashed with TypeError before rand=None meant random.random."""
    port = closed_port()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test")
    t0 = time.monotonic()
    view = nbstream.chat("hi", model="m", client=client, display=False)
    assert time.monotonic() - t0 < 10
    reason = ended(view, tmp_path)
    assert view.status == "error" and "connection refused" in reason
    assert attempts(view) == RetryPolicy().max_attempts


def test_default_resilience_background_sync_lambda(tmp_path: Path) -> None:
    port = closed_port()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test")
    view = nbstream.stream(
        lambda: client.chat.completions.create(model="m", messages=[], stream=True),
        background=True,
        display=False,
    )
    reason = ended(view, tmp_path)
    assert view.status == "error" and "connection refused" in reason


def test_sync_lambda_in_background_on_a_running_loop(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """As in a kernel: the cell's event loop runs, background=True makes a task of the run."""
    client = openai.OpenAI(base_url=local_server.base_url, api_key="sk-test")

    async def cell() -> nbstream.StreamView:
        view = nbstream.stream(
            lambda: client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": "hi"}], stream=True
            ),
            background=True,
            display=False,
        )
        assert view.mode == "background"
        return await view

    view = asyncio.run(asyncio.wait_for(cell(), WAIT_S))
    assert ended(view, tmp_path) == ""
    assert view.status == "done" and view.text.startswith("# ") and len(view.text) > 500


# ---- a source that dies ------------------------------------------------------------------------


def dying(exc: BaseException, kind: str) -> Any:
    if kind == "sync":

        def gen() -> Iterator[str]:
            yield "partial "
            yield "answer"
            raise exc

        return gen()

    async def agen() -> Any:
        yield "partial "
        await asyncio.sleep(0)
        yield "answer"
        raise exc

    return agen()


DEATHS = {
    "RuntimeError": (RuntimeError("the tokenizer broke"), "incomplete", "the tokenizer broke"),
    "SystemExit": (SystemExit(3), "incomplete", "SystemExit"),
    "GeneratorExit": (GeneratorExit(), "incomplete", "GeneratorExit"),
    "KeyboardInterrupt": (KeyboardInterrupt(), "stopped", "kernel interrupt"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("death", list(DEATHS))
def test_dying_generator(death: str, kind: str, mode: str, tmp_path: Path) -> None:
    exc, status, words = DEATHS[death]
    view = nbstream.stream(dying(exc, kind), background=mode == "background", display=False)
    reason = ended(view, tmp_path)
    assert (view.status, view.text) == (status, "partial answer")
    assert words in reason
    assert [r["text"] for r in view.log.chunks()] == ["partial ", "answer"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_generator_dying_before_any_text(kind: str, mode: str, tmp_path: Path) -> None:
    def gen() -> Iterator[str]:
        raise ValueError("no model loaded")
        yield ""  # pragma: no cover

    async def agen() -> Any:
        raise ValueError("no model loaded")
        yield ""  # pragma: no cover

    source = gen() if kind == "sync" else agen()
    view = nbstream.stream(source, background=mode == "background", display=False)
    reason = ended(view, tmp_path)
    assert view.status == "error" and view.text == ""
    assert "ValueError" in reason and "no model loaded" in reason


# ---- text that is not valid Unicode ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_emoji_split_between_chunks(kind: str, mode: str, tmp_path: Path) -> None:
    pieces = ["a\ud83d", "\ude00b", "lone \udc00 half ", "end\ud83d"]

    async def agen() -> Any:
        for piece in pieces:
            yield piece

    source = iter(pieces) if kind == "sync" else agen()
    view = nbstream.stream(source, background=mode == "background", display=False)
    ended(view, tmp_path)
    assert view.status == "done"
    assert view.text == "a\U0001f600blone \ufffd half end\ufffd"
    # the raw chunks are kept as received, and a saved log replays to the same answer
    saved = view.log.to_jsonl(tmp_path / "emoji.jsonl")
    assert [r["text"] for r in nbstream.ChunkLog.read(saved).chunks()] == pieces
    assert nbstream.stream(saved, display=False).text == view.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_server_sending_emoji_halves(client_kind: str, mode: str, tmp_path: Path) -> None:
    with RawServer(split_emoji) as server:
        view = start(server.base_url, client_kind, mode)
        ended(view, tmp_path)
    assert view.status == "done", view.reason
    assert view.text == "a\U0001f600bc\ufffdde\ufffd"


def test_log_panel_shows_chunks_with_emoji_halves() -> None:
    """The log panel shows chunks as received: a lone half there must not break the reply
    (Jupyter's messages are UTF-8); it shows as U+FFFD, the saved log keeps it exactly."""
    view = nbstream.stream(iter(["a\ud83d", "\ude00b"]), display=False)
    sent: list[dict] = []
    view.send = sent.append  # what the frontend would receive
    view._on_frontend_msg(
        view, {"type": "log_page", "id": 1, "start": 0, "count": 10, "raw": True}, []
    )
    view._on_frontend_msg(view, {"type": "log_page", "id": 2, "jsonl": True}, [])
    rows, download = sent[0]["rows"], sent[1]["jsonl"]
    assert [r["delta"] for r in rows if r["type"] == "chunk"] == ["a\ufffd", "\ufffdb"]
    for message in sent:
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    assert '"a\ufffd"' in download


# ---- background on a running loop (as in a kernel: the run is a task of the cell's loop) ---------


def on_a_running_loop(make: Callable[[], nbstream.StreamView]) -> nbstream.StreamView:
    async def cell() -> nbstream.StreamView:
        view = make()
        assert view.mode == "background"
        return await view

    return asyncio.run(asyncio.wait_for(cell(), WAIT_S))


@pytest.mark.parametrize("client_kind", CLIENTS)
def test_closed_port_in_background_on_a_running_loop(client_kind: str, tmp_path: Path) -> None:
    port = closed_port()
    view = on_a_running_loop(
        lambda: start(f"http://127.0.0.1:{port}/v1", client_kind, "background")
    )
    reason = ended(view, tmp_path)
    assert view.status == "error" and "connection refused" in reason
    assert attempts(view) == ATTEMPTS


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("death", ["RuntimeError", "SystemExit", "GeneratorExit"])
def test_dying_generator_in_background_on_a_running_loop(
    death: str, kind: str, tmp_path: Path
) -> None:
    exc, status, words = DEATHS[death]
    view = on_a_running_loop(
        lambda: nbstream.stream(dying(exc, kind), background=True, display=False)
    )
    reason = ended(view, tmp_path)
    assert (view.status, view.text) == (status, "partial answer") and words in reason


def test_stop_a_sync_lambda_read_in_a_thread(local_server: LocalServer, tmp_path: Path) -> None:
    """The sync stream of a lambda, read by its own thread for the loop: Stop closes the
    response at once (the server sees the disconnect) and keeps the partial answer."""
    client = openai.OpenAI(base_url=local_server.base_url, api_key="sk-test")

    async def cell() -> nbstream.StreamView:
        view = nbstream.stream(
            lambda: client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": "hi"}], stream=True,
                extra_body={"nbstream": {"tokens": 2000, "tokens_per_s": 100}},
            ),
            background=True,
            display=False,
        )  # fmt: skip
        while len(view.text) < 20:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        view.stop()
        await view
        assert time.monotonic() - t0 < 1.0
        return view

    view = asyncio.run(asyncio.wait_for(cell(), WAIT_S))
    assert ended(view, tmp_path) == "stopped by user"
    assert view.status == "stopped" and len(view.text) >= 20
    record = local_server.wait_for_disconnect(timeout=5)
    assert record.disconnected and record.chunks_sent < 2000

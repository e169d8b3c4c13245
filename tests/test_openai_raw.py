"""The fast path's end of a body (sources/openai_raw.py) against a raw HTTP server on 127.0.0.1.

Servers and proxies do not all end a streamed body right after ``data: [DONE]``: some keep it
open (keep-alive lines, a missing last chunk). The SDK's AsyncStream returns at ``[DONE]``; the
fast path reads on to give the connection back to the pool, but only briefly: a body left open
must not keep a complete answer "streaming" until the read timeout (600 s by default). And a
server that ends with ``[DONE]`` and no finish reason ends "done", resumed or not.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import openai
import pytest

from nbstream.resilience.resume import resume_source
from nbstream.run.stream_run import StreamRun
from nbstream.sources.request import ChatRequest

PARAMS = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return _chunk(b"data: " + json.dumps(body).encode() + b"\n\n")


class RawServer:
    """Answers every request with one content chunk and ``[DONE]`` (no finish reason), then
    either ends the body (and serves the next request on the connection) or keeps it open
    until the test ends."""

    def __init__(self, *, keep_open: bool) -> None:
        self.keep_open = keep_open
        self.release = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:  # requests on this connection (keep-alive), until the client closes it
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                conn.sendall(_sse({"content": "hello "}) + _chunk(b"data: [DONE]\n\n"))
                if self.keep_open:
                    self.release.wait(30)  # the body stays open (a proxy's keep-alive)
                    return
                conn.sendall(b"0\r\n\r\n")

    def close(self) -> None:
        self.release.set()
        self.sock.close()


@pytest.fixture
def open_body() -> Iterator[RawServer]:
    server = RawServer(keep_open=True)
    yield server
    server.close()


@pytest.fixture
def ended_body() -> Iterator[RawServer]:
    server = RawServer(keep_open=False)
    yield server
    server.close()


def test_a_body_left_open_after_done_ends_the_answer_sync(open_body: RawServer) -> None:
    client = openai.OpenAI(base_url=open_body.url, api_key="sk-test", max_retries=0)
    run = StreamRun(ChatRequest(PARAMS, client))
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    worker.join(10)  # before the fix: the read timeout (600 s)
    assert not worker.is_alive(), "the answer stayed 'streaming' after [DONE]"
    assert (run.status, run.text, run.reason) == ("done", "hello ", None)


def test_a_body_left_open_after_done_ends_the_answer_async(open_body: RawServer) -> None:
    async def main() -> StreamRun:
        client = openai.AsyncOpenAI(base_url=open_body.url, api_key="sk-test", max_retries=0)
        run = StreamRun(ChatRequest(PARAMS, client))
        await asyncio.wait_for(run.arun(), 10)  # before the fix: the read timeout (600 s)
        return run

    run = asyncio.run(main())
    assert (run.status, run.text, run.reason) == ("done", "hello ", None)


def test_done_without_a_finish_reason_ends_a_resumed_answer_done(ended_body: RawServer) -> None:
    """Snowflake-style servers: [DONE] and no finish reason is a complete answer, resumed or
    not (the resumed attempt's wrapper kept the value it had before the body was read)."""
    client = openai.OpenAI(base_url=ended_body.url, api_key="sk-test", max_retries=0)
    request = ChatRequest(PARAMS, client)
    plain = StreamRun(request).run()
    resumed = StreamRun(resume_source(request, "Earlier text. ")).run()
    assert (plain.status, plain.reason) == ("done", None)
    assert (resumed.status, resumed.reason) == ("done", None)
    assert resumed.text == "hello "  # the continuation only; the view adds the partial answer


def test_done_without_a_finish_reason_ends_a_resumed_answer_done_async(
    ended_body: RawServer,
) -> None:
    async def main() -> StreamRun:
        client = openai.AsyncOpenAI(base_url=ended_body.url, api_key="sk-test", max_retries=0)
        return await StreamRun(resume_source(ChatRequest(PARAMS, client), "Earlier. ")).arun()

    resumed = asyncio.run(main())
    assert (resumed.status, resumed.reason) == ("done", None)


def test_done_without_a_finish_reason_read_on_a_thread_ends_done(ended_body: RawServer) -> None:
    """A sync client's attempt read by a thread for an event loop (``background=True`` with a
    sync client: sources/threaded.py) ends "done" on [DONE] too."""
    from nbstream.sources.threaded import read_in_thread

    client = openai.OpenAI(base_url=ended_body.url, api_key="sk-test", max_retries=0)
    opened = ChatRequest(PARAMS, client).open()

    async def main() -> tuple[list[object], bool]:
        aopened = read_in_thread(opened)
        items = [item async for item in aopened.items]
        return items, aopened.expects_finish

    items, expects_finish = asyncio.run(main())
    assert len(items) == 1 and expects_finish is False

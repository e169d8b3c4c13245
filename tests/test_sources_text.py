"""Text sources, callables and to_source(): what is accepted, what is refused, and how."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens
from nbstream.sources import CallableSource, to_source
from nbstream.sources.text import TextSource


class AIMessageChunk:  # the shape of LangChain's chunks: a str .content
    def __init__(self, content: str) -> None:
        self.content = content


def test_list_is_rerunnable_and_logged() -> None:
    parts = ["Hel", "", "lo ", "wörld 🚨"]
    source = to_source(parts)
    assert isinstance(source, TextSource) and source.rerunnable
    for _ in range(2):
        run = StreamRun(source).run()
        assert run.status == "done" and run.text == "Hello wörld 🚨"
        assert [c["text"] for c in run.log.chunks()] == parts
        assert run.metrics.tokens_estimated and run.metrics.usage is None


def test_generator_is_one_shot_and_langchain_chunks_work() -> None:
    def gen() -> Iterator[AIMessageChunk]:
        yield from (AIMessageChunk(t) for t in ["a", "b", "c"])

    source = to_source(gen())
    assert not source.rerunnable
    assert StreamRun(source).run().text == "abc"


def test_async_generator() -> None:
    async def agen() -> AsyncIterator[str]:
        for t in ["x", "y", "z"]:
            await asyncio.sleep(0)
            yield t

    async def main() -> StreamRun:
        return await StreamRun(agen()).arun()

    assert asyncio.run(main()).text == "xyz"
    assert StreamRun(agen()).run().text == "xyz"  # sync run() of an async source, no loop here


def test_bad_item_keeps_partial_text() -> None:
    run = StreamRun(["ok ", 42, "never"]).run()
    assert run.status == "incomplete" and run.text == "ok "  # a bad item after text: cut short
    assert "item 1 is int" in run.reason


def test_stop_from_another_thread_on_a_slow_generator() -> None:
    def slow() -> Iterator[str]:
        for i in range(100):
            time.sleep(0.02)
            yield f"{i} "

    run = StreamRun(slow())
    threading.Timer(0.2, run.stop).start()
    run.run()
    assert run.status == "stopped" and run.text.startswith("0 1 ") and "99" not in run.text


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"model": "x"}, "ChatRequest"),
        (42, "cannot stream int"),
        ("hello there", "not one. To stream a fixed text, pass"),
        (b"bytes", "cannot stream a bytes"),
        (lambda x: x, "must take no arguments"),
    ],
)
def test_unknown_input_says_what_is_accepted(obj: object, match: str) -> None:
    with pytest.raises(TypeError, match=match) as info:
        to_source(obj)
    assert "Accepted:" in str(info.value) or "Wrap it" in str(info.value)


def test_callable_is_rerunnable_over_http(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
    calls: list[int] = []

    def ask() -> openai.Stream:
        calls.append(1)
        return client.chat.completions.create(
            model="demo?tokens=15", messages=[{"role": "user", "content": "x"}], stream=True
        )

    source = to_source(ask)
    assert isinstance(source, CallableSource) and source.rerunnable
    first = StreamRun(source).run()
    second = StreamRun(source, log=ChunkLog()).run()
    assert first.text == second.text == "".join(demo_tokens(15))
    assert len(calls) == 2 and len(local_server.requests) == 2
    assert first.log.source_kind(1) == "chat"  # detected from the items


def test_async_callable(local_server: LocalServer) -> None:
    async def main() -> StreamRun:
        async with openai.AsyncOpenAI(
            base_url=local_server.base_url, api_key="local", max_retries=0
        ) as client:

            async def ask() -> openai.AsyncStream:
                return await client.responses.create(model="demo?tokens=9", input="x", stream=True)

            return await StreamRun(ask).arun()

    run = asyncio.run(main())
    assert run.status == "done" and run.text == "".join(demo_tokens(9))
    assert run.log.source_kind(1) == "responses"

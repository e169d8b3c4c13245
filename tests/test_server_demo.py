"""The demo and echo models through the real openai client (sync and async) over real HTTP."""

from __future__ import annotations

import asyncio
import re

import openai

from nbstream.server import LocalServer
from nbstream.server.demo import DEMO_ANSWER, demo_tokens, tokenize

USER = [{"role": "user", "content": "Tell me about streaming"}]


def _client(server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


def _chat_chunks(server: LocalServer, **kwargs):
    stream = _client(server).chat.completions.create(stream=True, **kwargs)
    with stream:
        return list(stream)


def test_demo_streams_markdown_answer_with_usage(local_server: LocalServer) -> None:
    chunks = _chat_chunks(
        local_server, model="demo", messages=USER, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEMO_ANSWER
    assert re.search(r"^# ", text, re.M) and re.search(r"^## ", text, re.M)
    assert re.search(r"^- ", text, re.M) and re.search(r"^1\. ", text, re.M)
    assert "```python" in text and re.search(r"^\|.*\|$", text, re.M)
    assert "$e^{i\\pi} + 1 = 0$" in text and "$$\n" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == len(demo_tokens())
    assert usage.prompt_tokens == len(tokenize(USER[0]["content"]))
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].object == "chat.completion.chunk"
    record = local_server.requests[-1]
    assert record.chunks_sent == len(chunks) and record.end_reason == "complete"
    assert not record.disconnected


def test_demo_is_deterministic(local_server: LocalServer) -> None:
    first = _chat_chunks(local_server, model="demo", messages=USER)
    second = _chat_chunks(local_server, model="demo", messages=USER)
    assert [c.model_dump() for c in first] == [c.model_dump() for c in second]
    assert all(c.usage is None for c in first)  # no include_usage -> no usage chunk


def test_demo_answer_of_n_tokens(local_server: LocalServer) -> None:
    chunks = _chat_chunks(
        local_server, model="demo", messages=USER, extra_body={"nbstream": {"tokens": 10_000}}
    )
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) == 10_000
    assert "".join(deltas) == "".join(demo_tokens(10_000))


def test_echo_model_and_option(local_server: LocalServer) -> None:
    for model in ("echo", "demo?echo=1"):
        chunks = _chat_chunks(local_server, model=model, messages=USER)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == USER[0]["content"]


def test_async_client_streams_demo(local_server: LocalServer) -> None:
    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=local_server.base_url, api_key="local")
        stream = await client.chat.completions.create(model="demo", messages=USER, stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream]
        await client.close()
        return "".join(parts)

    assert asyncio.run(main()) == DEMO_ANSWER


def test_non_streamed_chat_completion(local_server: LocalServer) -> None:
    completion = _client(local_server).chat.completions.create(
        model="demo", messages=USER, max_tokens=7
    )
    assert completion.choices[0].message.content == "".join(demo_tokens(7))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 7


def test_responses_stream_events_and_text(local_server: LocalServer) -> None:
    client = _client(local_server)
    stream = client.responses.create(model="demo", input="Tell me", stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == DEMO_ANSWER
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.output_text == DEMO_ANSWER
    assert completed.usage is not None and completed.usage.output_tokens == len(demo_tokens())


def test_responses_non_streamed_and_incomplete(local_server: LocalServer) -> None:
    response = _client(local_server).responses.create(
        model="demo", input="Tell me", max_output_tokens=16
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "".join(demo_tokens(16))


def test_n_choices_interleaved(local_server: LocalServer) -> None:
    chunks = _chat_chunks(
        local_server,
        model="demo?tokens=12",
        messages=USER,
        n=3,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {0: "", 1: "", 2: ""}
    finishes: dict[int, str] = {}
    for chunk in chunks[:-1]:
        assert len(chunk.choices) == 1
        choice = chunk.choices[0]
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finishes[choice.index] = choice.finish_reason
    assert texts == {i: "".join(demo_tokens(12, choice=i)) for i in range(3)}
    assert texts[1].startswith("# Streaming in notebooks (take 2)")
    assert finishes == {0: "stop", 1: "stop", 2: "stop"}
    assert [c.choices[0].index for c in chunks[3:6]] == [0, 1, 2]  # round-robin
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 36


def test_n_choices_non_streamed_and_bad_n(local_server: LocalServer) -> None:
    client = _client(local_server)
    completion = client.chat.completions.create(model="demo?tokens=5", messages=USER, n=2)
    assert [c.message.content for c in completion.choices] == [
        "".join(demo_tokens(5, choice=i)) for i in range(2)
    ]
    try:
        client.chat.completions.create(model="demo", messages=USER, n=0)
    except openai.BadRequestError as exc:
        assert exc.param == "n"
    else:
        raise AssertionError("n=0 was accepted")


def test_reasoning_then_answer_chat(local_server: LocalServer) -> None:
    from nbstream.server.demo import reasoning_tokens

    chunks = _chat_chunks(
        local_server,
        model="demo?reasoning=30&tokens=5",
        messages=USER,
        stream_options={"include_usage": True},
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert thinking == "".join(reasoning_tokens(30)) and thinking.startswith("**Planning")
    assert "".join(d.content or "" for d in deltas) == "".join(demo_tokens(5))
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert all(getattr(d, "reasoning_content", None) is None for d in deltas[first_content:])
    usage = chunks[-1].usage
    assert usage.completion_tokens == 35
    assert usage.completion_tokens_details.reasoning_tokens == 30
    full = _client(local_server).chat.completions.create(
        model="demo?reasoning=3&tokens=2", messages=USER
    )
    assert full.choices[0].message.reasoning_content == "".join(reasoning_tokens(3))


def test_reasoning_summary_events_responses(local_server: LocalServer) -> None:
    from nbstream.server.demo import reasoning_tokens

    events = list(
        _client(local_server).responses.create(
            model="demo?reasoning=12&tokens=4", input="hi", stream=True
        )
    )
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert summary == "".join(reasoning_tokens(12)) and text == "".join(demo_tokens(4))
    done = events[-1].response
    assert [item.type for item in done.output] == ["reasoning", "message"]
    assert done.output_text == text
    assert done.usage.output_tokens_details.reasoning_tokens == 12
    assert [e.sequence_number for e in events] == list(range(len(events)))

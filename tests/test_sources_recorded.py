"""Every recorded stream in ../shared/streams, served byte for byte by the local server and read by
the real openai client (sync and async), through StreamRun; checked against an oracle computed
from the file's ``data:`` lines with plain ``json`` (tests/recorded_oracle.py, independent of
the adapters)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from recorded_oracle import STREAMS, Oracle, oracle

from nbstream.run import StreamRun
from nbstream.server import LocalServer
from nbstream.sources import to_source
from nbstream.sources.openai_chat import ChatAdapter, chunk_from_json
from nbstream.sources.openai_responses import ResponsesAdapter, event_from_json
from nbstream.sources.request import ChatRequest, ResponsesRequest
from nbstream.state import AnswerState

SSE_FILES = sorted(p.name for p in STREAMS.glob("*.sse")) if STREAMS.is_dir() else []
USER = [{"role": "user", "content": "hello"}]

pytestmark = pytest.mark.skipif(
    not SSE_FILES,
    reason=f"recorded streams not found at {STREAMS} (../shared/streams next to the repository)",
)


def check(run: StreamRun, exp: Oracle, *, check_log: bool = True) -> None:
    state = run.state
    if exp.error:
        # an error the server reported in the stream: "error" with its message, before or
        # after the first token (partial text kept; a transport failure would be "incomplete")
        assert run.status == "error", run.reason
        assert exp.error in (run.reason or "")
    elif any(f == "length" for f in exp.finish.values()):
        assert run.status == "incomplete" and "length" in (run.reason or "")
    else:
        assert run.status == "done", run.reason
    n = max([*exp.text, *exp.finish, *exp.tools, *exp.refusal, *exp.reasoning, -1]) + 1
    assert len(state.choices) == n
    for i, c in enumerate(state.choices):
        assert c.text == exp.text.get(i, "")
        assert c.refusal == (exp.refusal.get(i) or None)
        assert c.reasoning == exp.reasoning.get(i, "")
        assert c.finish_reason == exp.finish.get(i)
        got_tools = [(t.id, t.name, t.arguments) for t in c.tool_calls]
        assert got_tools == exp.tools.get(i, [])
        for t in c.tool_calls:
            assert t.arguments_valid and t.parsed == json.loads(t.arguments)
    if exp.usage_tokens is None:
        assert state.usage is None and run.metrics.tokens_estimated in (True, False)
        if run.state.chars:
            assert run.metrics.tokens_estimated is True
    else:
        assert (state.usage.prompt_tokens, state.usage.completion_tokens) == exp.usage_tokens
        assert run.metrics.tokens == exp.usage_tokens[1] and run.metrics.tokens_estimated is False
    assert run.metrics.chunks == len(exp.datas)
    assert run.metrics.request_id and run.metrics.request_id.startswith("req_")
    if check_log:
        chunks = list(run.log.chunks())
        assert [c["data"] for c in chunks] == exp.datas  # every chunk exactly as received
        assert [c["index"] for c in chunks] == list(range(len(exp.datas)))
        assert all(a["t"] <= b["t"] for a, b in zip(chunks, chunks[1:], strict=False))
        if exp.error:
            err = [r for r in run.log if r["type"] == "error"]
            assert err and exp.error in err[-1]["message"]
            assert err[-1]["data"]["error"]["message"] == exp.error  # raw payload logged


def _request(name: str, client: Any) -> Any:
    if "responses" in name:
        return ResponsesRequest({"model": f"replay:{name}", "input": "hello"}, client)
    return ChatRequest({"model": f"replay:{name}", "messages": USER}, client)


@pytest.mark.parametrize("name", SSE_FILES)
def test_pure_adapter(name: str) -> None:
    """The adapters alone, fed chunks built by the SDK's own models from the file."""
    exp = oracle(STREAMS / name)
    adapter = ResponsesAdapter() if exp.api == "responses" else ChatAdapter()
    build = event_from_json if exp.api == "responses" else chunk_from_json
    state = AnswerState()
    for data in exp.datas:
        state.apply(adapter.handle(build(data)))
    for i, c in enumerate(state.choices):
        assert c.text == exp.text.get(i, "")
        assert [(t.id, t.name, t.arguments) for t in c.tool_calls] == exp.tools.get(i, [])
        assert c.finish_reason == exp.finish.get(i)


@pytest.mark.parametrize("name", SSE_FILES)
def test_sync_over_http(name: str, module_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    run = StreamRun(_request(name, client)).run()
    check(run, oracle(STREAMS / name))
    client.close()


@pytest.mark.parametrize("name", SSE_FILES)
def test_async_over_http(name: str, module_server: LocalServer) -> None:
    async def main() -> StreamRun:
        async with openai.AsyncOpenAI(
            base_url=module_server.base_url, api_key="local", max_retries=0
        ) as client:
            return await StreamRun(_request(name, client)).arun()

    check(asyncio.run(main()), oracle(STREAMS / name))


@pytest.mark.parametrize("name", SSE_FILES)
def test_sdk_stream_object_autodetected(name: str, module_server: LocalServer) -> None:
    """A Stream the caller opened (chat or Responses, told apart by its items)."""
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    if "responses" in name:
        stream = client.responses.create(model=f"replay:{name}", input="hi", stream=True)
    else:
        stream = client.chat.completions.create(model=f"replay:{name}", messages=USER, stream=True)
    source = to_source(stream)
    assert source.rerunnable is False
    run = StreamRun(source).run()
    check(run, oracle(STREAMS / name))
    with pytest.raises(RuntimeError, match="already consumed"):
        source.open()
    client.close()


def test_http_error_body_is_an_error_status(module_server: LocalServer) -> None:
    body = json.loads((STREAMS / "20-openai-http400-error-body.json").read_text())
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    run = StreamRun(
        ChatRequest({"model": "replay:20-openai-http400-error-body.json", "messages": USER}, client)
    ).run()
    assert run.status == "error"
    assert run.reason == f"HTTP 400: {body['error']['message']}"
    assert run.metrics.http_status == 400
    err = [r for r in run.log if r["type"] == "error"][0]
    assert err["status"] == 400 and err["data"]["code"] == body["error"]["code"]
    client.close()

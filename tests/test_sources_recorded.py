"""Every recorded stream in ../shared/streams and ../shared/streams/more (61 bodies from 16
providers), served byte for byte by the local server and read by the real openai client (sync and
async), through StreamRun; checked against an oracle computed from the file's ``data:`` lines with
plain ``json`` (tests/recorded_oracle.py, independent of the adapters): text per choice,
reasoning, refusal, tool calls, hosted-tool activity, citations, usage, finish reason, status.

Each recording goes every way nbstream reads an OpenAI stream: the fast path of the requests it
makes itself (``ChatRequest`` / ``ResponsesRequest``: nbstream's SSE decoder and orjson, no SDK
models), sent by nbstream's own request when no client is given (``sources/openai_http.py``, no
SDK at all) and by the SDK client's ``with_streaming_response`` when one is; and the SDK path
(``fast = False``, and a ``Stream`` the caller opened): each is checked against the oracle, and
the ways against each other (every event, the state, usage, the log)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import openai
import pytest
from recorded_oracle import MORE, STREAMS, Oracle, oracle

from nbstream.run.state import AnswerState
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer, serve
from nbstream.sources import to_source
from nbstream.sources.client import client_for
from nbstream.sources.openai_chat import ChatAdapter, chunk_from_json
from nbstream.sources.openai_responses import ResponsesAdapter, event_from_json
from nbstream.sources.request import ChatRequest, ResponsesRequest


def _files(folder: Any) -> list[str]:
    return sorted(p.name for p in folder.glob("*.sse")) if folder.is_dir() else []


# "streams/<name>" and "more/<name>": the folder picks the server that replays the file
SSE_FILES = [f"streams/{n}" for n in _files(STREAMS)] + [f"more/{n}" for n in _files(MORE)]
FOLDERS = {"streams": STREAMS, "more": MORE}
USER = [{"role": "user", "content": "hello"}]

pytestmark = pytest.mark.skipif(
    not SSE_FILES,
    reason=f"recorded streams not found at {STREAMS} (../shared/streams next to the repository)",
)


@pytest.fixture(scope="module")
def servers(module_server: LocalServer) -> Any:
    """One local server per folder (a server replays plain file names of one directory)."""
    with serve(streams_dir=MORE if MORE.is_dir() else None) as more:
        yield {"streams": module_server, "more": more}


def _split(key: str) -> tuple[str, str, Oracle]:
    folder, name = key.split("/", 1)
    return folder, name, oracle(FOLDERS[folder] / name)


def check(run: StreamRun, exp: Oracle, *, check_log: bool = True) -> None:
    state = run.state
    assert run.status == exp.status, run.reason
    if exp.error:
        # an error the server reported in the stream: "error" with its message, before or
        # after the first token (partial text kept; a transport failure would be "incomplete")
        assert exp.error in (run.reason or "")
    elif exp.status == "incomplete":
        reasons = [f for f in exp.finish.values() if f != "stop"]
        assert reasons and any(r in (run.reason or "") for r in reasons), run.reason
    n = max([*exp.text, *exp.finish, *exp.tools, *exp.refusal, *exp.reasoning, *exp.hosted, -1])
    assert len(state.choices) == n + 1
    for i, c in enumerate(state.choices):
        assert c.text == exp.text.get(i, "")
        assert c.refusal == (exp.refusal.get(i) or None)
        assert c.reasoning == exp.reasoning.get(i, "")
        assert c.finish_reason == exp.finish.get(i)
        got_tools = [(t.id, t.name, t.arguments) for t in c.tool_calls]
        assert got_tools == exp.tools.get(i, [])
        for t in c.tool_calls:
            if t.id in exp.custom:  # freeform input, not JSON: shown as it is
                assert t.kind == "custom" and t.arguments_valid
            else:
                assert t.kind == "function"
                assert t.arguments_valid and t.parsed == json.loads(t.arguments)
        hosted = [(h.id, h.kind, h.status, h.input) for h in c.hosted_tools]
        assert hosted == exp.hosted.get(i, [])
        cites = [(x.url or x.file_id, x.title or x.filename) for x in c.citations]
        assert cites == exp.citations.get(i, [])
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
        for got, want in zip([c["data"] for c in chunks], exp.datas, strict=True):
            assert _same_or_redacted(got, want)  # every chunk exactly as received
        assert [c["index"] for c in chunks] == list(range(len(exp.datas)))
        assert all(a["t"] <= b["t"] for a, b in zip(chunks, chunks[1:], strict=False))
        if exp.raised:
            err = [r for r in run.log if r["type"] == "error"]
            assert err and exp.error in err[-1]["message"]
            assert err[-1]["data"]["error"]["message"] == exp.error  # raw payload logged


REDACTED = "[REDACTED]"


def _same_or_redacted(got: Any, want: Any) -> bool:
    """Equal, except where the log's redactor replaced part of a string by ``[REDACTED]`` (it
    takes a long URL slug in more/41 for a secret: a false positive of nbstream/redact.py, left
    to its owner); the rest of that string must still be exactly the file's."""
    if isinstance(got, str) and isinstance(want, str) and REDACTED in got:
        pattern = ".+?".join(re.escape(piece) for piece in got.split(REDACTED))
        return re.fullmatch(pattern, want, re.S) is not None
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same_or_redacted(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(map(_same_or_redacted, got, want))
    return got == want and type(got) is type(want)


def _request(name: str, client: Any, fast: bool = True) -> Any:
    if "responses" in name:
        req: Any = ResponsesRequest({"model": f"replay:{name}", "input": "hello"}, client)
    else:
        req = ChatRequest({"model": f"replay:{name}", "messages": USER}, client)
    req.fast = fast
    return req


@pytest.mark.parametrize("key", SSE_FILES)
def test_pure_adapter(key: str) -> None:
    """The adapters alone, fed the file's chunks as JSON dicts."""
    _, _, exp = _split(key)
    adapter = ResponsesAdapter() if exp.api == "responses" else ChatAdapter()
    state = AnswerState()
    for data in exp.datas:
        state.apply(adapter.handle(data))
    for i, c in enumerate(state.choices):
        assert c.text == exp.text.get(i, "")
        assert [(t.id, t.name, t.arguments) for t in c.tool_calls] == exp.tools.get(i, [])
        assert c.reasoning == exp.reasoning.get(i, "")
        assert c.refusal == (exp.refusal.get(i) or None)
        assert c.finish_reason == exp.finish.get(i)


@pytest.mark.parametrize("key", SSE_FILES)
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic's serializer on lenient unions
def test_sdk_models_give_the_same_events(key: str) -> None:
    """The adapters read JSON dicts; the SDK's models dumped to JSON read the same (the dict
    path sees every field the SDK's models keep, declared or extra)."""
    _, _, exp = _split(key)
    api = exp.api
    a, b = (
        (ResponsesAdapter(), ResponsesAdapter())
        if api == "responses"
        else (ChatAdapter(), ChatAdapter())
    )
    build = event_from_json if api == "responses" else chunk_from_json
    for data in exp.datas:
        dumped = build(data).model_dump(mode="json", exclude_unset=True)
        assert a.handle(data) == b.handle(dumped)


def test_usage_fields_are_the_sdk_models_fields() -> None:
    """The adapters read chunks without the SDK; the usage fields they tell from extras are
    written out and must stay the installed SDK's (``CompletionUsage``, ``ResponseUsage``)."""
    from openai.types import CompletionUsage
    from openai.types.responses import ResponseUsage

    from nbstream.sources.openai_chat import USAGE_FIELDS

    sdk = set(CompletionUsage.model_fields) | set(ResponseUsage.model_fields)
    assert sdk == USAGE_FIELDS


def _events_of(run: StreamRun) -> list[Any]:
    """What the run's listeners saw: every event of every chunk, in order."""
    return run._seen  # type: ignore[attr-defined, no-any-return]


def _watched(req: Any) -> StreamRun:
    run = StreamRun(req)
    seen: list[Any] = []
    run._seen = seen  # type: ignore[attr-defined]
    run.hooks.append(lambda _run, events: seen.extend(events))
    return run


def same_runs(fast: StreamRun, sdk: StreamRun) -> None:
    """The fast path and the SDK path: the same events, state, usage, status and log."""
    assert _events_of(fast) == _events_of(sdk)
    assert (fast.status, fast.reason) == (sdk.status, sdk.reason)
    assert [_choice(c) for c in fast.state.choices] == [_choice(c) for c in sdk.state.choices]
    assert fast.state.usage == sdk.state.usage
    assert fast.metrics.chunks == sdk.metrics.chunks
    assert fast.metrics.tokens == sdk.metrics.tokens
    assert fast.metrics.http_status == sdk.metrics.http_status == 200
    assert fast.metrics.request_id and sdk.metrics.request_id
    records = [_log_shape(r) for r in fast.log], [_log_shape(r) for r in sdk.log]
    assert records[0] == records[1]


def _choice(c: Any) -> tuple[Any, ...]:
    """All a choice holds, as values (tool calls and hosted tools compare by identity)."""
    tools = [(t.index, t.id, t.name, t.kind, t.arguments) for t in c.tool_calls]
    hosted = [
        (h.index, h.kind, h.id, h.status, h.name, h.input, h.output, h.images)
        for h in c.hosted_tools
    ]
    return (
        c.index,
        c.text,
        c.refusal,
        c.reasoning,
        c.finish_reason,
        c.logprobs,
        c.refusal_logprobs,
        c.content_filter,
        c.citations,
        c.chars,
        tools,
        hosted,
    )


def _log_shape(rec: dict[str, Any]) -> dict[str, Any]:
    """A log record without what differs between two requests (times, request ids, the values
    of rate-limit headers)."""
    out = {k: v for k, v in rec.items() if k not in ("t", "request_id", "wall_time")}
    if isinstance(out.get("headers"), dict):  # the same headers (values count down per request)
        out["headers"] = sorted(out["headers"])
    return out


@pytest.mark.parametrize("key", SSE_FILES)
def test_sync_over_http(key: str, servers: dict[str, LocalServer]) -> None:
    """The fast path (nbstream's own request, and an SDK client's) and the SDK path (fast =
    False): each against the oracle and each other."""
    folder, name, exp = _split(key)
    client = openai.OpenAI(base_url=servers[folder].base_url, api_key="local", max_retries=0)
    own = _watched(_request(name, client_for(servers[folder].base_url, "local"))).run()
    check(own, exp)
    fast = _watched(_request(name, client)).run()
    check(fast, exp)
    sdk = _watched(_request(name, client, fast=False)).run()
    check(sdk, exp)
    same_runs(fast, sdk)
    same_runs(own, sdk)
    client.close()


@pytest.mark.parametrize("key", SSE_FILES)
def test_async_over_http(key: str, servers: dict[str, LocalServer]) -> None:
    folder, name, exp = _split(key)

    async def main() -> tuple[StreamRun, StreamRun, StreamRun]:
        endpoint = client_for(servers[folder].base_url, "local")
        own = await _watched(_request(name, endpoint)).arun()
        async with openai.AsyncOpenAI(
            base_url=servers[folder].base_url, api_key="local", max_retries=0
        ) as client:
            fast = await _watched(_request(name, client)).arun()
            sdk = await _watched(_request(name, client, fast=False)).arun()
            return own, fast, sdk

    own, fast, sdk = asyncio.run(main())
    check(own, exp)
    check(fast, exp)
    check(sdk, exp)
    same_runs(fast, sdk)
    same_runs(own, sdk)


@pytest.mark.parametrize("key", SSE_FILES)
def test_sdk_stream_object_autodetected(key: str, servers: dict[str, LocalServer]) -> None:
    """A Stream the caller opened (chat or Responses, told apart by its items)."""
    folder, name, exp = _split(key)
    client = openai.OpenAI(base_url=servers[folder].base_url, api_key="local", max_retries=0)
    if "responses" in name:
        stream = client.responses.create(model=f"replay:{name}", input="hi", stream=True)
    else:
        stream = client.chat.completions.create(model=f"replay:{name}", messages=USER, stream=True)
    source = to_source(stream)
    assert source.rerunnable is False
    run = StreamRun(source).run()
    check(run, exp)
    with pytest.raises(RuntimeError, match="already consumed"):
        source.open()
    client.close()


@pytest.mark.parametrize("own", [False, True], ids=["sdk-client", "own-request"])
def test_http_error_body_is_an_error_status(module_server: LocalServer, own: bool) -> None:
    body = json.loads((STREAMS / "20-openai-http400-error-body.json").read_text())
    client: Any = (
        client_for(module_server.base_url, "local")
        if own
        else openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    )
    run = StreamRun(
        ChatRequest({"model": "replay:20-openai-http400-error-body.json", "messages": USER}, client)
    ).run()
    assert run.status == "error"
    assert run.reason == f"HTTP 400: {body['error']['message']}"
    assert run.metrics.http_status == 400
    err = [r for r in run.log if r["type"] == "error"][0]
    assert err["status"] == 400 and err["data"]["code"] == body["error"]["code"]
    assert err["error_type"] == "BadRequestError"


SNOWFLAKE = "15-snowflake-cortex-chat-no-finish-reasoning-details.sse"


@pytest.mark.skipif(not (MORE / SNOWFLAKE).is_file(), reason=f"{MORE / SNOWFLAKE} not found")
@pytest.mark.parametrize("done_marker", [True, False])
def test_no_finish_reason_is_done_only_with_the_done_marker(tmp_path: Any, done_marker: bool):
    """Snowflake never sends a finish reason: ``[DONE]`` is what says the stream is complete.
    The same body with its ``[DONE]`` cut off (a stream that merely stopped) stays incomplete."""
    body = (MORE / SNOWFLAKE).read_bytes()
    assert body.rstrip().endswith(b"data: [DONE]")
    if not done_marker:
        body = body.rstrip()[: -len(b"data: [DONE]")]
    (tmp_path / SNOWFLAKE).write_bytes(body)
    exp = oracle(MORE / SNOWFLAKE)
    with serve(streams_dir=tmp_path) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        run = StreamRun(_request(SNOWFLAKE, client)).run()
        client.close()
    assert run.state.text == exp.text[0] and run.state.choices[0].finish_reason is None
    if done_marker:
        assert run.status == "done", run.reason
    else:
        assert run.status == "incomplete" and "finish reason" in (run.reason or "")


def test_unknown_content_blocks_degrade_to_the_text_they_carry() -> None:
    """A list-shaped ``delta.content`` with blocks nbstream does not know: text that can be
    found is shown, the rest is left to the log, and nothing raises."""
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "content": [
                        {"type": "thinking", "thinking": "plain-string thinking"},
                        {"type": "image_url", "image_url": {"url": "https://example.test/i"}},
                        {"type": "reference", "text": "shown"},
                        "bare string",
                        7,
                    ],
                    "reasoning_details": [{"type": "reasoning.encrypted", "data": "opaque"}],
                },
                "finish_reason": None,
            }
        ],
    }
    state = AnswerState()
    state.apply(ChatAdapter().handle(chunk))
    assert state.text == "shownbare string"
    assert state.choices[0].reasoning == "plain-string thinking"


def test_an_adapter_that_trips_costs_that_chunk_not_the_answer(caplog: Any) -> None:
    from nbstream.sources.openai_stream import _events

    class Tripping:
        def handle(self, item: Any) -> list[Any]:
            raise TypeError("can only concatenate str (not 'list') to str")

    assert _events(Tripping(), object()) == []
    assert "kept in the log" in caplog.text

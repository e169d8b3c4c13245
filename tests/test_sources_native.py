"""Native (not OpenAI-shaped) SDK streams: every body in ../shared/streams/providers served over
real HTTP on 127.0.0.1 (tests/native_http.py) and read by the provider's own SDK, through
StreamRun; checked against tests/native_oracle.py, which folds the raw files by hand."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from native_http import PROVIDERS, NativeServer
from native_oracle import Expect, expect, sse_events

from nbstream.redact import redact_obj
from nbstream.resilience.retry import Retrier
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.sources import to_source
from nbstream.sources.replay import ReplaySource

FILES = sorted(p.name for p in PROVIDERS.iterdir()) if PROVIDERS.is_dir() else []
pytestmark = [
    pytest.mark.skipif(
        not FILES,
        reason=f"native recordings not found at {PROVIDERS} (../shared/streams/providers next "
        "to the repository)",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:cohere"),
]
KEY = "sk-ant-test-DO-NOT-LOG-0123456789abcdef"


def named(prefix: str, suffix: str = ".sse") -> list[str]:
    return [n for n in FILES if n.startswith(prefix) and n.endswith(suffix)]


@pytest.fixture(scope="module")
def srv() -> Any:
    with NativeServer() as server:
        yield server


def check(run: StreamRun, e: Expect, *, log: bool = True, replay: bool = False) -> None:
    """``replay``: the run replays a saved log, whose chunks went through the log's secret
    redaction (a tool argument named ``password`` comes back ``[REDACTED]``)."""
    state = run.state
    assert run.status == e.status, run.reason
    c = state.choices[0] if state.choices else None
    assert (c.text if c else "") == e.text
    assert (c.reasoning if c else "") == e.reasoning
    assert (c.refusal if c else None) == e.refusal
    got = [(t.id, t.name, t.parsed) for t in c.tool_calls] if c else []
    if replay:
        assert len(got) == len(e.tools)
        for g, w in zip(got, e.tools, strict=True):
            assert g[:2] == w[:2] and _same_args(g[2], w[2])
    else:
        assert got == e.tools
    for t in c.tool_calls if c else ():
        assert t.arguments_valid, t.arguments
    assert (c.finish_reason if c else None) == e.finish
    if e.usage is None:
        assert state.usage is None
    else:
        assert (state.usage.prompt_tokens, state.usage.completion_tokens) == e.usage
        assert state.usage.reasoning_tokens == e.reasoning_tokens
        assert state.usage.cached_tokens == e.cached_tokens
    if e.model is not None:
        assert (state.model, state.response_id) == (e.model, e.response_id)
    if e.hosted is not None:  # server tools: shown as what they are, never as calls to answer
        hosted = (
            [(h.kind, h.id, json.loads(h.input), h.status) for h in c.hosted_tools] if c else []
        )
        assert hosted == e.hosted
    if e.citations is not None:
        assert ([x.url for x in c.citations] if c else []) == e.citations
    if log:
        chunks = list(run.log.chunks())
        # every chunk as received, after the log's secret redaction (which also hits some
        # innocent URLs ending "...new-york-airport-faa": a key-like "rk-..." shape)
        assert [ch["data"] for ch in chunks] == redact_obj(e.chunks)
    text = json.dumps(list(run.log))
    assert KEY not in text and KEY not in repr(run)


def _same_args(got: Any, want: Any) -> bool:
    """Equal, but for values the log's redaction replaced (a key named ``password``)."""
    if got == "[REDACTED]":
        return True
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_same_args(got[k], want[k]) for k in want)
    return bool(got == want)


def replayed(run: StreamRun, tmp_path: Any) -> StreamRun:
    """The run's log written to a .jsonl file, read back and replayed through the adapter."""
    path = tmp_path / "run.jsonl"
    run.log.to_jsonl(path)
    return StreamRun(ReplaySource(ChunkLog.read(path), speed=0)).run()


# ---- Anthropic ----------------------------------------------------------------------------

anthropic = pytest.importorskip("anthropic")
ANTHROPIC = named("anthropic-")


def _anthropic(srv: NativeServer, name: str, cls: Any = None) -> Any:
    cls = cls or anthropic.Anthropic
    return cls(base_url=srv.url(name), api_key=KEY, max_retries=0)


ARGS = {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("name", ANTHROPIC)
def test_anthropic_create_stream(name: str, srv: NativeServer, tmp_path: Any) -> None:
    client = _anthropic(srv, name)
    run = StreamRun(lambda: client.messages.create(**ARGS, stream=True)).run()
    e = expect(name)
    check(run, e)
    assert run.metrics.request_id == f"req_native_{name[:12]}"
    assert run.source.rerunnable
    check(replayed(run, tmp_path), e, replay=True)


@pytest.mark.parametrize("name", ANTHROPIC)
def test_anthropic_messages_stream_manager(name: str, srv: NativeServer) -> None:
    client = _anthropic(srv, name)
    source = to_source(client.messages.stream(**ARGS))
    assert source.rerunnable  # each `with` asks again: Regenerate works
    check(StreamRun(source).run(), expect(name))
    check(StreamRun(source).run(), expect(name))


@pytest.mark.parametrize("name", ANTHROPIC)
def test_anthropic_async(name: str, srv: NativeServer) -> None:
    async def main() -> tuple[StreamRun, StreamRun]:
        client = _anthropic(srv, name, anthropic.AsyncAnthropic)
        a = await StreamRun(lambda: client.messages.create(**ARGS, stream=True)).arun()
        b = await StreamRun(client.messages.stream(**ARGS)).arun()
        await client.close()
        return a, b

    a, b = asyncio.run(main())
    check(a, expect(name))
    check(b, expect(name))


def test_anthropic_http_529_is_retried_like_a_5xx(srv: NativeServer) -> None:
    name = "anthropic-11-http529-overloaded.json"
    body = json.loads((PROVIDERS / name).read_text())
    client = _anthropic(srv, name)
    seen: list[bool] = []

    def retry(run: StreamRun, exc: BaseException, attempt: int) -> float | None:
        decision = Retrier().decide(exc, attempt)  # the resilience layer's own classification
        seen.append(decision.retry)
        return 0.0 if decision.retry and attempt < 2 else None

    run = StreamRun(lambda: client.messages.create(**ARGS, stream=True), retry=retry).run()
    assert seen == [True, True]  # 529 is retryable; the second decision is the policy's own
    assert run.attempt == 2 and run.status == "error"
    assert run.reason == f"HTTP 529: {body['error']['message']}"
    assert run.metrics.http_status == 529
    err = [r for r in run.log if r["type"] == "error"][-1]
    assert err["data"] == body


def _overloaded_mid_stream(first: int) -> bytes:
    """anthropic-01's first ``first`` events, then the ``event: error`` Anthropic sends when
    overloaded mid-stream, in its real form as quoted in anthropic-sdk-go#200 (INDEX.md), and
    the connection closes."""
    events = sse_events(PROVIDERS / "anthropic-01-thinking-signature-text.sse")[:first]
    out = "".join(f"event: {ev}\ndata: {data}\n\n" for ev, data in events)
    err = (
        '{"type":"error","error":{"details":null,"type":"overloaded_error",'
        '"message":"Overloaded"} }'
    )
    return (out + f"event: error\ndata: {err}\n\n").encode()


@pytest.mark.parametrize("first", [1, 30])
def test_anthropic_error_event_mid_stream(first: int, srv: NativeServer, tmp_path: Any) -> None:
    url = srv.add(f"overloaded-{first}.sse", _overloaded_mid_stream(first))
    client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    decisions: list[bool] = []

    def retry(run: StreamRun, exc: BaseException, attempt: int) -> float | None:
        decisions.append(Retrier().decide(exc, attempt).retry)
        return None

    run = StreamRun(lambda: client.messages.create(**ARGS, stream=True), retry=retry).run()
    assert run.status == "error" and "Overloaded" in (run.reason or "")
    err = [r for r in run.log if r["type"] == "error"][-1]
    assert err["data"]["error"]["type"] == "overloaded_error"
    if first == 1:  # before the first token: retried like the 529 it stands for
        assert decisions == [True] and run.text == ""
    else:  # after: never retried (it would duplicate text); the partial answer is kept
        assert decisions == []
        partial = "".join(
            json.loads(d)["delta"].get("thinking", "")
            for ev, d in sse_events(PROVIDERS / "anthropic-01-thinking-signature-text.sse")[:first]
            if ev == "content_block_delta"
        )
        assert partial and run.state.choices[0].reasoning == partial
    replay = replayed(run, tmp_path)
    assert replay.status == "error" and "Overloaded" in (replay.reason or "")


# ---- Google Gen AI ------------------------------------------------------------------------

genai = pytest.importorskip("google.genai")
# gemini-07 is the JSON-array mode (no alt=sse), which the SDK never asks for; gemini-09 is the
# Interactions API; gemini-10 an HTTP error: each has its own test below.
GEMINI = [n for n in named("gemini-") if not n.startswith(("gemini-09", "gemini-10"))]


def _genai(srv: NativeServer, name: str) -> Any:
    return genai.Client(api_key=KEY, http_options={"base_url": srv.url(name) + "/"})


@pytest.mark.parametrize("name", [n for n in GEMINI if n.endswith(".sse")])
def test_gemini_generate_content_stream(name: str, srv: NativeServer, tmp_path: Any) -> None:
    client = _genai(srv, name)
    e = expect(name)
    # the SDK's own chunks, dumped: what the log must hold (the SDK drops nothing we read)
    run = StreamRun(
        lambda: client.models.generate_content_stream(model="gemini-test", contents="hi")
    ).run()
    check(run, e, log=False)
    assert len(list(run.log.chunks())) == len(e.chunks)
    assert run.log.source_kind(1) == "gemini"
    check(replayed(run, tmp_path), e, log=False, replay=True)
    path = srv.requests[-1]["path"]
    assert ":streamGenerateContent" in path and "alt=sse" in path
    assert KEY not in json.dumps(list(run.log))


@pytest.mark.parametrize("name", [n for n in GEMINI if n.endswith(".sse")])
def test_gemini_async(name: str, srv: NativeServer) -> None:
    async def main() -> StreamRun:
        client = _genai(srv, name)

        async def start() -> Any:
            return await client.aio.models.generate_content_stream(model="g", contents="hi")

        return await StreamRun(start).arun()

    check(asyncio.run(main()), expect(name), log=False)


def test_gemini_json_array_body_pure_adapter() -> None:
    """gemini-07: the JSON-array streaming mode (no SDK asks for it), read by the adapter."""
    from nbstream.run.state import AnswerState
    from nbstream.sources.gemini import GeminiAdapter

    name = "gemini-07-json-array-stream-safety-ratings.json"
    e = expect(name)
    adapter, state = GeminiAdapter(), AnswerState()
    for chunk in json.loads((PROVIDERS / name).read_text()):
        state.apply(adapter.handle(chunk))
    c = state.choices[0]
    assert (c.text, c.reasoning, c.finish_reason) == (e.text, e.reasoning, e.finish)
    assert [(t.id, t.name, t.parsed) for t in c.tool_calls] == e.tools
    flagged = [r for f in c.content_filter for r in f["safety_ratings"]]
    assert {"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"} in flagged
    assert (state.usage.prompt_tokens, state.usage.completion_tokens) == e.usage


def test_gemini_http_400_on_sse_endpoint(srv: NativeServer) -> None:
    name = "gemini-10-http400-on-sse-endpoint.json"
    body = json.loads((PROVIDERS / name).read_text())
    client = _genai(srv, name)
    run = StreamRun(
        lambda: client.models.generate_content_stream(model="gemini-test", contents="hi")
    ).run()
    assert run.status == "error" and run.metrics.http_status == 400
    assert body["error"]["message"] in (run.reason or "")
    assert KEY not in json.dumps(list(run.log)) and KEY not in (run.reason or "")


def test_gemini_interactions_api(srv: NativeServer, tmp_path: Any) -> None:
    name = "gemini-09-interactions-api-thinking.sse"
    client = _genai(srv, name)
    e = expect(name)
    run = StreamRun(
        lambda: client.interactions.create(model="gemini-2.5-flash", input="hi", stream=True)
    ).run()
    check(run, e, log=False)
    assert len(list(run.log.chunks())) == len(e.chunks)
    check(replayed(run, tmp_path), e, log=False, replay=True)


# ---- Ollama -------------------------------------------------------------------------------

ollama = pytest.importorskip("ollama")
# ollama-05 is a whole (stream: false) tool-call answer: streamed, Ollama sends the same object
# in one line, so it is served as a one-line stream.
OLLAMA = [n for n in named("ollama-", "") if "http404" not in n]


def _ollama_call(client: Any, name: str) -> Any:
    if "generate" in name:
        return client.generate(model="llama3", prompt="hi", stream=True)
    return client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}], stream=True)


@pytest.mark.parametrize("name", OLLAMA)
def test_ollama_stream(name: str, srv: NativeServer, tmp_path: Any) -> None:
    client = ollama.Client(host=srv.url(name))
    e = _ollama_expect(name)
    run = StreamRun(lambda: _ollama_call(client, name)).run()
    check(run, e, log=False)
    logged = [ch["data"] for ch in run.log.chunks()]
    assert len(logged) == len(e.chunks)
    for got, want in zip(logged, e.chunks, strict=True):  # every field the server sent is kept
        want = {k: v for k, v in want.items() if v is not None}
        assert {k: got.get(k) for k in want if k != "message"} == {
            k: v for k, v in want.items() if k != "message"
        }
    assert run.log.source_kind(1) == "ollama"
    extra = run.state.usage.extra
    assert extra["eval_duration"] == e.chunks[-1]["eval_duration"]
    check(replayed(run, tmp_path), e, log=False, replay=True)


@pytest.mark.parametrize("name", OLLAMA)
def test_ollama_async(name: str, srv: NativeServer) -> None:
    async def main() -> StreamRun:
        client = ollama.AsyncClient(host=srv.url(name))

        async def start() -> Any:
            return await _ollama_call(client, name)

        return await StreamRun(start).arun()

    check(asyncio.run(main()), _ollama_expect(name), log=False)


def _ollama_expect(name: str) -> Expect:
    """ollama-python's ``Message.ToolCall`` has no ``id`` field (0.6.x): the SDK drops the id
    the server sent, so read through it a call has none."""
    e = expect(name)
    if "id" not in ollama.Message.ToolCall.model_fields:
        e.tools = [(None, n, a) for _, n, a in e.tools]
    return e


def test_ollama_tool_call_id_kept_from_the_raw_line() -> None:
    """The adapter keeps the id when it is in the chunk (a replayed raw line)."""
    from nbstream.run.state import AnswerState
    from nbstream.sources.ollama import OllamaAdapter

    name = "ollama-05-chat-tool-call-NOT-STREAMED.json"
    e, state = expect(name), AnswerState()
    state.apply(OllamaAdapter().handle(json.loads((PROVIDERS / name).read_text())))
    c = state.choices[0]
    assert [(t.id, t.name, t.parsed) for t in c.tool_calls] == e.tools
    assert (c.finish_reason, c.reasoning) == (e.finish, e.reasoning) == ("tool_calls", c.reasoning)


def test_ollama_http_404(srv: NativeServer) -> None:
    name = "ollama-06-http404-model-not-found.json"
    message = json.loads((PROVIDERS / name).read_text())["error"]
    client = ollama.Client(host=srv.url(name))
    run = StreamRun(lambda: _ollama_call(client, name)).run()
    assert run.status == "error" and run.metrics.http_status == 404
    assert run.reason == f"HTTP 404: {message}"


# ---- Cohere -------------------------------------------------------------------------------

cohere = pytest.importorskip("cohere")
COHERE_V2 = named("cohere-", ".sse")
MESSAGES = [{"role": "user", "content": "hi"}]


def check_cohere(run: StreamRun, e: Expect) -> None:
    if e.error:
        assert run.status == "error" and run.reason == e.error
        c = run.state.choices[0]
        assert (c.text, c.reasoning) == (e.text, e.reasoning)  # the partial answer is kept
        return
    check(run, e, log=False)


@pytest.mark.parametrize("name", COHERE_V2)
def test_cohere_v2_chat_stream(name: str, srv: NativeServer, tmp_path: Any) -> None:
    client = cohere.ClientV2(api_key=KEY, base_url=srv.url(name))
    e = expect(name)
    run = StreamRun(lambda: client.chat_stream(model="command", messages=MESSAGES)).run()
    check_cohere(run, e)
    assert len(list(run.log.chunks())) == len(e.chunks)
    assert run.log.source_kind(1) == "cohere"
    check_cohere(replayed(run, tmp_path), e)
    assert KEY not in json.dumps(list(run.log))


@pytest.mark.parametrize("name", COHERE_V2)
def test_cohere_v2_async(name: str, srv: NativeServer) -> None:
    async def main() -> StreamRun:
        client = cohere.AsyncClientV2(api_key=KEY, base_url=srv.url(name))
        return await StreamRun(
            lambda: client.chat_stream(model="command", messages=MESSAGES)
        ).arun()

    check_cohere(asyncio.run(main()), expect(name))


def test_cohere_v1_legacy_chat_stream(srv: NativeServer) -> None:
    name = "cohere-05-v1-legacy-stream-json.ndjson"
    client = cohere.Client(api_key=KEY, base_url=srv.url(name))
    e = expect(name)
    run = StreamRun(lambda: client.chat_stream(message="hi", model="command")).run()
    check(run, e, log=False)
    assert len(list(run.log.chunks())) == len(e.chunks)


# ---- Stop closes the HTTP connection at once, whatever the SDK ------------------------------


def _start(name: str, base: str) -> Any:
    if name.startswith("anthropic"):
        client = anthropic.Anthropic(base_url=base, api_key=KEY, max_retries=0)
        return lambda: client.messages.create(**ARGS, stream=True)
    if name.startswith("gemini"):
        gclient = genai.Client(api_key=KEY, http_options={"base_url": base + "/"})
        return lambda: gclient.models.generate_content_stream(model="g", contents="hi")
    if name.startswith("ollama"):
        oclient = ollama.Client(host=base)
        return lambda: _ollama_call(oclient, name)
    cclient = cohere.ClientV2(api_key=KEY, base_url=base)
    return lambda: cclient.chat_stream(model="command", messages=MESSAGES)


@pytest.mark.parametrize(
    "name",
    [
        "anthropic-08-pause-turn-web-search-long.sse",
        "gemini-01-thought-parts-then-text.sse",
        "ollama-01-chat-thinking-qwen3.ndjson",
        "cohere-01-v2-text.sse",
    ],
)
def test_stop_closes_the_connection_at_once(name: str) -> None:
    """Stop from another thread while the consumer waits for the next event (0.2 s apart):
    the run ends at once and the server sees the client hang up."""
    with NativeServer(delay=0.2) as slow:
        run = StreamRun(_start(name, slow.url(name)))
        thread = threading.Thread(target=run.run)
        thread.start()
        deadline = time.monotonic() + 10
        while run.metrics.chunks < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        run.stop()
        thread.join(5)
        assert not thread.is_alive() and time.monotonic() - t0 < 0.15
        assert run.status == "stopped" and 2 <= run.metrics.chunks < 6
        deadline = time.monotonic() + 5
        while slow.hangups == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.hangups == 1  # the server saw the disconnect


# ---- OpenAI-shaped chunks that are not openai.Stream (Mistral's bodies) ----------------------

MISTRAL = named("mistral-")


def test_mistral_sdk(srv: NativeServer, tmp_path: Any) -> None:
    pytest.importorskip("mistralai.client")
    from mistralai.client import Mistral

    for name in MISTRAL:
        client = Mistral(api_key=KEY, server_url=srv.url(name))
        e = expect(name)
        run = StreamRun(lambda c=client: c.chat.stream(model="m", messages=MESSAGES)).run()
        check(run, e, log=False)
        assert run.log.source_kind(1) == "chunks" and len(list(run.log.chunks())) == len(e.chunks)
        check(replayed(run, tmp_path), e, log=False, replay=True)


@pytest.mark.parametrize("name", MISTRAL)
def test_hugging_face_inference_client(name: str, srv: NativeServer) -> None:
    hub = pytest.importorskip("huggingface_hub")
    client = hub.InferenceClient(base_url=srv.url(name), api_key=KEY)
    run = StreamRun(lambda: client.chat_completion(messages=MESSAGES, stream=True)).run()
    check(run, expect(name), log=False)
    assert "/chat/completions" in srv.requests[-1]["path"]


@pytest.mark.parametrize("name", MISTRAL)
def test_plain_chunk_dicts(name: str, tmp_path: Any) -> None:
    """Dict chunks (llama-cpp-python, pre-1.0 ``openai``), from a plain generator."""
    e = expect(name)
    chunks = [json.loads(d) for _, d in sse_events(PROVIDERS / name) if d != "[DONE]"]
    run = StreamRun(lambda: iter(chunks)).run()
    check(run, e)
    assert run.source.rerunnable
    check(replayed(run, tmp_path), e, replay=True)


def test_legacy_completion_dicts() -> None:
    """Pre-1.0 ``openai.Completion.create(stream=True)`` / llama-cpp ``__call__``: ``text``
    on the choice instead of a delta."""
    e = expect("mistral-03-text-p-padding.sse")
    chunks = []
    for _, d in sse_events(PROVIDERS / "mistral-03-text-p-padding.sse"):
        if d == "[DONE]":
            continue
        c = json.loads(d)
        c["object"] = "text_completion"
        for ch in c["choices"]:
            ch["text"] = ch.pop("delta").get("content") or ""
        chunks.append(c)
    run = StreamRun(lambda: iter(chunks)).run()
    assert run.status == "done" and run.text == e.text
    assert run.state.choices[0].finish_reason == e.finish


# ---- LangChain chat models (their AIMessageChunks, in full) ---------------------------------


def check_langchain(run: StreamRun, e: Expect) -> None:
    """What LangChain passes on: text, reasoning, tool calls, usage, the finish reason."""
    assert run.status == e.status, run.reason
    c = run.state.choices[0]
    assert (c.text, c.reasoning) == (e.text, e.reasoning)
    assert [(t.name, t.parsed) for t in c.tool_calls] == [(n, a) for _, n, a in e.tools]
    assert all(t.arguments_valid for t in c.tool_calls)
    assert c.finish_reason == e.finish
    assert (run.state.usage.prompt_tokens, run.state.usage.completion_tokens) == e.usage
    assert run.log.source_kind(1) == "langchain"


LC_ANTHROPIC = [
    n
    for n in ANTHROPIC
    # langchain-anthropic 1.7 raises AttributeError ('dict' object has no attribute
    # 'model_dump') on this recording's compaction context_management: its bug, not a stream
    if not n.startswith("anthropic-09")
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", LC_ANTHROPIC)
def test_langchain_chat_anthropic(name: str, srv: NativeServer, tmp_path: Any) -> None:
    lc = pytest.importorskip("langchain_anthropic")
    model = lc.ChatAnthropic(
        model="claude-test", base_url=srv.url(name), api_key=KEY, max_retries=0
    )
    e = expect(name)
    run = StreamRun(lambda: model.stream("hi")).run()
    check_langchain(run, e)
    check_langchain(replayed(run, tmp_path), e)
    assert KEY not in json.dumps(list(run.log)) and KEY not in repr(run)


@pytest.mark.parametrize("name", [n for n in OLLAMA if "chat" in n])
def test_langchain_chat_ollama(name: str, srv: NativeServer) -> None:
    lc = pytest.importorskip("langchain_ollama")
    model = lc.ChatOllama(model="qwen3", base_url=srv.url(name), reasoning=True)
    e = _ollama_expect(name)
    check_langchain(StreamRun(lambda: model.stream("hi")).run(), e)


# ---- chat(), compare() and %%stream aimed at native clients ---------------------------------


def test_chat_with_native_clients(srv: NativeServer) -> None:
    import nbstream

    a = _anthropic(srv, "anthropic-01-thinking-signature-text.sse")
    view = nbstream.chat("hi", model="claude-test", client=a, display=False, max_tokens=50)
    e = expect("anthropic-01-thinking-signature-text.sse")
    assert view.run.status == "done" and view.run.text == e.text
    body = json.loads(srv.requests[-1]["body"])
    assert body["max_tokens"] == 50 and body["stream"] is True
    g = _genai(srv, "gemini-03-max-tokens.sse")
    view = nbstream.chat("hi", model="gemini-test", client=g, display=False, system="Be brief")
    assert (
        view.run.status == "incomplete" and view.run.text == expect("gemini-03-max-tokens.sse").text
    )
    body = json.loads(srv.requests[-1]["body"])
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief"


def test_compare_native_sources_side_by_side(srv: NativeServer) -> None:
    import nbstream

    a = _anthropic(srv, "anthropic-06-stop-sequence.sse")
    o = ollama.Client(host=srv.url("ollama-02-chat-llama3.ndjson"))
    board = nbstream.compare(
        sources=[
            lambda: a.messages.create(**ARGS, stream=True),
            lambda: o.chat(model="llama3", messages=MESSAGES, stream=True),
        ],
        display=False,
    )
    texts = [v.run.text for v in board.views]
    assert texts == [
        expect("anthropic-06-stop-sequence.sse").text,
        expect("ollama-02-chat-llama3.ndjson").text,
    ]
    assert [v.run.status for v in board.views] == ["done", "done"]


def test_stream_magic_with_a_native_client(srv: NativeServer) -> None:
    ipython = pytest.importorskip("IPython")
    shells = ipython.core.interactiveshell.InteractiveShell
    shell = shells.instance()
    try:
        shell.run_line_magic("load_ext", "nbstream")
        name = "cohere-01-v2-text.sse"
        shell.user_ns["co"] = cohere.ClientV2(api_key=KEY, base_url=srv.url(name))
        shell.run_cell_magic("stream", "-m command --client co --out answer", "hi")
        assert shell.user_ns["answer"] == expect(name).text
        shell.run_cell_magic("stream", "-m command -m command --client co --out both", "hi")
        assert shell.user_ns["both"] == [expect(name).text] * 2
    finally:
        shells.clear_instance()  # later tests run outside IPython, as a script does


def test_ollama_error_line_mid_stream(srv: NativeServer, tmp_path: Any) -> None:
    """ollama-02's first 5 lines, then an ``{"error": ...}`` line (the form Ollama uses for a
    failure after the headers went out): the run ends "error" with it, the text is kept."""
    lines = (PROVIDERS / "ollama-02-chat-llama3.ndjson").read_bytes().splitlines(keepends=True)
    err = {"error": "an error was encountered while running the model: unexpected EOF"}
    url = srv.add("broken.ndjson", b"".join(lines[:5]) + json.dumps(err).encode() + b"\n")
    run = StreamRun(lambda: _ollama_call(ollama.Client(host=url), "chat")).run()
    partial = "".join(json.loads(line)["message"]["content"] for line in lines[:5])
    assert run.status == "error" and run.reason == err["error"]
    assert partial and run.text == partial
    logged = [r for r in run.log if r["type"] == "error"][-1]
    assert logged["data"] == err
    replay = replayed(run, tmp_path)
    assert (replay.status, replay.text) == ("error", partial)

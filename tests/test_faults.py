"""The fault matrix: every fault of the local server, sync and async, real openai client over real
HTTP, through the resilience layer (retries, rate limiter, stall watch) and Resume.

For each fault we assert the final status and reason, that the partial text equals what the server
sent (computed independently from the demo model's tokens and the server's own record of chunks
sent), the shape of the whole chunk log, the number of attempts (client side and server side), and
that Resume joins the rest of the answer with nothing lost and nothing repeated.
"""

from __future__ import annotations

import _thread
import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from nbstream.resilience.errors import ConnectionFailed, explain
from nbstream.resilience.layer import Resilience
from nbstream.resilience.retry import RetryPolicy
from nbstream.resilience.stall import StallPolicy
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer, serve
from nbstream.server.demo import demo_tokens
from nbstream.sources.request import ChatRequest

USER = [{"role": "user", "content": "Tell me about streaming."}]
FULL = "".join(demo_tokens())
MODES = [False, True]
MODE_IDS = ["sync", "async"]


TIGHT = StallPolicy(first_chunk_s=1.0, inter_chunk_s=0.4)  # for the stall faults only


def policy(stall: StallPolicy | None = None) -> Resilience:
    """Small delays so the suite stays fast: backoff base 20 ms; stall timeouts generous (a loaded
    machine must not stall a healthy stream) except in the stall tests."""
    return Resilience(
        retry=RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1),
        stall=stall or StallPolicy(first_chunk_s=10, inter_chunk_s=5),
        rand=lambda: 0.5,
        session=None,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve() as s:
        yield s


_keys = itertools.count()


def request(server_url: str, options: dict[str, Any], is_async: bool) -> ChatRequest:
    """A chat request with its own attempt key (so fail_times counts this test only)."""
    options = {"key": f"fault-{next(_keys)}", **options}
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(
        base_url=server_url, api_key="local"
    )  # SDK default max_retries=2: nbstream disables it
    return ChatRequest(
        {"model": "demo", "messages": USER, "extra_body": {"nbstream": options}}, client
    )


def drive(run: StreamRun, is_async: bool) -> StreamRun:
    if is_async:

        async def main() -> StreamRun:
            return await run.arun()

        return asyncio.run(main())
    return run.run()


def shape(run: StreamRun) -> list[str]:
    """The log as a list of record types, consecutive chunks collapsed: ``chunk*6``."""
    out: list[str] = []
    for rec in run.log:
        kind = rec["type"]
        if kind == "end":
            kind = f"end:{rec['status']}"
        if out and out[-1].split("*")[0] == kind == "chunk":
            count = int(out[-1].split("*")[1]) if "*" in out[-1] else 1
            out[-1] = f"chunk*{count + 1}"
        else:
            out.append(kind)
    return out


def server_records(server: LocalServer, run: StreamRun) -> list[Any]:
    key = run.source.params["extra_body"]["nbstream"]["key"]
    records = [r for r in server.requests if r.options is not None and r.options.key == key]
    for record in records:
        assert record.wait(5), "the server did not finish the request"
    return records


def sent_text(record: Any) -> str:
    """What the server sent as content: every chunk after the role chunk is one demo token."""
    return "".join(demo_tokens()[: max(0, record.chunks_sent - 1)])


def resume_and_check(server: LocalServer, res: Resilience, run: StreamRun, is_async: bool) -> None:
    """Resume must give back the whole answer: no gap, no repeated words."""
    partial = run.text
    fault_free = {"extra_body": {"nbstream": {"key": f"resume-{next(_keys)}"}}}  # a transient fault
    more = drive(res.resume(run, params=fault_free), is_async)
    assert more.status == "done", more.reason
    assert more.resilience.resumed_from == partial
    assert partial + more.text == FULL
    # the server really repeated a few words (as models do) and the join removed them
    continuation = "".join(
        c["data"]["choices"][0]["delta"].get("content") or ""
        for c in more.log.chunks()
        if c["data"]["choices"]
    )
    if partial:
        assert len(continuation) > len(more.text)


# -- faults after the first token: incomplete, partial kept, Resume -----------------------------


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_disconnect_after_n(server: LocalServer, is_async: bool) -> None:
    res = policy()
    run = drive(res.build(request(server.base_url, {"disconnect_after": 6}, is_async)), is_async)
    [record] = server_records(server, run)
    assert (run.status, run.reason) == ("incomplete", "the answer was cut off: Connection error.")
    assert record.end_reason == "injected_disconnect" and record.chunks_sent == 6
    assert run.text == sent_text(record) == "".join(demo_tokens(5))
    assert shape(run) == ["request", "response", "chunk*6", "error", "end:incomplete"]
    assert run.attempt == 1 and res.retry is not None
    resume_and_check(server, res, run, is_async)


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_malformed_chunk(server: LocalServer, is_async: bool) -> None:
    res = policy()
    run = drive(res.build(request(server.base_url, {"malformed_after": 3}, is_async)), is_async)
    assert run.status == "incomplete"
    assert "Expecting" in run.reason or "JSON" in run.reason or "Unterminated" in run.reason
    assert run.text == "".join(demo_tokens(2))
    assert shape(run) == ["request", "response", "chunk*3", "error", "end:incomplete"]
    assert [r["error_type"] for r in run.log if r["type"] == "error"] == ["JSONDecodeError"]
    assert run.attempt == 1
    resume_and_check(server, res, run, is_async)


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_midstream_error_payload(server: LocalServer, is_async: bool) -> None:
    res = policy()
    opts = {"error_after": 4, "error_message": "Overloaded mid-way"}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    [record] = server_records(server, run)
    # reported by the server: "error" with its message (a disconnect would be "incomplete")
    assert run.status == "error" and "reported an error in the stream: Overloaded mid-way" in (
        run.reason
    )
    assert record.end_reason == "injected_error"
    assert run.text == sent_text(record) == "".join(demo_tokens(3))
    assert shape(run) == ["request", "response", "chunk*4", "error", "end:error"]
    error = [r for r in run.log if r["type"] == "error"][0]
    assert error["data"]["error"]["code"] == "nbstream_injected_error"  # the payload as sent
    assert run.attempt == 1
    resume_and_check(server, res, run, is_async)


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_stall_mid_stream(server: LocalServer, is_async: bool) -> None:
    res = policy(TIGHT)
    opts = {"stall_after": 4, "stall": 10}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    [record] = server_records(server, run)
    assert run.status == "incomplete"
    assert run.reason == "stalled: no chunk for 0.4 s (after chunk 4)"
    assert run.text == sent_text(record) == "".join(demo_tokens(3))
    assert record.wait(5) and record.disconnected  # the server saw us close the stalled stream
    assert shape(run) == ["request", "response", "chunk*4", "stall", "end:incomplete"]
    assert run.attempt == 1
    resume_and_check(server, res, run, is_async)


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_stall_before_the_first_chunk(server: LocalServer, is_async: bool) -> None:
    res = policy(TIGHT)
    run = drive(res.build(request(server.base_url, {"ttft": 10}, is_async)), is_async)
    [record] = server_records(server, run)
    assert (run.status, run.reason) == ("incomplete", "stalled: no first chunk within 1 s")
    assert run.text == "" and record.wait(5) and record.disconnected
    assert shape(run) == ["request", "response", "stall", "end:incomplete"]
    assert run.attempt == 1
    more = drive(res.build(request(server.base_url, {}, is_async)), is_async)  # Retry
    assert more.status == "done" and more.text == FULL


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_slow_trickle_is_not_a_stall(server: LocalServer, is_async: bool) -> None:
    res = policy(StallPolicy(first_chunk_s=2, inter_chunk_s=1))  # 0.05 s gaps: far below
    opts = {"delay": 0.05, "tokens": 12}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    [record] = server_records(server, run)
    assert (run.status, run.reason) == ("done", None)
    assert run.text == "".join(demo_tokens(12)) == sent_text(record)[: len(run.text)]
    assert record.wait(5) and record.duration is not None and record.duration >= 0.05 * 11
    # role chunk + 12 tokens + finish chunk + usage chunk (ChatRequest asks for usage)
    assert shape(run) == ["request", "response", "chunk*15", "end:done"]
    assert run.attempt == 1


# -- faults before the first token: retried ------------------------------------------------------


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_for_k_attempts_is_retried(server: LocalServer, is_async: bool, status: int) -> None:
    res = policy()
    opts = {"fail": status, "fail_times": 2, "retry_after": 0.03}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    records = server_records(server, run)
    assert (run.status, run.reason, run.text) == ("done", None, FULL)
    assert [r.status for r in records] == [status, status, 200]  # no hidden SDK attempt
    assert run.attempt == 3 and run.metrics.attempts == 3
    retries = [r for r in run.log if r["type"] == "retry"]
    assert [r["delay_s"] for r in retries] == [0.03, 0.03]  # Retry-After (retry-after-ms) honoured
    assert [r["status"] for r in retries] == [status, status]
    # after a 429 the endpoint's limiter also holds new attempts until Retry-After (+20 ms margin)
    waits = [r["waited_s"] for r in run.log if r["type"] == "rate_limit_wait"]
    assert len(waits) <= 2 and all(w < 1.0 for w in waits)  # ~0.05 s; load only adds
    assert status == 429 or not waits
    assert [k for k in shape(run) if k != "rate_limit_wait"] == [
        "request", "retry", "error", "end:retry",
        "request", "retry", "error", "end:retry",
        "request", "response", "chunk*" + str(len(demo_tokens()) + 3), "end:done",
    ]  # fmt: skip


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_retries_are_limited(server: LocalServer, is_async: bool) -> None:
    res = policy()
    opts = {"fail": 503, "retry_after": 0.01}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    assert run.status == "error" and run.reason.startswith("HTTP 503 from http")  # explained
    assert run.resilience.error.hint.startswith("This is on the server's side")
    assert len(server_records(server, run)) == 3 and run.attempt == 3
    decisions = [r["type"] for r in run.log if r["type"] in ("retry", "giving_up")]
    assert decisions == ["retry", "retry", "giving_up"]
    assert [r for r in run.log if r["type"] == "giving_up"][0]["why"] == "gave up after 3 attempts"


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_connection_refused(is_async: bool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    res = policy()
    run = drive(res.build(request(base, {}, is_async)), is_async)
    assert run.status == "error"
    assert run.reason.startswith(f"Could not connect to {base}: connection refused.\nIs the server")
    assert isinstance(run.resilience.error, ConnectionFailed)
    assert run.error_message == "Connection error."  # the SDK's words stay in the log
    assert run.attempt == 3
    retries = [r for r in run.log if r["type"] == "retry"]
    assert [r["delay_s"] for r in retries] == [0.01, 0.02]  # full jitter, rand=0.5: 0.5*0.02*2**n
    assert [r["failure"] for r in retries] == ["connection", "connection"]
    assert shape(run)[-2:] == ["error", "end:error"]
    assert run.text == ""


def test_connection_refused_explained() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", max_retries=0)
    try:
        client.chat.completions.create(model="demo", messages=USER)
    except openai.APIConnectionError as exc:
        err = explain(exc)
    assert isinstance(err, ConnectionFailed) and "connection refused" in err.message


# -- kernel interrupt -----------------------------------------------------------------------------


def interrupt_after(run: StreamRun, chunks: int) -> None:
    """Deliver a real SIGINT-style KeyboardInterrupt to the main thread after ``chunks`` chunks."""
    fired = threading.Event()

    def listener(r: StreamRun, events: list) -> None:
        if events and r.metrics.chunks >= chunks and not fired.is_set():
            fired.set()
            _thread.interrupt_main()

    run.subscribe(listener)


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_keyboard_interrupt(server: LocalServer, is_async: bool) -> None:
    res = policy()
    run = res.build(request(server.base_url, {"delay": 0.02}, is_async))
    interrupt_after(run, 5)
    if is_async:
        with pytest.raises(KeyboardInterrupt):
            drive(run, True)  # asyncio.run cancels the task, then re-raises the interrupt
    else:
        drive(run, False)  # the sync run swallows it: status "stopped", no traceback
    [record] = server_records(server, run)
    assert run.status == "stopped"
    assert run.reason in ("stopped (kernel interrupt)", "cancelled")
    chunks = len(list(run.log.chunks()))
    assert chunks >= 5 and run.text == "".join(demo_tokens(chunks - 1))
    assert record.wait(5) and record.disconnected  # the HTTP response was closed at once
    assert shape(run) == ["request", "response", f"chunk*{chunks}", "end:stopped"]
    resume_and_check(server, res, run, is_async)


# -- waits that are not stalls, and places that must be given back ------------------------------


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_a_retry_wait_longer_than_the_stall_timeout_is_not_a_stall(
    server: LocalServer, is_async: bool
) -> None:
    res = policy(StallPolicy(first_chunk_s=0.3, inter_chunk_s=0.3))
    opts = {"fail": 503, "fail_times": 1, "retry_after": 0.6}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    assert (run.status, run.text, run.attempt) == ("done", FULL, 2)


def test_stop_while_opening_gives_the_rate_limit_place_back() -> None:
    """A server that accepts and never answers: Stop during open() must free the limiter's slot,
    or every later stream to that endpoint would queue forever."""
    from nbstream.resilience.ratelimit import Limiter

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        base = f"http://127.0.0.1:{hole.getsockname()[1]}/v1"
        limiter = Limiter(poll_s=0.005)
        res = Resilience(retry=None, limiter=limiter, session=None)

        async def main() -> StreamRun:
            run = res.build(request(base, {}, True))
            task = asyncio.create_task(run.arun())
            await asyncio.sleep(0.3)  # now blocked in open(), holding the probe place
            run.stop("stopped by user")
            await asyncio.wait_for(task, 5)
            return run

        run = asyncio.run(main())
        assert (run.status, run.reason) == ("stopped", "stopped by user")
        assert not limiter._pending  # the place was given back...
        ticket = limiter.acquire(cancelled=lambda: False)  # ...so this does not wait forever
        ticket.release()


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_a_drop_before_the_first_token_is_retried(server: LocalServer, is_async: bool) -> None:
    """Only the role chunk arrived (no text shown yet): a retry cannot duplicate anything."""
    res = policy()
    opts = {"disconnect_after": 1, "fail_times": 1}
    run = drive(res.build(request(server.base_url, opts, is_async)), is_async)
    first, second = server_records(server, run)
    assert (first.end_reason, second.end_reason) == ("injected_disconnect", "complete")
    assert (run.status, run.text, run.attempt) == ("done", FULL, 2)
    retry = [r for r in run.log if r["type"] == "retry"][0]
    assert (retry["failure"], retry["delay_s"]) == ("connection", 0.01)
    n = len(demo_tokens()) + 3  # role, tokens, finish, usage
    assert shape(run) == [
        "request", "response", "chunk", "retry", "error", "end:retry",
        "request", "response", f"chunk*{n}", "end:done",
    ]  # fmt: skip


@pytest.mark.parametrize("is_async", MODES, ids=MODE_IDS)
def test_responses_api_drop_and_resume(server: LocalServer, is_async: bool) -> None:
    """Responses API: the partial answer goes back as an assistant input item. The demo model
    answers a Responses continuation from the start; the join keeps a single copy of it."""
    from nbstream.sources.request import ResponsesRequest

    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(base_url=server.base_url, api_key="local")
    key = f"responses-{next(_keys)}"
    params = {"model": "demo", "input": "Tell me about streaming."}
    fault = {"extra_body": {"nbstream": {"key": key, "disconnect_after": 8, "fail_times": 1}}}
    res = policy()
    run = drive(res.build(ResponsesRequest({**params, **fault}, client)), is_async)
    assert run.status == "incomplete" and run.text and FULL.startswith(run.text)
    more = drive(res.resume(run), is_async)
    assert more.status == "done"
    sent = [r for r in server.requests if r.options is not None and r.options.key == key][-1]
    assert sent.body["input"][-2] == {"role": "assistant", "content": run.text}
    assert run.text + more.text == FULL

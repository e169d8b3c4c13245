"""Every fault of the local server through StreamRun (sync and async): the status says what
happened, the partial text and the chunk log survive, and the retry extension point works before
the first token only. Before the first token a failure ends "error"; after it, a transport failure
(disconnect, malformed chunk) ends "incomplete" and an error the server reported in the stream
ends "error" with the server's message - either way with the partial text kept."""

from __future__ import annotations

import asyncio

import openai
import pytest

from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.server.demo import demo_tokens
from nbstream.sources.request import ChatRequest, ResponsesRequest

USER = [{"role": "user", "content": "hello"}]


def _run(server: LocalServer, model: str, is_async: bool, **kw) -> StreamRun:
    params = {"model": model, "messages": USER}
    if is_async:

        async def main() -> StreamRun:
            async with openai.AsyncOpenAI(
                base_url=server.base_url, api_key="local", max_retries=0
            ) as client:
                return await StreamRun(ChatRequest(params, client), **kw).arun()

        return asyncio.run(main())
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    return StreamRun(ChatRequest(params, client), **kw).run()


def _errors(run: StreamRun) -> list[dict]:
    return [r for r in run.log if r["type"] == "error"]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_disconnect_keeps_partial_text(local_server: LocalServer, is_async: bool) -> None:
    run = _run(local_server, "demo?disconnect_after=6", is_async)
    assert run.status == "incomplete" and run.reason
    assert run.text == "".join(demo_tokens(5))  # role chunk + 5 content chunks
    assert len(list(run.log.chunks())) == 6
    assert _errors(run)[-1]["error_type"] in ("APIConnectionError", "RemoteProtocolError")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_midstream_error_payload(local_server: LocalServer, is_async: bool) -> None:
    run = _run(local_server, "demo?error_after=4&error_message=Overloaded+mid-way", is_async)
    assert run.status == "error" and run.reason == "Overloaded mid-way"
    assert run.error_message == run.reason
    assert run.text == "".join(demo_tokens(3))
    err = _errors(run)[-1]
    assert err["data"]["error"]["code"] == "nbstream_injected_error"  # the payload as received


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_malformed_chunk(local_server: LocalServer, is_async: bool) -> None:
    run = _run(local_server, "demo?malformed_after=3", is_async)
    assert run.status == "incomplete"
    assert run.text == "".join(demo_tokens(2))
    assert "JSON" in _errors(run)[-1]["error_type"] or "Expecting" in run.reason


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_429_is_an_error_with_rate_limit_headers(local_server: LocalServer, is_async: bool):
    run = _run(local_server, "demo?fail=429&retry_after=2", is_async)
    assert run.status == "error" and run.reason.startswith("HTTP 429")
    assert run.text == "" and run.metrics.http_status == 429
    err = _errors(run)[-1]
    assert err["status"] == 429
    assert err["headers"]["retry-after"] == "2"
    assert err["headers"]["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_retry_hook_before_first_token(local_server: LocalServer, is_async: bool) -> None:
    asked: list[tuple[str, int]] = []

    def retry(run: StreamRun, exc: BaseException, attempt: int) -> float | None:
        asked.append((type(exc).__name__, attempt))
        return 0.01 if attempt < 5 else None

    run = _run(local_server, f"demo?fail=503&fail_times=2&key=r{is_async}", is_async, retry=retry)
    assert run.status == "done", run.reason
    assert run.attempt == 3 and run.metrics.attempts == 3
    assert asked == [("InternalServerError", 1), ("InternalServerError", 2)]
    requests = [r for r in run.log if r["type"] == "request"]
    assert [r["attempt"] for r in requests] == [1, 2, 3]
    ends = [(r["attempt"], r["status"]) for r in run.log if r["type"] == "end"]
    assert ends == [(1, "retry"), (2, "retry"), (3, "done")]
    assert {c["attempt"] for c in run.log.chunks()} == {3}


def test_no_retry_once_text_arrived(local_server: LocalServer) -> None:
    run = _run(local_server, "demo?disconnect_after=4", False, retry=lambda r, e, a: 0.0)
    assert run.status == "incomplete" and run.attempt == 1
    assert run.text == "".join(demo_tokens(3))


def test_length_is_incomplete(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
    run = StreamRun(ChatRequest({"model": "demo", "messages": USER, "max_tokens": 7}, client))
    run.run()
    assert run.status == "incomplete" and "length" in run.reason
    assert run.text == "".join(demo_tokens(7))


def test_responses_incomplete(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
    req = ResponsesRequest({"model": "demo", "input": "hi", "max_output_tokens": 5}, client)
    run = StreamRun(req).run()
    assert run.status == "incomplete" and "max_output_tokens" in run.reason
    assert run.text == "".join(demo_tokens(5))


def test_error_before_first_token_is_error(local_server: LocalServer) -> None:
    run = _run(local_server, "demo?error_after=0&error_message=early", False)
    assert run.status == "error" and run.reason == "early" and run.text == ""


def test_responses_error_event(local_server: LocalServer) -> None:
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
    req = ResponsesRequest(
        {"model": "demo?error_after=10&error_message=boom", "input": "x"}, client
    )
    run = StreamRun(req).run()
    assert run.status == "error" and run.reason == "boom"  # the server's error event
    assert run.text and "".join(demo_tokens()).startswith(run.text)  # the partial text is kept


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_think_section_cut_by_a_disconnect_loses_nothing(
    local_server: LocalServer, is_async: bool
) -> None:
    """The splitter holds back a possible partial ``</think>`` tag; a stream cut right there
    must still hand it over (as reasoning) when the run ends."""
    prompt = (
        "<think>I plan a short </thi"  # echo tokens: '<think>I', ' plan', ' a', ' short', ' </thi'
    )
    params = {"model": "echo?disconnect_after=6", "messages": [{"role": "user", "content": prompt}]}
    if is_async:

        async def main() -> StreamRun:
            async with openai.AsyncOpenAI(
                base_url=local_server.base_url, api_key="local", max_retries=0
            ) as client:
                return await StreamRun(ChatRequest(params, client)).arun()

        run = asyncio.run(main())
    else:
        client = openai.OpenAI(base_url=local_server.base_url, api_key="local", max_retries=0)
        run = StreamRun(ChatRequest(params, client)).run()
    assert run.status == "incomplete", run.reason
    assert run.state.choices[0].reasoning == "I plan a short </thi"
    assert run.text == ""

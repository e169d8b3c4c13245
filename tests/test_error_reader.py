"""One reader of an SDK / stream error (``sources.base.describe_error``): the log, the retry
decision, the rate limiter and the error message read status, headers, Retry-After and request id
the same way, on real SDK exceptions from the local server and on recorded error responses."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from recorded_oracle import STREAMS

from nbstream.resilience.errors import BadRequest, RateLimited, explain
from nbstream.resilience.ratelimit import Limiter
from nbstream.resilience.retry import Retrier, RetryPolicy, classify
from nbstream.run.stream_run import StreamRun
from nbstream.server import LocalServer
from nbstream.sources.base import StreamError, describe_error, parse_retry_after
from nbstream.sources.request import ChatRequest

USER = [{"role": "user", "content": "hello"}]
HTTP400 = STREAMS / "20-openai-http400-error-body.json"
GROQ = STREAMS / "11-groq-chat-error-event-midstream.sse"


def raised(fn: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


@pytest.mark.skipif(not HTTP400.is_file(), reason=f"{HTTP400} not found (../shared/streams)")
def test_recorded_http_400_is_read_once_for_log_retry_and_message(
    module_server: LocalServer,
) -> None:
    body = json.loads(HTTP400.read_text())["error"]
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    exc = raised(
        lambda: client.chat.completions.create(
            model=f"replay:{HTTP400.name}", messages=USER, stream=True
        )
    )
    info = describe_error(exc)
    assert (info.status, info.error_status, info.server_reported) == (400, 400, True)
    assert (info.server_message, info.code) == (body["message"], body["code"])
    assert info.message == f"HTTP 400: {body['message']}"
    assert info.request_id and info.request_id == getattr(exc, "request_id", None)
    assert info.headers.get("x-request-id") == info.request_id  # what the log keeps
    assert info.retry_after is None and info.responded
    failure = classify(exc)
    assert (failure.kind, failure.status, failure.retry_after) == ("status", 400, None)
    assert not Retrier(RetryPolicy()).decide(exc, 1).retry  # 400: not retryable
    err = explain(exc)
    assert isinstance(err, BadRequest) and body["message"] in err.message
    assert (err.status, err.request_id) == (400, info.request_id)
    client.close()


def test_429_retry_after_ms_wins_everywhere(module_server: LocalServer) -> None:
    """The local server sends ``Retry-After: 1`` (whole seconds) and ``retry-after-ms: 250``:
    the retry delay, the limiter's block and the log all take 0.25 s (the SDK's order)."""
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    extra = {"nbstream": {"fail": 429, "fail_times": 5, "retry_after": 0.25, "key": "reader-429"}}
    exc = raised(
        lambda: client.chat.completions.create(
            model="demo", messages=USER, stream=True, extra_body=extra
        )
    )
    headers = exc.response.headers  # type: ignore[attr-defined]
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "250")
    info = describe_error(exc)
    assert (info.status, info.retry_after) == (429, 0.25)
    assert info.retry_after == parse_retry_after(headers)
    decision = Retrier(RetryPolicy(), rand=lambda: 0.0).decide(exc, 1)
    assert (decision.retry, decision.delay, decision.failure.retry_after) == (True, 0.25, 0.25)
    assert isinstance(explain(exc), RateLimited)
    blocks: list[float | None] = []
    limiter = Limiter()
    ticket = limiter.acquire()
    original = limiter._on_429
    limiter._on_429 = lambda t, after, rl: (blocks.append(after), original(t, after, rl))  # type: ignore[method-assign]
    from nbstream.resilience.layer import LimitedSource, Resilience, RunGuard

    LimitedSource(
        ChatRequest({"model": "demo", "messages": USER}, client), RunGuard(Resilience())
    )._report_error(ticket, exc)
    assert blocks == [0.25]
    run = StreamRun(
        ChatRequest({"model": "demo", "messages": USER, "extra_body": extra}, client)
    ).run()
    logged = [r for r in run.log if r["type"] == "error"][0]
    assert logged["status"] == 429 and logged["headers"]["retry-after-ms"] == "250"
    client.close()


def test_x_should_retry_false_is_read_by_the_reader() -> None:
    class Status(Exception):
        status_code = 503

        class response:  # noqa: N801 - the SDK's attribute name
            headers = {"X-Should-Retry": "false", "Retry-After": "2"}

    info = describe_error(Status("down"))
    assert (info.should_retry, info.retry_after, info.status) == (False, 2.0, 503)
    decision = Retrier(RetryPolicy()).decide(Status("down"), 1)
    assert not decision.retry and "x-should-retry" in decision.why


@pytest.mark.skipif(not GROQ.is_file(), reason=f"{GROQ} not found (../shared/streams)")
def test_recorded_midstream_error_event_is_server_reported_without_a_status(
    module_server: LocalServer,
) -> None:
    client = openai.OpenAI(base_url=module_server.base_url, api_key="local", max_retries=0)
    run = StreamRun(ChatRequest({"model": f"replay:{GROQ.name}", "messages": USER}, client)).run()
    assert run.status == "error" and run.exception is not None
    info = describe_error(run.exception)
    assert info.status is None and info.server_reported  # a 200 stream: no HTTP status
    assert run.reason == info.message == info.server_message
    client.close()


def test_stream_error_status_code_counts_for_retries_not_for_the_log() -> None:
    """Anthropic's overloaded event (a StreamError with status_code 529): retried as a 529,
    logged without an HTTP status (the response was a 200)."""
    exc = StreamError("Overloaded", code="overloaded_error", data={"type": "error"})
    exc.status_code = 529  # type: ignore[attr-defined]
    info = describe_error(exc)
    assert (info.status, info.error_status, info.message) == (None, 529, "Overloaded")
    assert classify(exc).status == 529 and explain(exc).status == 529

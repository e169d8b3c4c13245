"""Retry policy: classification of real SDK errors, full-jitter backoff, Retry-After, limits."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from nbstream.resilience.retry import NO_RETRY, Retrier, RetryPolicy, classify, parse_retry_after


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request, json={"error": {}})
    client = openai.OpenAI(api_key="sk-test-0000000000", base_url="http://127.0.0.1:9/v1")
    return client._make_status_error_from_response(response)


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1:9/v1"))


class Recorder:
    def __init__(self, interrupt_after: int | None = None) -> None:
        self.sleeps: list[float] = []
        self.interrupt_after = interrupt_after

    def __call__(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        return self.interrupt_after is not None and len(self.sleeps) >= self.interrupt_after


def test_classify_real_sdk_errors() -> None:
    assert classify(connection_error()).kind == "connection"
    assert classify(openai.APITimeoutError(httpx2.Request("GET", "http://x"))).kind == "timeout"
    failure = classify(status_error(429, {"retry-after": "2"}))
    assert (failure.kind, failure.status, failure.retry_after) == ("status", 429, 2.0)
    assert classify(ValueError("boom")).kind == "other"


def test_parse_retry_after_variants() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "1.5"}) == 1.5
    date = "Wed, 25 Nov 2026 15:00:10 GMT"
    import email.utils

    now = email.utils.parsedate_to_datetime("Wed, 25 Nov 2026 15:00:00 GMT").timestamp()
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    decision = Retrier(RetryPolicy(), rand=lambda: 0.5).decide(status_error(status), 1)
    assert decision.retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    decision = Retrier(RetryPolicy()).decide(status_error(status), 1)
    assert not decision.retry
    assert f"HTTP {status} is not retryable" in decision.why


def test_full_jitter_backoff_is_uniform_below_the_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0)
    assert [policy.backoff(n, rand=lambda: 1.0) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )
    assert policy.backoff(3, rand=lambda: 0.25) == pytest.approx(0.2)
    assert policy.backoff(3, rand=lambda: 0.0) == 0.0


def test_retry_after_wins_over_backoff_and_too_long_gives_up() -> None:
    retrier = Retrier(RetryPolicy(max_retry_after=5.0), rand=lambda: 0.0)
    decision = retrier.decide(status_error(429, {"retry-after-ms": "1200"}), 1)
    assert (decision.retry, decision.delay) == (True, 1.2)
    assert decision.message == "HTTP 429, retrying in 1.2 s (attempt 2/4)"
    decision = retrier.decide(status_error(503, {"retry-after": "30"}), 1)
    assert not decision.retry and "max_retry_after" in decision.why


def test_x_should_retry_false_is_obeyed() -> None:
    decision = Retrier().decide(status_error(503, {"x-should-retry": "false"}), 1)
    assert not decision.retry


def test_no_retry_after_first_token() -> None:
    decision = Retrier().decide(connection_error(), 1, first_token_seen=True)
    assert not decision.retry and "duplicate" in decision.why


def test_call_retries_until_success_and_reports_each_attempt() -> None:
    sleeps = Recorder()
    retrier = Retrier(RetryPolicy(max_attempts=4, base_delay=0.1), rand=lambda: 0.5, sleep=sleeps)
    attempts: list[int] = []
    decisions = []

    def attempt(n: int) -> str:
        attempts.append(n)
        if n < 3:
            raise status_error(503)
        return "ok"

    assert retrier.call(attempt, on_retry=decisions.append) == "ok"
    assert attempts == [1, 2, 3]
    assert sleeps.sleeps == pytest.approx([0.05, 0.1])
    assert [d.record()["type"] for d in decisions] == ["retry", "retry"]
    assert [d.record()["attempt"] for d in decisions] == [1, 2]


def test_call_gives_up_after_the_limit_with_the_last_error() -> None:
    sleeps = Recorder()
    retrier = Retrier(RetryPolicy(max_attempts=3, base_delay=0.01), sleep=sleeps)
    decisions = []
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        raise status_error(500)

    with pytest.raises(openai.InternalServerError):
        retrier.call(attempt, on_retry=decisions.append)
    assert calls == [1, 2, 3]
    assert len(sleeps.sleeps) == 2
    assert decisions[-1].record()["type"] == "giving_up"
    assert decisions[-1].why == "gave up after 3 attempts"


def test_interrupted_sleep_abandons_the_retry() -> None:
    sleeps = Recorder(interrupt_after=1)
    retrier = Retrier(RetryPolicy(max_attempts=5), sleep=sleeps)
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        raise connection_error()

    with pytest.raises(openai.APIConnectionError):
        retrier.call(attempt)
    assert calls == [1]


def test_no_retry_policy_makes_one_attempt() -> None:
    calls = []

    def attempt(n: int) -> None:
        calls.append(n)
        raise connection_error()

    with pytest.raises(openai.APIConnectionError):
        Retrier(NO_RETRY).call(attempt)
    assert calls == [1]


def test_async_call_retries() -> None:
    slept: list[float] = []

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    retrier = Retrier(RetryPolicy(max_attempts=3, base_delay=0.2), rand=lambda: 1.0, asleep=asleep)

    async def attempt(n: int) -> int:
        if n == 1:
            raise status_error(429, {"retry-after-ms": "30"})
        if n == 2:
            raise connection_error()
        return n

    assert asyncio.run(retrier.acall(attempt)) == 3
    assert slept == pytest.approx([0.03, 0.4])


def test_policy_validation_message() -> None:
    with pytest.raises(ValueError, match="max_attempts must be an integer >= 1"):
        RetryPolicy(max_attempts=0)


def test_the_default_draw_is_random_not_injected() -> None:
    """What Resilience() passes a user: rand=None. It once meant 'call None' and crashed every
    self-timed retry; the other tests here inject rand, so this one must not."""
    for retrier in (Retrier(RetryPolicy()), Retrier(RetryPolicy(), rand=None)):
        delays = {retrier.decide(connection_error(), 3).delay for _ in range(50)}
        assert all(0 <= d < 2.0 for d in delays)  # base 0.5 * 2**2, full jitter
        assert len(delays) > 1  # a draw, not a constant
    assert 0 <= RetryPolicy().backoff(0) < 0.5

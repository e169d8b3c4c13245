"""Request options: the model-name shorthand, the body object, validation messages."""

from __future__ import annotations

import pytest

from nbstream.server.limits import AttemptCounter, RateLimit, RateLimiter, format_reset
from nbstream.server.options import OptionError, parse_request_options, split_model


def test_model_shorthand_and_body_merge() -> None:
    assert split_model("demo") == ("demo", {})
    assert split_model("demo?ttft=0.2&echo") == ("demo", {"ttft": "0.2", "echo": ""})
    base, options = parse_request_options("demo?ttft=0.2&tokens=3&echo", {"tokens": 9})
    assert base == "demo" and options.ttft == 0.2 and options.tokens == 9 and options.echo
    _, options = parse_request_options("replay:x.sse?rate=20&trickle=0.1", None)
    assert options.tokens_per_s == 20 and options.delay == 0.1


@pytest.mark.parametrize(
    ("model", "body", "needle", "param"),
    [
        ("demo?bogus=1", None, "Unknown nbstream option 'bogus'", "model"),
        ("demo", {"bogus": 1}, "Valid options:", "nbstream"),
        ("demo?tokens=1.5", None, "'tokens' must be an integer", "model"),
        ("demo?ttft=-1", None, "'ttft' must be a number >= 0", "model"),
        ("demo?echo=maybe", None, "'echo' must be true or false", "model"),
        ("demo?fail=418", None, "'fail' must be one of 408, 409, 429", "model"),
        ("demo?tokens=99999999", None, "at most 5,000,000", "model"),
        ("demo", ["ttft"], "must be a JSON object", "nbstream"),
        ("demo", {"disconnect_after": True}, "must be an integer", "nbstream"),
    ],
)
def test_bad_options_say_what_to_do(model, body, needle, param) -> None:
    with pytest.raises(OptionError) as info:
        parse_request_options(model, body)
    assert needle in str(info.value) and info.value.param == param


def test_chunk_delay() -> None:
    _, options = parse_request_options("demo?tokens_per_s=20", None)
    assert options.chunk_delay(None) == pytest.approx(0.05)
    _, options = parse_request_options("demo?tokens_per_s=20&delay=0.5", None)
    assert options.chunk_delay(None) == 0.5
    _, options = parse_request_options("demo", None)
    assert options.chunk_delay(None) == 0.0 and options.chunk_delay(10) == pytest.approx(0.1)


def test_reset_format() -> None:
    assert [format_reset(s) for s in (0.02, 1.5, 59.999, 360)] == [
        "20ms",
        "1.5s",
        "59.999s",
        "6m0s",
    ]


def test_rate_limiter_window_with_fake_clock() -> None:
    now = [100.0]
    limiter = RateLimiter(RateLimit(requests=2, tokens=50, window_s=10), clock=lambda: now[0])
    assert limiter.take(20)[0] and limiter.take(20)[0]
    allowed, reset, headers = limiter.take(1)
    assert not allowed and reset == 10 and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-remaining-tokens"] == "10"
    now[0] = 110.0
    assert limiter.take(45)[0]
    assert not limiter.take(10)[0]  # tokens: 45 + 10 > 50


def test_attempt_counter_forgets_idle_keys() -> None:
    now = [0.0]
    counter = AttemptCounter(forget_after_s=60, clock=lambda: now[0])
    assert [counter.next("a"), counter.next("a"), counter.next("b")] == [1, 2, 1]
    now[0] = 61.0
    assert counter.next("a") == 1


def test_attempt_counter_keeps_a_bounded_number_of_keys() -> None:
    counter = AttemptCounter(max_keys=3)
    for key in ("a", "b", "c"):
        counter.next(key)
    counter.next("a")  # a is now the most recent: b is forgotten first
    counter.next("d")
    assert len(counter._seen) == 3
    assert counter.next("a") == 3 and counter.next("b") == 1

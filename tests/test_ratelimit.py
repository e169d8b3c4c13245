"""Rate-limit headers and the per-endpoint limiter (real threads, short real windows)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from nbstream.resilience.ratelimit import (
    Limiter,
    RateLimitInfo,
    limiter_for,
    parse_duration,
    parse_headers,
)

HEADERS = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-reset-requests": "1s",
    "X-RateLimit-Limit-Tokens": "150000",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-tokens": "6m0s",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("1.5s", 1.5),
        ("0.25", 0.25),
        ("7", 7.0),
        ("250us", 0.00025),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s1", "-1", "1s garbage", None])
def test_parse_duration_rejects_garbage(text: str | None) -> None:
    assert parse_duration(text) is None


def test_parse_headers_case_insensitive_and_summary() -> None:
    info = parse_headers(HEADERS)
    assert info == RateLimitInfo(60, 59, 1.0, 150000, 149984, 360.0)
    assert info.known
    assert info.summary() == (
        "requests 59/60 left (resets in 1 s) · tokens 149,984/150,000 left (resets in 6 min)"
    )
    assert info.record()["reset_tokens_s"] == 360.0
    assert not parse_headers({"content-type": "text/event-stream"}).known
    assert parse_headers({"x-ratelimit-remaining-requests": "many"}).remaining_requests is None


def acquire_in_thread(limiter: Limiter, admitted: list, name: object) -> threading.Thread:
    def body() -> None:
        ticket = limiter.acquire()
        admitted.append((name, time.monotonic(), ticket))

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_probe_admits_one_until_the_first_headers_arrive() -> None:
    limiter = Limiter(probe=1, poll_s=0.005)
    first = limiter.acquire()
    admitted: list = []
    thread = acquire_in_thread(limiter, admitted, "second")
    time.sleep(0.05)
    assert admitted == []  # waits for what the first response says
    first.observe({})  # no rate-limit headers: an unlimited server
    thread.join(2)
    assert [a[0] for a in admitted] == ["second"]
    # unlimited from now on: no waiting at all
    for _ in range(20):
        limiter.acquire().observe({})
    assert limiter.stats["admitted"] == 22


def test_low_remaining_budget_queues_until_the_reset() -> None:
    limiter = Limiter(poll_s=0.005)
    probe = limiter.acquire()
    probe.observe(
        {
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "200ms",
        }
    )
    start = time.monotonic()
    a = limiter.acquire()
    b = limiter.acquire()
    assert limiter.stats["queued"] == 0  # two requests left: admitted at once, never queued
    admitted: list = []
    thread = acquire_in_thread(limiter, admitted, "c")
    time.sleep(0.05)
    assert admitted == []  # nothing left in this window
    thread.join(2)
    waited = admitted[0][1] - start
    assert waited >= 0.15  # held until the window's reset (later only under load)
    assert limiter.stats["queued"] == 1
    for ticket in (a, b):
        ticket.release()


def test_a_429_closes_the_gate_for_retry_after() -> None:
    limiter = Limiter(poll_s=0.005)
    limiter.acquire().observe({})
    ticket = limiter.acquire()
    start = time.monotonic()
    ticket.rate_limited(0.15)
    limiter.acquire()
    assert time.monotonic() - start >= 0.14
    assert limiter.stats["rate_limited"] == 1


def test_429_without_retry_after_uses_the_reset_header_then_the_default() -> None:
    limiter = Limiter(poll_s=0.005, default_block_s=0.1)
    ticket = limiter.acquire()
    start = time.monotonic()
    ticket.rate_limited(None)
    limiter.acquire().release()
    assert time.monotonic() - start >= 0.09  # the gate held (load can only make it longer)
    # how long it holds, on an injected clock (no wall-clock upper bound: load would break it)
    now = [100.0]
    frozen = Limiter(default_block_s=0.1, clock=lambda: now[0])
    frozen.acquire().rate_limited(None)
    assert frozen._blocked_until == pytest.approx(100.0 + 0.1 + frozen.reset_margin_s)


def test_waiters_are_admitted_in_fifo_order() -> None:
    limiter = Limiter(poll_s=0.002)
    probe = limiter.acquire()
    admitted: list = []
    threads = []
    for i in range(6):
        threads.append(acquire_in_thread(limiter, admitted, i))
        time.sleep(0.01)
    probe.observe({})
    for thread in threads:
        thread.join(2)
    assert [a[0] for a in admitted] == list(range(6))


def test_cancelled_waiter_leaves_the_queue() -> None:
    limiter = Limiter(poll_s=0.002)
    limiter.acquire()  # probe, never answered
    with pytest.raises(InterruptedError):
        limiter.acquire(cancelled=lambda: True)
    assert limiter.queue_position() == 0


def test_low_token_budget_waits_for_the_token_reset() -> None:
    limiter = Limiter(min_tokens=100, poll_s=0.005)
    limiter.acquire().observe(
        {"x-ratelimit-remaining-tokens": "50", "x-ratelimit-reset-tokens": "120ms"}
    )
    start = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - start >= 0.1


def test_async_acquire_waits_without_blocking_the_loop() -> None:
    limiter = Limiter(poll_s=0.005)

    async def main() -> list[str]:
        order: list[str] = []
        probe = await limiter.aacquire()

        async def second() -> None:
            ticket = await limiter.aacquire()
            order.append("second admitted")
            ticket.release()

        task = asyncio.create_task(second())
        await asyncio.sleep(0.03)
        order.append("loop still runs")
        probe.observe({})
        await asyncio.wait_for(task, 2)
        return order

    assert asyncio.run(main()) == ["loop still runs", "second admitted"]


def test_async_cancel_leaves_the_queue() -> None:
    limiter = Limiter(poll_s=0.005)

    async def main() -> None:
        await limiter.aacquire()  # probe never answered
        task = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert limiter.queue_position() == 0


def test_one_limiter_per_endpoint() -> None:
    a = limiter_for("http://127.0.0.1:1234/v1/")
    assert limiter_for("http://127.0.0.1:1234/v1") is a
    assert limiter_for("http://127.0.0.1:9999/v1") is not a


def test_out_of_order_responses_of_one_window_keep_the_lowest_remaining() -> None:
    limiter = Limiter(poll_s=0.005)
    tickets = [limiter.acquire()]
    tickets[0].observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "10s"})
    tickets = [limiter.acquire() for _ in range(3)]
    # answers arrive out of order: remaining 2 (newest), then 4 (older, same window)
    tickets[2].observe({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "10s"})
    tickets[0].observe({"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "10s"})
    assert limiter._remaining_requests == 2
    # a later reset time is a new window: its numbers replace ours
    tickets[1].observe({"x-ratelimit-remaining-requests": "9", "x-ratelimit-reset-requests": "20s"})
    assert limiter._remaining_requests == 9


def test_near_only_when_little_of_the_budget_is_left() -> None:
    """The widget shows the rate limit only when it is nearly spent (issue 12 §6)."""
    from nbstream.resilience.layer import Resilience, RunGuard

    far = RateLimitInfo(limit_requests=10_000, remaining_requests=9_999, remaining_tokens=999_000)
    assert far.known and not far.near
    assert RateLimitInfo(limit_requests=60, remaining_requests=5).near  # under 10 % left
    assert RateLimitInfo(limit_tokens=1_000_000, remaining_tokens=50_000).near
    assert RateLimitInfo(remaining_requests=0).near  # none left, limit unknown
    assert not RateLimitInfo().near

    guard = RunGuard(Resilience())
    guard.rate_limit = far
    assert guard.notes() == []
    guard.rate_limit = RateLimitInfo(limit_requests=60, remaining_requests=3, reset_requests_s=2)
    assert guard.notes() == ["rate limit: requests 3/60 left (resets in 2 s)"]

"""Stall watchdog: first-chunk and inter-chunk timeouts on one shared thread (real time, short)."""

from __future__ import annotations

import threading
import time

import pytest

from nbstream.resilience.stall import StallPolicy, Watchdog
from nbstream.timers import TIMERS


def expect_stall(dog: Watchdog, policy: StallPolicy) -> tuple[threading.Event, list[str], object]:
    fired = threading.Event()
    reasons: list[str] = []

    def on_stall(reason: str) -> None:
        reasons.append(reason)
        fired.set()

    return fired, reasons, dog.watch(policy, on_stall)


def test_first_chunk_timeout() -> None:
    dog = Watchdog()
    fired, reasons, _ = expect_stall(dog, StallPolicy(first_chunk_s=0.1, inter_chunk_s=None))
    start = time.monotonic()
    assert fired.wait(2)
    assert time.monotonic() - start >= 0.09  # not before the timeout (late only under load)
    assert reasons == ["stalled: no first chunk within 0.1 s"]


def test_ticks_keep_a_stream_alive_then_a_gap_stalls_it() -> None:
    dog = Watchdog()
    fired, reasons, watch = expect_stall(dog, StallPolicy(first_chunk_s=0.2, inter_chunk_s=0.12))
    for _ in range(6):  # 0.3 s of chunks every 40 ms: longer than both timeouts, no stall
        time.sleep(0.04)
        watch.tick()
    assert not fired.is_set()
    assert fired.wait(2)
    assert reasons == ["stalled: no chunk for 0.12 s (after chunk 6)"]
    assert watch.reason == reasons[0]


def test_an_inter_chunk_timeout_alone_still_catches_a_stall() -> None:
    """first_chunk_s=None (a slow thinker may take its time) with an inter-chunk timeout: the
    watch waits for the first chunk without expiring, then catches the gap after it (the
    first check, at the start, used to drop the watch for good)."""
    dog = Watchdog()
    fired, reasons, watch = expect_stall(dog, StallPolicy(first_chunk_s=None, inter_chunk_s=0.1))
    time.sleep(0.35)  # no first chunk for longer than the inter-chunk timeout: not a stall
    assert not fired.is_set()
    watch.tick()
    watch.tick()
    assert fired.wait(2)
    assert reasons == ["stalled: no chunk for 0.1 s (after chunk 2)"]


def test_cancelled_watch_never_fires_and_many_watches_share_one_thread() -> None:
    dog = Watchdog()
    fired, _, watch = expect_stall(dog, StallPolicy(first_chunk_s=0.05, inter_chunk_s=None))
    watch.cancel()
    thread = TIMERS.thread
    before = threading.active_count()
    others = [expect_stall(dog, StallPolicy(first_chunk_s=0.05 + i * 0.01)) for i in range(5)]
    assert threading.active_count() == before  # no thread per stream
    for other_fired, _, _ in others:
        assert other_fired.wait(2)
    assert not fired.is_set()
    assert TIMERS.thread is thread


def test_no_timeouts_means_no_watch() -> None:
    dog = Watchdog()
    watch = dog.watch(StallPolicy(None, None), lambda reason: None)
    assert not watch.active


def test_a_failing_callback_does_not_kill_the_watchdog() -> None:
    dog = Watchdog()

    def boom(reason: str) -> None:
        raise RuntimeError("callback bug")

    dog.watch(StallPolicy(first_chunk_s=0.02), boom)
    fired, _, _ = expect_stall(dog, StallPolicy(first_chunk_s=0.08))
    assert fired.wait(2)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="first_chunk_s must be"):
        StallPolicy(first_chunk_s=0)

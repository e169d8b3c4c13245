"""The process's timer thread (nbstream.timers): delayed callbacks in order on one daemon thread,
which survives a failing callback and goes away when idle."""

from __future__ import annotations

import threading
import time

from nbstream.timers import TimerThread


def test_callbacks_run_in_time_order_on_one_thread() -> None:
    timers = TimerThread()
    ran: list[tuple[str, str]] = []
    done = threading.Event()
    timers.schedule(0.0, lambda: None)  # the thread runs already: scheduling costs no start
    for delay, name in ((0.6, "c"), (0.2, "a"), (0.4, "b")):
        timers.schedule(delay, lambda n=name: ran.append((n, threading.current_thread().name)))
    timers.schedule(0.8, done.set)
    assert done.wait(5)
    assert [n for n, _ in ran] == ["a", "b", "c"]
    assert {t for _, t in ran} == {"nbstream-timers"}


def test_a_failing_callback_does_not_stop_the_thread(capsys) -> None:
    timers = TimerThread()
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("callback bug")

    timers.schedule(0.0, boom)
    timers.schedule(0.02, done.set)
    assert done.wait(5)
    assert "callback bug" in capsys.readouterr().err


def test_the_thread_exits_when_idle_and_starts_again_on_demand() -> None:
    timers = TimerThread()
    timers.IDLE_S = 0.05
    first = threading.Event()
    timers.schedule(0.0, first.set)
    assert first.wait(5)
    thread = timers.thread
    assert thread is not None
    thread.join(5)  # idle for IDLE_S: gone
    assert timers.thread is None
    again = threading.Event()
    timers.schedule(0.0, again.set)
    assert again.wait(5)


def test_a_callback_scheduled_sooner_wakes_the_thread() -> None:
    timers = TimerThread()
    late, soon = threading.Event(), threading.Event()
    timers.schedule(30.0, late.set)
    time.sleep(0.02)  # the thread sleeps until the far deadline
    start = time.monotonic()
    timers.schedule(0.01, soon.set)
    assert soon.wait(5) and time.monotonic() - start < 5
    assert not late.is_set()

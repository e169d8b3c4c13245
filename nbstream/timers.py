"""One daemon thread for every delayed callback of the process, and the tail gate that arms it.

Two users share it: the views' coalescers (a tail flush when text is left pending, see
:mod:`nbstream.frontend.coalesce`) and the stall watchdog (:mod:`nbstream.resilience.stall`).
One thread, started on demand and gone after a few idle seconds, instead of one per user.

Why not ``threading.Timer``: a stream in a thread arms a timer every frame (~60/s per view), and
``Thread.start()`` blocks until the OS has scheduled the new thread, which on a loaded machine took
milliseconds each time and made the consumer wait (bench/bench_consumer.py).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable


class TimerThread:
    """Runs delayed callbacks, earliest first, on one daemon thread; thread-safe.

    The thread exits after ``IDLE_S`` idle seconds and is started again on demand.
    """

    IDLE_S = 5.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The thread running the callbacks now (None while idle)."""
        return self._thread

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the timer thread in ``delay`` seconds."""
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="nbstream-timers", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(self.IDLE_S)
                    if not self._queue:
                        self._thread = None
                        return
                    continue
                when, _, callback = self._queue[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._queue)
            try:
                callback()
            except Exception:  # noqa: BLE001 - one failing callback must not stop the others
                traceback.print_exc()  # shown as threading.Timer would show it


TIMERS = TimerThread()
"""The process's timer thread."""


class TailGate:
    """Holds a stream's tail timer while its consumer is busy with data, and arms it (on
    :data:`TIMERS`) when the consumer is about to wait for the network
    (``StreamRun.watch_reads``): a fast stream never wakes the timer thread (each wake-up takes
    the GIL from the consumer), a paused one gets its tail within an interval. Called from the
    consumer (``waiting``/``done``) and from any thread (``hold``, by the coalescer)."""

    __slots__ = ("_lock", "_waiting", "_held")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = False  # the consumer is in a read that waits for the network
        self._held: tuple[float, Callable[[], None]] | None = None

    def hold(self, delay: float, callback: Callable[[], None]) -> bool:
        """Keep the timer for the next wait; False when the consumer waits now (arm it now)."""
        with self._lock:
            if self._waiting:
                return False
            self._held = (time.monotonic() + delay, callback)
            return True

    def waiting(self) -> None:
        with self._lock:
            self._waiting = True
            held, self._held = self._held, None
        if held is not None:
            TIMERS.schedule(max(0.0, held[0] - time.monotonic()), held[1])

    def done(self) -> None:
        with self._lock:
            self._waiting = False

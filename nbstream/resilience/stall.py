"""Stall detection: a stream that stops sending is closed and marked ``incomplete`` with the reason.

Two timeouts, both optional: ``first_chunk_s`` (from the start of the attempt to its first chunk)
and ``inter_chunk_s`` (between two chunks). The HTTP client's own read timeout cannot express
either well (the SDK's default is 10 minutes, and it is per socket read, not per chunk), and a sync
loop blocked in ``next()`` cannot check a clock. So one daemon thread, shared by every stream of the
process, sleeps until the earliest deadline and calls that stream's ``on_stall(reason)`` - which
closes the HTTP response from outside (``StreamRun.stop`` is thread-safe), works the same for
sync and async runs, and costs nothing per chunk but one clock read (:meth:`Watch.tick`). That
thread is the process's timer thread (:mod:`nbstream.timers`), shared with the views.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from nbstream.timers import TIMERS


@dataclass(frozen=True)
class StallPolicy:
    """``None`` disables a timeout. Defaults are generous: reasoning models think before talking."""

    first_chunk_s: float | None = 120.0
    inter_chunk_s: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("first_chunk_s", "inter_chunk_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be a number of seconds > 0, or None to disable it.")


class Watch:
    """One attempt under watch. :meth:`tick` on every chunk, :meth:`cancel` when it ends."""

    def __init__(
        self,
        dog: Watchdog,
        policy: StallPolicy,
        on_stall: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self._dog = dog
        self.policy = policy
        self._on_stall = on_stall
        self._clock = clock
        self.started = clock()
        self.last = self.started
        self.chunks = 0
        self.active = True
        self.reason: str | None = None

    def tick(self) -> None:
        """A chunk arrived (cheap: no lock, no wake-up; deadlines only move later)."""
        self.last = self._clock()
        self.chunks += 1

    def cancel(self) -> None:
        """The attempt ended: stop watching it. Idempotent."""
        self.active = False

    def deadline(self) -> float | None:
        """When this attempt counts as stalled, or None when no timeout applies."""
        if self.chunks == 0:
            limit = self.policy.first_chunk_s
            return None if limit is None else self.started + limit
        limit = self.policy.inter_chunk_s
        return None if limit is None else self.last + limit

    def _expire(self) -> None:
        if self.chunks == 0:
            reason = f"stalled: no first chunk within {self.policy.first_chunk_s:g} s"
        else:
            reason = (
                f"stalled: no chunk for {self.policy.inter_chunk_s:g} s (after chunk {self.chunks})"
            )
        self.reason = reason
        self.active = False
        self._on_stall(reason)


class Watchdog:
    """Checks every :class:`Watch` on the process's shared timer thread (:mod:`nbstream.timers`,
    which also runs the views' tail flushes: one thread, not one per job)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

    def watch(self, policy: StallPolicy, on_stall: Callable[[str], None]) -> Watch:
        """Start watching an attempt; ``on_stall(reason)`` runs on the timer thread."""
        watch = Watch(self, policy, on_stall, self.clock)
        deadline = watch.deadline()
        if deadline is None and policy.inter_chunk_s is None:
            watch.active = False  # nothing to watch
            return watch
        self._arm(watch, deadline or watch.started)
        return watch

    def _arm(self, watch: Watch, when: float) -> None:
        TIMERS.schedule(max(0.0, when - self.clock()), lambda: self._check(watch, when))

    def _check(self, watch: Watch, when: float) -> None:
        """The timer for ``when`` fired: expire the watch, or re-arm it if it ticked since."""
        if not watch.active:
            return
        deadline = watch.deadline()
        if deadline is None:
            inter = watch.policy.inter_chunk_s
            if watch.chunks == 0 and inter is not None:
                # no first-chunk timeout but an inter-chunk one: look again one interval later
                # (tick() arms nothing, it stays lock-free); once a chunk came, the re-arm
                # below goes to its deadline, so the stall is still caught on time
                self._arm(watch, self.clock() + inter)
            return  # else: the first chunk came and there is no inter-chunk timeout
        if deadline > when or deadline > self.clock():  # it ticked since (or woke early)
            self._arm(watch, deadline)
            return
        try:
            watch._expire()
        except Exception:  # a failing callback must not kill the shared thread
            logging.getLogger(__name__).exception("on_stall callback failed")


_DOG: Watchdog | None = None
_DOG_LOCK = threading.Lock()


def watchdog() -> Watchdog:
    """The process-wide watchdog."""
    global _DOG
    with _DOG_LOCK:
        if _DOG is None:
            _DOG = Watchdog()
        return _DOG

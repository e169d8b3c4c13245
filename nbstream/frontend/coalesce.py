"""Coalescer: batch stream events into frames a browser can keep up with.

A real JupyterLab server silently drops output messages above ~1000/s, and a frozen widget or a
lost tail is a defect. So the widget never sends one message per token: deltas are appended to a
pending buffer and flushed as one *frame* at most ``max_fps`` times per second, whatever the token
rate. The very first delta is flushed at once (no waiting for an interval: the first token must
appear immediately), and ``close()`` flushes whatever is left (the final render, as in rich.live).

Pure: no widget, no threads of its own, no real time. The clock is injected. While deltas keep
arriving, the consumer's own ``add`` flushes a frame whenever its interval is due; only when text is
left pending does the coalescer ask the injected ``schedule(delay, callback)`` to call ``poll()``,
and that timer flushes only once the stream has been quiet for an interval (re-arming itself while
deltas still arrive), so the tail of a stream that pauses reaches the view within an interval
without the timer taking the consumer's place. All coalescers of a process share a
:class:`FrameBudget`: with many streams at once each one's interval grows. Thread-safe: ``add``,
``poll``, ``update`` and ``close`` may be called from different threads; frames are emitted in
order under one lock.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from nbstream.events import (
    Citation,
    ContentFilter,
    Event,
    HostedToolDelta,
    LogprobsDelta,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from nbstream.frontend.protocol import Frame, Part, PartKey  # the wire's frame types

# 50 frames/s: smooth to the eye (the view paints once per animation frame anyway) and leaves
# room for the few state updates (snapshot, mode) and status frames around a stream, so that no
# 1-s window carries more than ~60 messages.
DEFAULT_MAX_FPS = 50.0
# All views of one kernel together: jupyter_server silently drops iopub messages above ~1000/s,
# and each view's own cap does not bound 200 views streaming at once. Frames of all streaming
# coalescers share this budget (status changes, snapshots and the final frames come on top).
KERNEL_FRAMES_PER_S = 300.0


class FrameBudget:
    """A process-wide message budget shared by every streaming view of the kernel.

    Two parts. Fairness: the more coalescers stream at once, the longer each one's minimum
    interval (``active / frames_per_s``), whatever the number of views; a single stream keeps its
    own ``max_fps``. A bound: every message sent to the frontend is counted (:meth:`spend`:
    frames, first frames, final frames, end-of-stream state updates) in a leaky bucket that
    drains at ``frames_per_s``; what it holds beyond ``burst_s`` (the *backlog*, plus the first
    frames queued) lengthens every member's interval and queues the next first frames
    (:meth:`join`). So bursts no single view controls (200 views starting, or ending, together)
    are paid back by the frames that follow instead of adding to them, while a single stream
    (or a handful starting together) still sends its first token at once.

    Times come from the callers (each coalescer's own clock, injectable); the bucket only
    drains forward, so clocks of different origins (a test's fake clock) cannot wedge it.
    """

    def __init__(self, frames_per_s: float = KERNEL_FRAMES_PER_S, *, burst_s: float = 0.05) -> None:
        if frames_per_s <= 0:
            raise ValueError(f"frames_per_s must be > 0, got {frames_per_s!r}")
        self.frames_per_s = frames_per_s
        self.burst_s = burst_s
        self._lock = threading.Lock()
        self._active: weakref.WeakSet[object] = weakref.WeakSet()  # a dropped one leaves too
        self._level = 0.0  # seconds of sending not yet drained (1 / frames_per_s per message)
        self._at: float | None = None  # the caller's time of the last update
        # first / final frames waiting for their slot: member -> (when, on that member's clock;
        # the messages it stands for)
        self._slots: weakref.WeakKeyDictionary[object, tuple[float, int]] = (
            weakref.WeakKeyDictionary()
        )
        self.spent = 0  # messages counted, for measurements

    @property
    def active(self) -> int:
        """How many coalescers are streaming (took text and are not closed)."""
        return len(self._active)

    def backlog(self) -> float:
        """Seconds of messages (sent, and first frames queued) beyond the budget, as of the last
        update; 0 while within ``burst_s``."""
        held = self._level + sum(c for _, c in self._slots.values()) / self.frames_per_s
        return max(0.0, held - self.burst_s)

    def spend(self, now: float, count: int = 1) -> None:
        """Count ``count`` messages sent to the frontend at ``now``."""
        with self._lock:
            self._drain(now)
            self._level += count / self.frames_per_s
            self.spent += count

    def join(self, member: object, now: float, cost: int = 1) -> float:
        """A member's first (or final) frame is ready: 0.0 = send it now, else seconds until its
        slot (it asks again then and gets 0.0). Slots follow everything counted and queued
        before, ``cost / frames_per_s`` apart (``cost``: the messages that go out then): views
        starting or ending together queue in order."""
        with self._lock:
            self._drain(now)
            self._active.add(member)
            held = self._slots.get(member)
            if held is None:
                ahead = self.backlog()
                if ahead <= 0.0:
                    return 0.0
                self._slots[member] = held = (now + ahead, cost)
            slot = held[0]
            if now >= slot - 1e-6:
                del self._slots[member]
                return 0.0
            return slot - now

    def leave(self, member: object) -> None:
        with self._lock:
            self._active.discard(member)
            self._slots.pop(member, None)

    def interval(self, own: float) -> float:
        """The minimum interval of one member whose own is ``own`` seconds, plus the backlog."""
        return max(own, len(self._active) / self.frames_per_s) + self.backlog()

    def _drain(self, now: float) -> None:
        at = self._at
        if at is not None and now > at:
            self._level = max(0.0, self._level - (now - at))
        self._at = now


KERNEL_BUDGET = FrameBudget()


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units: the unit of JS string offsets."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


_TEXT_KEYS: dict[int, PartKey] = {}  # one key per choice: making a frozen dataclass per chunk
_NO_META: dict[str, Any] = {}  # costs ~1 us, a measurable share of the per-chunk overhead


def logprob_lines(event: LogprobsDelta) -> str:
    """Tokens with their logprobs as text that appends like any part: one JSON array a line,
    ``[token, logprob, [[alt, logprob], ...]]`` rounded to 3 decimals (compact on the wire)."""
    return "".join(
        json.dumps(
            [t.token, round(t.logprob, 3), [[a, round(lp, 3)] for a, lp in t.top]],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for t in event.tokens
    )


def _piece(event: Event) -> tuple[PartKey, str, dict[str, Any]] | None:
    """The part and text an event adds, or None for events that carry no streamed text."""
    if type(event) is TextDelta:  # the hot path: most chunks carry one text delta
        key = _TEXT_KEYS.get(event.choice)
        if key is None:
            key = _TEXT_KEYS.setdefault(event.choice, PartKey(event.choice, "text"))
        return key, event.text, _NO_META
    if isinstance(event, TextDelta):
        return PartKey(event.choice, "text"), event.text, {}
    if isinstance(event, RefusalDelta):
        return PartKey(event.choice, "refusal"), event.text, {}
    if isinstance(event, ReasoningDelta):
        return PartKey(event.choice, "reasoning"), event.text, {}
    if isinstance(event, ToolCallDelta):
        meta: dict[str, Any] = {
            k: v
            for k, v in (("id", event.id), ("name", event.name), ("type", event.kind))
            if v is not None
        }
        return PartKey(event.choice, "tool", event.index), event.arguments, meta
    if isinstance(event, HostedToolDelta):
        fields: tuple[tuple[str, object], ...] = (
            ("type", event.kind),
            ("id", event.id),
            ("status", event.status),
            ("name", event.name),
            ("output", event.output),
            ("images", event.images),
        )
        meta = {k: v for k, v in fields if v is not None}
        return PartKey(event.choice, "hosted", event.index), event.input, meta
    if isinstance(event, Citation):
        fields = (
            ("url", event.url),
            ("title", event.title),
            ("file_id", event.file_id),
            ("filename", event.filename),
        )
        meta = {k: v for k, v in fields if v is not None}
        return PartKey(event.choice, "citation", event.index), "", meta
    if isinstance(event, LogprobsDelta):
        kind = "logprobs" if event.kind == "content" else "refusal_logprobs"
        return PartKey(event.choice, kind), logprob_lines(event), {}
    if isinstance(event, ContentFilter):
        choice = -1 if event.choice is None else event.choice
        return PartKey(choice, "filter"), "", {"results": event.results}
    return None


class Coalescer:
    """Turns a stream of events into at most ``max_fps`` frames per second.

    ``emit(frame)`` is called with each frame (under the coalescer's lock, so frames never
    interleave). ``schedule(delay_s, callback)``, when given, is used to flush pending text that
    no later event would flush; without it the caller must call ``poll()`` itself.
    """

    def __init__(
        self,
        emit: Callable[[Frame], None],
        *,
        max_fps: float = DEFAULT_MAX_FPS,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[float, Callable[[], None]], Any] | None = None,
        metrics: Callable[[], dict[str, Any]] | None = None,
        budget: FrameBudget | None = KERNEL_BUDGET,
    ) -> None:
        if max_fps <= 0:
            raise ValueError(f"max_fps must be > 0, got {max_fps!r}")
        self._emit = emit
        self._interval = 1.0 / max_fps
        self._clock = clock
        self._schedule = schedule
        self._metrics_fn = metrics
        self._lock = threading.RLock()
        self._sent: dict[PartKey, int] = {}  # UTF-16 units already emitted per part
        self._pending: dict[PartKey, list[str]] = {}
        self._pending_meta: dict[PartKey, dict[str, Any]] = {}
        self._status: str | None = None
        self._metrics: dict[str, Any] | None = None  # as last sent
        self._budget = budget
        self._last_emit: float | None = None
        # no frame before this (the last frame + this view's own interval): a lower bound of the
        # due time that costs one comparison per delta; the budget's share is asked only past it
        self._due_at = float("-inf")
        self._last_add = 0.0  # when text last arrived: the tail timer waits for a quiet interval
        self._timer_armed = False
        self._status_dirty = False  # a status waiting to ride with the next frame
        self._seq = 0
        self._content_sent = False  # some part with text went out
        self._closed = False
        self.frames = 0
        self.text_units = 0  # UTF-16 units of text emitted, for measurements

    @property
    def interval(self) -> float:
        """Minimum time between two frames, in seconds (grows with the streams sharing the
        budget)."""
        budget = self._budget
        return self._interval if budget is None else budget.interval(self._interval)

    @property
    def offsets(self) -> dict[PartKey, int]:
        """UTF-16 units emitted so far per part (what a view has if it lost nothing)."""
        with self._lock:
            return dict(self._sent)

    def add(self, events: Iterable[Event]) -> None:
        """Take events; flush now if this is the first text or an interval has passed."""
        with self._lock:
            if self._closed:
                return
            pending = self._pending
            for event in events:
                if type(event) is TextDelta:  # the hot path: most chunks carry one text delta
                    text = event.text
                    if not text:
                        continue
                    key = _TEXT_KEYS.get(event.choice)
                    if key is None:
                        key = _TEXT_KEYS.setdefault(event.choice, PartKey(event.choice, "text"))
                else:
                    piece = _piece(event)
                    if piece is None:
                        continue
                    key, text, meta = piece
                    if not text and not meta:
                        continue
                    if meta:
                        self._pending_meta.setdefault(key, {}).update(meta)
                pieces = pending.get(key)
                if pieces is None:
                    pending[key] = [text]
                else:
                    pieces.append(text)
            if pending:
                self._maybe_flush()

    def update(self, status: str) -> None:
        """Record a new status. A change is flushed at once: it is rare, and the user must see
        "stopped" immediately."""
        with self._lock:
            if self._closed or status == self._status:
                return
            self._status = status
            if status == "streaming" and not self._content_sent and self._schedule is not None:
                # the start of a stream: rides with the first token (sent at once), or goes out
                # by itself an interval later; 200 views starting together send half the frames
                self._status_dirty = True
                if not self._timer_armed:
                    self._timer_armed = True
                    self._schedule(self.interval, self.poll)
                return
            self._flush(status_changed=True)

    def poll(self) -> None:
        """The scheduled callback: flush pending text once its interval is due and the stream
        has been quiet for an interval; while deltas still arrive, their ``add`` flushes and the
        timer only re-arms (one cheap wake-up per interval at most, never a flush racing the
        consumer)."""
        with self._lock:
            self._timer_armed = False
            if self._closed or not (self._pending or self._status_dirty):
                return
            if self._schedule is None:  # polled by the caller: no quiet wait
                self._maybe_flush()
                return
            if not self._pending:  # a deferred start status alone, an interval later
                if (
                    self._budget is not None
                    and not self._content_sent
                    and self._first_frame_waits(self._clock())
                ):
                    return  # takes a first frame's slot: many views starting queue together
                self._flush()
                return
            if not self._content_sent:  # a first frame waiting for its slot in the budget
                self._maybe_flush()
                return
            now = self._clock()
            due = max(self._due(now), self._last_add + self._interval)
            if now >= due:
                self._flush()
            else:
                self._timer_armed = True
                self._schedule(due - now, self.poll)

    def close(
        self,
        status: str | None = None,
        *,
        then: Callable[[], None] | None = None,
        queue: bool = False,
        cost: int = 1,
    ) -> None:
        """Final flush: everything pending, the final status and metrics, ``final=True``; then
        ``then()``. No text is taken after this call. With ``queue`` (and a budget and a
        scheduler) the final frame waits for its slot in the budget when it is over its burst,
        as first frames do: 200 views ending together are spread instead of sent at once
        (``cost``: the messages the end sends, the final frame and what ``then`` sends)."""
        with self._lock:
            if self._closed:
                return
            if status is not None:
                self._status = status
            self._closed = True
            if not (queue and self._budget is not None and self._schedule is not None):
                self._final(then)
                return
        self._final_when_due(then, cost)

    def _final_when_due(self, then: Callable[[], None] | None, cost: int) -> None:
        assert self._budget is not None and self._schedule is not None
        wait = self._budget.join(self, self._clock(), cost)
        if wait > 0.0:
            self._schedule(wait, lambda: self._final_when_due(then, cost))
            return
        self._final(then)

    def _final(self, then: Callable[[], None] | None) -> None:
        with self._lock:
            self._flush(status_changed=True, final=True)
            if self._budget is not None:
                self._budget.leave(self)
        if then is not None:
            then()

    def _first_frame_waits(self, now: float) -> bool:
        """Ask the budget for the first frame's slot; when it must wait, arm the timer for it."""
        assert self._budget is not None
        wait = self._budget.join(self, now)
        if wait <= 0.0 or self._schedule is None:
            return False
        if not self._timer_armed:
            self._timer_armed = True
            self._schedule(wait, self.poll)
        return True

    # -- internals -------------------------------------------------------------------------

    def _due(self, now: float) -> float:
        last = self._last_emit
        return (last if last is not None else now) + self.interval

    def _maybe_flush(self) -> None:
        if not self._pending:
            return
        now = self._last_add = self._clock()
        if not self._content_sent:
            # the first text goes out at once, whatever came before (an Azure prompt-filter
            # part sent first must not make the first token wait for an interval), unless many
            # views start together: then it waits for its slot in the kernel-wide budget
            if self._budget is not None and self._first_frame_waits(now):
                return
            self._flush()
            return
        due = self._due_at
        if now >= due:
            due = self._due(now)
            if now >= due:
                self._flush()
                return
            self._due_at = due  # the budget's share is longer now: remember it
        if self._schedule is not None and not self._timer_armed:
            # the tail timer: it flushes only if no delta comes for an interval (see poll)
            self._timer_armed = True
            self._schedule(max(due, now + self._interval) - now, self.poll)

    def _flush(self, *, status_changed: bool = False, final: bool = False) -> None:
        if self._status_dirty:
            status_changed, self._status_dirty = True, False
        parts: list[Part] = []
        for key, pieces in self._pending.items():
            text = "".join(pieces)
            offset = self._sent.get(key, 0)
            units = utf16_len(text)
            self._sent[key] = offset + units
            self.text_units += units
            parts.append(Part(key, offset, text, self._pending_meta.get(key, {})))
            if units:
                self._content_sent = True
        self._pending.clear()
        self._pending_meta.clear()
        metrics = self._metrics_fn() if self._metrics_fn is not None else None
        send_metrics = metrics is not None and (metrics != self._metrics or final)
        if not parts and not send_metrics and not status_changed and not final:
            return
        if send_metrics:
            self._metrics = metrics
        self._seq += 1
        frame = Frame(
            seq=self._seq,
            parts=parts,
            status=self._status if status_changed else None,
            metrics=metrics if send_metrics else None,
            final=final,
        )
        self.frames += 1
        if self._budget is not None:
            self._budget.spend(self._clock())
        self._emit(frame)
        # the interval counts from the end of a send: a send slowed down (GIL, busy kernel) is
        # never followed by a frame sooner than the interval, so no 1-s window exceeds max_fps
        self._last_emit = last = self._clock()
        self._due_at = last + self._interval

"""Coalescer: batch stream events into frames a browser can keep up with.

A real JupyterLab server silently drops output messages above ~1000/s, and a frozen widget or a
lost tail is a defect. So the widget never sends one message per token: deltas are appended to a
pending buffer and flushed as one *frame* at most ``max_fps`` times per second, whatever the token
rate. The very first delta is flushed at once (no waiting for an interval: the first token must
appear immediately), and ``close()`` flushes whatever is left (the final render, as in rich.live).

Pure: no widget, no threads of its own, no real time. The clock is injected, and when text is left
pending the coalescer asks the injected ``schedule(delay, callback)`` to call ``poll()`` later, so
a tail that arrives just after a frame does not wait for the next token. Thread-safe: ``add``,
``poll``, ``update`` and ``close`` may be called from different threads; frames are emitted in
order under one lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nbstream.events import (
    ContentFilter,
    Event,
    LogprobsDelta,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)

# 50 frames/s: smooth to the eye (the view paints once per animation frame anyway) and leaves
# room for the few state updates (snapshot, mode) and status frames around a stream, so that no
# 1-s window carries more than ~60 messages.
DEFAULT_MAX_FPS = 50.0


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units: the unit of JS string offsets."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class PartKey:
    """Which stream of text a piece belongs to: a choice and a kind.

    ``kind`` is ``"text"``, ``"refusal"``, ``"reasoning"``, ``"tool"`` (then ``index`` is the
    tool call's index), ``"logprobs"`` / ``"refusal_logprobs"`` (one compact JSON line per token,
    see :func:`logprob_lines`), ``"filter"`` (the latest content-filter results, in ``meta``;
    choice -1 for the prompt's). New kinds can be added without changing the frame shape.
    """

    choice: int = 0
    kind: str = "text"
    index: int | None = None


@dataclass(slots=True)
class Part:
    """New text for one part since the previous frame, with the offset it starts at.

    ``offset`` counts UTF-16 code units (JS string length) already sent for this part, so a view
    can tell an append from a gap. ``meta`` carries one-off facts (a tool call's id and name).
    """

    key: PartKey
    offset: int
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Frame:
    """One batch for the frontend: new text per part, plus status/metrics when they changed."""

    seq: int
    parts: list[Part]
    status: str | None = None
    metrics: dict[str, Any] | None = None
    final: bool = False


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
        meta = {k: v for k, v in (("id", event.id), ("name", event.name)) if v is not None}
        return PartKey(event.choice, "tool", event.index), event.arguments, meta
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
        self._last_emit: float | None = None
        self._timer_armed = False
        self._seq = 0
        self._content_sent = False  # some part with text went out
        self._closed = False
        self.frames = 0
        self.text_units = 0  # UTF-16 units of text emitted, for measurements

    @property
    def interval(self) -> float:
        """Minimum time between two frames, in seconds."""
        return self._interval

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
            for event in events:
                piece = _piece(event)
                if piece is None:
                    continue
                key, text, meta = piece
                if not text and not meta:
                    continue
                self._pending.setdefault(key, []).append(text)
                if meta:
                    self._pending_meta.setdefault(key, {}).update(meta)
            self._maybe_flush()

    def update(self, status: str) -> None:
        """Record a new status. A change is flushed at once: it is rare, and the user must see
        "stopped" immediately."""
        with self._lock:
            if self._closed or status == self._status:
                return
            self._status = status
            self._flush(status_changed=True)

    def poll(self) -> None:
        """Flush pending text if its interval has passed (the scheduled callback)."""
        with self._lock:
            self._timer_armed = False
            if not self._closed:
                self._maybe_flush()

    def close(self, status: str | None = None) -> None:
        """Final flush: everything pending, the final status and metrics, ``final=True``."""
        with self._lock:
            if self._closed:
                return
            if status is not None:
                self._status = status
            self._flush(status_changed=True, final=True)
            self._closed = True

    # -- internals -------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if not self._pending:
            return
        now = self._clock()
        if not self._content_sent:
            # the first text goes out at once, whatever came before (an Azure prompt-filter
            # part sent first must not make the first token wait for an interval)
            self._flush()
            return
        due = (self._last_emit if self._last_emit is not None else now) + self._interval
        if now >= due:
            self._flush()
        elif self._schedule is not None and not self._timer_armed:
            self._timer_armed = True
            self._schedule(due - now, self.poll)

    def _flush(self, *, status_changed: bool = False, final: bool = False) -> None:
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
        self._emit(frame)
        # the interval counts from the end of a send: a send slowed down (GIL, busy kernel) is
        # never followed by a frame sooner than the interval, so no 1-s window exceeds max_fps
        self._last_emit = self._clock()

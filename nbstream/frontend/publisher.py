"""Publisher: what the frontend has of a view's answers, and the messages that keep it so.

A view's answers reach the frontend two ways (see :mod:`nbstream.frontend.protocol`): ``frame``
custom messages carry only the new text, batched by a :class:`~nbstream.frontend.coalesce.Coalescer`
per version; the ``snapshot`` state (rare: a version's start and end, status changes, a resync)
carries every version whole. The publisher is the one place that records what went out in frames
(per version: the length sent of each part, its meta, the last ``seq``) and builds the snapshot
from that record, so a snapshot always holds exactly what the frames delivered.

No comm, no traits: messages go to the ``send`` callable, state (``snapshot``, ``mode``,
``resumable``) to ``set_state``; the widget plugs its comm and traits in. Testable alone.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from nbstream.events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta
from nbstream.frontend import protocol
from nbstream.frontend.coalesce import DEFAULT_MAX_FPS, KERNEL_BUDGET, Coalescer
from nbstream.frontend.protocol import Frame, PartKey
from nbstream.redact import redact_obj
from nbstream.resilience.resume import request_of, resume_blocked
from nbstream.run.stream_run import FINAL, StreamRun
from nbstream.sources.surrogates import valid_obj
from nbstream.timers import TIMERS, TailGate

METRICS_INTERVAL_S = 0.25  # live metrics ride along with frames at most 4 times a second
_ABSENT = object()

# Parts whose frames carry a prefix of a text the run already holds: the publisher counts what it
# sent of them and reads the text back from the run (choice 0 of a resumed version: after its
# prefix, the partial answer).
_HELD_BY_RUN = frozenset({"text", "reasoning"})

SetState = Callable[..., None]  # set_state(values: dict, *, sync: bool, force: bool)


class Version:
    """One answer as published: its run, its coalescer, and what went out in frames."""

    def __init__(
        self,
        index: int,
        run: StreamRun,
        prefix: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.run = run
        self.prefix = prefix  # resumed versions start with the partial answer (their run's
        # text is only what comes after it: resilience.resume.ResumeSource joins the two)
        # what went out in frames, per part: for text and reasoning only the length (their text
        # is a prefix of the prefix + what the run's state holds: no second copy of a long
        # answer), for the other parts the pieces themselves
        self.sent_len: dict[PartKey, int] = {}
        self.sent: dict[PartKey, list[str]] = {}  # every part sent, in order (text: no pieces)
        self.meta: dict[PartKey, dict[str, Any]] = {}
        self.seq = 0
        self.coalescer: Coalescer | None = None
        self.gate = TailGate()
        # the event loop the run's task runs on, when it does (the tail timer uses it)
        self.loop_of: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
        self.metrics_at = -1.0
        self.metrics_cache: dict[str, Any] = {}
        self.metrics_sent: dict[str, Any] = {}  # as the frontend has them (frames merged)
        self.clock = clock
        # the "Thinking" section's duration: first reasoning delta -> first answer delta
        # (thinking_until -1.0: settled, nothing more to time)
        self.thinking_from: float | None = None
        self.thinking_until: float | None = None
        # its end: None, then (while under way) the mode it ends in and whether a final frame
        # went out; ``ended`` once the final state is stored or sent
        self.ending: dict[str, Any] | None = None
        self.ended = False

    @property
    def text(self) -> str:
        return self.prefix + self.run.text if self.prefix else self.run.text

    def metrics(self, *, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        if fresh or now - self.metrics_at >= METRICS_INTERVAL_S:
            self.metrics_at = now
            self.metrics_cache = protocol.compact_metrics(self.run.metrics.to_dict())
            if self.thinking_from is not None:
                until = self.thinking_until
                end = until if until is not None and until >= 0 else self.clock()
                self.metrics_cache["thinking_s"] = round(end - self.thinking_from, 4)
        return self.metrics_cache

    def time_thinking(self, events: list[Event]) -> None:
        """Note when reasoning starts and when the answer (text, refusal, tool call) starts."""
        for e in events:
            cls = type(e)
            if cls is ReasoningDelta:
                if self.thinking_from is None:
                    self.thinking_from = self.clock()
            elif isinstance(e, (TextDelta, RefusalDelta, ToolCallDelta)) and e.choice == 0:
                self.thinking_until = self.clock() if self.thinking_from is not None else -1.0
                return


class Publisher:
    """Frames and snapshots of one view's versions.

    ``send(msg)``: a custom message to the frontend. ``set_state(values, sync=, force=)``: the
    view's synced state (``snapshot``, ``mode``, ``resumable``) in one update; ``sync=False``
    stores it for ``get_state()`` without sending it; ``force`` sends it even when unchanged.
    ``mode()``: the view's mode now. ``on_end(version)``: a version's final state is out.
    ``end_messages()``: what else the end of a version sends (the answer outputs' updates).
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        *,
        set_state: SetState | None = None,
        mode: Callable[[], str] = lambda: "idle",
        on_end: Callable[[Version], None] | None = None,
        end_messages: Callable[[], int] = lambda: 0,
        max_fps: float = DEFAULT_MAX_FPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self.state: dict[str, Any] = {}  # the state as last set (without a set_state)
        self._set_state = set_state if set_state is not None else self._keep_state
        self._mode = mode
        self._on_end = on_end
        self._end_messages = end_messages
        self._max_fps = max_fps
        self._clock = clock
        self.versions: list[Version] = []
        self.lock = threading.RLock()  # orders frames and snapshots
        self.frames_sent = 0  # measurements: frames and bytes of custom messages sent
        self.bytes_sent = 0
        self.snapshot_bytes = 0  # bytes of snapshot state updates sent
        # a frontend said it holds this model's document (``ready``): it builds the final
        # snapshot from the frames itself, so the end of a version does not re-send the text
        self.frontend_ready = False

    def _keep_state(self, values: dict[str, Any], *, sync: bool, force: bool = False) -> None:
        self.state.update(values)

    @property
    def current(self) -> Version | None:
        versions = self.versions
        return versions[-1] if versions else None

    # ---- versions ----------------------------------------------------------------------------

    def open(
        self,
        run: StreamRun,
        *,
        prefix: str = "",
        loop_of: Callable[[], asyncio.AbstractEventLoop | None] | None = None,
    ) -> Version:
        """A new version: its coalescer, subscribed to ``run``; a resumed version's ``prefix``
        (the partial answer) goes out first. Nothing is sent about it yet (see
        :meth:`push_snapshot`)."""
        with self.lock:
            v = Version(len(self.versions), run, prefix, clock=self._clock)
            if loop_of is not None:
                v.loop_of = loop_of
            self.versions.append(v)
        v.coalescer = Coalescer(
            lambda frame: self._emit(v, frame),
            max_fps=self._max_fps,
            clock=self._clock,
            schedule=self._scheduler(v),
            metrics=v.metrics,
        )
        run.subscribe(functools.partial(self._on_run, v))  # called per chunk: no lambda frame
        run.watch_reads(v.gate.waiting, v.gate.done)
        if prefix:
            v.coalescer.add([TextDelta(prefix)])
        return v

    def _scheduler(self, v: Version) -> Callable[[float, Callable[[], None]], Any]:
        """The coalescer's tail timer. A sync stream whose reads are watched (SDK streams) holds
        it back while data keeps coming: it is armed only when the consumer is about to wait
        for the network (``TailGate``), so a fast stream never wakes the timer thread (each
        wake-up takes the GIL from the consumer) and a paused one still gets its tail within
        an interval."""
        gate = v.gate

        def schedule(delay: float, callback: Callable[[], None]) -> None:
            loop = v.loop_of()
            if loop is not None and _running_loop() is loop:
                loop.call_later(delay, callback)
                return
            run = v.run  # held only while the consumer reads: after the run (a queued final
            if run.reads_watched and run.status not in FINAL and gate.hold(delay, callback):
                return  # frame) nobody would arm it
            TIMERS.schedule(delay, callback)

        return schedule

    # ---- run -> frames and snapshots ---------------------------------------------------------

    def _on_run(self, v: Version, _run: StreamRun, events: list[Event]) -> None:
        coalescer = v.coalescer
        assert coalescer is not None
        if events:
            if v.thinking_until is None:
                v.time_thinking(events)
            coalescer.add(events)
            return
        status = v.run.status
        if status in FINAL:
            self.close(v)
        else:
            coalescer.update(status)
            if status != "streaming" or v.run.reason:  # the frame carries a bare status
                self.push_snapshot()

    def close(self, v: Version) -> None:
        """The run ended: the final frame (queued on the kernel's frame budget when the view
        streams in the background, so 200 views ending together stay within it), then the
        final state. To a frontend that said ``ready`` the end is one message, the final frame
        carrying the mode the view ends in; headless, the final frame and one state update
        (the final snapshot with the mode). Idempotent."""
        coalescer = v.coalescer
        assert coalescer is not None
        with self.lock:
            if v.ended or v.ending is not None:
                return
            ending: dict[str, Any] = {"mode": None, "frame": False}
            v.ending = ending
        v.metrics(fresh=True)
        if resume_blocked(v.run):  # a hook stopped it: hide Continue (synced trait)
            self._set_state({"resumable": False}, sync=True)
        mode = self._mode()
        if self.current is v and mode != "idle":
            ending["mode"] = "idle"
        coalescer.close(
            v.run.status,
            then=lambda: self._ended(v),
            queue=mode == "background",
            cost=self._end_cost(),
        )

    def _end_cost(self) -> int:
        """Messages the end of a background version sends: the final frame, the final snapshot
        (headless only) and the answer outputs' updates."""
        return 1 + (not self.frontend_ready) + self._end_messages()

    def _ended(self, v: Version) -> None:
        """The final frame was emitted (or, headless, built): store or send the final state."""
        ending = v.ending or {}
        mode = ending.get("mode")
        extra = {"mode": mode} if mode is not None else {}
        # the frontend built this snapshot from the frames and took the mode from the final
        # frame: store both for get_state() (reload, saved state), send nothing
        self.push_snapshot(send=not ending.get("frame"), extra=extra)
        if self._on_end is not None:
            self._on_end(v)
        v.ended = True
        v.ending = None  # (after: a late close() sees the version ended)

    def _final_message(self, v: Version, frame: Frame) -> dict[str, Any]:
        """The last frame of a version, with its reason and notes; to a frontend that said
        ``ready``, also the mode the view ends in (it sets the trait locally), so the end costs
        this one message. Headless, the final snapshot and the mode follow as one state update."""
        if v.ending is None:
            v.ending = {"mode": None, "frame": False}
        ending = v.ending
        ready = ending["frame"] = self.frontend_ready
        return protocol.frame_message(
            frame,
            v.index,
            reason=v.run.reason,
            notes=resilience_notes(v.run),
            mode=ending["mode"] if ready else None,
        )

    def _emit(self, v: Version, frame: Frame) -> None:
        with self.lock:
            sent_len = v.sent_len
            for part in frame.parts:
                key = part.key
                pieces = v.sent.setdefault(key, [])  # the parts in the order they first came
                if key.kind in _HELD_BY_RUN:
                    sent_len[key] = sent_len.get(key, 0) + len(part.text)
                else:
                    pieces.append(part.text)
                if part.meta:
                    v.meta.setdefault(part.key, {}).update(part.meta)
            v.seq = frame.seq
            if frame.final:
                msg = self._final_message(v, frame)
            else:
                msg = protocol.frame_message(frame, v.index)
                if frame.metrics is not None:  # live metrics: only the values that changed
                    had, v.metrics_sent = v.metrics_sent, frame.metrics
                    msg["mt"] = {k: x for k, x in frame.metrics.items() if had.get(k, _ABSENT) != x}
            self.send(msg)
            self.frames_sent += 1

    def send(self, msg: dict[str, Any]) -> None:
        """Send a custom message (frames, and the view's replies), counting its bytes."""
        try:
            size = len(json.dumps(msg, ensure_ascii=False).encode("utf-8"))
        except UnicodeEncodeError:
            # a lone surrogate (half an emoji) in a log row's raw chunk: Jupyter's messages must
            # be UTF-8, and one failing send left the panel waiting. The answer's text is mended
            # in the run already (surrogates.py); this is for what is shown as received.
            msg = valid_obj(msg)
            size = len(json.dumps(msg, ensure_ascii=False).encode("utf-8"))
        self.bytes_sent += size
        self._send(msg)

    # ---- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every version as the frames delivered it (``protocol.Snapshot``), redacted."""
        with self.lock:
            versions = []
            for v in self.versions:
                run = v.run
                versions.append(
                    {
                        "version": v.index,
                        "seq": v.seq,
                        "status": run.status,
                        "reason": run.reason,
                        "notes": resilience_notes(run),
                        "resume_blocked": resume_blocked(run),
                        "metrics": v.metrics_cache,
                        "parts": [
                            protocol.snapshot_part(key, sent_text(v, key), v.meta.get(key))
                            for key in v.sent
                        ],
                    }
                )
            return {
                "protocol": protocol.PROTOCOL_VERSION,
                "current": max(0, len(self.versions) - 1),
                # the widget state is saved with the notebook: no credential in it, not even one
                # the model echoed (each part's whole text is scanned: a key split across frames)
                "versions": redact_obj(versions),
            }

    def push_snapshot(
        self, *, send: bool = True, force: bool = False, extra: dict[str, Any] | None = None
    ) -> None:
        """Set the ``snapshot`` state (with ``extra`` state, in the same update). ``send=False``
        stores it without syncing it (ipywidgets' property lock suppresses the echo, as for a
        value that came from the frontend): ``get_state()`` - a reloaded page, a new view -
        still gets it. ``force`` sends it even when unchanged (a resync: the frontend lost
        something)."""
        with self.lock:
            snap = self.snapshot()
            values = {"snapshot": snap, **(extra or {})}
            self._set_state(values, sync=send, force=force)
            if send:
                self.snapshot_bytes += protocol.json_size(snap)
                KERNEL_BUDGET.spend(self._clock())  # a state update counts in the kernel budget


def sent_text(v: Version, key: PartKey) -> str:
    """The text sent in frames for one part. Text and reasoning are read back from the run:
    a finished part that went out whole is the run's own string (shared with the state, no
    second copy of a long answer); mid-stream, the state's pieces are joined without touching
    them (the consumer may be appending on another thread) and cut to what was sent."""
    n = v.sent_len.get(key)
    if n is None:
        return _joined(v.sent[key])
    if not n:
        return ""
    # a resumed version's text starts with the partial answer (sent at its start)
    prefix = v.prefix if key.kind == "text" and key.choice == 0 else ""
    choices = v.run.state.choices
    if key.choice >= len(choices):  # (before the run's first event: only a resumed prefix)
        text = ""
    else:
        c = choices[key.choice]
        if v.run.status in FINAL:  # the consumer is done: join once, shared with the state
            text = c.text if key.kind == "text" else c.reasoning
        else:
            text = c.peek("text" if key.kind == "text" else "reasoning")
    text = prefix + text if prefix else text
    return text if len(text) == n else text[:n]


def _joined(pieces: list[str]) -> str:
    """The text sent in frames, joined once and kept joined (the snapshot shares that string)."""
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


def resilience_notes(run: StreamRun) -> list[str]:
    """Flags, rate-limit budget and budget use from the resilience layer (``run.resilience``),
    after the request's own notice (the bundled demo server answered: no key is set)."""
    request = request_of(run.source)
    notice = getattr(request, "notice", None)
    guard = run.resilience
    return ([notice] if notice else []) + (guard.notes() if guard is not None else [])


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

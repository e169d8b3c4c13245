"""StreamView: the anywidget that shows a stream live, with Stop, Regenerate, versions and the log.

Python owns the state: each version is one ``StreamRun``. The frontend gets
(see ``protocol``) the complete text in the synced ``snapshot`` trait, refreshed rarely
(start and end of a version, status changes, a resync request), and only the *new* text in ``frame``
custom messages, batched by the ``Coalescer`` to at most ~60 per second.

It works with no frontend at all (scripts, tests): messages then go nowhere and ``.text``,
``.wait()`` and ``await view`` behave the same. It knows nothing of OpenAI: it drives sources
through ``StreamRun``; what can be regenerated or resumed is asked of the source.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import heapq
import itertools
import json
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import anywidget
import ipywidgets
import traitlets

from nbstream.events import (
    Event,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from nbstream.frontend import hosts as frontends
from nbstream.frontend import output, protocol, static_copy
from nbstream.frontend.coalesce import DEFAULT_MAX_FPS, KERNEL_BUDGET, Coalescer, Frame, PartKey
from nbstream.redact import redact_obj, redact_text
from nbstream.run.log import ChunkLog
from nbstream.run.state import ChoiceState, ToolCall
from nbstream.run.stream_run import FINAL, StreamRun
from nbstream.sources import to_source
from nbstream.sources.surrogates import valid_obj

if TYPE_CHECKING:
    from nbstream.resilience.layer import Resilience
    from nbstream.resilience.resume import OverlapJoiner
    from nbstream.run.metrics import Metrics
    from nbstream.run.stream_run import Hook, RetryPolicy
    from nbstream.sources import SourceLike
    from nbstream.sources.base import ParamsSource

STATIC = Path(__file__).parent.parent / "static"
_BUNDLE = STATIC / "widget.js"
_STYLES = STATIC / "widget.css"
_LOADER = STATIC / "loader.js"  # each view's `_esm`: finds the bundle once per page (js/loader.js)
_MISSING_BUNDLE = """
export default { render({ model, el }) {
  const p = document.createElement("pre");
  const paint = () => { const v = (model.get("snapshot").versions || []).at(-1);
    p.textContent = "nbstream: the widget bundle is missing (run `npm run build` in the nbstream "
      + "checkout, or reinstall nbstream).\\n\\n" + ((v && v.parts.find((x) => x.kind === "text")
      || {}).text || ""); };
  model.on("change:snapshot", paint); paint(); el.appendChild(p);
} };
"""


class _Bundle(ipywidgets.Widget):
    """The widget's code and styles, sent once per kernel: every view refers to this model
    (trait ``bundle``) and carries only a small loader as its ``_esm`` (js/loader.js), so 200
    views do not send the 0.5 MB bundle 200 times, nor does each saved answer store it. A page
    that has nbstream's JupyterLab extension with the same bundle never reads it."""

    js = traitlets.Unicode("").tag(sync=True)
    css = traitlets.Unicode("").tag(sync=True)


_shared: list[_Bundle] = []
_shared_lock = threading.Lock()


def _shared_bundle() -> _Bundle | None:
    """This kernel's bundle model (made again if it was closed, e.g. by ``Widget.close_all()``)."""
    if not _LOADER.exists():
        return None
    with _shared_lock:
        if not _shared or getattr(_shared[0], "comm", None) is None:
            _shared[:] = [_Bundle(js=_BUNDLE.read_text("utf-8"), css=_STYLES.read_text("utf-8"))]
        return _shared[0]


# this kernel's views by uid: a page says `ready` once for all the views it initialized together
# (js/widget.js), through one of them, naming the others by uid
_views: weakref.WeakValueDictionary[str, StreamView] = weakref.WeakValueDictionary()

METRICS_INTERVAL_S = 0.25  # live metrics ride along with frames at most 4 times a second
LOG_PAGE_MAX = 1000
JSONL_MAX_BYTES = 20_000_000
TEXT = PartKey(0, "text")
_ABSENT = object()


class _TimerThread:
    """Runs delayed callbacks (the coalescer's tail flushes) on one shared daemon thread.

    Why not ``threading.Timer``: a stream in a thread arms a timer every frame (~60/s per view),
    and ``Thread.start()`` blocks until the OS has scheduled the new thread, which on a loaded
    machine took milliseconds each time and made the consumer wait (bench/bench_consumer.py).
    The thread exits after a few idle seconds and is started again on demand.
    """

    IDLE_S = 5.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
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
            except Exception:  # noqa: BLE001 - one failing flush must not stop the other views'
                traceback.print_exc()  # shown as threading.Timer would show it


_TIMERS = _TimerThread()


class _TailGate:
    """Holds a version's tail timer while its consumer is busy with data, and arms it when the
    consumer is about to wait for the network (``StreamRun.watch_reads``). Called from the
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
            _TIMERS.schedule(max(0.0, held[0] - time.monotonic()), held[1])

    def done(self) -> None:
        with self._lock:
            self._waiting = False


class _Version:
    """One answer of the view: its run, its coalescer and the text already sent in frames."""

    def __init__(self, index: int, run: StreamRun, prefix: str = "") -> None:
        self.index = index
        self.run = run
        self.prefix = prefix  # resumed versions start with the partial answer
        self.joiner: OverlapJoiner | None = None  # for resumed versions
        # what went out in frames, per part: for text and reasoning only the length (their text
        # is a prefix of what the run's state - or the resume joiner - holds: no second copy of a
        # long answer), for the other parts the pieces themselves
        self.sent_len: dict[PartKey, int] = {}
        self.sent: dict[PartKey, list[str]] = {}  # every part sent, in order (text: no pieces)
        self.meta: dict[PartKey, dict[str, Any]] = {}
        self.seq = 0
        self.coalescer: Coalescer | None = None
        self.gate = _TailGate()
        self.done: concurrent.futures.Future[str] = concurrent.futures.Future()
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.metrics_at = -1.0
        self.metrics_cache: dict[str, Any] = {}
        self.metrics_sent: dict[str, Any] = {}  # as the frontend has them (frames merged)
        self.clock: Callable[[], float] = time.monotonic
        # the "Thinking" section's duration: first reasoning delta -> first answer delta
        # (thinking_until -1.0: settled, nothing more to time)
        self.thinking_from: float | None = None
        self.thinking_until: float | None = None

    @property
    def text(self) -> str:
        if self.joiner is not None:
            return self.joiner.joined
        return self.run.text

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


class StreamView(anywidget.AnyWidget):
    """A live view of a streamed answer. Usually made by :func:`nbstream.stream` / ``chat``.

    ``view.text`` is the answer so far, ``view.status`` where it is, ``view.stop()`` stops it from
    any thread, ``view.regenerate()`` asks again (kept as a new version), ``view.wait()`` /
    ``await view`` wait for the end.
    """

    _esm = _LOADER.read_text("utf-8") if _LOADER.exists() else _MISSING_BUNDLE
    _css = ""  # the bundle model carries the styles (see _Bundle)

    bundle = traitlets.Instance(_Bundle, allow_none=True).tag(
        sync=True, **ipywidgets.widget_serialization
    )
    """The shared model holding the widget's code (:class:`_Bundle`), once per kernel."""

    uid = traitlets.Unicode("").tag(sync=True)
    """Random id of this view's model: the frontend keeps one document per uid for all its views."""

    snapshot = traitlets.Dict().tag(sync=True)
    """Every version's complete text per part, status, reason and metrics, and the ``seq`` of the
    last frame it includes (``Snapshot``). Set rarely: start and end of a
    version, status changes, resync. What a reloaded page or a saved notebook shows."""

    format = traitlets.Unicode("markdown").tag(sync=True)
    """How the answer renders: ``markdown`` (code highlighting, math), ``text`` or ``code``."""

    language = traitlets.Unicode("").tag(sync=True)
    """Language of the code for ``format="code"`` (syntax highlighting)."""

    mode = traitlets.Unicode("idle").tag(sync=True)
    """How a Stop click can reach the kernel: ``idle``, ``background`` (the cell returned),
    ``await`` (the cell awaits the view), ``blocking`` (a synchronous cell holds the kernel: the
    widget tells the user to interrupt the kernel instead)."""

    rerunnable = traitlets.Bool(False).tag(sync=True)
    """True when the source can be asked again: shows Regenerate."""

    resumable = traitlets.Bool(False).tag(sync=True)
    """True when a stopped/incomplete answer can be continued (Chat requests): shows Continue."""

    heading = traitlets.Unicode("").tag(sync=True)
    """A line over the answer telling it apart from its neighbours: the prompt's first line, set
    for background answers (a loop of them stacks in one output; a waiting answer sits under
    the cell that asked it)."""

    def __init__(
        self,
        source: SourceLike | None = None,
        *,
        format: str = "markdown",  # noqa: A002 - the public option's name
        language: str = "",
        max_fps: float = DEFAULT_MAX_FPS,
        hooks: Sequence[Hook] = (),
        retry: RetryPolicy | None = None,
        resilience: Resilience | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        if format not in ("markdown", "text", "code"):
            raise ValueError(f"format must be 'markdown', 'text' or 'code', got {format!r}")
        src = to_source(source) if source is not None else None
        super().__init__(
            uid=uuid.uuid4().hex,
            bundle=_shared_bundle(),
            format=format,
            language=language,
            rerunnable=bool(getattr(src, "rerunnable", False)),
            resumable=self._can_resume(src),
            **kwargs,
        )
        self._source = src
        self._max_fps = max_fps
        self._hooks = list(hooks)
        self._retry = retry
        self._resilience = (
            resilience  # nbstream.resilience.layer.Resilience: retries, limits, hooks
        )
        self._clock = clock
        self._versions: list[_Version] = []
        self._lock = threading.RLock()  # orders frames and snapshots
        self._background = False
        self._outputs = output.CellOutputs(self, [{"uid": self.uid}], self._answer_output)
        self.frames_sent = 0  # measurements: frames and bytes of custom messages sent
        self.bytes_sent = 0
        self.snapshot_bytes = 0  # bytes of snapshot trait updates sent
        # a frontend said it holds this model's document (``ready``): it builds the final
        # snapshot from the frames itself, so the end of a version does not re-send the text
        self._frontend_ready = False
        # versions whose end is under way: the mode they end in, whether a final frame went out
        self._ending: dict[int, dict[str, Any]] = {}
        self.snapshot = self._build_snapshot()
        self.on_msg(self._on_frontend_msg)
        _views[self.uid] = self

    # ---- public surface -------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The answer of the newest version so far (choice 0)."""
        v = self._current()
        return v.text if v is not None else ""

    @property
    def status(self) -> str:
        """``pending``, ``streaming``, ``done``, ``stopped``, ``error`` or ``incomplete``."""
        v = self._current()
        return v.run.status if v is not None else "pending"

    @property
    def reason(self) -> str | None:
        """Why the newest version ended the way it did (None when done normally)."""
        v = self._current()
        return v.run.reason if v is not None else None

    @property
    def run(self) -> StreamRun | None:
        """The newest version's StreamRun (state, choices, tool calls, usage)."""
        v = self._current()
        return v.run if v is not None else None

    @property
    def log(self) -> ChunkLog | None:
        """The newest version's chunk log (every raw chunk, timed; exportable as JSONL)."""
        v = self._current()
        return v.run.log if v is not None else None

    @property
    def metrics(self) -> Metrics | None:
        """The newest version's ``Metrics`` (TTFT, tokens/s, usage...)."""
        v = self._current()
        return v.run.metrics if v is not None else None

    @property
    def choices(self) -> list[ChoiceState]:
        """Every choice of the newest version (``n > 1`` gives several): ``.text``, ``.refusal``,
        ``.reasoning``, ``.tool_calls``, ``.finish_reason``, ``.logprobs``, ``.content_filter``.
        ``view.text`` is the first one's text."""
        v = self._current()
        return list(v.run.state.choices) if v is not None else []

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The first choice's tool calls, parsed: ``.id``, ``.name``, ``.arguments`` (the JSON
        text as streamed), ``.parsed`` (dict, or None while incomplete / invalid), ``.valid``."""
        choices = self.choices
        return list(choices[0].tool_calls) if choices else []

    @property
    def reasoning(self) -> str:
        """The first choice's reasoning ("Thinking"), "" when the model sent none."""
        choices = self.choices
        return choices[0].reasoning if choices else ""

    @property
    def refusal(self) -> str | None:
        """The first choice's refusal, None when the model did not refuse."""
        choices = self.choices
        return choices[0].refusal if choices else None

    @property
    def usage(self) -> Usage | None:
        """Token usage as the server reported it (None when it did not; absent fields None)."""
        v = self._current()
        return v.run.state.usage if v is not None else None

    @property
    def versions(self) -> list[StreamRun]:
        """Every answer of this view, oldest first (Regenerate and Continue add one)."""
        return [v.run for v in self._versions]

    def stop(self, reason: str = "stopped by user") -> None:
        """Stop the running answer from any thread: closes the HTTP stream, keeps the text."""
        v = self._current()
        if v is not None:
            v.run.stop(reason)

    def regenerate(self, *, background: bool | None = None) -> StreamView:
        """Ask the same request again; the earlier answers stay as versions."""
        if self._source is None or not getattr(self._source, "rerunnable", False):
            raise RuntimeError(
                "this stream cannot be regenerated: its source is a one-shot stream. Pass a "
                "re-runnable source to nbstream.stream() (a ChatRequest, or a zero-argument "
                "callable that returns the stream), or use nbstream.chat()."
            )
        self._require_idle("regenerate")
        return self._launch(self._source, background=self._bg(background))

    def resume(self, *, background: bool | None = None) -> StreamView:
        """Continue a stopped or incomplete answer as a new version (partial text kept).

        For Chat requests the partial answer goes back as the assistant's turn and the model is
        asked to continue where it stopped; the repeated overlap is dropped when joining.
        """
        from nbstream.resilience.resume import OverlapJoiner, continuation_messages

        v = self._current()
        if v is None or not self._can_resume(self._source):
            raise RuntimeError(
                "resume needs a Chat Completions request (nbstream.chat() or a ChatRequest with "
                "messages); for other sources use regenerate()."
            )
        blocked = _resume_blocked(v.run)
        if blocked:  # a moderation / budget hook stopped it: continuing would extend it
            raise RuntimeError(f"not continued: {blocked}. Use regenerate() to ask again.")
        self._require_idle("resume")
        partial = v.text
        messages = continuation_messages(self._source.params["messages"], partial)
        source = self._source.with_params(messages=messages)
        joiner = OverlapJoiner(partial)
        return self._launch(source, background=self._bg(background), prefix=partial, joiner=joiner)

    def insert_cell(self, *, code_block: int | None = None, replace: bool = False) -> None:
        """Put the answer in a new cell below this one: the whole answer, or ``code_block=i``.

        Runs from a notebook cell (the kernel asks the frontend to create the cell; a widget
        button cannot reach the notebook's document). A Markdown answer becomes a ``%%markdown``
        cell; ``code_block=0`` inserts the first code block as a code cell, ``-1`` the last.
        """
        from nbstream.notebook.cells import cell_source, insert_cell

        insert_cell(
            cell_source(self.text, code_block=code_block, format=self.format), replace=replace
        )

    def wait(self, timeout: float | None = None) -> str:
        """Block until the newest version ends; return its text. Interrupt (■) = Stop."""
        v = self._current()
        if v is None:
            return ""
        if v.loop is not None and not v.done.done() and _running_loop() is v.loop:
            raise RuntimeError(
                "this stream runs on this thread's event loop, so blocking here would freeze it: "
                "use `await view` (or `await view.wait_async()`) instead of view.wait()."
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                step = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
                try:
                    v.done.result(timeout=step)
                    break
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"the stream did not end within {timeout} s (status {self.status})"
                        ) from None
        except KeyboardInterrupt:
            self._interrupted(v)
        return v.text

    async def wait_async(self) -> str:
        """Wait for the end without blocking the event loop (Stop clicks still arrive)."""
        v = self._current()
        if v is None:
            return ""
        previous = self.mode
        if not v.done.done():
            self.mode = "await"
        try:
            await asyncio.shield(asyncio.wrap_future(v.done))
        except (asyncio.CancelledError, KeyboardInterrupt):
            # the notebook's interrupt (■) while awaiting: acts as Stop, keeps the text
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            self._interrupted(v)
            while not v.done.done():
                await asyncio.sleep(0.01)
        finally:
            if self.mode == "await":
                self.mode = previous if not v.done.done() else "idle"
        return v.text

    def __await__(self) -> Generator[Any, None, StreamView]:
        yield from self.wait_async().__await__()
        return self

    def __repr__(self) -> str:
        v = self._current()
        if v is None:
            return "<StreamView pending>"
        n = len(v.text)
        extra = f", version {v.index + 1}/{len(self._versions)}" if len(self._versions) > 1 else ""
        return f"<StreamView {v.run.status}: {n} chars{extra}>"

    # ---- notebook outputs (frontend/output.py) -------------------------------------------------

    def _ipython_display_(self) -> None:
        """``display(view)`` or a cell ending with ``view``: the live output and the answer
        output (:mod:`nbstream.frontend.output`), unless this cell shows them already (``stream()``
        displayed them: the view as the cell's last line adds nothing)."""
        if self._outputs.shown_in_this_cell():
            return
        self._outputs.show(waiting=False)

    # IPython takes a bare data dict as well as anywidget's (data, metadata) pair
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The live output's data (for tools that ask for a bundle rather than display it)."""
        data, _metadata = output.live_output(self, [{"uid": self.uid}])
        return data

    def _display_live(self, *, waiting: bool) -> None:
        """``stream()`` shows the view: the live output now; the answer output when the stream
        ends in this cell (``waiting``), else now as a placeholder updated at the end."""
        if not waiting and not self.heading:
            self.heading = prompt_heading(self._source)  # in the state displayed: no message
        self._outputs.show(waiting=waiting)

    def _ended_in_cell(self) -> None:
        """The stream shown by this cell ended while the cell runs: its answer output now."""
        self._outputs.finished_in_cell()

    def saved_answer(self, label: str = "") -> dict[str, Any]:
        """What the notebook keeps of this view for readers without its model: every version's
        snapshot, the format and the ``uid`` linking it to the live widget."""
        with self._lock:
            snapshot = self._build_snapshot()
        return {"uid": self.uid, "snapshot": snapshot, "format": self.format,
                "language": self.language, "label": label, "heading": self.heading}  # fmt: skip

    def static_parts(self) -> dict[str, Any]:
        """The shown version for ``answer_html``, every text passed
        through :func:`nbstream.redact.redact_text` (a model may repeat a key it was sent)."""
        v = self._current()
        if v is None:
            return {"status": "pending", "summary": "still streaming when this copy was made"}
        run = v.run
        choice = run.state.choices[0] if run.state.choices else None
        status, reason = run.status, redact_text(run.reason or "") or None
        summary = f"{status}: {reason}" if status != "done" and reason else status
        if status not in FINAL:  # a background answer's copy, made while it streams
            summary = "still streaming when this copy was made"
        if len(self._versions) > 1:
            summary += f" · version {v.index + 1} of {len(self._versions)}"
        calls = choice.tool_calls if choice is not None else []
        return {
            "text": redact_text(v.text),
            "reasoning": redact_text(choice.reasoning) if choice is not None else "",
            "refusal": redact_text(choice.refusal) if choice and choice.refusal else None,
            "tool_calls": [
                {
                    "name": redact_text(t.name or ""),
                    "id": redact_text(t.id or ""),
                    "arguments": redact_text(t.arguments),
                    "valid": t.valid,
                    "parsed": redact_obj(t.parsed) if t.valid else None,
                }  # fmt: skip
                for t in calls
            ],
            "status": status,
            "reason": reason,
            "summary": summary,
        }

    def static_plain(self) -> str:
        """The answer as plain text (``text/plain`` of the answer output)."""
        parts = self.static_parts()
        lines = [f"Refused: {parts['refusal']}"] if parts.get("refusal") else []
        lines += [parts["text"]] if parts.get("text") else []
        lines += [f"tool call {t['name']}({t['arguments']})" for t in parts.get("tool_calls", [])]
        status = parts.get("status")
        if status not in ("done", None):
            lines.append(f"[{parts['summary']}]")
        return "\n".join(lines)

    def _answer_output(self) -> output.Bundle:
        html = static_copy.answer_html(
            self.static_parts(), format=self.format, language=self.language
        )
        return output.answer_output(self, [self.saved_answer()], html, self.static_plain())

    # ---- running --------------------------------------------------------------------------

    def start(self, *, background: bool = False) -> StreamView:
        """Run the source given at construction: to the end (``background=False``) or as a
        task/thread, returning at once (``background=True``). ``nbstream.stream()`` calls this."""
        if self._source is None:
            raise RuntimeError("StreamView(source) was made without a source: nothing to run")
        if self._versions:
            raise RuntimeError("this view already ran its source: use regenerate() to ask again")
        self._background = background
        return self._launch(self._source, background=background)

    def _bg(self, background: bool | None) -> bool:
        return self._background if background is None else background

    def _require_idle(self, what: str) -> None:
        v = self._current()
        if v is not None and not v.done.done():
            raise RuntimeError(f"cannot {what} while an answer is streaming: stop it first")

    def _launch(
        self, source: Any, *, background: bool, prefix: str = "", joiner: Any = None
    ) -> StreamView:
        source = to_source(source)
        self.resumable = self._can_resume(self._source)  # a hook may have hidden it last time
        if not background and not source.supports_sync and _running_loop() is not None:
            # a synchronous cell blocks the loop an async client belongs to: same request,
            # synchronous client (ChatRequest / ResponsesRequest)
            twin = getattr(source, "sync_twin", None)
            source = (twin() if twin is not None else None) or source
        if self._resilience is not None:
            run = self._resilience.build(source, log=ChunkLog(), clock=self._clock,
                                         hooks=self._hooks, retry=self._retry)  # fmt: skip
        else:
            run = StreamRun(source, log=ChunkLog(), clock=self._clock, hooks=self._hooks,
                            retry=self._retry)  # fmt: skip
        with self._lock:
            v = _Version(len(self._versions), run, prefix)
            v.clock = self._clock
            v.joiner = joiner
            self._versions.append(v)
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
        with self.hold_sync():  # snapshot and mode in one message (200 views start at once)
            # a view's first version, empty and pending, looks the same in the frontend as no
            # version at all (its first frame creates it): stored for get_state(), not sent.
            # With the mode given at construction (stream()), starting costs no message.
            self._push_snapshot(send=bool(v.index or prefix))
            if background:
                self.mode = "background"
        if background:
            self._run_background(v)
        else:
            self._run_blocking(v)
        return self

    def _run_blocking(self, v: _Version) -> None:
        """Waiting mode: the cell ends when the stream ends. Interrupt (■) acts as Stop; in
        marimo the Stop button too (its clicks reach the widget while the cell runs)."""
        self.mode = "await" if frontends.frontend() == "marimo" else "blocking"
        run = v.run
        try:
            if run.source.supports_sync or _running_loop() is None:
                run.run()
            else:
                # an async-only source from a synchronous cell (the kernel's loop is busy with
                # this cell): drive it on a private loop in a helper thread, wait here.
                self._run_in_thread(v, asyncio_run=True)
                self.wait()
        except KeyboardInterrupt:
            self._interrupted(v)
        finally:
            self._finish(v)
            self.mode = "idle"

    def _run_background(self, v: _Version) -> None:
        """Background mode: return at once; the stream runs as a task on the running loop
        (async sources) or in a thread (sync sources). Stop clicks arrive within milliseconds."""
        self.mode = "background"
        loop = _running_loop()
        if loop is not None and v.run.source.supports_async:
            v.loop = loop
            v.task = loop.create_task(self._arun(v))
        else:
            self._run_in_thread(v, asyncio_run=not v.run.source.supports_sync)

    async def _arun(self, v: _Version) -> None:
        try:
            await v.run.arun()
        finally:
            self._finish(v)

    def _run_in_thread(self, v: _Version, *, asyncio_run: bool) -> None:
        def target() -> None:
            try:
                if asyncio_run:
                    asyncio.run(v.run.arun())
                else:
                    v.run.run()
            finally:
                self._finish(v)

        v.thread = threading.Thread(target=target, name=f"nbstream-v{v.index}", daemon=True)
        v.thread.start()

    def _interrupted(self, v: _Version) -> None:
        v.run.stop("stopped (kernel interrupt)")
        if v.thread is not None and v.thread is not threading.current_thread():
            v.thread.join(timeout=5)

    def _finish(self, v: _Version) -> None:
        """The run returned: make sure the final frame and snapshot went out, wake waiters."""
        if v.run.status not in FINAL:  # should not happen: run() always concludes
            # (stop() only asks the consuming loop to end, and that loop is gone: conclude)
            v.run.end_unfinished("the stream ended without a final status")
        self._close_version(v)
        if self._current() is v and self.mode not in ("await", "idle") and v.done.done():
            self.mode = "idle"  # (the end sets it already: this only catches a missed end)

    def _scheduler(self, v: _Version) -> Callable[[float, Callable[[], None]], Any]:
        """The coalescer's tail timer. A sync stream whose reads are watched (SDK streams) holds
        it back while data keeps coming: it is armed only when the consumer is about to wait
        for the network (``_TailGate``), so a fast stream never wakes the timer thread (each
        wake-up takes the GIL from the consumer) and a paused one still gets its tail within
        an interval."""
        gate = v.gate

        def schedule(delay: float, callback: Callable[[], None]) -> None:
            loop = v.loop
            if loop is not None and _running_loop() is loop:
                loop.call_later(delay, callback)
                return
            run = v.run  # held only while the consumer reads: after the run (a queued final
            if run.reads_watched and run.status not in FINAL and gate.hold(delay, callback):
                return  # frame) nobody would arm it
            _TIMERS.schedule(delay, callback)

        return schedule

    # ---- run -> frames and snapshots --------------------------------------------------------

    def _on_run(self, v: _Version, _run: StreamRun, events: list[Event]) -> None:
        coalescer = v.coalescer
        assert coalescer is not None
        if events:
            if v.thinking_until is None:
                v.time_thinking(events)
            if v.joiner is not None:
                events = self._join(v, events)
            coalescer.add(events)
            return
        status = v.run.status
        if status in FINAL:
            self._close_version(v)
        else:
            coalescer.update(status)
            if status != "streaming" or v.run.reason:  # the frame carries a bare status
                self._push_snapshot()

    def _join(self, v: _Version, events: list[Event]) -> list[Event]:
        """Resumed versions: drop the continuation's repetition of the partial answer."""
        joiner = v.joiner
        assert joiner is not None  # only called for resumed versions
        out: list[Event] = []
        for e in events:
            if isinstance(e, TextDelta) and e.choice == 0:
                text = joiner.feed(e.text)
                if text:
                    out.append(TextDelta(text))
            else:
                out.append(e)
        return out

    def _close_version(self, v: _Version) -> None:
        """The run ended: the final frame (queued on the kernel's frame budget when the view
        streams in the background, so 200 views ending together stay within it), then
        :meth:`_ended`. To a frontend that said ``ready`` the end is one message, the final
        frame carrying the mode the view ends in; headless, the final frame and one state update
        (the final snapshot with the mode)."""
        coalescer = v.coalescer
        assert coalescer is not None
        with self._lock:
            if v.done.done() or v.index in self._ending:
                return
            self._ending[v.index] = {"mode": None, "frame": False}
        if v.joiner is not None:
            tail = v.joiner.finish()
            if tail:
                coalescer.add([TextDelta(tail)])
        v.metrics(fresh=True)
        if _resume_blocked(v.run):  # a hook stopped it: hide Continue (synced trait)
            self.resumable = False
        if self._current() is v and self.mode != "idle":
            self._ending[v.index]["mode"] = "idle"
        coalescer.close(
            v.run.status,
            then=lambda: self._ended(v),
            queue=self.mode == "background",
            cost=self._end_cost(),
        )

    def _end_cost(self) -> int:
        """Messages the end of a background version sends: the final frame, the final snapshot
        (headless only) and the live output's update to the final answer (if displayed)."""
        return 1 + (not self._frontend_ready) + self._outputs.updates_on_end()

    def _ended(self, v: _Version) -> None:
        """The final frame was emitted (or, headless, built): store or send the final state."""
        ending = self._ending.get(v.index, {})
        mode = ending.get("mode")
        with self.hold_sync():  # the end's trait updates in one message, not one per trait
            if ending.get("frame"):
                # the frontend built this snapshot from the frames and took the mode from the
                # final frame: store both for get_state() (reload, saved state), send nothing
                self._push_snapshot(send=False)
                if mode is not None:
                    self._trait_values["mode"] = mode
            else:
                self._push_snapshot()
                if mode is not None:
                    self.mode = mode  # rides in the same message
        self._outputs.update()
        if not v.done.done():
            v.done.set_result(v.run.status)
        self._ending.pop(v.index, None)  # (after: a late _close_version sees the version done)

    def _final_message(self, v: _Version, frame: Frame) -> dict[str, Any]:
        """The last frame of a version, with its reason and notes; to a frontend that said
        ``ready``, also the mode the view ends in (it sets the trait locally), so the end costs
        this one message. Headless, the final snapshot and the mode follow as one state update."""
        ending = self._ending.setdefault(v.index, {"mode": None, "frame": False})
        ready = ending["frame"] = self._frontend_ready
        return protocol.frame_message(
            frame,
            v.index,
            reason=v.run.reason,
            notes=_resilience_notes(v.run),
            mode=ending["mode"] if ready else None,
        )

    def _emit(self, v: _Version, frame: Frame) -> None:
        with self._lock:
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
            self._send_msg(msg)
            self.frames_sent += 1

    def _send_msg(self, msg: dict[str, Any]) -> None:
        try:
            size = len(json.dumps(msg, ensure_ascii=False).encode("utf-8"))
        except UnicodeEncodeError:
            # a lone surrogate (half an emoji) in a log row's raw chunk: Jupyter's messages must
            # be UTF-8, and one failing send left the panel waiting. The answer's text is mended
            # in the run already (surrogates.py); this is for what is shown as received.
            msg = valid_obj(msg)
            size = len(json.dumps(msg, ensure_ascii=False).encode("utf-8"))
        self.bytes_sent += size
        self.send(msg)

    def _build_snapshot(self) -> dict[str, Any]:
        versions = []
        for v in self._versions:
            run = v.run
            versions.append(
                {
                    "version": v.index,
                    "seq": v.seq,
                    "status": run.status,
                    "reason": run.reason,
                    "notes": _resilience_notes(run),
                    "resume_blocked": _resume_blocked(run),
                    "metrics": v.metrics_cache,
                    "parts": [
                        protocol.snapshot_part(key, _sent_text(v, key), v.meta.get(key))
                        for key in v.sent
                    ],
                }
            )
        return {
            "protocol": protocol.PROTOCOL_VERSION,
            "current": max(0, len(self._versions) - 1),
            # the widget state is saved with the notebook: no credential in it, not even one the
            # model echoed (each part's whole text is scanned: a key split across frames too)
            "versions": redact_obj(versions),
        }

    def _push_snapshot(self, *, send: bool = True, force: bool = False) -> None:
        """Set the ``snapshot`` trait. ``send=False`` stores it without syncing it (ipywidgets'
        property lock suppresses the echo, as for a value that came from the frontend):
        ``get_state()`` - a reloaded page, a new view - still gets it. ``force`` sends it even
        when unchanged (a resync: the frontend lost something)."""
        with self._lock:
            snap = self._build_snapshot()
            if not send:
                # stored without a change notification: under ipywidgets' property lock the
                # notification would still round-trip the whole answer through JSON to compare it
                self._trait_values["snapshot"] = snap
                return
            if force and snap == self.snapshot:
                self.send_state("snapshot")  # traitlets would not notify an equal value
            else:
                self.snapshot = snap
            self.snapshot_bytes += protocol.json_size(snap)
            _count_message(self._clock())

    def _current(self) -> _Version | None:
        versions = self._versions
        return versions[-1] if versions else None

    # ---- frontend -> Python -----------------------------------------------------------------

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            msg = protocol.parse_inbound(content)
        except ValueError as exc:
            self._send_msg({"type": protocol.ERROR, "message": str(exc)})
            return
        kind = msg["type"]
        if kind == protocol.BUNDLE:  # from the loader, before the widget (and its document) runs
            bundle = _shared_bundle()
            if bundle is not None:
                self._send_msg({"type": protocol.BUNDLE, "js": bundle.js, "css": bundle.css})
            return
        try:
            self._frontend_ready = True  # any message proves a frontend holds the document
            if kind == protocol.READY:
                for uid in msg.get("uids") or ():
                    view = _views.get(uid) if isinstance(uid, str) else None
                    if view is not None:
                        view._frontend_ready = True
            elif kind == protocol.STOP:
                self.stop()
            elif kind == protocol.RESYNC:
                self._push_snapshot(force=True)
            elif kind in (protocol.REGENERATE, protocol.RETRY):
                self.regenerate(background=True)
            elif kind == protocol.RESUME:
                self.resume(background=True)
            elif kind == protocol.LOG_PAGE:
                self._send_msg(self._log_page(msg))
        except RuntimeError as exc:
            self._send_msg({"type": protocol.ERROR, "message": str(exc)})

    def _log_page(self, msg: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {"type": protocol.LOG_PAGE, "id": msg.get("id")}
        try:
            index = int(msg.get("version", len(self._versions) - 1))
            log = self._versions[index].run.log
        except (IndexError, TypeError, ValueError):
            reply["error"] = f"no version {msg.get('version')!r}"
            return reply
        reply["version"] = index
        reply["total"] = len(log)
        if msg.get("jsonl"):
            text = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in log)
            if len(text) > JSONL_MAX_BYTES:
                reply["error"] = (
                    "the log is too large to download through the widget: use "
                    "view.log.to_jsonl('run.jsonl') in a cell"
                )
            else:
                reply["jsonl"] = text
            return reply
        start = max(0, int(msg.get("start", 0)))
        count = max(0, min(LOG_PAGE_MAX, int(msg.get("count", 100))))
        raw = bool(msg.get("raw"))
        reply["rows"] = [
            log_row(start + i, rec, raw=raw) for i, rec in enumerate(log.page(start, count))
        ]
        if msg.get("times"):
            times: list[float] = []
            requests: list[dict[str, Any]] = []
            for rec in log:
                if rec.get("type") == "chunk":
                    times.append(rec.get("t", 0.0))
                else:
                    requests.append({k: v for k, v in rec.items() if k not in ("data", "params")})
            reply["times"] = times
            reply["requests"] = requests
        return reply

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _can_resume(source: object) -> TypeGuard[ParamsSource]:
        params = getattr(source, "params", None)
        return (
            getattr(source, "kind", None) == "chat"
            and hasattr(source, "with_params")
            and isinstance(params, dict)
            and isinstance(params.get("messages"), list)
        )


# Parts whose frames carry a prefix of a text the run already holds: the view counts what it
# sent of them and reads the text back from the run (choice 0 of a resumed version: the joiner).
_HELD_BY_RUN = frozenset({"text", "reasoning"})


def _sent_text(v: _Version, key: PartKey) -> str:
    """The text sent in frames for one part. Text and reasoning are read back from the run:
    a finished part that went out whole is the run's own string (shared with the state, no
    second copy of a long answer); mid-stream, the state's pieces are joined without touching
    them (the consumer may be appending on another thread) and cut to what was sent."""
    n = v.sent_len.get(key)
    if n is None:
        return _joined(v.sent[key])
    if not n:
        return ""
    if key.kind == "text" and key.choice == 0 and v.joiner is not None:
        text = v.joiner.joined  # the partial answer + the continuation, as the frames sent it
    else:
        choices = v.run.state.choices
        if key.choice >= len(choices):  # cannot happen: events reach the state before a frame
            return ""
        c = choices[key.choice]
        if v.run.status in FINAL:  # the consumer is done: join once, shared with the state
            text = c.text if key.kind == "text" else c.reasoning
        else:
            text = "".join(list(c._text if key.kind == "text" else c._reasoning))
    return text if len(text) == n else text[:n]


def _joined(pieces: list[str]) -> str:
    """The text sent in frames, joined once and kept joined (the snapshot shares that string)."""
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


def log_row(index: int, rec: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
    """One chunk-log record as a row of the log panel: index, time, the delta it carried."""
    kind = rec.get("type", "?")
    row: dict[str, Any] = {
        "index": index,
        "type": kind,
        "t": rec.get("t"),
        "attempt": rec.get("attempt"),
    }
    if kind == "chunk":
        row["chunk"] = rec.get("index")
        row["delta"], row["note"] = _delta_text(rec.get("data", rec.get("text")))
    else:
        row["delta"] = " ".join(
            f"{k}={v}"
            for k, v in rec.items()
            if k not in ("type", "t", "attempt", "data", "params") and v not in (None, "", {})
        )
    if raw:
        row["raw"] = rec
    return row


def _delta_text(data: Any) -> tuple[str, str]:
    """The human part of a raw chunk: (the text it adds, a note such as a finish reason)."""
    if isinstance(data, str):
        return data, ""
    if not isinstance(data, dict):
        return ("" if data is None else str(data)), ""
    out: list[str] = []
    notes: list[str] = []
    for choice in data.get("choices") or []:
        delta = (choice or {}).get("delta") or {}
        for key in ("reasoning_content", "reasoning", "content", "refusal"):
            if isinstance(delta.get(key), str):
                out.append(delta[key])
        for call in delta.get("tool_calls") or []:
            fn = (call or {}).get("function") or {}
            out.append(f"{fn.get('name') or ''}{fn.get('arguments') or ''}")
        if choice.get("finish_reason"):
            notes.append(f"finish: {choice['finish_reason']}")
    if isinstance(data.get("delta"), str):
        out.append(data["delta"])
    elif data.get("type"):
        notes.append(str(data["type"]))
    if data.get("usage"):
        notes.append("usage")
    if data.get("error"):
        notes.append("error")
    return "".join(out), ", ".join(notes)


def _count_message(now: float) -> None:
    """A state update went to the frontend: it counts in the kernel-wide frame budget."""
    KERNEL_BUDGET.spend(now)


def _resume_blocked(run: StreamRun) -> str | None:
    """Why Continue is not offered for this answer (a hook stopped it), from ``run.resilience``."""
    guard = getattr(run, "resilience", None)
    return guard.resume_blocked if guard is not None else None


HEADING_MAX = 100  # characters of the prompt's first line over a background answer


def prompt_heading(source: Any) -> str:
    """The first non-empty line of the last user message of a Chat / Responses request (redacted,
    at most ``HEADING_MAX`` characters), or "" for other sources."""
    from nbstream.resilience.layer import _request_of

    request = _request_of(source)
    params = getattr(request, "params", None) or {}
    messages = params.get("messages", params.get("input"))
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    text = ""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: their text
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            text = str(content or "")
            break
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = redact_text(line) or ""
    return line if len(line) <= HEADING_MAX else line[: HEADING_MAX - 1].rstrip() + "…"


def _resilience_notes(run: StreamRun) -> list[str]:
    """Flags, rate-limit budget and budget use from the resilience layer (``run.resilience``),
    after the request's own notice (the bundled demo server answered: no key is set)."""
    from nbstream.resilience.layer import _request_of

    request = _request_of(run.source)
    notice = getattr(request, "notice", None)
    guard = getattr(run, "resilience", None)
    return ([notice] if notice else []) + (guard.notes() if guard is not None else [])


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

"""StreamView: the anywidget that shows a stream live, with Stop, Regenerate, versions and the log.

This module is the widget's face: its traits (the state the frontend syncs), the public
properties and methods, and the dispatch of the frontend's messages. The work is elsewhere, one
job a module:

- :mod:`nbstream.frontend.publisher`: what the frontend has of each version, the ``frame``
  messages (batched by the ``Coalescer``, at most ~60 per second) and the ``snapshot`` state;
- :mod:`nbstream.frontend.runner`: where a version's ``StreamRun`` runs (blocking, task, thread,
  private loop) and waiting for it (``wait()``, ``await view``);
- :mod:`nbstream.frontend.output`: the notebook outputs of an answer;
- :mod:`nbstream.run.log_view`: the log panel's pages.

It works with no frontend at all (scripts, tests): messages then go nowhere and ``.text``,
``.wait()`` and ``await view`` behave the same. It knows nothing of OpenAI: it drives sources
through ``StreamRun``; what can be regenerated or resumed is asked of the source.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import traitlets

from nbstream.events import Usage
from nbstream.frontend import output, protocol, static_copy
from nbstream.frontend.coalesce import DEFAULT_MAX_FPS
from nbstream.frontend.publisher import Publisher, Version
from nbstream.frontend.runner import Job, Runner
from nbstream.redact import redact_text
from nbstream.resilience.resume import request_of, resumable, resume_blocked
from nbstream.run import log_view
from nbstream.run.log import ChunkLog
from nbstream.run.state import ChoiceState, ToolCall
from nbstream.run.stream_run import FINAL, StreamRun
from nbstream.sources import to_source

if TYPE_CHECKING:
    from nbstream.resilience.layer import Resilience
    from nbstream.run.metrics import Metrics
    from nbstream.run.stream_run import Hook, RetryPolicy
    from nbstream.sources import Source, SourceLike

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
        self._hooks = list(hooks)
        self._retry = retry
        self._resilience = (
            resilience  # nbstream.resilience.layer.Resilience: retries, limits, hooks
        )
        self._clock = clock
        self._background = False
        self._outputs = output.CellOutputs(self, [{"uid": self.uid}], self._answer_output)
        # what the frontend has (frames, snapshots) and where the runs run: their own modules
        self._publisher = Publisher(
            lambda msg: self.send(msg),  # looked up each time: tests replace view.send
            set_state=self._set_state,
            mode=lambda: self.mode,
            on_end=self._ended,
            end_messages=self._outputs.updates_on_end,
            max_fps=max_fps,
            clock=clock,
        )
        self._versions = self._publisher.versions  # each answer as published, oldest first
        self._runner = Runner(self, self._finish)
        self.snapshot = self._publisher.snapshot()
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

    @property
    def frames_sent(self) -> int:
        """Measurements: frames sent to the frontend so far."""
        return self._publisher.frames_sent

    @property
    def bytes_sent(self) -> int:
        """Measurements: bytes of custom messages (frames, log pages...) sent so far."""
        return self._publisher.bytes_sent

    @property
    def snapshot_bytes(self) -> int:
        """Measurements: bytes of ``snapshot`` state updates sent so far."""
        return self._publisher.snapshot_bytes

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

        For Chat and Responses requests the partial answer goes back as the assistant's turn and
        the model is asked to continue where it stopped; the repeated overlap is dropped when
        joining (``nbstream.resilience.resume``, the one implementation of Resume).
        """
        from nbstream.resilience.resume import resume_source

        v = self._current()
        if v is None or not self._can_resume(self._source):
            raise RuntimeError(
                "resume needs a Chat Completions or Responses request (nbstream.chat() or a "
                "ChatRequest / ResponsesRequest); for other sources use regenerate()."
            )
        blocked = resume_blocked(v.run)
        if blocked:  # a moderation / budget hook stopped it: continuing would extend it
            raise RuntimeError(f"not continued: {blocked}. Use regenerate() to ask again.")
        self._require_idle("resume")
        partial = v.text
        source = resume_source(self._source, partial)
        return self._launch(source, background=self._bg(background), prefix=partial)

    def insert_cell(self, *, code_block: int | None = None, replace: bool = False) -> None:
        """Put the answer in a new cell below this one: the whole answer, or ``code_block=i``.

        Runs from a notebook cell (the kernel asks the frontend to create the cell; a widget
        button cannot reach the notebook's document). A Markdown answer becomes a ``%%markdown``
        cell; ``code_block=0`` inserts the first code block as a code cell, ``-1`` the last.
        """
        from nbstream.frontend.cells import cell_source, insert_cell

        insert_cell(
            cell_source(self.text, code_block=code_block, format=self.format), replace=replace
        )

    def wait(self, timeout: float | None = None) -> str:
        """Block until the newest version ends; return its text. Interrupt (■) = Stop."""
        v = self._current()
        if v is None:
            return ""
        self._runner.wait(self._runner.jobs[v.index], timeout)
        return v.text

    async def wait_async(self) -> str:
        """Wait for the end without blocking the event loop (Stop clicks still arrive)."""
        v = self._current()
        if v is None:
            return ""
        await self._runner.wait_async(self._runner.jobs[v.index])
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
        snapshot = self._publisher.snapshot()
        return {"uid": self.uid, "snapshot": snapshot, "format": self.format,
                "language": self.language, "label": label, "heading": self.heading}  # fmt: skip

    def static_parts(self) -> dict[str, Any]:
        """The shown version for ``answer_html``, every text passed
        through :func:`nbstream.redact.redact_text` (a model may repeat a key it was sent)."""
        v = self._current()
        if v is None:
            return output.answer_parts(None, "")
        return output.answer_parts(v.run, v.text, version=v.index, versions=len(self._versions))

    def static_plain(self) -> str:
        """The answer as plain text (``text/plain`` of the answer output)."""
        return output.answer_plain(self.static_parts())

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
        if self._runner.busy():
            raise RuntimeError(f"cannot {what} while an answer is streaming: stop it first")

    def _launch(self, source: Source, *, background: bool, prefix: str = "") -> StreamView:
        source = Runner.source_for(source, background=background)
        self.resumable = self._can_resume(self._source)  # a hook may have hidden it last time
        if self._resilience is not None:
            run = self._resilience.build(source, log=ChunkLog(), clock=self._clock,
                                         hooks=self._hooks, retry=self._retry)  # fmt: skip
        else:
            run = StreamRun(source, log=ChunkLog(), clock=self._clock, hooks=self._hooks,
                            retry=self._retry)  # fmt: skip
        job = self._runner.add(run)
        v = self._publisher.open(run, prefix=prefix, loop_of=lambda: job.loop)
        with self.hold_sync():  # snapshot and mode in one message (200 views start at once)
            # a view's first version, empty and pending, looks the same in the frontend as no
            # version at all (its first frame creates it): stored for get_state(), not sent.
            # With the mode given at construction (stream()), starting costs no message.
            self._publisher.push_snapshot(send=bool(v.index or prefix))
            if background:
                self.mode = "background"
        self._runner.start(job, background=background)
        return self

    def _finish(self, job: Job) -> None:
        """The run returned (runner): make sure the final frame and snapshot went out."""
        v = self._versions[job.index]
        if v.run.status not in FINAL:  # should not happen: run() always concludes
            # (stop() only asks the consuming loop to end, and that loop is gone: conclude)
            v.run.end_unfinished("the stream ended without a final status")
        self._publisher.close(v)
        if self._current() is v and self.mode not in ("await", "idle") and job.done.done():
            self.mode = "idle"  # (the end sets it already: this only catches a missed end)

    def _ended(self, v: Version) -> None:
        """The version's final state is out (publisher): the answer outputs, then the waiters."""
        self._outputs.update()
        job = self._runner.jobs[v.index]
        if not job.done.done():
            job.done.set_result(v.run.status)

    def _set_state(self, values: dict[str, Any], *, sync: bool, force: bool = False) -> None:
        """The publisher's state updates, in one message. ``sync=False``: stored for
        ``get_state()`` without a change notification (under ipywidgets' property lock the
        notification would still round-trip the whole answer through JSON to compare it)."""
        if not sync:
            self._trait_values.update(values)
            return
        with self.hold_sync():
            for name, value in values.items():
                if force and value == getattr(self, name):
                    self.send_state(name)  # traitlets would not notify an equal value
                else:
                    setattr(self, name, value)

    def _current(self) -> Version | None:
        versions = self._versions
        return versions[-1] if versions else None

    # ---- frontend -> Python -----------------------------------------------------------------

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            msg = protocol.parse_inbound(content)
        except ValueError as exc:
            self._publisher.send({"type": protocol.ERROR, "message": str(exc)})
            return
        kind = msg["type"]
        if kind == protocol.BUNDLE:  # from the loader, before the widget (and its document) runs
            bundle = _shared_bundle()
            if bundle is not None:
                self._publisher.send({"type": protocol.BUNDLE, "js": bundle.js, "css": bundle.css})
            return
        try:
            self._publisher.frontend_ready = True  # any message proves a frontend has the document
            if kind == protocol.READY:
                for uid in msg.get("uids") or ():
                    view = _views.get(uid) if isinstance(uid, str) else None
                    if view is not None:
                        view._publisher.frontend_ready = True
            elif kind == protocol.STOP:
                self.stop()
            elif kind == protocol.RESYNC:
                self._publisher.push_snapshot(force=True)
            elif kind in (protocol.REGENERATE, protocol.RETRY):
                self.regenerate(background=True)
            elif kind == protocol.RESUME:
                self.resume(background=True)
            elif kind == protocol.LOG_PAGE:
                self._publisher.send(self._log_page(msg))
        except RuntimeError as exc:
            self._publisher.send({"type": protocol.ERROR, "message": str(exc)})

    def _log_page(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A page of a version's chunk log for the log panel (:mod:`nbstream.run.log_view`)."""
        logs = [v.run.log for v in self._versions]
        return {"type": protocol.LOG_PAGE, **log_view.page(logs, msg)}

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _can_resume(source: object) -> bool:
        return resumable(source)


HEADING_MAX = 100  # characters of the prompt's first line over a background answer


def prompt_heading(source: Any) -> str:
    """The first non-empty line of the last user message of a Chat / Responses request (redacted,
    at most ``HEADING_MAX`` characters), or "" for other sources."""
    request = request_of(source)
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

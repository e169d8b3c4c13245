"""Where an answer lives in a notebook: a live output and an answer output, written once each.

Readers of a cell's outputs want different things, and a saved notebook meets all of them:

- JupyterLab / Notebook 7 with a live kernel want the widget (streaming text, Stop, log) and one
  copy of the answer, not two;
- the same notebook reopened tomorrow (no kernel, or a fresh one that has no widget models) must
  still show every answer, never "Error displaying widget: model not found";
- nbconvert, GitHub, nbviewer and frontends without nbstream's extension have no widget at all
  and want a static copy, which must be safe (model output is untrusted; outputs in your own
  notebook are trusted and rendered unsanitized);
- nbval compares what the kernel sends while a cell runs and ignores ``update_display_data``.

So an answer writes two outputs (both carry ``OUTPUT_MIME``, rendered by the extension in
``js/lab/``, which ships inside the wheel):

1. the live output, when the stream starts: ``{OUTPUT_MIME: {"output": "live"}, widget view,
   text/plain: ""}``, metadata ``{OUTPUT_MIME: {"uid": ...}}``. The extension mounts the widget
   when the kernel has the model; the widget, when a version ends, writes the answer's snapshot
   into this output's metadata, so a saved notebook carries the latest versions. Reopened, the
   extension renders that snapshot read-only (same view, versions pager) instead of an error.
2. the answer output, when the stream has ended (inside the running cell in waiting mode, so
   nbval and headless runs record it; at the start as a placeholder, updated later, in background
   mode): ``{OUTPUT_MIME: {"output": "answer"}, widget view with an empty model id, text/html:
   the safe static copy, text/plain}``, metadata ``{OUTPUT_MIME: {"answers": [snapshot, ...]}}``.
   The empty widget reference makes JupyterLab without nbstream's extension hide it next to the
   live widget (the widget renderer hides a view whose model id is empty); nbconvert skips it
   (no such model in the widget state) and shows the HTML. The extension shows it only when the
   live output has nothing to show (a notebook executed headless, then opened).

Run-to-run values (model ids, timings) live in output metadata, which nbval does not compare.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbstream.frontend import static_copy
from nbstream.redact import redact_obj, redact_text
from nbstream.run.stream_run import FINAL

if TYPE_CHECKING:
    from nbstream.run.stream_run import StreamRun

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
OUTPUT_MIME = "application/vnd.nbstream.output+json"

Bundle = tuple[dict[str, Any], dict[str, Any]]  # (data, metadata) of one output


def widget_reference(widget: Any) -> dict[str, Any]:
    """The widget-view payload that makes a frontend render ``widget``.

    Asked of the widget library's own ``_repr_mimebundle_`` (anywidget's or ipywidgets'), not of
    the widget class, whose override may leave the widget out.
    """
    import anywidget
    import ipywidgets

    base = anywidget.AnyWidget if isinstance(widget, anywidget.AnyWidget) else ipywidgets.Widget
    bundle = base._repr_mimebundle_(widget)
    assert bundle is not None  # None only for a widget without a view (not ours)
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    return dict(data[WIDGET_MIME])


def live_output(widget: Any, answers: Sequence[dict[str, str]]) -> Bundle:
    """The live output: the widget, and which answers it shows (``uid`` and ``label`` each; the
    widget adds their snapshots when they end, see the module docstring)."""
    data = {
        OUTPUT_MIME: {"output": "live"},
        WIDGET_MIME: widget_reference(widget),
        "text/plain": "",
    }
    return data, {OUTPUT_MIME: {"answers": [dict(a) for a in answers]}}


def answer_output(widget: Any, answers: Sequence[dict[str, Any]], html: str, plain: str) -> Bundle:
    """The answer output. ``answers``: per answer its ``uid``, ``snapshot``, ``format``,
    ``language`` and ``label`` (a column of ``compare()``); ``html`` is the safe static copy."""
    hidden = {**widget_reference(widget), "model_id": ""}
    data = {
        OUTPUT_MIME: {"output": "answer"},
        WIDGET_MIME: hidden,
        "text/html": html,
        "text/plain": static_copy.plain(plain),
    }
    return data, {OUTPUT_MIME: {"answers": list(answers)}}


def answer_parts(
    run: StreamRun | None, text: str, *, version: int = 0, versions: int = 1
) -> dict[str, Any]:
    """One version of an answer (``run``, its ``text``: a resumed version's is joined) for
    ``static_copy.answer_html`` and :func:`answer_plain`, every text passed through
    :func:`nbstream.redact.redact_text` (a model may repeat a key it was sent)."""
    if run is None:
        return {"status": "pending", "summary": "still streaming when this copy was made"}
    choice = run.state.choices[0] if run.state.choices else None
    status, reason = run.status, redact_text(run.reason or "") or None
    summary = f"{status}: {reason}" if status != "done" and reason else status
    if status not in FINAL:  # a background answer's copy, made while it streams
        summary = "still streaming when this copy was made"
    if versions > 1:
        summary += f" · version {version + 1} of {versions}"
    calls = choice.tool_calls if choice is not None else []
    return {
        "text": redact_text(text),
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


def answer_plain(parts: dict[str, Any]) -> str:
    """The answer as plain text (``text/plain`` of the answer output), from :func:`answer_parts`."""
    lines = [f"Refused: {parts['refusal']}"] if parts.get("refusal") else []
    lines += [parts["text"]] if parts.get("text") else []
    lines += [f"tool call {t['name']}({t['arguments']})" for t in parts.get("tool_calls", [])]
    status = parts.get("status")
    if status not in ("done", None):
        lines.append(f"[{parts['summary']}]")
    return "\n".join(lines)


class CellOutputs:
    """The outputs one widget (a view, or the grid of ``compare()``) wrote into cells, and
    keeping its answer outputs up to date.

    ``answer`` builds the answer output's ``(data, metadata)`` from the widget's current state.
    """

    def __init__(
        self, widget: Any, answers: Sequence[dict[str, str]], answer: Callable[[], Bundle]
    ) -> None:
        self._widget = widget
        self._answers = list(answers)  # uid and label of each answer the widget shows
        self._answer = answer
        self._lock = threading.Lock()
        self._answer_ids: list[str] = []  # display ids of answer outputs to update
        self._cells: set[int | None] = set()  # execution counts of cells that show the widget
        self._followers: list[Callable[[], None]] = []  # e.g. the compare() grid holding a view

    def on_update(self, callback: Callable[[], None]) -> None:
        """Also call ``callback`` when this widget's answers change (a grid of several views)."""
        self._followers.append(callback)

    def show(self, *, waiting: bool) -> None:
        """Display the live output; in background mode also the answer output (a placeholder now,
        updated when the stream ends: the cell will be over by then)."""
        if not _in_ipython():
            return
        data, metadata = live_output(self._widget, self._answers)
        _display(data, metadata)
        self._cells.add(_execution_count())
        if not waiting:
            self._show_answer()

    def shown_in_this_cell(self) -> bool:
        return _in_ipython() and _execution_count() in self._cells

    def finished_in_cell(self) -> None:
        """The stream ended while the cell that shows it still runs (waiting mode): display the
        answer output now, in this cell, where nbval and headless runs record it."""
        if _in_ipython():
            self._show_answer()

    def update(self) -> None:
        """A version ended (any thread, the cell may be long over): bring every answer output up
        to date (JupyterLab applies display updates; the widget itself also saves its snapshot
        into the live output, see the module docstring)."""
        for follower in self._followers:
            follower()
        with self._lock:
            ids = list(self._answer_ids)
        if not ids:
            return
        data, metadata = self._answer()
        for display_id in ids:
            _update_display(data, metadata, display_id)

    def updates_on_end(self) -> int:
        """Messages :meth:`update` sends at a version's end (the kernel's message budget)."""
        with self._lock:
            return len(self._answer_ids)

    def _show_answer(self) -> None:
        data, metadata = self._answer()
        display_id = _display(data, metadata, display_id=True)
        if display_id is not None:
            with self._lock:
                self._answer_ids.append(display_id)


def _display(
    data: dict[str, Any], metadata: dict[str, Any], *, display_id: bool = False
) -> str | None:
    from IPython.display import display

    handle = display(data, metadata=metadata, raw=True, display_id=display_id or None)
    return getattr(handle, "display_id", None)


def _update_display(data: dict[str, Any], metadata: dict[str, Any], display_id: str) -> None:
    try:
        from IPython.display import update_display

        update_display(data, metadata=metadata, raw=True, display_id=display_id)
    except Exception:  # noqa: BLE001 - no kernel / no frontend: nothing to update
        pass


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _execution_count() -> int | None:
    """The running cell's execution count (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None

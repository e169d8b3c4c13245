"""How a waiting-mode stream appears in a cell's output: a live widget, then a static answer.

Three readers see a cell's output and want different things:

- JupyterLab with a live kernel wants the widget (streaming text, Stop, metrics, log) and nothing
  else: a second copy of the answer below it is noise.
- GitHub, nbviewer and nbconvert have no widget state; they want the final answer as Markdown.
- nbval compares what the kernel sends while the cell runs against the stored outputs, and
  ignores ``update_display_data``: an output updated in place would differ from the stored one.

So a waiting-mode cell emits two outputs, each written once: the live widget (with an empty
text fallback, so stored notebooks do not say "waiting") and, when the stream has ended, the
final answer as ``text/markdown`` + ``text/plain`` paired with an *empty* widget reference
(``model_id: ""``). Jupyter's widget renderer hides a view whose model id is empty, so in
JupyterLab only the widget shows; renderers without widget state fall back to the Markdown.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

T = TypeVar("T")


def _display(bundle: dict[str, Any]) -> None:
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:  # a script: nothing to show
        return
    display(bundle, raw=True)


def widget_reference(widget: Any) -> dict[str, Any]:
    """The widget-view payload that makes a frontend render ``widget``.

    Asked of the widget library's own ``_repr_mimebundle_`` (anywidget's or ipywidgets'), not of
    the widget class, whose override may leave the widget out (e.g. when it was shown already).
    """
    import anywidget
    import ipywidgets

    base = anywidget.AnyWidget if isinstance(widget, anywidget.AnyWidget) else ipywidgets.Widget
    bundle = base._repr_mimebundle_(widget)
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    return dict(data[WIDGET_MIME])


def show_live(widget: Any) -> None:
    """Display ``widget`` with an empty text fallback (nothing stale is stored for GitHub)."""
    _display({WIDGET_MIME: widget_reference(widget), "text/plain": ""})


def show_final(markdown: str, plain: str, like: Any) -> None:
    """Display the final answer for readers without widget state; hidden next to a live widget.

    ``like`` is the live widget, whose payload gives the widget protocol version to use.
    """
    hidden = {**widget_reference(like), "model_id": ""}
    _display({WIDGET_MIME: hidden, "text/markdown": markdown, "text/plain": plain})


def answer_markdown(text: str, format: str = "markdown", language: str = "") -> str:  # noqa: A002
    """The answer as Markdown the way the widget renders it: as is, a code block, or plain text."""
    if format == "code":
        fence = "````" if "```" in text else "```"
        return f"{fence}{language}\n{text}\n{fence}"
    if format == "text":
        return "\n".join("    " + line for line in text.splitlines()) or "    "
    return text


def ending_note(status: str, reason: str | None) -> str:
    """A short note for answers that did not simply finish ('' when done)."""
    if status == "done":
        return ""
    return f"[{status}: {reason}]" if reason else f"[{status}]"


def view_final(view: Any) -> tuple[str, str]:
    """``(markdown, plain)`` for a finished :class:`~nbstream.widget.StreamView`."""
    text = view.text
    note = ending_note(view.status, view.reason)
    markdown = answer_markdown(text, view.format, getattr(view, "language", ""))
    plain = text
    choices = getattr(view, "choices", None)
    if choices:  # a refusal or tool calls are the answer too (not an empty one)
        from nbstream.widget import rich_markdown

        c = choices[0]
        markdown = rich_markdown(c, markdown)
        lines = [f"Refused: {c.refusal}"] if c.refusal else []
        lines += [text] if text else []
        lines += [f"tool call {t.name}({t.arguments})" for t in c.tool_calls]
        plain = text = "\n".join(lines)
    if note:
        markdown = f"{markdown}\n\n*{note}*" if text else f"*{note}*"
        plain = f"{text}\n{note}" if text else note
    return markdown, plain


def start_detached(start: Callable[[], T]) -> T:
    """Call ``start`` on a helper thread that has no running event loop, and return its result.

    Why: ``nbstream.stream(..., background=True)`` called from a notebook cell schedules the
    stream as a task on the kernel's event loop, which a cell that waits would block. Called from
    a thread without a loop, the stream runs on its own thread instead, so the cell can display
    the widget first and then wait for the end, with the interrupt button acting as Stop.
    """
    result: list[T] = []
    error: list[BaseException] = []
    context = contextvars.copy_context()  # the cell's context: outputs and comms stay with it

    def target() -> None:
        try:
            result.append(context.run(start))
        except BaseException as exc:  # re-raised on the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="nbstream-start", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:  # the interrupt button while starting: start, then stop at once
        thread.join()
        if result and hasattr(result[0], "stop"):
            result[0].stop("interrupted (kernel interrupt)")
    if error:
        raise error[0]
    return result[0]

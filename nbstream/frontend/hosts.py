"""Which frontend runs this code, and what it allows while a cell waits for a stream.

nbstream is an anywidget, shown by any frontend that renders anywidgets. They differ in what a
cell that waits for the end of a stream (``stream()``'s default, waiting mode) can show:

- JupyterLab, Notebook 7, VS Code, Colab (an IPython kernel): the widget is displayed first and
  its messages reach the page while the cell runs: it streams live.
- marimo (no IPython shell: ``get_ipython()`` is None): nbstream displays the view through
  marimo's own output API (``mo.output.append``); marimo sends the widget's messages while the
  cell runs, and hands the page's messages (Stop) to the widget on another thread, so the Stop
  button works while the cell waits.
- Voila: the page is sent only when every cell has run, so nothing a waiting cell shows can be
  seen before the stream is over; ``stream()`` runs in background mode there instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

Frontend = Literal["marimo", "voila", "ipython", ""]

# set by Voila in the environment of the kernels it starts (voila.utils.ENV_VARIABLE)
_VOILA_ENV = ("VOILA_REQUEST_URL", "VOILA_BASE_URL", "VOILA_SERVER_URL", "VOILA_KERNEL_ID")


def frontend() -> Frontend:
    """``marimo`` inside a running marimo notebook, ``voila`` in a kernel Voila started,
    ``ipython`` in any other IPython shell, ``""`` in a plain script."""
    if _in_marimo():
        return "marimo"
    if not _in_ipython():
        return ""
    if any(os.environ.get(name) for name in _VOILA_ENV):
        return "voila"
    return "ipython"


def waits_live(kind: Frontend) -> bool:
    """Whether a cell that waits for a stream can show it live in this frontend."""
    return kind != "voila"


def display_marimo(widget: Any) -> None:
    """Show ``widget`` below the running marimo cell's output (marimo's formatter renders the
    anywidget; the cell's last expression, when it is the view, replaces it with one copy)."""
    import marimo

    marimo.output.append(widget)


def _in_marimo() -> bool:
    if "marimo" not in sys.modules:  # never import marimo just to find out
        return False
    try:
        import marimo

        return bool(marimo.running_in_notebook())
    except Exception:  # noqa: BLE001 - another marimo version: not a marimo notebook for us
        return False


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None

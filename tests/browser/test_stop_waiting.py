"""Stop in the default waiting mode, as a person uses it, in real JupyterLab and Notebook 7.

``nbstream.chat(...)`` with no key streams from the bundled local server and the cell holds the
kernel until the answer ends, so a click cannot reach the kernel as a comm message. The widget
asks the notebook's extension for the kernel's interrupt instead (the same request as ■), and
nbstream turns that KeyboardInterrupt into a clean Stop. Checked: the status becomes ``stopped``,
the partial text stays, no traceback, the cell ends, Run All goes on with the next cell, and a
Stop that comes too late (the stream ended, another cell runs) interrupts nothing.
"""

from __future__ import annotations

import re

import pytest
from browser_page import NotebookPage, StreamWidget, wait_until

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

# ~150 s at 20 chunks/s if nobody stops it: the test fails on its timeouts, not by luck
SLOW = 'view = nbstream.chat("Explain streaming", model="demo?rate=20&tokens=3000")'
SLOW_TEXT = "".join(demo_tokens(3000))
APPS = ["lab", "notebook7"]


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert not re.search(r"^KeyboardInterrupt", output, re.MULTILINE), output


def _run_all(nb: NotebookPage) -> None:
    """Run > Run All Cells from the menu bar (JupyterLab and Notebook 7 alike)."""
    nb.cells.first.click()
    nb.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    nb.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()


def _stop_in_waiting_mode(nb: NotebookPage, cell: int) -> tuple[StreamWidget, str]:
    """Let some text stream in cell ``cell`` (waiting mode), click Stop, return the widget and
    the partial answer it keeps."""
    widget = StreamWidget(nb, cell).wait_rendered()
    widget.watch_answer(lambda text: len(text) > 40, timeout=60)
    assert widget.root.get_attribute("data-mode") == "blocking"
    assert nb.prompt(cell) == "[*]:"  # the cell holds the kernel
    widget.click("stop")
    widget.wait_status("stopped", timeout=10)
    partial = widget.copied_text()
    assert 40 < len(partial) < len(SLOW_TEXT) // 2 and SLOW_TEXT.startswith(partial)
    return widget, partial


@pytest.mark.parametrize("app", APPS)
def test_stop_button_stops_a_waiting_cell(open_notebook, app):
    nb = open_notebook(
        ["import nbstream", SLOW, "print('after:', view.status, len(view.text), view.reason)"],
        app=app,
    )
    nb.run_cell(0)
    nb.run_cell(1, wait=False)
    widget, partial = _stop_in_waiting_mode(nb, 1)
    nb.wait_cell_done(1, timeout=10)  # the cell ends: the kernel is free again
    _no_traceback(nb.output_text(1))
    assert widget.answer_text().strip()  # the partial answer stays on screen
    nb.run_cell(2)
    assert f"after: stopped {len(partial)} stopped (kernel interrupt)" in nb.output_text(2)


@pytest.mark.parametrize("app", APPS)
def test_run_all_goes_on_after_a_stop(open_notebook, app):
    nb = open_notebook(["import nbstream\n" + SLOW, 'print("next ran", view.status)'], app=app)
    _run_all(nb)
    _stop_in_waiting_mode(nb, 0)
    nb.wait_cell_done(0, timeout=10)
    nb.wait_cell_done(1, timeout=30)
    _no_traceback(nb.output_text(0))
    assert "next ran stopped" in nb.output_text(1)


def test_a_late_stop_interrupts_nothing(open_notebook):
    """Run All of [a short stream, a cell that sleeps]: while the second cell runs, the first
    widget's Stop reaches the page as it would in the race (the click landed as the stream
    ended, before the page heard of the end): the sleeping cell must not be interrupted."""
    nb = open_notebook(
        [
            'import nbstream\nview = nbstream.chat("Hi", model="demo?rate=200&tokens=20")',
            'import time\ntime.sleep(4)\nprint("slept")',
        ]
    )
    _run_all(nb)
    widget = StreamWidget(nb, 0).wait_rendered()
    widget.wait_status("done", timeout=30)
    # (JupyterLab shows [*] on every queued cell: the second one runs once the first has its number)
    nb.wait_cell_done(0, timeout=30)
    wait_until(lambda: nb.prompt(1) == "[*]:", 10, 0.02, "the second cell to run")
    # what a click on a view that still believes its cell holds the kernel sends: the button
    # itself (hidden by now, clicked through the DOM) and the event the view dispatches
    widget.part("stop").evaluate("(b) => b.click()")
    widget.root.evaluate(
        """(root) => root.dispatchEvent(new CustomEvent("nbstream:interrupt",
            {bubbles: true, detail: {uid: "", handled: false}}))"""
    )
    nb.wait_cell_done(1, timeout=20)
    output = nb.output_text(1)
    _no_traceback(output)
    assert "slept" in output
    assert widget.status() == "done"

"""%%stream in real JupyterLab: the live widget streams, the static copy of the answer (kept for
GitHub and nbval) stays hidden next to it, and side-by-side columns all stream to the end."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext nbstream",
    "%%stream -m demo?tokens=60&rate=40\nWhy stream?",
    "%%stream -m demo?tokens=30&rate=30 -m echo?rate=30 -n 2\nSide by side",
]


def test_waiting_cell_shows_one_live_answer_and_hides_the_static_copy(open_notebook) -> None:
    nb = open_notebook(CELLS)
    nb.run_cell(0)
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered(timeout=60)
    seen = widget.watch_answer(lambda _: widget.status() == "done", timeout=60)
    assert len([text for text in seen if text]) >= 3, seen  # it grew while we watched
    nb.wait_cell_done(1)
    expected = "".join(demo_tokens(60))
    assert widget.copied_text() == expected
    output = nb.output_text(1)
    # the static copy (text/markdown) is in the output but hidden: the heading shows once
    assert output.count("Streaming in notebooks") == 1, output
    assert nb.cell(1).locator(".nbstream-root").count() == 1
    nb.screenshot("magic-waiting-done", nb.cell(1))


def test_side_by_side_columns_each_stream_to_the_end(open_notebook) -> None:
    nb = open_notebook(CELLS)
    nb.run_cell(0)
    nb.run_cell(2, wait=False)
    roots = nb.cell(2).locator(".nbstream-root")
    nb.watch_text(nb.cell(2), lambda _: roots.count() == 4, timeout=60)
    # all four columns stream at once: more than one is streaming at some moment
    streaming = nb.watch_text(
        nb.cell(2),
        lambda _: (
            sum((roots.nth(i).get_attribute("data-status") or "") == "streaming" for i in range(4))
            >= 2
        ),
        timeout=30,
    )
    assert streaming
    nb.wait_cell_done(2, timeout=90)
    statuses = [roots.nth(i).get_attribute("data-status") for i in range(4)]
    assert statuses == ["done"] * 4, statuses
    output = nb.output_text(2)
    for label in ("demo?tokens=30&rate=30 #1", "demo?tokens=30&rate=30 #2", "echo?rate=30 #2"):
        assert label in output
    assert output.count("Side by side") == 2  # the echo columns; the static copy stays hidden
    nb.screenshot("magic-side-by-side", nb.cell(2))


def test_each_background_column_has_its_own_stop(open_notebook) -> None:
    cell = "%%stream -b -m demo?tokens=80&rate=15 -m demo?tokens=30&rate=15\nGo"
    nb = open_notebook(["%load_ext nbstream", cell])
    nb.run_cell(0)
    nb.run_cell(1)  # background: the cell returns at once
    roots = nb.cell(1).locator(".nbstream-root")
    nb.watch_text(nb.cell(1), lambda _: roots.count() == 2, timeout=60)
    first = roots.nth(0)
    nb.watch_text(first.locator("[data-testid=answer]"), lambda text: len(text) > 20, timeout=30)
    first.locator("[data-testid=stop]").click()
    nb.watch_text(nb.cell(1), lambda _: first.get_attribute("data-status") == "stopped", timeout=10)
    second = roots.nth(1)
    nb.watch_text(nb.cell(1), lambda _: second.get_attribute("data-status") == "done", timeout=30)
    assert first.get_attribute("data-status") == "stopped"  # stopping one left the other alone
    stopped_widget = StreamWidget(nb, 1)  # the first .nbstream-root of the cell
    partial = stopped_widget.copied_text()
    full = "".join(demo_tokens(80))
    assert partial and full.startswith(partial) and partial != full
    nb.screenshot("magic-side-by-side-one-stopped", nb.cell(1))

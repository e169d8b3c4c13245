"""The quickstart notebook (notebooks/01-quickstart.ipynb) run cell by cell in real JupyterLab,
as a reader would: the answer streams in live, the Stop button stops the background stream (the
kernel's bundled local server sees the connection closed), and no cell fails except the one that
shows a usage error on purpose."""

from __future__ import annotations

import nbformat
import pytest
from browser_page import REPO_ROOT, StreamWidget

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

QUICKSTART = REPO_ROOT / "notebooks" / "01-quickstart.ipynb"
DEMO_TEXT = "".join(demo_tokens())

# Appended to the copy: what the kernel's own local server saw for the background stream.
SERVER_CHECK = """
from nbstream.server import start_background
slow_requests = [r for r in start_background().requests if "Take your time." in str(r.body)]
print(len(slow_requests), slow_requests[-1].end_reason, slow_requests[-1].disconnected)
"""


def _index(cells: list, predicate) -> int:
    matches = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and predicate(cell)]
    assert len(matches) == 1, f"the quickstart changed: {len(matches)} matching cells"
    return matches[0]


def test_quickstart_streams_live_and_stop_works_in_jupyterlab(open_notebook, tmp_path):
    notebook = nbformat.read(QUICKSTART, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(SERVER_CHECK.strip()))
    for cell in notebook.cells:  # as after "Clear All Outputs": each run's prompt is then new
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    copy = tmp_path / "quickstart.ipynb"
    nbformat.write(notebook, copy)
    cells = notebook.cells
    first_stream = _index(cells, lambda c: c.source.startswith("%%stream\n"))
    background = _index(cells, lambda c: "--background --view slow" in c.source)
    missing_name = _index(cells, lambda c: "{country}" in c.source)
    check = len(cells) - 1

    nb = open_notebook(copy)
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if index == first_stream:  # waiting mode: the cell runs until the answer is complete
            nb.run_cell(index, wait=False)
            widget = StreamWidget(nb, index).wait_rendered(timeout=60)
            done = widget.status
            seen = widget.watch_answer(lambda _, done=done: done() == "done", timeout=60)
            assert len([text for text in seen if text]) >= 5, seen
            nb.wait_cell_done(index)
            assert widget.copied_text() == DEMO_TEXT
            # the no-key notice is a note in the widget, not a red stderr box
            assert "bundled local demo server" in widget.part("notes").inner_text()
            stderr = nb.cell(index).locator("[data-mime-type='application/vnd.jupyter.stderr']")
            assert stderr.count() == 0, stderr.all_inner_texts()
        elif index == background:  # returns at once; the Stop button stops it
            nb.run_cell(index)
            widget = StreamWidget(nb, index).wait_rendered()
            widget.watch_answer(lambda text: len(text) > 40, timeout=30)
            widget.click("stop")
            widget.wait_status("stopped", timeout=10)
            partial = widget.copied_text()
            assert partial and DEMO_TEXT.startswith(partial) and partial != DEMO_TEXT
            nb.screenshot("quickstart-stopped", nb.cell(index))
        else:
            nb.run_cell(index, timeout=90)

    assert "Nothing was sent" in nb.output_text(missing_name)
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and index != missing_name:
            assert "Traceback" not in nb.output_text(index), (index, cell.source)
            assert "Error" not in nb.output_text(index), (index, nb.output_text(index))
    # The background cell's request: the kernel's server saw its client hang up.
    assert nb.output_text(check).split() == ["1", "client_disconnected", "True"]

"""The browser harness itself: the kernel JupyterLab starts is this venv's Python with nbstream
importable, and a kernel-side widget update reaches the page (an anywidget defined in the cell,
so this proves the harness independently of nbstream's widget)."""

from __future__ import annotations

import sys

import pytest

PROBE_WIDGET = '''
import anywidget, traitlets

class Probe(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        el.className = "probe";
        const show = () => { el.textContent = model.get("text"); };
        show();
        model.on("change:text", show);
      },
    };
    """
    text = traitlets.Unicode("").tag(sync=True)

probe = Probe(text="ready")
probe
'''

PROBE_COUNT = """
import time
for i in range(1, 6):
    probe.text = f"count {i}"
    time.sleep(0.2)
"""


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_kernel_is_this_venv_and_widget_updates_reach_the_page(open_notebook, app):
    nb = open_notebook(
        ["import sys, nbstream; print(sys.executable)", PROBE_WIDGET, PROBE_COUNT], app=app
    )
    nb.run_cells([0, 1])
    assert nb.output_text(0).strip() == sys.executable

    probe = nb.widget(1, ".probe")
    assert probe.inner_text() == "ready"
    nb.run_cell(2, wait=False)
    seen = nb.watch_text(probe, lambda text: text == "count 5", timeout=20)
    nb.wait_cell_done(2)
    counts = [text for text in seen if text.startswith("count ")]
    # Updates arrive live, one by one, not all at the end of the cell.
    assert len(counts) >= 3, seen
    assert counts == sorted(counts), seen
    nb.screenshot(f"harness-{app}")

"""The end of a background stream in real JupyterLab is one message: the final frame carries
the mode the view ends in (the widget sets it locally). The page must end in the same state as
the kernel (status, mode, buttons, text), several views ending together included, and Regenerate
must still announce and stream a new version."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget, wait_until
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

TEXT = "".join(demo_tokens(120))


def nth_widget(nb, cell: int, i: int) -> StreamWidget:
    """The ``i``-th view displayed by one cell."""
    widget = StreamWidget(nb, cell)
    widget.root = nb.cell(cell).locator(".nbstream-root").nth(i)
    return widget


def test_background_views_end_in_the_kernels_state_and_regenerate(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "views = [nbstream.stream(ask(tokens=120, tokens_per_s=200), background=True) "
            "for _ in range(3)]",
            "import asyncio\n"
            "while any(v.mode != 'idle' for v in views): await asyncio.sleep(0.05)\n"
            "print([(v.status, v.mode, len(v.text)) for v in views])",
            "views[0].regenerate(); print('regenerating')",
        ]
    )
    nb.run_cells([0, 1])
    widgets = [nth_widget(nb, 1, i).wait_rendered() for i in range(3)]
    for w in widgets:
        w.wait_status("done", timeout=30)
        # the final frame's mode reached the model: data-mode is the kernel's "idle"
        wait_until(lambda w=w: w.root.get_attribute("data-mode") == "idle", 10, 0.05, "idle")
        assert w.part("stop").is_hidden()
        assert w.part("regenerate").is_visible() and w.part("regenerate").is_enabled()
        assert w.copied_text() == TEXT
        assert w.part("status").inner_text().strip()  # the status line with its timings
    nb.run_cell(2, timeout=60)
    assert nb.output_text(2).strip() == str([("done", "idle", len(TEXT))] * 3)

    nb.run_cell(3)
    first = widgets[0]
    wait_until(lambda: first.part("version-pager").is_visible(), 20, 0.05, "a second version")
    first.wait_status("done", timeout=30)
    wait_until(lambda: first.root.get_attribute("data-mode") == "idle", 10, 0.05, "idle again")
    assert first.part("version-label").inner_text() == "2/2"
    assert first.copied_text() == TEXT
    nb.screenshot("background-ends", nb.cell(1))

"""Issue 12 §5: the kernel restarts while answers stream, in JupyterLab and Notebook 7.

A person restarts the kernel from the notebook's toolbar (and confirms the dialog) while one answer
streams in the background and another holds its cell (waiting mode), under an older answer that
already ended. Every widget must then say the kernel restarted, keep its text, end its
"streaming" status, and drop the buttons that need the kernel (Stop, Regenerate, Continue): a
click on them would go nowhere.
"""

from __future__ import annotations

import pytest
from browser_page import NotebookPage, StreamWidget, wait_until
from streams import setup_cell

pytestmark = pytest.mark.browser

LONG = "tokens=3000, tokens_per_s=30"  # ~100 s: still streaming when the kernel restarts


def restart_kernel(nb: NotebookPage) -> None:
    """The toolbar's restart button, then "Restart" in the confirmation dialog."""
    nb.page.locator(
        ".jp-NotebookPanel-toolbar [data-command='notebook:restart-kernel']"
    ).first.click()
    dialog = nb.page.locator(".jp-Dialog")
    dialog.wait_for()
    dialog.locator("button.jp-mod-accept").click()


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_restart_mid_stream_says_so_keeps_text_and_drops_buttons(open_notebook, llm, app):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "old = nbstream.stream(ask(tokens=40, tokens_per_s=400), background=True)",
            # a thread (sync client): it goes on while the next cell holds the kernel
            f"bg = nbstream.stream(ask({LONG}, client=sync_client), background=True)",
            f"nbstream.stream(ask({LONG}))",  # waiting mode: the cell holds the kernel
        ],
        app=app,
    )
    nb.run_cells([0, 1])
    old = StreamWidget(nb, 1).wait_rendered()
    old.wait_status("done")
    assert old.part("regenerate").is_visible()  # before: a finished answer can be asked again
    nb.run_cell(2)
    nb.run_cell(3, wait=False)
    background, waiting = StreamWidget(nb, 2).wait_rendered(), StreamWidget(nb, 3).wait_rendered()
    for widget in (background, waiting):
        widget.watch_answer(lambda text: len(text) > 40, timeout=30)
        assert widget.status() == "streaming" and widget.part("stop").is_visible()

    restart_kernel(nb)

    for widget in (background, waiting, old):
        wait_until(
            lambda w=widget: w.root.get_attribute("data-kernel") == "gone",
            15,
            0.05,
            f"the widget to hear of the restart (status line {widget.status_line()!r})",
        )
    kept = {}
    for widget in (background, waiting):
        kept[widget] = widget.answer_text()
        assert len(kept[widget]) > 40  # the partial text stays on screen
        banner = widget.part("error")
        assert banner.is_visible()
        assert "kernel restarted" in banner.inner_text().lower()
        assert "streaming" not in widget.status_line()
        assert widget.status() != "streaming"
        for button in ("stop", "regenerate", "resume"):
            assert widget.part(button).is_hidden(), button
    assert "kernel restarted" in old.part("error").inner_text().lower()
    assert old.part("regenerate").is_hidden()
    assert old.status() == "done"  # it had ended: still done, only the kernel is gone
    nb.screenshot(f"kernel-restart-{app}", nb.page.locator(".jp-Notebook"))

    # the new kernel works, and the widgets keep saying the old one is gone
    nb.wait_kernel_idle()
    assert background.root.get_attribute("data-kernel") == "gone"
    for widget in (background, waiting):
        assert widget.answer_text() == kept[widget]  # no more text: its stream died with the kernel

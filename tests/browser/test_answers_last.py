"""Answers that last: a saved notebook shows its answers when it is reopened tomorrow.

The journey, in real JupyterLab and Notebook 7 with default settings (no saved widget state):
run ``nbstream.chat(...)`` the way the README says (no key: the bundled local server), save,
shut the kernel down, open the notebook again. Every answer is there, rendered (headings, code,
math, the status line), never "Error displaying widget: model not found"; running the cell again
brings the live widget back, with one copy of the answer on screen.
"""

from __future__ import annotations

import json

import pytest
from browser_page import StreamWidget, wait_until

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

DEMO_TEXT = "".join(demo_tokens())
OUTPUT_MIME = "application/vnd.nbstream.output+json"
CELLS = [
    'import nbstream\nview = nbstream.chat("Explain streaming in notebooks")\nview.regenerate()'
]


def _visible_roots(nb, cell: int):
    roots = nb.cell(cell).locator(".nbstream-root")
    return [roots.nth(i) for i in range(roots.count()) if roots.nth(i).is_visible()]


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_a_saved_answer_is_there_after_the_kernel_is_gone(open_notebook, app, page_events):
    nb = open_notebook(CELLS, app=app)
    nb.run_cell(0, timeout=120)
    live = StreamWidget(nb, 0).wait_rendered()
    live.wait_status("done", timeout=60)
    wait_until(lambda: live.part("version-label").inner_text() == "2/2", 30, 0.1, "version 2")
    assert [r.get_attribute("data-mode") for r in _visible_roots(nb, 0)] == ["idle"]

    nb.save()
    saved = json.loads((nb.server.root_dir / nb.name).read_text())
    outputs = saved["cells"][0]["outputs"]
    live_output = next(
        o for o in outputs if o.get("data", {}).get(OUTPUT_MIME, {}).get("output") == "live"
    )
    # the widget stored both versions with the notebook (output metadata), no widget state
    stored = live_output["metadata"][OUTPUT_MIME]["answers"][0]["snapshot"]["versions"]
    assert [v["status"] for v in stored] == ["done", "done"]
    assert "widgets" not in saved["metadata"]

    nb.server.shutdown_kernels()
    nb.page.reload()
    nb.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # a fresh kernel has no models: the stored answer, rendered read-only, never an error
    answer = nb.cell(0).locator("[data-testid=saved-answer] [data-testid=answer]").first
    answer.wait_for(timeout=30_000)
    wait_until(lambda: answer.get_attribute("data-rendered") == "complete", 30, 0.1, "render")
    assert "model not found" not in nb.output_text(0)
    assert "Error displaying widget" not in nb.page.content()
    # (text_content: the DOM's text; innerText is empty for a group the browser has not laid out,
    # content-visibility: auto, which a CI run read as '' once)
    heading = answer.locator("h1").first
    wait_until(lambda: heading.text_content() == "Streaming in notebooks", 10, 0.1, "the heading")
    assert answer.locator("pre code").count() >= 1 and answer.locator(".katex").count() >= 1
    root = nb.cell(0).locator("[data-testid=saved-answer] .nbstream-root").first
    assert root.get_attribute("data-status") == "done"
    assert root.locator("[data-testid=version-label]").inner_text() == "2/2"
    assert root.locator("[data-testid=stop]").is_hidden()
    assert "done" in root.locator("[data-testid=status]").inner_text()
    assert len(_visible_roots(nb, 0)) == 1  # one copy: the answer output stays hidden
    nb.screenshot(f"reopened-{app}", nb.cell(0))

    # running the cell again brings the live widget back, one copy on screen
    nb.wait_kernel_idle()
    nb.run_cell(0, timeout=120)
    live = StreamWidget(nb, 0).wait_rendered()
    wait_until(lambda: live.root.get_attribute("data-mode") == "idle", 60, 0.1, "live idle")
    wait_until(lambda: len(_visible_roots(nb, 0)) == 1, 10, 0.1, "one copy of the answer")
    assert live.copied_text() == DEMO_TEXT
    # Notebook 7.6 itself throws "reading 'schema'" while loading settings (without nbstream too)
    assert [e for e in page_events.page_errors if "reading 'schema'" not in e] == []

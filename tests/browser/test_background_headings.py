"""Issue 12 §6: background answers started in a loop stack in one output; each carries a heading
(its prompt's first line) so they can be told apart. A waiting answer, under its own cell, has
none."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget
from streams import setup_cell

pytestmark = pytest.mark.browser

PROMPTS = ["Explain SSE\nin two lines", "What is a token?", "Why stream answers?"]


def test_stacked_background_answers_have_a_heading_each(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            f"for q in {PROMPTS!r}:\n"
            "    nbstream.stream(ask(q, tokens=20, tokens_per_s=200), background=True)",
            "nbstream.stream(ask('A waiting one', tokens=10, tokens_per_s=400))",
        ]
    )
    nb.run_cells([0, 1, 2])
    roots = nb.cell(1).locator(".nbstream-root[data-kernel='live']")
    roots.nth(len(PROMPTS) - 1).wait_for()
    assert roots.count() == len(PROMPTS)
    for i in range(len(PROMPTS)):
        widget = StreamWidget(nb, 1)
        widget.root = roots.nth(i)
        widget.wait_status("done")
    headings = roots.locator("[data-testid=heading]").all_inner_texts()
    assert headings == [p.splitlines()[0] for p in PROMPTS], headings
    nb.screenshot("background-headings", nb.cell(1))
    waiting = StreamWidget(nb, 2).wait_rendered()
    waiting.wait_status("done")
    assert waiting.part("heading").is_hidden()

"""The resilience layer as a user sees it in real JupyterLab: "retrying in ..." in the status line,
the notes line (flags, rate limit), a hook's stop reason, and Continue after a dropped connection
giving back the whole answer. The faults come from nbstream's local server over real HTTP."""

from __future__ import annotations

import pytest
from browser_page import StreamWidget, wait_until
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

DEMO_TEXT = "".join(demo_tokens())


def test_retry_progress_then_no_rate_limit_note_far_from_it(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "view = nbstream.stream(ask(fail=503, fail_times=2, retry_after=1.5, tokens=40, "
            "key='browser-retry'), background=True)",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    line = wait_until(
        lambda: widget.status_line() if "retrying in" in widget.status_line() else None,
        20,
        0.05,
        "the status line to say it is retrying",
    )
    assert "HTTP 503, retrying in 1.5 s (attempt " in line, line
    nb.screenshot("resilience-retrying", nb.cell(1))
    widget.wait_status("done", timeout=30)
    # far from the server's rate limit (10,000 requests a minute): no rate-limit line on the
    # answer (it shows only near the limit, tests/test_ratelimit.py)
    notes = widget.part("notes").inner_text() if widget.part("notes").is_visible() else ""
    assert "rate limit" not in notes, notes
    nb.screenshot("resilience-done", nb.cell(1))
    assert [r.status for r in llm.wait_idle()] == [503, 503, 200]


def test_hook_flag_and_stop_are_shown(open_notebook, llm, page):
    page.set_viewport_size({"width": 1100, "height": 1500})  # the notes line in the screenshot
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "from nbstream.resilience.hooks import KeywordHook\n"
            "from nbstream.resilience.layer import Resilience\n"
            "hooks = [KeywordHook(keywords=['perceived']),\n"
            "         KeywordHook(keywords=['table'], action='stop', name='no-tables')]\n"
            "view = nbstream.stream(ask(delay=0.01), background=True,\n"
            "                       resilience=Resilience(hooks=hooks))",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("stopped", timeout=30)
    assert widget.part("error").inner_text() == "stopped by no-tables: matched 'table'"
    notes = widget.part("notes").inner_text()
    assert "flagged by keyword: matched 'perceived'" in notes, notes
    assert "stopped by no-tables: matched 'table'" in notes, notes
    assert widget.answer_text().rstrip().endswith("A table")
    assert widget.part("resume").is_hidden()  # no Continue after a hook's stop
    assert widget.part("regenerate").is_visible()
    nb.screenshot("resilience-hook-stop", nb.cell(1))
    assert llm.wait_idle()[-1].disconnected  # the stop closed the HTTP stream


def test_continue_after_a_drop_gives_the_whole_answer(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "view = nbstream.stream(ask(disconnect_after=30, fail_times=1, key='browser-resume'), "
            "background=True)",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("incomplete", timeout=30)
    assert "Connection error." in widget.part("error").inner_text()
    nb.screenshot("resilience-incomplete", nb.cell(1))
    widget.click("resume")
    widget.wait_status("done", timeout=30)
    assert widget.copied_text() == DEMO_TEXT  # nothing lost, nothing repeated
    nb.screenshot("resilience-resumed", nb.cell(1))

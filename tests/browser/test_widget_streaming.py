"""StreamView in real JupyterLab: live growth, exact final text, a 10,000-token stream, the chunk
log panel, Regenerate. The answer comes from nbstream's local server over real HTTP; what the
widget holds is read back through its Copy button (the clipboard), not from Python."""

from __future__ import annotations

import re

import pytest
from browser_page import StreamWidget, wait_until
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

DEMO_TEXT = "".join(demo_tokens())


def test_text_grows_live_and_final_text_is_what_the_server_sent(
    open_notebook, llm, page, page_events
):
    page.set_viewport_size({"width": 1100, "height": 2200})  # the whole answer fits: screenshots
    nb = open_notebook(
        [setup_cell(llm.base_url), "view = nbstream.stream(ask(tokens_per_s=40), background=True)"]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()

    # Mid-stream: the code block and inline math are rendered, the answer is not finished.
    seen = widget.watch_answer(
        lambda _: widget.answer.locator(".katex").count() > 0 or widget.status() == "done",
        timeout=30,
    )
    assert widget.status() == "streaming", "the stream ended before math was rendered"
    assert widget.answer.locator("pre code").count() >= 1
    nb.screenshot("streaming-midway", nb.cell(1))

    seen += widget.watch_answer(lambda _: widget.status() == "done", timeout=30)
    lengths = [len(text) for text in seen if text]
    assert len(lengths) >= 10, f"only {len(lengths)} distinct observations: {lengths}"
    assert lengths[0] < lengths[-1] / 4, lengths  # first seen early, not all at once
    assert widget.answer.locator(".katex-display").count() == 1
    assert widget.answer.locator("table").count() == 1
    nb.screenshot("streaming-done", nb.cell(1))

    assert widget.copied_text() == DEMO_TEXT
    record = llm.wait_idle()[-1]
    assert record.end_reason == "complete"
    assert record.chunks_sent >= len(demo_tokens())
    assert "done" in widget.status_line()
    assert page_events.page_errors == []  # no uncaught exception in the page


def test_ten_thousand_tokens_at_full_speed_arrive_complete(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "view = nbstream.stream(ask(tokens=10_000), background=True)",
            "print(view.status, len(view.text), view.run.metrics.chunks)",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("done", timeout=90)

    expected = "".join(demo_tokens(10_000))
    assert widget.copied_text() == expected
    # ... and what is on screen ends with the last words sent.
    assert widget.answer_text().split()[-30:] == expected.split()[-30:]
    record = llm.wait_idle()[-1]
    assert record.end_reason == "complete" and not record.disconnected
    nb.run_cell(2)
    status, chars, chunks = nb.output_text(2).split()
    assert (status, int(chars)) == ("done", len(expected))
    assert int(chunks) == record.chunks_sent


def test_log_panel_lists_every_chunk(open_notebook, llm):
    nb = open_notebook(
        [setup_cell(llm.base_url), "view = nbstream.stream(ask(tokens=450), background=True)"]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("done")
    record = llm.wait_idle()[-1]

    assert widget.part("log-panel").is_hidden()  # collapsed by default
    widget.click("log-toggle")
    rows = widget.root.locator("[data-testid=log-row]")
    more = widget.part("log-more")
    wait_until(lambda: rows.count() > 0, 10, what="the first page of log rows")
    while more.is_visible():  # rows come in pages; fetch them all
        before = rows.count()
        more.click()
        wait_until(lambda before=before: rows.count() > before, 10, what="more log rows")

    indices = [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.index)")]
    assert indices == list(range(record.chunks_sent))
    deltas = rows.evaluate_all(
        "rs => rs.map(r => r.querySelector('.nbstream-log-delta').textContent)"
    )
    assert "".join(deltas) == "".join(demo_tokens(450))
    assert record.request_id in widget.part("log-requests").inner_text()

    rows.nth(1).locator("button", has_text="raw").click()
    raw = widget.part("log-raw")
    raw.wait_for()
    assert '"chat.completion.chunk"' in raw.inner_text()
    # readable: pretty-printed, across the panel (it was an ~86 px column), hidden on a 2nd click
    assert '\n    "object": "chat.completion.chunk",\n' in raw.inner_text()
    panel_width = widget.part("log-panel").bounding_box()["width"]
    assert raw.bounding_box()["width"] > panel_width * 0.8
    rows.nth(1).locator("button", has_text="raw").click()
    raw.wait_for(state="hidden")

    # the timeline has a time axis and says which chunk the pointer is on
    timeline = widget.part("log-timeline")
    axis = widget.part("log-timeline-axis").inner_text()
    assert axis.startswith("0") and ("ms" in axis or " s" in axis), axis
    strip = timeline.locator("svg")
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    strip.hover(position={"x": box["width"] - 1, "y": box["height"] / 2})  # the right end
    readout = widget.part("log-timeline-readout")
    wait_until(lambda: readout.inner_text().startswith("chunk "), 5, what="the hover readout")
    hovered = re.match(r"chunk (\d+) at \d+ ms · ", readout.inner_text())
    assert hovered and int(hovered[1]) > record.chunks_sent * 0.9, readout.inner_text()  # the end
    rows.nth(2).locator("button", has_text="raw").click()
    widget.root.locator("[data-testid=log-raw]").last.wait_for()
    nb.screenshot("log-panel", widget.part("log-panel"))

    # the download is named after the model, the time and the request id
    with nb.page.expect_download() as download:
        widget.click("log-download")
    name = download.value.suggested_filename
    assert re.fullmatch(rf"nbstream-demo-\d{{8}}-\d{{6}}-{record.request_id}\.jsonl", name), name


def test_regenerate_sends_a_new_request_and_adds_a_version(open_notebook, llm):
    nb = open_notebook(
        [
            setup_cell(llm.base_url),
            "view = nbstream.stream(ask(tokens_per_s=300), background=True)",
            "print(len(view.versions), [v.status for v in view.versions])",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()
    widget.wait_status("done")
    first = llm.wait_idle()[-1]
    assert widget.part("version-pager").is_hidden()

    widget.click("regenerate")
    second = llm.wait_for_requests(2)[1]
    wait_until(lambda: widget.root.get_attribute("data-version") == "1", 10, what="version 2")
    widget.wait_status("done")
    assert second.request_id != first.request_id
    assert second.body == first.body  # the same request, asked again
    assert widget.part("version-label").inner_text() == "2/2"
    assert second.request_id in widget.status_details()
    assert widget.copied_text() == DEMO_TEXT

    widget.click("version-prev")
    wait_until(lambda: widget.part("version-label").inner_text() == "1/2", 5, what="page 1/2")
    assert first.request_id in widget.status_details()
    assert widget.copied_text() == DEMO_TEXT

    nb.run_cell(2)
    assert nb.output_text(2).strip() == "2 ['done', 'done']"


def test_second_view_saved_notebook_and_reloaded_page_show_the_complete_answer(
    open_notebook, llm, page
):
    nb = open_notebook(
        [setup_cell(llm.base_url), "view = nbstream.stream(ask(tokens_per_s=200), background=True)",
         "view"]
    )  # fmt: skip
    nb.run_cells([0, 1])
    StreamWidget(nb, 1).wait_rendered().wait_status("done")
    nb.run_cell(2)  # a second view of the same widget
    for cell in (1, 2):
        assert StreamWidget(nb, cell).wait_rendered().copied_text() == DEMO_TEXT

    # The saved file carries the final answer statically (GitHub, nbconvert, nbviewer).
    nb.save()
    saved = wait_until(lambda: _saved_answer(nb), 10, what="the saved notebook's outputs")
    assert saved == DEMO_TEXT

    # A reloaded page rebuilds both views from the kernel's widget state: the complete answer.
    nb.reload()
    for cell in (1, 2):
        widget = StreamWidget(nb, cell).wait_live()
        assert widget.status() == "done"
        assert widget.copied_text() == DEMO_TEXT


def _saved_answer(nb) -> str:
    """The static copy's text in the saved file: the answer output of cell 1 (background mode:
    displayed at the start, brought up to date by display id when the stream ended)."""
    import nbformat

    notebook = nbformat.read(nb.server.root_dir / nb.name, as_version=4)
    outputs = notebook.cells[1].get("outputs", [])
    role = "application/vnd.nbstream.output+json"
    answers = [o for o in outputs if o.get("data", {}).get(role, {}).get("output") == "answer"]
    return "".join(str(o["data"].get("text/plain", "")) for o in answers)

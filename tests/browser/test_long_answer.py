"""A long answer in real JupyterLab: complete, copyable, searchable and selectable after the stream,
its scroll position kept while it streams, light and dark pictures mid-scroll.

The answer's finished blocks sit in groups with ``content-visibility: auto`` (js/markdown.js,
js/style.css): off-screen groups skip style, layout and paint, but stay in the DOM. These checks
make sure that what the browser skips is still there for the user: the Copy button, the browser's
find (``window.find``, the engine of find-in-page), a mouse selection across blocks.
"""

from __future__ import annotations

import pytest
from browser_jupyter import set_lab_setting
from browser_page import StreamWidget, wait_until
from streams import setup_cell

from nbstream.server.demo import demo_tokens

pytestmark = pytest.mark.browser

PARTS = 60  # ~11k tokens, ~70 kB of Markdown: ~800 blocks in ~25 groups
THEMES = "@jupyterlab/apputils-extension:themes"


def long_text() -> str:
    demo = "".join(demo_tokens())
    return "\n\n".join(f"## Part {i}: marker-{i:04d}\n\n{demo}" for i in range(PARTS))


LONG_CELL = (
    "from nbstream.server.demo import demo_tokens\n"
    "DEMO = ''.join(demo_tokens())\n"
    "LONG = '\\n\\n'.join(\n"
    f"    f'## Part {{i}}: marker-{{i:04d}}\\n\\n{{DEMO}}' for i in range({PARTS}))"
)

RENDERED = """
(cell) => {
  const c = document.querySelectorAll(".jp-Notebook .jp-Cell")[cell];
  const a = c && c.querySelector(".nbstream-root [data-testid=answer]");
  return !!a && a.dataset.rendered === "complete"
    && c.querySelector(".nbstream-root").dataset.status === "done";
}
"""

HEADING = """(root, marker) => [...root.querySelectorAll("[data-testid=answer] h2")]
  .find((e) => e.textContent.includes(marker))"""


def heading_top(widget: StreamWidget, marker: str) -> float | None:
    """Where the heading of a part is on screen (px from the top; None: not shown yet)."""
    return widget.root.evaluate(
        f"(root, m) => {{ const h = ({HEADING})(root, m); "
        "return h ? h.getBoundingClientRect().top : null; }",
        marker,
    )


def scroll_to(widget: StreamWidget, marker: str) -> float:
    """Scroll the notebook so that the part's heading is at the top of the viewport."""
    return widget.root.evaluate(
        f"(root, m) => {{ const h = ({HEADING})(root, m); h.scrollIntoView({{ block: 'start' }}); "
        "return h.getBoundingClientRect().top; }",
        marker,
    )


def settle(widget: StreamWidget, marker: str) -> None:
    """Wait until the part's heading stays put: groups coming into view get their real height
    (a CI run under load pressed the mouse where the heading had been a moment before)."""
    tops: list[float | None] = []

    def still() -> bool:
        tops.append(heading_top(widget, marker))
        return len(tops) >= 3 and tops[-1] is not None and tops[-1] == tops[-2] == tops[-3]

    wait_until(still, 10, 0.1, f"{marker} to stay put (tops {tops[-5:]})")


def test_long_answer_complete_copyable_searchable_selectable(
    open_notebook, llm, page, page_events, jupyter_lab
):
    page.set_viewport_size({"width": 1100, "height": 900})
    nb = open_notebook(
        [
            setup_cell(llm.base_url) + "\n" + LONG_CELL,
            "view = nbstream.stream(ask(LONG, model='echo', tokens_per_s=2500), background=True)",
        ]
    )
    nb.run_cells([0, 1])
    widget = StreamWidget(nb, 1).wait_rendered()

    # While it streams: the user reads a part in the middle; the text below keeps growing and
    # blocks above are upgraded (math, code) - the part stays where it is on screen.
    wait_until(lambda: heading_top(widget, "marker-0012") is not None, 60, what="part 12")
    scroll_to(widget, "marker-0006")
    page.wait_for_timeout(400)  # the groups around it are rendered (their real height)
    before = heading_top(widget, "marker-0006")
    assert widget.status() == "streaming", "the stream ended too soon to check scrolling"
    tops = []
    for _ in range(15):
        page.wait_for_timeout(100)
        tops.append(heading_top(widget, "marker-0006"))
    assert widget.status() == "streaming", "the stream ended while the position was watched"
    assert all(abs(t - before) <= 2 for t in tops), (before, tops)

    page.wait_for_function(RENDERED, arg=1, polling=100, timeout=120_000)
    expected = long_text()
    assert widget.copied_text() == expected

    # Everything is in the DOM, in groups of blocks (most of them skipped by the browser).
    shape = widget.answer.evaluate(
        """a => ({ groups: a.querySelectorAll('.nbstream-group').length,
                  text: a.textContent, pending: a.querySelectorAll('.nbstream-tex').length })"""
    )
    assert shape["groups"] > 5, shape["groups"]
    assert shape["pending"] == 0  # every formula upgraded, on screen or not
    for i in (0, PARTS // 2, PARTS - 1):
        assert f"marker-{i:04d}" in shape["text"]
    assert shape["text"].count("Part ") == PARTS

    # The browser's text search finds a part far off screen (in a group the browser skips).
    scroll_to(widget, "marker-0000")
    found = page.evaluate(
        """(m) => {
          getSelection().removeAllRanges();
          const ok = window.find(m, true, false, true);
          const r = getSelection().rangeCount ? getSelection().getRangeAt(0) : null;
          const box = r && r.getBoundingClientRect();
          const at = r && r.startContainer.parentElement;
          return { ok, text: r && r.toString(), top: box && box.top, vh: innerHeight,
                   inAnswer: !!(at && at.closest('[data-testid=answer]')) };
        }""",
        f"marker-{PARTS - 3:04d}",
    )
    assert found["ok"] and found["text"] == f"marker-{PARTS - 3:04d}", found
    assert found["inAnswer"], found
    # (window.find selects but does not scroll in headless Chromium; the find bar does: here the
    # page is scrolled to the selection, and the part there is laid out and painted.)
    page.evaluate(
        "() => getSelection().getRangeAt(0).startContainer.parentElement"
        ".scrollIntoView({ block: 'center' })"
    )
    page.wait_for_timeout(300)
    box = page.evaluate(
        "() => { const r = getSelection().getRangeAt(0).getBoundingClientRect();"
        " return { top: r.top, height: r.height }; }"
    )
    assert 0 <= box["top"] <= 900 and box["height"] > 5, box

    # A mouse selection across blocks on screen copies both blocks' text.
    scroll_to(widget, f"marker-{PARTS // 2:04d}")
    settle(widget, f"marker-{PARTS // 2:04d}")
    heading = widget.answer.locator("h2", has_text=f"marker-{PARTS // 2:04d}")
    para = heading.locator(
        "xpath=ancestor::div[@class='nbstream-block'][1]/following-sibling::div[1]"
    )
    h_box, p_box = heading.bounding_box(), para.bounding_box()
    assert h_box and p_box and p_box["y"] + p_box["height"] < 900
    page.mouse.move(h_box["x"] + 1, h_box["y"] + h_box["height"] / 2)
    page.mouse.down()
    page.mouse.move(p_box["x"] + p_box["width"] - 2, p_box["y"] + p_box["height"] - 4, steps=5)
    page.mouse.up()
    selected = page.evaluate("() => getSelection().toString()")
    assert f"marker-{PARTS // 2:04d}" in selected, (selected[:200], h_box, heading.bounding_box())
    assert para.inner_text().strip()[:20] in selected, (selected[:200], para.inner_text()[:50])

    # Pictures mid-scroll, light and dark (the dark one after a reload: the whole answer arrives
    # at once from the kernel and is painted over bounded frames).
    scroll_to(widget, "marker-0030")
    page.mouse.click(5, 5)  # no selection in the picture
    nb.screenshot("long-answer-midscroll-light")
    nb.save()
    set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Dark"})
    try:
        nb.reload()
        page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
        widget = StreamWidget(nb, 1).wait_rendered()
        page.wait_for_function(RENDERED, arg=1, polling=100, timeout=120_000)
        scroll_to(widget, "marker-0030")
        page.wait_for_timeout(300)
        nb.screenshot("long-answer-midscroll-dark")
        assert widget.copied_text() == expected
    finally:
        set_lab_setting(jupyter_lab, THEMES, {"theme": "JupyterLab Light"})
    assert page_events.page_errors == []

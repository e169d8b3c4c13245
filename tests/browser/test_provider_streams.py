"""Issue 14 in real JupyterLab + Chromium: a representative subset of ../shared/streams/more
replayed byte for byte by the local server, read by the real openai client in the kernel, shown by
the widget, and compared with the plain-json oracle of the files (tests/recorded_oracle.py):
Mistral thinking blocks, Snowflake's stream without a finish reason, OpenRouter url citations, a
Responses web search, a Responses file search with a file citation, a hosted MCP call and a custom
tool call. Screenshot: test-artifacts/providers-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import recorded_oracle
from browser_page import ARTIFACTS, StreamWidget, wait_until

from nbstream.server import serve

pytestmark = pytest.mark.browser

MORE = recorded_oracle.MORE
NAMES = [
    "16-mistral-chat-content-array-thinking.sse",
    "15-snowflake-cortex-chat-no-finish-reasoning-details.sse",
    "13-openrouter-chat-web-search-annotations.sse",
    "27-openai-responses-web-search.sse",
    "30-openai-responses-file-search-annotations.sse",
    "29-openai-responses-mcp-call.sse",
    "37-openai-responses-custom-tool-call.sse",
]


@pytest.fixture(scope="module")
def more_server() -> Iterator[Any]:
    if not MORE.is_dir():
        pytest.skip(f"recorded streams not found at {MORE} (../shared/streams/more)")
    with serve(streams_dir=MORE) as server:
        yield server


def setup_cell(base_url: str) -> str:
    return f"""
import openai, nbstream
from nbstream.sources.request import ChatRequest, ResponsesRequest
client = openai.OpenAI(base_url={base_url!r}, api_key="sk-local-test", max_retries=0)

def replay(name):
    body = {{"model": "replay:" + name}}
    if "responses" in name:
        request = ResponsesRequest({{**body, "input": "hi"}}, client)
    else:
        request = ChatRequest({{**body, "messages": [{{"role": "user", "content": "hi"}}]}}, client)
    return nbstream.stream(request)
print("ready")
""".strip()


class ShownWidget(StreamWidget):
    """The widget of one cell. Since a97fab8 an answer has a live output and an answer output,
    and while the JupyterLab extension that mounts the answer output is work in progress the
    widget's DOM can sit in a hidden output: the visible root when there is one, else the DOM
    the widget built (its documented hooks work the same; only clicks go through JS)."""

    def __init__(self, notebook: Any, cell: int) -> None:
        super().__init__(notebook, cell)
        self.cell = notebook.cell(cell)

    def wait_rendered(self, timeout: float = 30.0) -> ShownWidget:
        self.cell.locator(".nbstream-root").first.wait_for(state="attached", timeout=timeout * 1000)
        visible = self.cell.locator(".nbstream-root:visible")
        self.root = visible.first if visible.count() else self.cell.locator(".nbstream-root").first
        return self

    def copied_text(self) -> str:
        self.part("copy").evaluate("el => el.click()")
        wait_until(lambda: self.part("copy").text_content() != "Copy", 5, 0.02, "the copy")
        assert self.part("copy").text_content() == "Copied"
        return self.page.evaluate("() => navigator.clipboard.readText()")


def text_of(w: StreamWidget, testid: str) -> str:
    return w.part(testid).text_content() or ""


def hidden(w: StreamWidget, testid: str) -> bool:
    return w.part(testid).evaluate("el => el.hidden")


def test_provider_shapes_in_jupyterlab(open_notebook, page, more_server):
    page.set_viewport_size({"width": 1000, "height": 2400})
    replays = [f'v{i} = replay("{n}")' for i, n in enumerate(NAMES)]
    cells = [setup_cell(more_server.base_url), *replays]
    nb = open_notebook(cells)
    nb.run_cell(0)
    oracles = {n: recorded_oracle.oracle(MORE / n) for n in NAMES}
    widgets: dict[str, StreamWidget] = {}
    for cell, name in enumerate(NAMES, 1):
        nb.run_cell(cell, timeout=120)
        w = widgets[name] = ShownWidget(nb, cell).wait_rendered()
        o = oracles[name]
        assert w.wait_status() == o.status == "done", (name, w.status_line())
        assert hidden(w, "error")
        assert w.copied_text() == o.text.get(0, ""), name
        if o.reasoning.get(0):  # (without it the section may still say reasoning tokens were used)
            assert not hidden(w, "reasoning") and text_of(w, "reasoning-text") == o.reasoning[0]
        # hosted tools: one line each, by type and status, with the input the model sent
        lines = w.root.locator("[data-testid=hosted-tool]")
        expected = o.hosted.get(0, [])
        assert lines.count() == len(expected), name
        for k, (_, kind, status, given) in enumerate(expected):
            line = lines.nth(k)
            assert line.get_attribute("data-type") == kind
            assert line.get_attribute("data-status") == status
            assert (line.locator("[data-testid=hosted-input]").text_content() or "") == given
        # citations: a Sources list, links for URLs (new tab, no referrer), names for files
        cites = o.citations.get(0, [])
        assert hidden(w, "citations") is (not cites), name
        items = w.root.locator("[data-testid=citation]")
        assert items.count() == len(cites)
        for k, (key, title) in enumerate(cites):
            item = items.nth(k)
            if key.startswith("http"):
                link = item.locator("a")
                assert link.get_attribute("href") == key
                assert link.get_attribute("rel") == "noopener noreferrer"
                assert (link.text_content() or "") == (title or key)
            else:
                assert (title or key) in (item.text_content() or "")

    # Mistral: the thinking blocks are the Thinking section, the answer starts inside a block
    w = widgets[NAMES[0]]
    assert text_of(w, "reasoning-text") == oracles[NAMES[0]].reasoning[0]
    assert len(oracles[NAMES[0]].reasoning[0]) > 100 and "[{" not in w.copied_text()
    # Snowflake: no finish reason at all, yet done (no Continue offered), reasoning shown
    w = widgets[NAMES[1]]
    assert text_of(w, "reasoning-text") == oracles[NAMES[1]].reasoning[0]
    assert w.part("resume").evaluate("el => el.hidden || el.disabled") is True
    # custom tool: its SQL shown as it is, not flagged as broken JSON
    w = widgets[NAMES[-1]]
    card = w.root.locator("[data-testid=tool-call]")
    assert card.count() == 1 and card.get_attribute("data-state") == "valid"
    assert text_of(w, "tool-args") == oracles[NAMES[-1]].tools[0][0][2]
    ARTIFACTS.mkdir(exist_ok=True)
    for name in (NAMES[2], NAMES[4], NAMES[5]):
        if widgets[name].root.is_visible():  # (not while the answer output sits hidden)
            widgets[name].root.scroll_into_view_if_needed()
            widgets[name].root.screenshot(path=str(ARTIFACTS / f"providers-{name[:2]}.png"))

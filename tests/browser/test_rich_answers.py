"""Rich answers (issue 7) in real JupyterLab + Chromium: the recorded streams of ../shared/streams
replayed byte for byte by the local server, read by the real openai client in the kernel, shown
by the widget. What the widget shows is compared with a plain json oracle of the files
(tests/recorded_oracle.py), and screenshots of the widget go to test-artifacts/rich-*.png
(docs/ with NBSTREAM_UPDATE_DOCS=1)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import recorded_oracle
from browser_page import ARTIFACTS, NotebookPage, StreamWidget, wait_until

from nbstream.server import serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ROOT.parent / "shared" / "streams"
DOCS = ROOT / "docs"


def oracle(name: str) -> Any:
    return recorded_oracle.oracle(STREAMS / name)


@pytest.fixture(scope="module")
def replay_server() -> Iterator[Any]:
    """A local server replaying ../shared/streams (the shared ``llm`` server has no streams)."""
    if not STREAMS.is_dir():
        pytest.skip(f"recorded streams not found at {STREAMS} (../shared/streams)")
    with serve(streams_dir=STREAMS) as server:
        yield server


def setup_cell(base_url: str) -> str:
    return f"""
import openai, nbstream
from nbstream.sources.request import ChatRequest, ResponsesRequest
client = openai.OpenAI(base_url={base_url!r}, api_key="sk-local-test", max_retries=0)

def replay(name, background=False, **options):
    '''Stream a recorded file through the real client; options pace the replay.'''
    body = {{"model": "replay:" + name, "extra_body": {{"nbstream": options}}}}
    if "responses" in name:
        request = ResponsesRequest({{**body, "input": "hi"}}, client)
    else:
        request = ChatRequest({{**body, "messages": [{{"role": "user", "content": "hi"}}]}}, client)
    return nbstream.stream(request, background=background)
print("ready")
""".strip()


def notebook(open_notebook, page, server, calls: list[str]) -> NotebookPage:
    page.set_viewport_size({"width": 1000, "height": 2400})
    nb = open_notebook([setup_cell(server.base_url), *calls])
    nb.run_cell(0)
    return nb


def replays(names: list[str], first: int = 1) -> list[str]:
    """Notebook cells ``v1 = replay("...")``, ``v2 = ...``: one recorded stream each."""
    return [f'v{i} = replay("{n}")' for i, n in enumerate(names, first)]


def widget_in(nb: NotebookPage, cell: int, *, run: bool = True) -> StreamWidget:
    if run:
        nb.run_cell(cell, timeout=120)
    return StreamWidget(nb, cell).wait_rendered()


def text_of(w: StreamWidget, testid: str) -> str:
    return w.part(testid).text_content() or ""


def hidden(w: StreamWidget, testid: str) -> bool:
    return w.part(testid).evaluate("el => el.hidden")


def shot(w: StreamWidget, name: str) -> Path:
    """A PNG of the widget alone (clipped to the widget element) in test-artifacts/; with
    ``NBSTREAM_UPDATE_DOCS=1`` it refreshes the committed one under docs/ instead, so a plain
    test run never dirties the working tree."""
    w.root.scroll_into_view_if_needed()
    folder = DOCS if os.environ.get("NBSTREAM_UPDATE_DOCS") == "1" else ARTIFACTS
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    w.root.screenshot(path=str(path))
    return path


def test_reasoning_thinking_section(open_notebook, page, replay_server):
    names = [
        "17-together-via-hf-router-long-emoji-split.sse",
        "08-openai-responses-reasoning-summary-long.sse",
        "12-groq-chat-tool-call-single-chunk-x_groq-usage.sse",
        "10-openrouter-chat-error-midstream.sse",
        "11-groq-chat-error-event-midstream.sse",
    ]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        [f'v = replay("{names[0]}", background=True, tokens_per_s=120)'] + replays(names[1:], 2),
    )
    # 17: <think> inline in the content. While it thinks: the section is open, no answer yet.
    w = widget_in(nb, 1)
    wait_until(lambda: len(text_of(w, "reasoning-text")) > 200, 30, 0.05, "reasoning to stream")
    assert w.status() == "streaming"
    assert w.part("reasoning").evaluate("el => el.open") is True
    assert text_of(w, "reasoning-label").startswith("Thinking…")
    assert "<think>" not in text_of(w, "reasoning-text") and text_of(w, "answer").strip() == ""
    shot(w, "rich-reasoning")
    seen = nb.watch_text(w.part("reasoning-text"), lambda _: bool(text_of(w, "answer")), 60)
    assert len(seen) >= 3, "the reasoning did not grow live"
    assert w.part("reasoning").evaluate("el => el.open") is False  # closed when the answer starts
    w.wait_status("done", timeout=60)
    o = oracle(names[0])
    assert text_of(w, "reasoning-text") == o.reasoning[0]
    assert w.copied_text() == o.text[0]
    label = text_of(w, "reasoning-label")
    assert label.startswith("Thought · ") and " s · " in label and "tokens (estimated)" in label

    # 08: Responses reasoning summary (4 parts) then the answer; reasoning tokens are reported
    w = widget_in(nb, 2)
    w.wait_status("done")
    o = oracle(names[1])
    assert text_of(w, "reasoning-text") == o.reasoning[0]
    assert w.copied_text() == o.text[0]
    reported = o.usage["output_tokens_details"]["reasoning_tokens"]
    assert f"{reported} reasoning tokens" in text_of(w, "reasoning-label")
    assert f"{reported} reasoning" in w.status_details()

    # 12: Groq reasoning deltas, then a tool call; 10 and 11: reasoning, then an error mid-stream
    for cell, name in ((3, names[2]), (4, names[3]), (5, names[4])):
        w = widget_in(nb, cell)
        status = w.wait_status()
        o = oracle(name)
        assert text_of(w, "reasoning-text") == o.reasoning[0], name
        assert not hidden(w, "reasoning")
        if name.startswith(("10", "11")):
            assert status in ("error", "incomplete") and not hidden(w, "error")
    w = StreamWidget(nb, 3)
    assert w.root.locator("[data-testid=tool-call]").count() == 1
    # everything is in the chunk log too: one row per chunk, reasoning and tool arguments included
    datas = recorded_oracle.data_lines(STREAMS / names[2])
    w.click("log-toggle")
    rows = w.root.locator("[data-testid=log-row]")
    wait_until(lambda: rows.count() == len(datas), 10, 0.05, f"{len(datas)} log rows")
    deltas = "".join(
        rows.evaluate_all("rs => rs.map(r => r.querySelector('.nbstream-log-delta').textContent)")
    )
    o = oracle(names[2])
    assert o.reasoning[0] in deltas and o.tools[0][0][2] in deltas


def test_tool_call_cards(open_notebook, page, replay_server):
    names = [
        "02-openai-chat-single-tool-call-args.sse",
        "03-openai-chat-parallel-tool-calls.sse",
        "07-openai-responses-reasoning-function-call-gpt5.sse",
        "09-openai-responses-function-call-2025-03.sse",
    ]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        [f'v = replay("{names[0]}", background=True, delay=0.25)'] + replays(names[1:], 2),
    )
    # 02 paced: the arguments stream into the card, then show as formatted JSON
    w = widget_in(nb, 1)
    card = w.part("tool-call")
    card.wait_for()
    states = set()
    args_seen = nb.watch_text(
        card.locator("[data-testid=tool-args]"),
        lambda _: states.add(card.get_attribute("data-state")) or w.status() == "done",
        30,
    )
    assert "streaming" in states and len(args_seen) >= 3, (states, args_seen)
    for cell, name in enumerate(names, 1):
        w = StreamWidget(nb, cell).wait_rendered() if cell == 1 else widget_in(nb, cell)
        w.wait_status("done")
        o = oracle(name)
        expected = o.tools[0]
        cards = w.root.locator("[data-testid=tool-call]")
        assert cards.count() == len(expected), name
        for k, (call_id, fn_name, args) in enumerate(expected):
            c = cards.nth(k)
            assert c.get_attribute("data-state") == "valid"
            assert c.locator("[data-testid=tool-name]").text_content() == fn_name
            assert c.locator("[data-testid=tool-id]").text_content() == call_id
            pretty = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
            assert c.locator("[data-testid=tool-args]").text_content() == pretty
            assert c.locator("[data-testid=tool-invalid]").evaluate("el => el.hidden")
        assert w.part("finish").get_attribute("data-reason") == "tool_calls"
        assert hidden(w, "answer")  # no empty answer box
    shot(StreamWidget(nb, 2), "rich-tool-calls")


def test_refusals(open_notebook, page, replay_server):
    names = ["13-openai-chat-refusal-deltas.sse", "16-openai-chat-refusal-logprobs.sse"]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        replays(names),
    )
    for cell, name in enumerate(names, 1):
        w = widget_in(nb, cell)
        w.wait_status("done")
        o = oracle(name)
        assert not hidden(w, "refusal")
        assert text_of(w, "refusal-text") == o.refusal[0]
        assert "refused" in text_of(w, "refusal")
        assert hidden(w, "answer")
    # 16 has logprobs for the refusal tokens: the confidence view shows them
    w = StreamWidget(nb, 2)
    w.click("confidence-toggle")
    tokens = w.root.locator("[data-testid=token]")
    wait_until(lambda: tokens.count() > 0, 10, 0.05, "confidence tokens")
    o = oracle(names[1])
    assert tokens.count() == len(o.refusal_logprobs[0])
    assert "".join(tokens.all_text_contents()) == o.refusal[0]
    ps = [float(p) for p in tokens.evaluate_all("els => els.map(e => e.dataset.p)")]
    assert min(ps) < 0.6 < max(ps)  # real variation in this file: the colours differ
    tokens.nth(ps.index(min(ps))).hover()
    popover = w.part("token-popover")
    wait_until(lambda: popover.is_visible(), 5, 0.05, "the token popover")
    assert "p = " in (popover.text_content() or "")
    shot(w, "rich-logprobs")
    shot(StreamWidget(nb, 1), "rich-refusal")


def test_several_choices_in_tabs(open_notebook, page, replay_server):
    name = "14-openai-chat-n3-interleaved-choices.sse"
    nb = notebook(
        open_notebook, page, replay_server, [f'v = replay("{name}", background=True, delay=0.03)']
    )
    w = widget_in(nb, 1)
    tabs = w.root.locator("[data-testid=choice-tab]")
    wait_until(lambda: tabs.count() == 3, 20, 0.05, "three choice tabs")
    assert w.status() == "streaming"  # the tabs appear while the choices stream
    w.wait_status("done", timeout=60)
    o = oracle(name)
    for i in range(3):
        tabs.nth(i).click()
        wait_until(lambda i=i: tabs.nth(i).get_attribute("aria-selected") == "true", 5, 0.05, "tab")
        assert tabs.nth(i).get_attribute("data-finish") == o.finish[i]
        assert o.finish[i] in (tabs.nth(i).text_content() or "")
        assert w.copied_text() == o.text[i]
    tabs.nth(1).click()
    shot(w, "rich-choices")

    # a reloaded page rebuilds the tabs, finish reasons and texts from the widget state
    nb.save()
    nb.reload()
    w = StreamWidget(nb, 1).wait_rendered()
    tabs = w.root.locator("[data-testid=choice-tab]")
    wait_until(lambda: tabs.count() == 3, 20, 0.05, "three choice tabs after a reload")
    assert [tabs.nth(i).get_attribute("data-finish") for i in range(3)] == [
        o.finish[i] for i in range(3)
    ]
    tabs.nth(2).click()
    assert w.copied_text() == o.text[2]


def test_logprobs_confidence_and_length(open_notebook, page, replay_server):
    names = [
        "15-openai-chat-content-logprobs.sse",
        "06-openai-responses-text-logprobs.sse",
        "18-vllm-local-chat-opt125m.sse",
    ]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        replays(names),
    )
    for cell, name in enumerate(names[:2], 1):
        w = widget_in(nb, cell)
        w.wait_status("done")
        o = oracle(name)
        assert hidden(w, "confidence")
        w.click("confidence-toggle")
        tokens = w.root.locator("[data-testid=token]")
        wait_until(lambda tokens=tokens: tokens.count() > 0, 10, 0.05, "confidence tokens")
        expected = o.logprobs[0]
        assert tokens.count() == len(expected)
        assert "".join(tokens.all_text_contents()) == o.text[0]
        ps = [float(p) for p in tokens.evaluate_all("els => els.map(e => e.dataset.p)")]
        assert ps == pytest.approx([math.exp(round(lp, 3)) for _, lp, _ in expected], abs=1e-4)
        titles = tokens.evaluate_all("els => els.map(e => e.title)")
        for (tok, _, top), title in zip(expected, titles, strict=True):
            for alt, _ in top:
                if alt != tok:
                    assert json.dumps(alt) in title
    # 18 (vLLM) has no logprobs: no toggle; it ends with finish_reason length: cut off + Continue
    w = widget_in(nb, 3)
    assert w.wait_status() == "incomplete"
    assert hidden(w, "confidence-toggle")
    assert w.part("finish").get_attribute("data-reason") == "length"
    assert "Cut off" in text_of(w, "finish")
    assert hidden(w, "error")  # the notice says it once, not twice
    assert not hidden(w, "resume")
    shot(w, "rich-length")


def test_content_filter_results(open_notebook, page, replay_server):
    names = [
        "19-azure-chat-legacy-per-chunk-filter.sse",
        "05-azure-chat-content-filter-long-story.sse",
    ]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        replays(names),
    )
    for cell, name in enumerate(names, 1):
        w = widget_in(nb, cell)
        w.wait_status("done")
        o = oracle(name)
        assert not hidden(w, "content-filter")
        prompt = [
            d["prompt_filter_results"]
            for d in recorded_oracle.data_lines(STREAMS / name)
            if "prompt_filter_results" in d
        ][-1]
        expected_rows = sum(len(p["content_filter_results"]) for p in prompt) + len(
            o.filters[0][-1]
        )
        rows = w.root.locator("[data-testid=filter-row]")
        assert rows.count() == expected_rows
        cats = rows.evaluate_all("els => els.map(e => e.children[1].textContent)")
        assert set(o.filters[0][-1]) <= set(cats)
        assert w.copied_text() == o.text[0]
        if cell == 1:
            w.part("content-filter").locator("summary").click()
            shot(w, "rich-content-filter")


def demo_cell(options: dict[str, Any], background: bool = False) -> str:
    return (
        'v = nbstream.stream(ChatRequest({"model": "demo", "messages": [{"role": "user", '
        f'"content": "hi"}}], "extra_body": {{"nbstream": {options!r}}}}}, client), '
        f"background={background})"
    )


def test_live_demo_cut_tool_call_is_flagged_and_reasoning_counted(
    open_notebook, page, replay_server
):
    """From the demo model, live: a tool call whose stream drops mid-arguments is flagged as
    invalid JSON (partial arguments kept); reasoning tokens reported by the server are shown."""
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        [
            demo_cell({"tool_calls": 2, "disconnect_after": 5}),
            demo_cell({"reasoning": 60, "tokens": 30, "tokens_per_s": 40}, background=True),
        ],
    )
    w = widget_in(nb, 1)
    assert w.wait_status() == "incomplete"
    card = w.part("tool-call")
    assert card.get_attribute("data-state") == "invalid"
    assert (card.locator("[data-testid=tool-invalid]").text_content() or "").startswith(
        "invalid JSON"
    )
    assert card.locator("[data-testid=tool-args]").text_content() == '{"city":'
    shot(w, "rich-tool-invalid")

    w = widget_in(nb, 2)
    wait_until(lambda: not hidden(w, "reasoning"), 20, 0.05, "the Thinking section")
    assert w.part("reasoning").evaluate("el => el.open") is True
    w.wait_status("done", timeout=60)
    assert w.part("reasoning").evaluate("el => el.open") is False
    assert "60 reasoning tokens" in text_of(w, "reasoning-label")
    assert "60 reasoning" in w.status_details()


LUMINANCE = """
([root, sels]) => {
  const lum = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  const out = {};
  for (const [name, [sel, prop]] of Object.entries(sels))
    out[name] = lum(getComputedStyle(root.querySelector(sel))[prop]);
  return out;
}
"""


def luminance(w: StreamWidget, **sels: tuple[str, str]) -> dict[str, float]:
    return w.page.evaluate(LUMINANCE, [w.root.element_handle(), sels])


def test_rich_parts_in_the_dark_theme(open_notebook, page, replay_server, jupyter_lab):
    from browser_jupyter import set_lab_setting

    themes = "@jupyterlab/apputils-extension:themes"
    names = ["16-openai-chat-refusal-logprobs.sse", "03-openai-chat-parallel-tool-calls.sse"]
    nb = notebook(
        open_notebook,
        page,
        replay_server,
        replays(names),
    )
    for cell in (1, 2):
        widget_in(nb, cell).wait_status("done")
    nb.save()
    set_lab_setting(jupyter_lab, themes, {"theme": "JupyterLab Dark"})
    try:
        nb.reload()
        page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
        refusal = StreamWidget(nb, 1).wait_rendered()
        tools = StreamWidget(nb, 2).wait_rendered()
        refusal.part("refusal-text").wait_for()
        tools.part("tool-call").wait_for()
        refusal.click("confidence-toggle")
        refusal.root.locator("[data-testid=token]").nth(2).hover()
        colors = luminance(
            refusal,
            refusal=("[data-testid=refusal-text]", "color"),
            refusal_bg=("[data-testid=refusal]", "backgroundColor"),
            popover=("[data-testid=token-popover]", "color"),
            popover_bg=("[data-testid=token-popover]", "backgroundColor"),
        )
        colors |= luminance(
            tools,
            tool_name=("[data-testid=tool-name]", "color"),
            tool_args_bg=("[data-testid=tool-args]", "backgroundColor"),
            finish=("[data-testid=finish]", "color"),
            finish_bg=("[data-testid=finish]", "backgroundColor"),
        )
        shot(refusal, "rich-dark-refusal")
        shot(tools, "rich-dark-tool-calls")
    finally:
        set_lab_setting(jupyter_lab, themes, {"theme": "JupyterLab Light"})
    # light text on dark boxes: readable
    assert colors["refusal"] > 0.5 and colors["refusal_bg"] < 0.35, colors
    assert colors["popover"] > 0.5 and colors["popover_bg"] < 0.35, colors
    assert colors["tool_name"] > 0.5 and colors["tool_args_bg"] < 0.35, colors
    assert colors["finish"] > 0.5 and colors["finish_bg"] < 0.35, colors

"""Rich answers on the view (issue 7): tool calls, choices, refusals, reasoning, logprobs, usage,
content filters, from the real recorded streams in ../shared/streams served over real HTTP by the
local server and read by the real openai client.

The oracle is independent of nbstream's adapters: a plain ``json.loads`` of the files' ``data:``
lines, folded by hand (tests/recorded_oracle.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import openai
import pytest
from recorded_oracle import data_lines, oracle, raw_chat_content

import nbstream
from nbstream.frontend.widget import StreamView
from nbstream.sources.request import ChatRequest, ResponsesRequest


def run_view(server: Any, name: str) -> StreamView:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    if "responses" in name:
        source: Any = ResponsesRequest({"model": f"replay:{name}", "input": "hi"}, client)
    else:
        source = ChatRequest(
            {"model": f"replay:{name}", "messages": [{"role": "user", "content": "hi"}]}, client
        )
    return nbstream.stream(source, display=False, resilience=None)


def snapshot_parts(view: StreamView) -> dict[tuple[int, str, int | None], dict[str, Any]]:
    version = view.snapshot["versions"][-1]
    return {(p["choice"], p["kind"], p.get("index")): p for p in version["parts"]}


TOOLS = [
    "02-openai-chat-single-tool-call-args.sse",
    "03-openai-chat-parallel-tool-calls.sse",
    "07-openai-responses-reasoning-function-call-gpt5.sse",
    "09-openai-responses-function-call-2025-03.sse",
    "12-groq-chat-tool-call-single-chunk-x_groq-usage.sse",
]


@pytest.mark.parametrize("name", TOOLS)
def test_tool_calls_are_parsed_objects_on_the_view(local_server, shared_streams, name):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    expected = o.tools[0]
    assert len(expected) >= 1
    calls = view.tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [tuple(e) for e in expected]
    for call, (_, _, args) in zip(calls, expected, strict=True):
        assert call.valid is True
        assert call.parsed == json.loads(args) and isinstance(call.parsed, dict)
    assert view.choices[0].finish_reason == "tool_calls" == o.finish[0]
    # each call is its own part in the widget's snapshot, with its name and full arguments
    parts = snapshot_parts(view)
    for k, (call_id, fn_name, args) in enumerate(expected):
        part = parts[(0, "tool", k)]
        assert part["text"] == args
        assert part["meta"] == {"id": call_id, "name": fn_name}


def test_parallel_tool_calls_are_separate(local_server, shared_streams):
    view = run_view(local_server, "03-openai-chat-parallel-tool-calls.sse")
    ids = [c.id for c in view.tool_calls]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_several_choices_each_with_text_and_finish_reason(local_server, shared_streams):
    name = "14-openai-chat-n3-interleaved-choices.sse"
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    assert len(view.choices) == 3 == len(o.text)
    for c in view.choices:
        assert c.text == o.text[c.index] and c.text
        assert c.finish_reason == o.finish[c.index]
        assert json.loads(c.text)  # structured output: each choice is whole JSON
    assert view.text == o.text[0]
    parts = snapshot_parts(view)
    assert [parts[(i, "text", None)]["text"] for i in range(3)] == [o.text[i] for i in range(3)]
    assert view.snapshot["versions"][-1]["metrics"]["finish_reasons"] == {
        str(i): o.finish[i] for i in range(3)
    }


@pytest.mark.parametrize(
    "name", ["13-openai-chat-refusal-deltas.sse", "16-openai-chat-refusal-logprobs.sse"]
)
def test_refusals_are_refusals_not_empty_answers(local_server, shared_streams, name):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    assert view.refusal == o.refusal[0] and len(view.refusal) > 20
    assert view.text == ""
    assert snapshot_parts(view)[(0, "refusal", None)]["text"] == o.refusal[0]
    assert view.status == "done"


REASONING = [
    "10-openrouter-chat-error-midstream.sse",
    "11-groq-chat-error-event-midstream.sse",
    "12-groq-chat-tool-call-single-chunk-x_groq-usage.sse",
    "08-openai-responses-reasoning-summary-long.sse",
    "17-together-via-hf-router-long-emoji-split.sse",
]


@pytest.mark.parametrize("name", REASONING)
def test_reasoning_is_split_from_the_answer(local_server, shared_streams, name):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    assert view.reasoning == o.reasoning[0] and len(view.reasoning) > 20
    assert view.text == o.text.get(0, "")
    assert "<think>" not in view.text and "</think>" not in view.reasoning
    assert snapshot_parts(view)[(0, "reasoning", None)]["text"] == o.reasoning[0]
    thinking = view.snapshot["versions"][-1]["metrics"]["thinking_s"]
    assert 0 <= thinking <= view.metrics.duration_s


def test_think_tags_in_17_are_where_the_file_puts_them(shared_streams):
    """Guard on the oracle itself: 17 really starts with <think> and closes it once."""
    text = raw_chat_content(shared_streams / "17-together-via-hf-router-long-emoji-split.sse")
    assert text.lstrip().startswith("<think>") and text.count("</think>") == 1


def _decode_logprob_lines(text: str) -> list[tuple[str, float, list[tuple[str, float]]]]:
    rows = [json.loads(line) for line in text.splitlines()]
    return [(t, lp, [tuple(a) for a in top]) for t, lp, top in rows]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("15-openai-chat-content-logprobs.sse", "logprobs"),
        ("06-openai-responses-text-logprobs.sse", "logprobs"),
        ("16-openai-chat-refusal-logprobs.sse", "refusal_logprobs"),
    ],
)
def test_logprobs_reach_the_view_and_the_wire(local_server, shared_streams, name, kind):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    c = view.choices[0]
    expected = o.logprobs[0] if kind == "logprobs" else o.refusal_logprobs[0]
    assert expected, "the file has logprobs"
    got = c.logprobs if kind == "logprobs" else c.refusal_logprobs
    assert [(t.token, t.logprob, list(t.top)) for t in got] == expected
    # the tokens join up to the answer (or the refusal)
    assert "".join(t for t, _, _ in expected) == (view.text if kind == "logprobs" else view.refusal)
    # on the wire: compact lines, logprobs rounded to 3 decimals
    wire = _decode_logprob_lines(snapshot_parts(view)[(0, kind, None)]["text"])
    assert [(t, round(lp, 3), [(a, round(b, 3)) for a, b in top]) for t, lp, top in expected] == [
        (t, lp, top) for t, lp, top in wire
    ]


def test_no_logprobs_part_when_the_stream_has_none(local_server, shared_streams):
    view = run_view(local_server, "01-openai-chat-text-include-usage.sse")
    kinds = {k[1] for k in snapshot_parts(view)}
    assert "logprobs" not in kinds and "refusal_logprobs" not in kinds
    assert view.choices[0].logprobs == []


@pytest.mark.parametrize(
    "name",
    [
        "01-openai-chat-text-include-usage.sse",
        "07-openai-responses-reasoning-function-call-gpt5.sse",
        "12-groq-chat-tool-call-single-chunk-x_groq-usage.sse",
        "17-together-via-hf-router-long-emoji-split.sse",
        "18-vllm-local-chat-opt125m.sse",
        "19-azure-chat-legacy-per-chunk-filter.sse",
    ],
)
def test_usage_detail_reported_or_absent(local_server, shared_streams, name):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    u = o.usage
    if u is None:
        assert view.usage is None
        assert "usage" not in view.snapshot["versions"][-1]["metrics"]
        return
    prompt = u.get("prompt_tokens", u.get("input_tokens"))
    completion = u.get("completion_tokens", u.get("output_tokens"))
    out_d = u.get("completion_tokens_details") or u.get("output_tokens_details") or {}
    in_d = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
    got = view.usage
    assert (got.prompt_tokens, got.completion_tokens) == (prompt, completion)
    assert got.reasoning_tokens == out_d.get("reasoning_tokens")  # None when not reported
    assert got.cached_tokens == in_d.get("cached_tokens", u.get("cached_tokens"))
    wire = view.snapshot["versions"][-1]["metrics"]["usage"]
    assert wire["prompt_tokens"] == prompt and wire["completion_tokens"] == completion


def test_usage_reasoning_and_cached_tokens_present_in_some_files(shared_streams):
    """The detail tests above must compare real numbers somewhere, not only None == None."""
    seen = {"reasoning": 0, "cached": 0}
    for name in ("07-openai-responses-reasoning-function-call-gpt5.sse",):
        u = oracle(shared_streams / name).usage
        seen["reasoning"] += u["output_tokens_details"]["reasoning_tokens"] is not None
    u = oracle(shared_streams / "01-openai-chat-text-include-usage.sse").usage
    seen["cached"] += u["prompt_tokens_details"]["cached_tokens"] is not None
    u = oracle(shared_streams / "17-together-via-hf-router-long-emoji-split.sse").usage
    seen["cached"] += u["cached_tokens"] is not None  # Together: at the top level
    assert seen == {"reasoning": 1, "cached": 2}


@pytest.mark.parametrize(
    "name",
    ["05-azure-chat-content-filter-long-story.sse", "19-azure-chat-legacy-per-chunk-filter.sse"],
)
def test_content_filter_results(local_server, shared_streams, name):
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    assert view.choices[0].content_filter == o.filters[0] and o.filters[0]
    parts = snapshot_parts(view)
    assert parts[(0, "filter", None)]["meta"]["results"] == o.filters[0][-1]  # the latest
    prompt = [
        d["prompt_filter_results"]
        for d in data_lines(shared_streams / name)
        if "prompt_filter_results" in d
    ]
    assert parts[(-1, "filter", None)]["meta"]["results"] == {"prompt_filter_results": prompt[-1]}


def test_length_finish_is_incomplete_and_resumable(local_server, shared_streams):
    name = "18-vllm-local-chat-opt125m.sse"
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    assert o.finish[0] == "length" == view.choices[0].finish_reason
    assert view.status == "incomplete" and "length" in (view.reason or "")
    assert view.resumable  # the widget offers Continue


def test_first_token_not_delayed_by_a_prompt_filter_part() -> None:
    """Azure sends prompt_filter_results before any text: the first token still goes out at once."""
    from nbstream.events import ContentFilter, TextDelta
    from nbstream.frontend.coalesce import Coalescer

    frames = []
    now = [0.0]
    c = Coalescer(frames.append, max_fps=10, clock=lambda: now[0])
    c.add([ContentFilter({"prompt_filter_results": []}, choice=None)])
    now[0] = 0.01
    c.add([TextDelta("Hello")])
    assert [p.text for f in frames for p in f.parts] == ["", "Hello"]
    now[0] = 0.02
    c.add([TextDelta(" world")])  # the next one waits for the interval, as before
    assert len(frames) == 2


def test_static_answer_shows_refusals_and_tool_calls(local_server, shared_streams):
    """What a saved notebook shows without the widget (the answer output's text/html)."""
    import html as htmlmod

    o = oracle(shared_streams / "13-openai-chat-refusal-deltas.sse")
    page = run_view(local_server, "13-openai-chat-refusal-deltas.sse")._answer_output()[0]
    assert f"<strong>Refused:</strong> {o.refusal[0]}" in htmlmod.unescape(page["text/html"])
    name = "03-openai-chat-parallel-tool-calls.sse"
    o = oracle(shared_streams / name)
    page = run_view(local_server, name)._answer_output()[0]["text/html"]
    text = htmlmod.unescape(re.sub(r"<[^>]+>", "", page))
    for call_id, fn_name, args in o.tools[0]:
        assert f"<code>{fn_name}</code> <span>({call_id})</span>" in htmlmod.unescape(page)
        assert json.dumps(json.loads(args), indent=2) in text


def test_rich_parts_ride_the_same_rate_limited_frames(local_server, shared_streams):
    """Reasoning, logprob and filter parts go through the coalescer like text: a long stream
    with them (17: ~950 chunks of reasoning then text) sends at most ~50 frames a second."""
    name = "17-together-via-hf-router-long-emoji-split.sse"
    client = openai.OpenAI(base_url=local_server.base_url, api_key="sk-local", max_retries=0)
    source = ChatRequest(
        {
            "model": f"replay:{name}",
            "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"nbstream": {"tokens_per_s": 1500}},
        },
        client,
    )
    view = nbstream.stream(source, display=False, resilience=None)
    chunks = view.metrics.chunks
    duration = view.metrics.duration_s
    assert chunks > 900 and duration > 0.4
    assert view.frames_sent <= duration * 50 + 4, (view.frames_sent, duration)
    assert view.frames_sent >= 5  # and it did stream in several frames


def test_magic_final_output_shows_the_refusal(local_server, shared_streams):
    """The answer output's text/plain: a refusal, not an empty answer; a tool call."""
    name = "13-openai-chat-refusal-deltas.sse"
    o = oracle(shared_streams / name)
    assert run_view(local_server, name).static_plain() == "Refused: " + o.refusal[0]
    name = "02-openai-chat-single-tool-call-args.sse"
    o = oracle(shared_streams / name)
    view = run_view(local_server, name)
    (call_id, fn_name, args) = o.tools[0][0]
    assert view.static_plain() == f"tool call {fn_name}({args})"
    assert f"({call_id})" in view._answer_output()[0]["text/html"]


# --- issue 14: the 42 bodies of ../shared/streams/more on the view's snapshot ---------------------

# a representative subset: hosted tools of every kind, citations of both APIs and a chat provider
# (Perplexity), a custom tool call, reasoning the provider keeps elsewhere, two message items
RICH_MORE = [
    "10-groq-compound-chat-reasoning-think-tags.sse",
    "13-openrouter-chat-web-search-annotations.sse",
    "15-snowflake-cortex-chat-no-finish-reasoning-details.sse",
    "16-mistral-chat-content-array-thinking.sse",
    "25-perplexity-chat-citations-usage-every-chunk.sse",
    "27-openai-responses-web-search.sse",
    "28-openai-responses-code-interpreter-reasoning.sse",
    "29-openai-responses-mcp-call.sse",
    "30-openai-responses-file-search-annotations.sse",
    "36-openai-responses-image-generation-partials.sse",
    "37-openai-responses-custom-tool-call.sse",
    "41-openai-responses-phase-two-messages.sse",
]


@pytest.fixture(scope="module")
def more_server():
    from recorded_oracle import MORE

    from nbstream.server import serve

    if not MORE.is_dir():
        pytest.skip(f"recorded streams not found at {MORE} (../shared/streams/more)")
    with serve(streams_dir=MORE) as server:
        yield server


@pytest.mark.parametrize("name", RICH_MORE)
def test_more_streams_rich_parts_on_the_snapshot(more_server, name):
    """What the widget is sent for each new shape: one ``hosted`` part per server-side tool
    (text = its input, meta = type/status/id), one ``citation`` part per source (meta = url and
    title, or file id and filename), reasoning and text where the provider put them."""
    from recorded_oracle import MORE

    o = oracle(MORE / name)
    view = run_view(more_server, name)
    assert view.status == o.status == "done", view.status
    parts = snapshot_parts(view)
    assert parts.get((0, "text", None), {}).get("text", "") == o.text.get(0, "")
    assert parts.get((0, "reasoning", None), {}).get("text", "") == o.reasoning.get(0, "")
    hosted = [parts[k] for k in sorted(k for k in parts if k[1] == "hosted")]
    assert [
        (p["meta"].get("id"), p["meta"]["type"], p["meta"]["status"], p["text"]) for p in hosted
    ] == o.hosted.get(0, [])
    cites = [parts[k]["meta"] for k in sorted(k for k in parts if k[1] == "citation")]
    assert [
        (m.get("url") or m.get("file_id"), m.get("title") or m.get("filename")) for m in cites
    ] == o.citations.get(0, [])
    tools = [parts[k] for k in sorted(k for k in parts if k[1] == "tool")]
    assert [(p["meta"]["id"], p["meta"]["name"], p["text"]) for p in tools] == o.tools.get(0, [])
    for p in tools:
        assert p["meta"].get("type") == ("custom" if p["meta"]["id"] in o.custom else None)
    # image generation: the partial images the file streamed, counted per tool
    partials = [
        d["item_id"]
        for d in data_lines(MORE / name)
        if d.get("type") == "response.image_generation_call.partial_image"
    ]
    for p in hosted:
        assert p["meta"].get("images", 0) == partials.count(p["meta"].get("id"))
    # the state says the same (what the lead's static copy reads)
    c = view.choices[0]
    assert [h.to_dict()["input"] for h in c.hosted_tools] == [h["text"] for h in hosted]
    assert len(c.citations) == len(cites)


def test_more_subset_covers_every_new_shape():
    """Guard on RICH_MORE itself: it holds each kind of hosted tool, both kinds of citation,
    a custom tool and reasoning from reasoning_details / thinking blocks."""
    from recorded_oracle import MORE

    if not MORE.is_dir():
        pytest.skip(f"recorded streams not found at {MORE}")
    oracles = [oracle(MORE / n) for n in RICH_MORE]
    kinds = {h[1] for o in oracles for hs in o.hosted.values() for h in hs}
    assert kinds >= {"search", "web_search", "file_search", "code_interpreter", "mcp"}
    assert {"mcp_list_tools", "image_generation"} <= kinds
    keys = [c[0] for o in oracles for cs in o.citations.values() for c in cs]
    assert any(k.startswith("https://") for k in keys) and any(k.startswith("file-") for k in keys)
    assert any(o.custom for o in oracles)
    assert sum(1 for o in oracles if o.reasoning.get(0)) >= 3
    assert "\n\n" in oracle(MORE / RICH_MORE[-1]).text[0]  # two message items, a paragraph apart

"""What a correct consumer must end up with for a recorded stream of ../shared/streams.

Computed from the file's ``data:`` lines with plain ``json`` and folded by hand, independent of
nbstream's adapters, so the tests that compare against it (tests/test_sources_recorded.py,
tests/test_rich_answers.py, tests/browser/test_rich_answers.py) check the adapters, not a copy of
them. Chat streams are folded delta by delta; Responses streams are read from the final
``response.completed`` object, not from the deltas nbstream reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"

Logprob = tuple[str, float, list[tuple[str, float]]]
ToolCall = tuple[str | None, str | None, str]  # (id, name, arguments)


@dataclass
class Oracle:
    """The expected end state of one recorded stream, per choice index."""

    api: str  # "chat" or "responses"
    datas: list[Any] = field(default_factory=list)  # each data line the SDK yields, as JSON
    text: dict[int, str] = field(default_factory=dict)
    reasoning: dict[int, str] = field(default_factory=dict)
    refusal: dict[int, str] = field(default_factory=dict)
    tools: dict[int, list[ToolCall]] = field(default_factory=dict)  # in tool-index order
    finish: dict[int, str] = field(default_factory=dict)
    logprobs: dict[int, list[Logprob]] = field(default_factory=dict)
    refusal_logprobs: dict[int, list[Logprob]] = field(default_factory=dict)
    filters: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    usage: dict[str, Any] | None = None  # the usage object as the file has it
    error: str | None = None  # an error event in the stream: the SDK raises there

    @property
    def usage_tokens(self) -> tuple[int | None, int | None] | None:
        """(prompt, completion) tokens under either API's names."""
        u = self.usage
        if u is None:
            return None
        return (
            u.get("prompt_tokens", u.get("input_tokens")),
            u.get("completion_tokens", u.get("output_tokens")),
        )


def data_lines(path: Path) -> list[Any]:
    """The JSON of every ``data:`` line of an SSE file, ``[DONE]`` left out."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload != "[DONE]":
                out.append(json.loads(payload))
    return out


def oracle(path: Path) -> Oracle:
    """The oracle of one recorded stream (a path, or a name inside ``STREAMS``)."""
    path = path if path.is_absolute() else STREAMS / path
    datas = data_lines(path)
    return _responses(datas) if "responses" in path.name else _chat(datas)


def raw_chat_content(path: Path) -> str:
    """Every ``delta.content`` of a chat stream joined, ``<think>`` tags and all."""
    return "".join(
        (ch.get("delta") or {}).get("content") or ""
        for d in data_lines(path)
        for ch in d.get("choices") or []
    )


def _logprobs(items: list[dict[str, Any]]) -> list[Logprob]:
    return [
        (
            x["token"],
            x["logprob"],
            [(t["token"], t["logprob"]) for t in x.get("top_logprobs") or []],
        )
        for x in items
    ]


def _chat(datas: list[Any]) -> Oracle:
    o = Oracle("chat")
    slots: dict[int, dict[int, list[Any]]] = {}
    for data in datas:
        if data.get("error"):  # the SDK raises on this chunk: it and the rest never arrive
            o.error = data["error"]["message"]
            break
        o.datas.append(data)
        for ch in data.get("choices") or []:
            i = ch["index"]
            delta = ch.get("delta") or {}
            o.text[i] = o.text.get(i, "") + (delta.get("content") or "")
            if delta.get("refusal"):
                o.refusal[i] = o.refusal.get(i, "") + delta["refusal"]
            r = delta.get("reasoning_content") or delta.get("reasoning")
            if r:
                o.reasoning[i] = o.reasoning.get(i, "") + r
            for tc in delta.get("tool_calls") or []:
                slot = slots.setdefault(i, {}).setdefault(tc["index"], [None, None, ""])
                fn = tc.get("function") or {}
                slot[0] = tc.get("id") or slot[0]
                slot[1] = fn.get("name") or slot[1]
                slot[2] += fn.get("arguments") or ""
            lp = ch.get("logprobs") or {}
            o.logprobs.setdefault(i, []).extend(_logprobs(lp.get("content") or []))
            o.refusal_logprobs.setdefault(i, []).extend(_logprobs(lp.get("refusal") or []))
            if ch.get("content_filter_results"):
                o.filters.setdefault(i, []).append(ch["content_filter_results"])
            if ch.get("finish_reason"):
                o.finish[i] = ch["finish_reason"]
        if data.get("usage"):
            o.usage = data["usage"]
    o.tools = {i: [tuple(v) for _, v in sorted(d.items())] for i, d in slots.items()}
    for i, text in list(o.text.items()):  # <think>...</think> inline reasoning (open models)
        head, sep, rest = text.lstrip().partition("</think>")
        if sep and head.startswith("<think>"):
            o.reasoning[i] = o.reasoning.get(i, "") + head[len("<think>") :].lstrip("\n")
            o.text[i] = rest.lstrip("\n")
    return o


def _responses(datas: list[Any]) -> Oracle:
    o = Oracle("responses", datas=datas)
    final = next(d["response"] for d in datas if d.get("type") == "response.completed")
    texts, summaries, tools = [], [], []
    for item in final["output"]:
        if item["type"] == "message":
            texts += [c["text"] for c in item["content"] if c["type"] == "output_text"]
        elif item["type"] == "function_call":
            tools.append((item["call_id"], item["name"], item["arguments"]))
        elif item["type"] == "reasoning":
            summaries += [s["text"] for s in item.get("summary") or []]
    o.text = {0: "".join(texts)}
    if summaries:
        o.reasoning = {0: "\n\n".join(summaries)}  # summary parts kept apart as paragraphs
    if tools:
        o.tools = {0: tools}
    o.finish = {0: "tool_calls" if tools else "stop"}
    o.logprobs = {
        0: [
            tok
            for d in datas
            if d.get("type") == "response.output_text.delta"
            for tok in _logprobs(d.get("logprobs") or [])
        ]
    }
    o.usage = final.get("usage")
    return o

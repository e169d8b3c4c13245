"""What a correct consumer must end up with for each native recording in
../shared/streams/providers, computed from the raw file with a hand-written SSE / NDJSON reader
and plain ``json``, folded by hand: independent of nbstream's adapters (nothing imported from
``nbstream``), so tests comparing against it check the adapters, not a copy of them.

Vocabulary of the expectation (what nbstream promises for every provider): ``text``,
``reasoning``, ``refusal``, ``tools`` as ``(id, name, arguments JSON text)`` (compared parsed),
``status`` (``done`` | ``incomplete`` | ``error``), ``finish`` in OpenAI's words (``stop``,
``length``, ``tool_calls``...), ``usage`` as ``(prompt, completion)`` tokens where prompt counts
cached tokens, ``chunks`` = the chunks the SDK yields (the log must hold each as received).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDERS = Path(__file__).resolve().parents[1].parent / "shared" / "streams" / "providers"


@dataclass
class Expect:
    text: str = ""
    reasoning: str = ""
    refusal: str | None = None
    tools: list[tuple[str | None, str | None, Any]] = field(default_factory=list)  # args parsed
    status: str = "done"
    finish: str | None = None
    usage: tuple[int | None, int | None] | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    chunks: list[Any] = field(default_factory=list)
    error: str | None = None  # the provider's error message (status "error")
    model: str | None = None
    response_id: str | None = None


def sse_events(path: Path) -> list[tuple[str | None, str]]:
    """``(event, data)`` of each SSE event: blocks split at blank lines (LF or CRLF)."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    out = []
    for block in text.split("\n\n"):
        event, datas = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                datas.append(line[5:].removeprefix(" "))
        if datas:
            out.append((event, "\n".join(datas)))
    return out


def ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# ---- Anthropic ----------------------------------------------------------------------------


def anthropic(path: Path) -> Expect:
    e = Expect()
    tools: dict[int, list[Any]] = {}
    start_usage: dict[str, Any] = {}
    usage: dict[str, Any] = {}
    for event, data in sse_events(path):
        if event == "ping":
            continue  # the SDK drops pings
        d = json.loads(data)
        e.chunks.append(d)
        t = d["type"]
        if t == "message_start":
            e.model, e.response_id = d["message"]["model"], d["message"]["id"]
            start_usage = d["message"].get("usage") or {}
        elif t == "content_block_start":
            b = d["content_block"]
            if b["type"] == "text":
                e.text += b.get("text", "")
            elif b["type"] == "thinking":
                e.reasoning += b.get("thinking", "")
            elif b["type"] == "tool_use":
                tools[d["index"]] = [b["id"], b["name"], "", b.get("input")]
        elif t == "content_block_delta":
            delta = d["delta"]
            if delta["type"] == "text_delta":
                e.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                e.reasoning += delta["thinking"]
            elif delta["type"] == "input_json_delta" and d["index"] in tools:
                tools[d["index"]][2] += delta["partial_json"]
        elif t == "message_delta":
            reason = d["delta"].get("stop_reason")
            e.finish = {
                "end_turn": "stop",
                "stop_sequence": "stop",
                "max_tokens": "length",
                "tool_use": "tool_calls",
            }.get(reason, reason)
            e.status = "incomplete" if reason in ("max_tokens", "pause_turn") else "done"
            if reason == "refusal":
                e.refusal = d["delta"]["stop_details"]["explanation"]
            usage = {
                **start_usage,
                **{k: v for k, v in (d.get("usage") or {}).items() if v is not None},
            }
    e.tools = [
        (tid, name, json.loads(args) if args else (start_input or {}))
        for tid, name, args, start_input in (tools[i] for i in sorted(tools))
    ]
    if usage:
        prompt = sum(
            usage.get(k) or 0
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        e.usage = (prompt, usage["output_tokens"])
        e.cached_tokens = usage.get("cache_read_input_tokens")
        e.reasoning_tokens = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    return e


def expect(name: str) -> Expect:
    path = PROVIDERS / name
    provider = name.split("-", 1)[0]
    return {"anthropic": anthropic}[provider](path)

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
    hosted: list[tuple[str, str, Any, str]] | None = None  # (kind, id, input parsed, status)
    citations: list[str] | None = None  # cited URLs, each once, first seen first
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
    hosted: dict[int, list[Any]] = {}  # block index -> [kind, id, input text, status]
    urls: list[str] = []
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
            elif b["type"] == "server_tool_use":
                hosted[d["index"]] = [b["name"], b["id"], "", "in_progress"]
            elif b["type"].endswith("_tool_result"):
                for h in hosted.values():
                    if h[1] == b["tool_use_id"]:
                        h[3] = "completed"
        elif t == "content_block_delta":
            delta = d["delta"]
            if delta["type"] == "text_delta":
                e.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                e.reasoning += delta["thinking"]
            elif delta["type"] == "input_json_delta" and d["index"] in tools:
                tools[d["index"]][2] += delta["partial_json"]
            elif delta["type"] == "input_json_delta" and d["index"] in hosted:
                hosted[d["index"]][2] += delta["partial_json"]
            elif delta["type"] == "citations_delta":
                url = delta["citation"].get("url")
                if url and url not in urls:
                    urls.append(url)
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
    e.hosted = [(k, i, json.loads(text), status) for k, i, text, status in hosted.values()]
    e.citations = urls
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


# ---- Gemini -------------------------------------------------------------------------------


def gemini_chunks(path: Path) -> list[dict[str, Any]]:
    """The chunks of an ``alt=sse`` body, or of a JSON-array body (``[{..}\n,\r\n{..}]``)."""
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return [json.loads(data) for _, data in sse_events(path)]


def gemini_interactions(path: Path) -> Expect:
    """The Interactions API: read from the named events."""
    e = Expect()
    for event, data in sse_events(path):
        if data == "[DONE]":
            continue
        d = json.loads(data)
        e.chunks.append(d)
        if event == "interaction.created":
            e.model, e.response_id = d["interaction"]["model"], d["interaction"]["id"]
        if event == "step.delta":
            delta = d["delta"]
            if delta["type"] == "text":
                e.text += delta["text"]
            elif delta["type"] == "thought_summary":
                e.reasoning += delta["content"]["text"]
        if event == "interaction.completed":
            u = d["interaction"]["usage"]
            e.usage = (
                u["total_input_tokens"],
                u["total_output_tokens"] + u["total_thought_tokens"],
            )
            e.reasoning_tokens, e.cached_tokens = (
                u["total_thought_tokens"],
                u["total_cached_tokens"],
            )
            e.finish = "stop" if d["interaction"]["status"] == "completed" else None
    return e


def gemini(path: Path) -> Expect:
    if "interactions" in path.name:
        return gemini_interactions(path)
    e = Expect()
    calls: list[Any] = []
    streaming: dict[str, Any] | None = None
    for d in gemini_chunks(path):
        e.chunks.append(d)
        if e.model is None:
            e.model, e.response_id = d.get("modelVersion"), d.get("responseId")
        for cand in d.get("candidates", []):
            for part in cand.get("content", {}).get("parts", []):
                if "text" in part:
                    if part.get("thought"):
                        e.reasoning += part["text"]
                    else:
                        e.text += part["text"]
                if "executableCode" in part:
                    e.text += "\n```python\n" + part["executableCode"]["code"].rstrip() + "\n```\n"
                if "codeExecutionResult" in part:
                    out = part["codeExecutionResult"].get("output", "")
                    if out:
                        e.text += "\n```\n" + out.rstrip() + "\n```\n"
                fc = part.get("functionCall")
                if fc is None:
                    continue
                if fc.get("name") and fc.get("willContinue"):
                    streaming = {"name": fc["name"], "id": fc.get("id"), "args": {}}
                elif fc.get("name"):
                    calls.append((fc.get("id"), fc["name"], fc.get("args", {})))
                elif streaming is not None:
                    for pa in fc.get("partialArgs", []):
                        key = pa["jsonPath"].removeprefix("$.")
                        if "stringValue" in pa:
                            streaming["args"][key] = (
                                streaming["args"].get(key, "") + pa["stringValue"]
                            )
                        else:
                            value = next(v for k, v in pa.items() if k.endswith("Value"))
                            streaming["args"][key] = value
                    if not fc.get("willContinue"):
                        calls.append((streaming["id"], streaming["name"], streaming["args"]))
                        streaming = None
            reason = cand.get("finishReason")
            if reason:
                e.finish = {"STOP": "tool_calls" if calls else "stop", "MAX_TOKENS": "length"}.get(
                    reason, "content_filter" if reason == "SAFETY" else reason.lower()
                )
                e.status = "incomplete" if reason in ("MAX_TOKENS", "SAFETY") else "done"
        u = d.get("usageMetadata")
        if u:
            out_tokens = u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0)
            e.usage = (u.get("promptTokenCount"), out_tokens)
            e.reasoning_tokens = u.get("thoughtsTokenCount")
            e.cached_tokens = u.get("cachedContentTokenCount")
    e.tools = calls
    return e


# ---- Ollama -------------------------------------------------------------------------------


def ollama(path: Path) -> Expect:
    e = Expect()
    lines = ndjson(path) if path.suffix == ".ndjson" else [json.loads(path.read_text())]
    for d in lines:
        e.chunks.append(d)
        e.model = e.model or d.get("model")
        msg = d.get("message", {})
        e.text += msg.get("content", "") + d.get("response", "")
        e.reasoning += msg.get("thinking", "") + d.get("thinking", "")
        for call in msg.get("tool_calls", []):
            e.tools.append(
                (call.get("id"), call["function"]["name"], call["function"]["arguments"])
            )
        if d["done"]:
            e.finish = "tool_calls" if e.tools and d["done_reason"] == "stop" else d["done_reason"]
            e.usage = (d.get("prompt_eval_count"), d["eval_count"])
    return e


# ---- Cohere -------------------------------------------------------------------------------


def cohere(path: Path) -> Expect:
    e = Expect()
    finish = {"COMPLETE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
    if path.suffix == ".ndjson":  # legacy v1 stream-json
        for d in ndjson(path):
            e.chunks.append(d)
            if d["event_type"] == "stream-start":
                e.response_id = d["generation_id"]
            elif d["event_type"] == "text-generation":
                e.text += d["text"]
            elif d["event_type"] == "stream-end":
                e.finish = finish[d["finish_reason"]]
                billed = d["response"]["meta"]["billed_units"]
                e.usage = (billed["input_tokens"], billed["output_tokens"])
        return e
    calls: dict[int, list[Any]] = {}
    for event, data in sse_events(path):
        if data == "[DONE]":
            continue
        d = json.loads(data)
        e.chunks.append(d)
        msg = d.get("delta", {}).get("message", {})
        if event == "message-start":
            e.response_id = d["id"]
        elif event == "content-delta":
            e.text += msg["content"].get("text", "")
            e.reasoning += msg["content"].get("thinking", "")
        elif event == "tool-plan-delta":
            e.reasoning += msg["tool_plan"]
        elif event == "tool-call-start":
            tc = msg["tool_calls"]
            calls[d["index"]] = [tc["id"], tc["function"]["name"], tc["function"]["arguments"]]
        elif event == "tool-call-delta":
            calls[d["index"]][2] += msg["tool_calls"]["function"]["arguments"]
        elif event == "message-end":
            delta = d["delta"]
            if delta["finish_reason"] == "ERROR":
                e.status, e.error = "error", delta["error"]
            else:
                e.finish = finish[delta["finish_reason"]]
            tokens = (delta.get("usage") or {}).get("tokens")
            if tokens:
                e.usage = (tokens["input_tokens"], tokens["output_tokens"])
                e.cached_tokens = delta["usage"].get("cached_tokens")
    e.tools = [(i, n, json.loads(a)) for i, n, a in (calls[k] for k in sorted(calls))]
    return e


# ---- Mistral (OpenAI-like chat chunks) -----------------------------------------------------


def mistral(path: Path) -> Expect:
    e = Expect()
    calls: list[Any] = []
    for _, data in sse_events(path):
        if data == "[DONE]":
            continue
        d = json.loads(data)
        e.chunks.append(d)
        e.model, e.response_id = e.model or d.get("model"), e.response_id or d.get("id")
        for ch in d["choices"]:
            delta = ch.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                e.text += content
            for block in content if isinstance(content, list) else []:
                if block["type"] == "text":
                    e.text += block["text"]
                elif block["type"] == "thinking":
                    e.reasoning += "".join(t["text"] for t in block["thinking"])
            for tc in delta.get("tool_calls") or []:
                fn = tc["function"]
                calls.append((tc.get("id"), fn["name"], json.loads(fn["arguments"])))
            if ch.get("finish_reason"):
                e.finish = ch["finish_reason"]
                e.status = "incomplete" if e.finish == "length" else "done"
        if d.get("usage"):
            e.usage = (d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"])
    e.tools = calls
    return e


def expect(name: str) -> Expect:
    path = PROVIDERS / name
    provider = name.split("-", 1)[0]
    return {
        "anthropic": anthropic,
        "gemini": gemini,
        "ollama": ollama,
        "cohere": cohere,
        "mistral": mistral,
    }[provider](path)

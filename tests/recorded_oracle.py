"""What a correct consumer must end up with for a recorded stream of ../shared/streams (and of
../shared/streams/more).

Computed from the file's ``data:`` lines with plain ``json`` and folded by hand, independent of
nbstream's adapters, so the tests that compare against it (tests/test_sources_recorded.py,
tests/test_rich_answers.py, tests/browser/test_rich_answers.py) check the adapters, not a copy of
them. Chat streams are folded delta by delta; Responses streams are read from the final response
object (``response.completed`` / ``.incomplete`` / ``.failed``), not from the deltas nbstream reads.

Conventions the adapters must meet (the issue's, written down here once):

- reasoning is whatever the provider calls it: ``reasoning_content``, ``reasoning``, else the text
  of ``reasoning_details`` (``reasoning.text`` / ``reasoning.summary``; encrypted ones carry none),
  Mistral ``thinking`` blocks in a list-shaped ``content``, Responses summaries and reasoning text
  (parts and items kept apart as paragraphs);
- separate Responses message items are paragraphs (``"\n\n"`` between them), never glued;
- usage is the last ``usage`` object, else Groq's ``x_groq.usage``;
- hosted tools (Responses ``*_call`` items the server runs, ``mcp_list_tools``, Groq's
  ``executed_tools``) are ``(id, kind, status, input)``: kind is the item type without ``_call``,
  input what the model sent the tool (code, MCP arguments, the search query or queries);
- citations are ``(url or file id, title or filename)``, first seen first, each once;
- status: ``error`` when the server reported one in the stream, ``incomplete`` when a choice was
  cut (``length``, ``response.incomplete``) or a chat stream ended with neither a finish reason nor
  ``[DONE]``, else ``done``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STREAMS = Path(__file__).resolve().parents[1].parent / "shared" / "streams"
MORE = STREAMS / "more"
HOSTED_TYPES = {
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "mcp_call",
    "mcp_list_tools",
    "image_generation_call",
    "local_shell_call",
    "computer_call",
}

Logprob = tuple[str, float, list[tuple[str, float]]]
ToolCall = tuple[str | None, str | None, str]  # (id, name, arguments)
Hosted = tuple[str | None, str, str | None, str]  # (id, kind, status, input)
Citation = tuple[str, str | None]  # (url or file id, title or filename)


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
    custom: set[str] = field(default_factory=set)  # ids of freeform (custom) tool calls
    hosted: dict[int, list[Hosted]] = field(default_factory=dict)
    citations: dict[int, list[Citation]] = field(default_factory=dict)
    done_marker: bool = False  # the body ends with ``data: [DONE]``
    incomplete: bool = False  # Responses: ``response.incomplete``
    raised: bool = False  # the error came as a data line with an ``error`` object (SDK raises)

    @property
    def status(self) -> str:
        """The run's final status a correct consumer reports."""
        if self.error:
            return "error"
        if self.incomplete or "length" in self.finish.values():
            return "incomplete"
        if self.api == "chat" and not self.done_marker:
            n = max([*self.text, *self.finish, *self.tools, *self.refusal, *self.reasoning, -1])
            if any(i not in self.finish for i in range(n + 1)):
                return "incomplete"
        return "done"

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
    o = _responses(datas) if "responses" in path.name else _chat(datas)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("data:")]
    o.done_marker = bool(lines) and lines[-1][5:].strip() == "[DONE]"
    return o


def raw_chat_content(path: Path) -> str:
    """Every ``delta.content`` of a chat stream joined, ``<think>`` tags and all."""
    return "".join(
        _content_text((ch.get("delta") or {}).get("content"))[0]
        for d in data_lines(path)
        for ch in d.get("choices") or []
    )


def _content_text(content: Any) -> tuple[str, str]:
    """(answer text, thinking text) of a ``delta.content``: a string, or a list of blocks
    (Mistral: ``{"type":"text","text"}`` and ``{"type":"thinking","thinking":[{"text"}]}``)."""
    if isinstance(content, str):
        return content, ""
    text = thinking = ""
    for block in content or []:
        if block.get("type") == "text":
            text += block.get("text") or ""
        elif block.get("type") == "thinking":
            inner = block.get("thinking")
            if isinstance(inner, str):
                thinking += inner
            else:
                thinking += "".join(b.get("text") or "" for b in inner or [])
    return text, thinking


def _details_text(details: Any) -> str:
    """The readable text of ``reasoning_details`` (OpenRouter, Snowflake); encrypted: none."""
    out = ""
    for d in details or []:
        if d.get("type") == "reasoning.text":
            out += d.get("text") or ""
        elif d.get("type") == "reasoning.summary":
            out += d.get("summary") or ""
    return out


def _add_citation(o: Oracle, i: int, key: str | None, title: str | None) -> None:
    if key and all(c[0] != key for c in o.citations.get(i, [])):
        o.citations.setdefault(i, []).append((key, title or None))


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
            o.raised = True
            break
        o.datas.append(data)
        for ch in data.get("choices") or []:
            i = ch["index"]
            delta = ch.get("delta") or {}
            text, thinking = _content_text(delta.get("content"))
            o.text[i] = o.text.get(i, "") + text
            if delta.get("refusal"):
                o.refusal[i] = o.refusal.get(i, "") + delta["refusal"]
            r = delta.get("reasoning_content") or delta.get("reasoning")
            r = (r if isinstance(r, str) else "") or _details_text(delta.get("reasoning_details"))
            if r or thinking:
                o.reasoning[i] = o.reasoning.get(i, "") + r + thinking
            for ann in delta.get("annotations") or []:
                cite = ann.get("url_citation") or {}
                _add_citation(o, i, cite.get("url"), cite.get("title"))
            for url in data.get("citations") or []:  # Perplexity: the source list, per chunk
                _add_citation(o, i, url, None)
            for tool in delta.get("executed_tools") or []:  # Groq compound: server-side tools
                args = tool.get("arguments") or ""
                hosted = o.hosted.setdefault(i, [])
                status = "completed" if tool.get("output") is not None else "in_progress"
                entry = (None, tool.get("type") or "tool", status, args)
                pos = tool.get("index", len(hosted))
                if pos < len(hosted):
                    hosted[pos] = entry
                else:
                    hosted.append(entry)
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
        elif (data.get("x_groq") or {}).get("usage"):
            o.usage = data["x_groq"]["usage"]
    o.tools = {i: [tuple(v) for _, v in sorted(d.items())] for i, d in slots.items()}
    for i, text in list(o.text.items()):  # <think>...</think> inline reasoning (open models)
        head, sep, rest = text.lstrip().partition("</think>")
        if sep and head.startswith("<think>"):
            o.reasoning[i] = o.reasoning.get(i, "") + head[len("<think>") :].lstrip("\n")
            o.text[i] = rest.lstrip("\n")
    return o


def _responses(datas: list[Any]) -> Oracle:
    o = Oracle("responses")
    for data in datas:
        if isinstance(data.get("error"), dict):  # an error event: the SDK raises there
            o.error = data["error"].get("message")
            o.raised = True
            break
        o.datas.append(data)
    ends = {"response.completed", "response.incomplete", "response.failed"}
    final = next((d["response"] for d in o.datas if d.get("type") in ends), None)
    if final is None:
        return o
    if final.get("status") == "failed":
        o.error = o.error or (final.get("error") or {}).get("message")
    o.incomplete = final.get("status") == "incomplete"
    messages, reasoning, tools, hosted = [], [], [], []
    for item in final.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            texts = [c["text"] for c in item["content"] if c["type"] == "output_text"]
            refusals = [c["refusal"] for c in item["content"] if c["type"] == "refusal"]
            if "".join(texts):
                messages.append("".join(texts))
            if refusals:
                o.refusal[0] = o.refusal.get(0, "") + "".join(refusals)
            for c in item["content"]:
                for ann in c.get("annotations") or []:
                    if ann.get("type") == "url_citation":
                        _add_citation(o, 0, ann.get("url"), ann.get("title"))
                    elif ann.get("type") in ("file_citation", "container_file_citation"):
                        _add_citation(o, 0, ann.get("file_id"), ann.get("filename"))
        elif kind == "function_call":
            tools.append((item["call_id"], item["name"], item["arguments"]))
        elif kind == "custom_tool_call":
            tools.append((item["call_id"], item["name"], item["input"]))
            o.custom.add(item["call_id"])
        elif kind == "reasoning":
            reasoning += [s["text"] for s in item.get("summary") or [] if s.get("text")]
            reasoning += [c["text"] for c in item.get("content") or [] if c.get("text")]
        elif kind in HOSTED_TYPES:
            action = item.get("action") or {}
            given = (
                item.get("code")
                or item.get("arguments")
                or action.get("query")
                or "\n".join(item.get("queries") or [])
                or ""
            )
            status = item.get("status") or "completed"
            hosted.append((item.get("id"), kind.removesuffix("_call"), status, given))
    if messages:
        o.text = {0: "\n\n".join(messages)}  # separate message items are paragraphs
    if reasoning:
        o.reasoning = {0: "\n\n".join(reasoning)}  # summary parts kept apart as paragraphs
    if tools:
        o.tools = {0: tools}
    if hosted:
        o.hosted = {0: hosted}
    if final.get("status") == "completed":
        o.finish = {0: "tool_calls" if tools else "stop"}
    elif o.incomplete:
        o.finish = {0: (final.get("incomplete_details") or {}).get("reason") or "incomplete"}
    o.logprobs = {
        0: [
            tok
            for d in o.datas
            if d.get("type") == "response.output_text.delta"
            for tok in _logprobs(d.get("logprobs") or [])
        ]
    }
    o.usage = final.get("usage")
    return o

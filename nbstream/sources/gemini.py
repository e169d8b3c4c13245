"""Google Gen AI (``generate_content_stream``) chunks -> events: a pure state machine over each
``GenerateContentResponse`` as its wire JSON (camelCase), live or replayed.

Parts: ``text`` -> text, ``thought: true`` -> reasoning, ``functionCall`` -> a tool call (whole
``args``, or Vertex's streamed ``partialArgs`` assembled until ``willContinue`` ends), code
execution parts -> fenced code in the text (they are part of the answer). ``usageMetadata`` is
cumulative on every chunk (the last wins); completion tokens count the thoughts, as OpenAI's do.
Finish reasons: ``STOP`` -> ``stop`` (``tool_calls`` when it called a function), ``MAX_TOKENS``
-> ``length`` (incomplete), ``SAFETY`` & co -> ``content_filter`` with the safety ratings. A
blocked prompt (``promptFeedback.blockReason``) is an error with its reason.
"""

from __future__ import annotations

import json
from typing import Any

from nbstream.events import (
    ContentFilter,
    Event,
    Failed,
    Finished,
    ReasoningDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

KIND = "gemini"
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "FINISH_REASON_UNSPECIFIED": None}
# the SDK's dump carries what it added, not what the server sent
SDK_FIELDS = ("sdkHttpResponse", "automaticFunctionCallingHistory", "parsed")


def usage_of(u: dict[str, Any]) -> Usage:
    thoughts = u.get("thoughtsTokenCount")
    candidates = u.get("candidatesTokenCount")
    completion = None
    if candidates is not None or thoughts is not None:
        completion = (candidates or 0) + (thoughts or 0)
    return Usage(
        prompt_tokens=u.get("promptTokenCount"),
        completion_tokens=completion,
        total_tokens=u.get("totalTokenCount"),
        reasoning_tokens=thoughts,
        cached_tokens=u.get("cachedContentTokenCount"),
        extra=dict(u),
    )


def _flagged(ratings: Any) -> bool:
    """True when a safety rating is more than negligible or blocked."""
    return any(
        isinstance(r, dict)
        and (r.get("blocked") or r.get("probability") not in (None, "NEGLIGIBLE"))
        for r in ratings or ()
    )


def to_raw(item: Any) -> Any:
    """A ``GenerateContentResponse`` as the JSON the API sent (camelCase), SDK additions off."""
    from nbstream.sources.native import dump

    data = dump(item)
    if isinstance(data, dict):
        for name in SDK_FIELDS:
            data.pop(name, None)
    return data


class GeminiAdapter:
    """``handle(chunk_dict) -> list[Event]``; numbers function calls per candidate."""

    kind = KIND

    def __init__(self) -> None:
        self._started = False
        self._tools: dict[int, int] = {}  # candidate -> function calls so far
        self._partial: dict[int, dict[str, Any]] = {}  # candidate -> call being streamed

    def handle(self, d: dict[str, Any]) -> list[Event]:
        if "event_type" in d:
            return self._interaction(d)
        events: list[Event] = []
        if not self._started:
            self._started = True
            events.append(
                Started(model=d.get("modelVersion") or None, response_id=d.get("responseId"))
            )
        feedback = d.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            events.append(ContentFilter(results={"prompt_feedback": feedback}, choice=None))
            reason = feedback.get("blockReasonMessage") or feedback["blockReason"]
            events.append(Failed(f"prompt blocked: {reason}", code=feedback["blockReason"]))
        for cand in d.get("candidates") or ():
            i = cand.get("index") or 0
            for part in (cand.get("content") or {}).get("parts") or ():
                self._part(events, part, i)
            ratings = cand.get("safetyRatings")
            reason = cand.get("finishReason")
            if ratings and (_flagged(ratings) or reason in FILTERED):
                events.append(ContentFilter(results={"safety_ratings": ratings}, choice=i))
            if reason:
                self._flush_partial(events, i)
                if reason in FILTERED:
                    finish: str | None = "content_filter"
                elif reason == "STOP" and self._tools.get(i):
                    finish = "tool_calls"
                else:
                    finish = FINISH.get(reason, str(reason).lower())
                events.append(Finished(finish, i))
        if d.get("usageMetadata"):
            events.append(usage_of(d["usageMetadata"]))
        return events

    def _interaction(self, d: dict[str, Any]) -> list[Event]:
        """The Interactions API (``client.interactions.create(stream=True)``): named events,
        ``step.delta`` of type ``text`` / ``thought_summary``, usage under ``usage``."""
        etype = d["event_type"]
        if etype == "step.delta":
            delta = d.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text" and delta.get("text"):
                return [TextDelta(delta["text"])]
            if dtype == "thought_summary":
                text = (delta.get("content") or {}).get("text")
                return [ReasoningDelta(text)] if text else []
            return []  # thought_signature and what comes later
        interaction = d.get("interaction") or {}
        if etype == "interaction.created":
            return [Started(model=interaction.get("model"), response_id=interaction.get("id"))]
        if etype == "interaction.completed":
            events: list[Event] = []
            u = interaction.get("usage")
            if u:
                out, thought = u.get("total_output_tokens"), u.get("total_thought_tokens")
                completion = (out or 0) + (thought or 0) if out is not None else None
                events.append(
                    Usage(
                        prompt_tokens=u.get("total_input_tokens"),
                        completion_tokens=completion,
                        total_tokens=u.get("total_tokens"),
                        reasoning_tokens=thought,
                        cached_tokens=u.get("total_cached_tokens"),
                        extra=dict(u),
                    )
                )
            status = interaction.get("status")
            if status == "failed":
                events.append(Failed(f"interaction {status}", code=status))
            else:
                reason = {"completed": "stop", "requires_action": "tool_calls"}.get(str(status))
                events.append(Finished(reason or ("length" if status == "incomplete" else status)))
            return events
        return []

    def _part(self, events: list[Event], part: dict[str, Any], i: int) -> None:
        text = part.get("text")
        if text:
            events.append(ReasoningDelta(text, i) if part.get("thought") else TextDelta(text, i))
        call = part.get("functionCall")
        if call is not None:
            self._call(events, call, i)
        code = part.get("executableCode")
        if code and code.get("code"):
            lang = str(code.get("language") or "").lower()
            lang = "python" if lang in ("", "python", "language_unspecified") else lang
            events.append(TextDelta(f"\n```{lang}\n{code['code'].rstrip()}\n```\n", i))
        result = part.get("codeExecutionResult")
        if result and result.get("output"):
            events.append(TextDelta(f"\n```\n{result['output'].rstrip()}\n```\n", i))

    def _call(self, events: list[Event], call: dict[str, Any], i: int) -> None:
        partial = self._partial.get(i)
        if call.get("name") and call.get("willContinue"):  # Vertex: arguments stream next
            self._flush_partial(events, i)
            self._partial[i] = {"id": call.get("id"), "name": call["name"], "args": {}}
            return
        if partial is not None and not call.get("name"):
            for arg in call.get("partialArgs") or ():
                _set_path(partial["args"], arg)
            if not call.get("willContinue"):  # the empty ``functionCall: {}`` ends it
                self._flush_partial(events, i)
            return
        if call.get("name"):
            self._flush_partial(events, i)
            idx = self._next_tool(i)
            args = json.dumps(call.get("args") or {})
            events.append(ToolCallDelta(idx, args, call.get("id"), call["name"], i))

    def _flush_partial(self, events: list[Event], i: int) -> None:
        partial = self._partial.pop(i, None)
        if partial is not None:
            idx = self._next_tool(i)
            args = json.dumps(partial["args"])
            events.append(ToolCallDelta(idx, args, partial["id"], partial["name"], i))

    def _next_tool(self, i: int) -> int:
        n = self._tools.get(i, 0)
        self._tools[i] = n + 1
        return n

    def end(self) -> list[Event]:
        events: list[Event] = []
        for i in list(self._partial):
            self._flush_partial(events, i)
        return events


_VALUE_KEYS = ("stringValue", "numberValue", "boolValue", "nullValue", "listValue", "structValue")


def _set_path(args: dict[str, Any], arg: dict[str, Any]) -> None:
    """Apply one Vertex ``partialArgs`` item (``$.a.b`` path, string values streamed in pieces)."""
    path = str(arg.get("jsonPath") or "$").removeprefix("$").strip(".")
    keys = [k for k in path.split(".") if k] or ["_"]
    target = args
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    key = keys[-1]
    for name in _VALUE_KEYS:
        if name in arg:
            value = None if name == "nullValue" else arg[name]
            if name == "stringValue" and isinstance(target.get(key), str):
                target[key] += value  # a string streamed in pieces
            else:
                target[key] = value
            return

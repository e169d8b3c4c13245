"""Cohere chat streams -> events: a pure state machine over the events as dicts, v2
(``client.v2.chat_stream``: ``message-start`` ... ``message-end``) and legacy v1
(``client.chat_stream``: ``event_type`` ``text-generation`` ... ``stream-end``).

v2: ``content-delta`` text or ``thinking`` -> text / reasoning, ``tool-plan-delta`` -> reasoning
(the model's plan for its tool calls), ``tool-call-start`` / ``-delta`` -> tool calls,
``message-end`` -> finish (``COMPLETE`` -> ``stop``, ``MAX_TOKENS`` -> ``length``, ``TOOL_CALL``
-> ``tool_calls``) and usage; ``finish_reason: ERROR`` (with ``error``) is the server's error.
"""

from __future__ import annotations

from typing import Any

from nbstream.events import (
    Event,
    Failed,
    Finished,
    ReasoningDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

KIND = "cohere"
FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
    "ERROR_LIMIT": "length",
}


def _usage(usage: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> Usage | None:
    usage = usage or {}
    tokens = usage.get("tokens") or {}
    billed = usage.get("billed_units") or (meta or {}).get("billed_units") or {}
    src = tokens or billed
    if not src and not usage:
        return None
    prompt, completion = src.get("input_tokens"), src.get("output_tokens")
    if prompt is None and completion is None:
        return None
    return Usage(
        prompt_tokens=int(prompt) if prompt is not None else None,
        completion_tokens=int(completion) if completion is not None else None,
        total_tokens=int(prompt + completion)
        if prompt is not None and completion is not None
        else None,
        cached_tokens=usage.get("cached_tokens"),
        extra={"billed_units": billed, **({"tokens": tokens} if tokens else {})},
    )


class CohereAdapter:
    kind = KIND

    def handle(self, d: dict[str, Any]) -> list[Event]:
        etype = d.get("type")
        if etype is None and "event_type" in d:
            return self._v1(d)
        delta = d.get("delta") or {}
        message = delta.get("message") or {}
        if etype == "content-delta":
            content = message.get("content") or {}
            if content.get("thinking"):
                return [ReasoningDelta(content["thinking"])]
            return [TextDelta(content["text"])] if content.get("text") else []
        if etype == "tool-plan-delta":
            plan = message.get("tool_plan")
            return [ReasoningDelta(plan)] if plan else []
        if etype in ("tool-call-start", "tool-call-delta"):
            call = message.get("tool_calls") or {}
            fn = call.get("function") or {}
            args = fn.get("arguments") or ""
            if etype == "tool-call-delta":
                return [ToolCallDelta(d.get("index", 0), args)] if args else []
            return [ToolCallDelta(d.get("index", 0), args, call.get("id"), fn.get("name"))]
        if etype == "message-start":
            return [Started(response_id=d.get("id"))]
        if etype == "message-end":
            events: list[Event] = []
            reason = delta.get("finish_reason")
            usage = _usage(delta.get("usage"))
            if usage is not None:
                events.append(usage)
            if reason == "ERROR" or delta.get("error"):
                message_text = delta.get("error") or "the stream ended with finish_reason ERROR"
                events.append(Failed(str(message_text), code=delta.get("error_type")))
            elif reason:
                events.append(Finished(FINISH.get(reason, str(reason).lower())))
            return events
        return []  # content-start/-end, tool-call-end, citations, debug

    def _v1(self, d: dict[str, Any]) -> list[Event]:
        etype = d["event_type"]
        if etype == "stream-start":
            return [Started(response_id=d.get("generation_id"))]
        if etype == "text-generation":
            return [TextDelta(d["text"])] if d.get("text") else []
        if etype == "stream-end":
            response = d.get("response") or {}
            events: list[Event] = []
            usage = _usage(None, response.get("meta"))
            if usage is not None:
                events.append(usage)
            reason = d.get("finish_reason") or response.get("finish_reason")
            if reason == "ERROR":
                events.append(Failed("the stream ended with finish_reason ERROR"))
            elif reason:
                events.append(Finished(FINISH.get(reason, str(reason).lower())))
            return events
        return []


def to_raw(item: Any) -> Any:
    """A cohere event object as its JSON (the SDK's pydantic models; aliases, no unset)."""
    dump = getattr(item, "model_dump", None) or getattr(item, "dict", None)
    if callable(dump):
        try:
            return dump(mode="json", by_alias=True, exclude_none=True)
        except TypeError:
            return dump(by_alias=True, exclude_none=True)
    return dict(item)

"""Responses API events -> events: a pure state machine over the SDK's ``ResponseStreamEvent``.

Text and refusal deltas, reasoning (summary or full text) deltas, function-call argument deltas,
``response.completed`` with usage, ``response.failed``, ``response.incomplete`` and ``error``.
The Responses API has no ``finish_reason``: a completed response finishes with ``"tool_calls"``
when it called a function and ``"stop"`` otherwise; an incomplete one with its reason.
"""

from __future__ import annotations

from typing import Any

from openai._models import construct_type
from openai.types.responses import ResponseStreamEvent

from nbstream.events import (
    Event,
    Failed,
    Finished,
    LogprobsDelta,
    ReasoningDelta,
    RefusalDelta,
    Started,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
)
from nbstream.sources.openai_chat import usage_event


def event_from_json(data: dict[str, Any]) -> Any:
    """Build a Responses event from its JSON the way the SDK does (unknown types stay lenient)."""
    return construct_type(type_=ResponseStreamEvent, value=data)


def _logprobs(items: Any) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=lp.token,
            logprob=lp.logprob,
            top=tuple((t.token, t.logprob) for t in (getattr(lp, "top_logprobs", None) or ())),
        )
        for lp in items
    )


class ResponsesAdapter:
    """``handle(event) -> list[Event]``; maps each function call's output index to a tool index."""

    kind = "responses"

    def __init__(self) -> None:
        self._tool_index: dict[int, int] = {}
        self._tool_args: dict[int, int] = {}  # tool index -> characters of arguments seen

    def _tool(self, output_index: int) -> int:
        idx = self._tool_index.get(output_index)
        if idx is None:
            idx = self._tool_index[output_index] = len(self._tool_index)
        return idx

    def handle(self, event: Any) -> list[Event]:
        """Events carried by one Responses API event (most carry none: bookkeeping events)."""
        etype = getattr(event, "type", None)
        if etype == "response.output_text.delta":
            out: list[Event] = [TextDelta(event.delta)] if event.delta else []
            lps = getattr(event, "logprobs", None)
            if lps:
                out.append(LogprobsDelta(_logprobs(lps)))
            return out
        if etype in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ReasoningDelta(event.delta)] if event.delta else []
        if etype == "response.reasoning_summary_part.added" and getattr(
            event, "summary_index", 0
        ):  # summary parts are paragraphs: keep them apart
            return [ReasoningDelta("\n\n")]
        if etype == "response.refusal.delta":
            return [RefusalDelta(event.delta)] if event.delta else []
        if etype == "response.function_call_arguments.delta":
            idx = self._tool(event.output_index)
            self._tool_args[idx] = self._tool_args.get(idx, 0) + len(event.delta)
            return [ToolCallDelta(index=idx, arguments=event.delta)]
        if etype in ("response.output_item.added", "response.output_item.done"):
            item = event.item
            if getattr(item, "type", None) != "function_call":
                return []
            idx = self._tool(event.output_index)
            if etype == "response.output_item.added":
                args = item.arguments or ""
                self._tool_args[idx] = len(args)
                return [ToolCallDelta(index=idx, arguments=args, id=item.call_id, name=item.name)]
            if not self._tool_args.get(idx) and item.arguments:  # arguments sent whole at the end
                self._tool_args[idx] = len(item.arguments)
                return [ToolCallDelta(index=idx, arguments=item.arguments)]
            return []
        if etype == "response.created":
            response = event.response
            return [Started(model=response.model or None, response_id=response.id or None)]
        if etype == "response.completed":
            response = event.response
            out = [usage_event(response.usage)] if response.usage is not None else []
            called = any(getattr(o, "type", None) == "function_call" for o in response.output or ())
            out.append(Finished("tool_calls" if called or self._tool_index else "stop"))
            return out
        if etype == "response.incomplete":
            response = event.response
            details = response.incomplete_details
            reason = (details.reason if details else None) or "incomplete"
            out = [usage_event(response.usage)] if response.usage is not None else []
            out.append(Finished(reason))
            out.append(Failed(f"response incomplete: {reason}", code=reason, incomplete=True))
            return out
        if etype == "response.failed":
            response = event.response
            err = response.error
            message = (err.message if err else None) or "response failed"
            usage = [usage_event(response.usage)] if response.usage is not None else []
            return [*usage, Failed(message, code=str(err.code) if err and err.code else None)]
        if etype == "error":
            code = getattr(event, "code", None)
            return [Failed(getattr(event, "message", None) or "error event", code=code)]
        return []

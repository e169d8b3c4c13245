"""LangChain ``AIMessageChunk`` -> events (``chat_model.stream(...)``), a pure state machine
over each chunk's dict (``model_dump``): text (a str ``content`` or its content blocks),
reasoning (``reasoning`` / ``thinking`` blocks, ``additional_kwargs.reasoning_content``),
``tool_call_chunks`` (streamed arguments), ``usage_metadata`` (input/output tokens, cache reads,
reasoning) and the finish reason from ``response_metadata`` (each provider names it its own way).
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

KIND = "langchain"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "STOP": "stop",
    "COMPLETE": "stop",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
    "tool_use": "tool_calls",
}


def is_message_chunk(item: Any) -> bool:
    module = type(item).__module__
    return module.startswith("langchain_core.") and type(item).__name__.endswith("MessageChunk")


def to_raw(item: Any) -> dict[str, Any]:
    raw: dict[str, Any] = item.model_dump(mode="json", exclude_none=True)
    return raw


class LangChainAdapter:
    kind = KIND

    def __init__(self) -> None:
        self._started = False
        self._tool_index: dict[Any, int] = {}
        self._tool_args: set[int] = set()  # tool indexes that received argument text
        self._input = 0
        self._output = 0

    def handle(self, d: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        meta = d.get("response_metadata") or {}
        if not self._started and (d.get("id") or meta.get("model_name") or meta.get("model")):
            self._started = True
            model = meta.get("model_name") or meta.get("model")
            events.append(Started(model=model or None, response_id=d.get("id") or None))
        content = d.get("content")
        if isinstance(content, str):
            if content:
                events.append(TextDelta(content))
        else:
            for block in content or ():
                self._block(events, block)
        extra = d.get("additional_kwargs") or {}
        for name in ("reasoning_content", "reasoning"):
            value = extra.get(name)
            if isinstance(value, str) and value:
                events.append(ReasoningDelta(value))
                break
        for tc in d.get("tool_call_chunks") or ():
            key = tc.get("index") if tc.get("index") is not None else tc.get("id")
            idx = self._tool_index.get(key)
            if idx is None:
                idx = self._tool_index[key] = len(self._tool_index)
            if tc.get("args"):
                self._tool_args.add(idx)
            events.append(
                ToolCallDelta(idx, tc.get("args") or "", tc.get("id"), tc.get("name") or None)
            )
        reason = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
        if reason:
            events.extend(self.end())
            finish = FINISH.get(reason, reason)
            events.append(
                Finished("tool_calls" if finish == "stop" and self._tool_index else finish)
            )
            if reason == "pause_turn":  # Anthropic paused a long turn: not an answer yet
                events.append(Failed("pause_turn: the server paused the turn", incomplete=True))
        usage = d.get("usage_metadata")
        if usage:
            # LangChain's chunks carry increments (summed by ``+``): add them up
            self._input += usage.get("input_tokens") or 0
            self._output += usage.get("output_tokens") or 0
            ins = usage.get("input_token_details") or {}
            outs = usage.get("output_token_details") or {}
            events.append(
                Usage(
                    prompt_tokens=self._input,
                    completion_tokens=self._output,
                    total_tokens=self._input + self._output,
                    reasoning_tokens=outs.get("reasoning"),
                    cached_tokens=ins.get("cache_read"),
                    extra=dict(usage),
                )
            )
        return events

    def end(self) -> list[Event]:
        """A tool without arguments streamed none: its arguments are the empty object."""
        events: list[Event] = [
            ToolCallDelta(i, "{}") for i in self._tool_index.values() if i not in self._tool_args
        ]
        self._tool_args.update(self._tool_index.values())
        return events

    @staticmethod
    def _block(events: list[Event], block: Any) -> None:
        if isinstance(block, str):
            if block:
                events.append(TextDelta(block))
            return
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            events.append(TextDelta(block["text"]))
        elif kind == "reasoning" and block.get("reasoning"):
            events.append(ReasoningDelta(block["reasoning"]))
        elif kind == "thinking" and block.get("thinking"):
            events.append(ReasoningDelta(block["thinking"]))

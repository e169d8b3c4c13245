"""Ollama native (``/api/chat``, ``/api/generate``) chunks -> events: a pure state machine over
each NDJSON line as a dict, live (``ollama.Client.chat(stream=True)``) or replayed.

``message.content`` / ``response`` -> text, ``message.thinking`` / ``thinking`` -> reasoning,
``message.tool_calls`` (whole calls with ``arguments`` as an object) -> tool calls. The last line
(``done: true``) carries ``done_reason`` (``stop``, ``length`` -> incomplete; ``stop`` after a
tool call -> ``tool_calls``: Ollama has no reason of its own for it), the token counts
(``prompt_eval_count`` is absent when the prompt was cached) and the durations in ns (kept in
``Usage.extra``). An ``{"error": ...}`` line is the server's error.
"""

from __future__ import annotations

import json
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

KIND = "ollama"
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class OllamaAdapter:
    kind = KIND

    def __init__(self) -> None:
        self._started = False
        self._tools = 0

    def handle(self, d: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if d.get("error"):
            return [Failed(str(d["error"]))]
        if not self._started:
            self._started = True
            events.append(Started(model=d.get("model") or None))
        message = d.get("message") or {}
        thinking = message.get("thinking") or d.get("thinking")
        if thinking:
            events.append(ReasoningDelta(thinking))
        text = message.get("content") or d.get("response")
        if text:
            events.append(TextDelta(text))
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            args = fn.get("arguments")
            text_args = args if isinstance(args, str) else json.dumps(args or {})
            events.append(ToolCallDelta(self._tools, text_args, call.get("id"), fn.get("name")))
            self._tools += 1
        if d.get("done"):
            reason = d.get("done_reason") or "stop"
            if reason == "stop" and self._tools:
                reason = "tool_calls"
            events.append(Finished(reason))
            prompt, completion = d.get("prompt_eval_count"), d.get("eval_count")
            extra = {k: d[k] for k in (*_DURATIONS, "prompt_eval_count", "eval_count") if k in d}
            total = prompt + completion if prompt is not None and completion is not None else None
            events.append(Usage(prompt, completion, total, extra=extra))
        return events


def to_raw(item: Any) -> Any:
    """A ``ChatResponse`` / ``GenerateResponse`` as its JSON line (unset fields left out)."""
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return dict(item)

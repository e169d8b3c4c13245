"""AnswerState: the answer so far, as a pure accumulation of events (no I/O, no clock).

Kept apart from the runner so replay, tests and the widget can rebuild an answer from events alone.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from nbstream.events import (
    ContentFilter,
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
    Usage,
)


class ToolCall:
    """One tool call: ``arguments`` is the raw JSON text; ``parsed`` once complete and valid."""

    __slots__ = ("index", "id", "name", "_parts")

    def __init__(self, index: int, id: str | None = None, name: str | None = None) -> None:
        self.index = index
        self.id = id
        self.name = name
        self._parts: list[str] = []

    def _add(self, fragment: str) -> None:
        self._parts.append(fragment)

    @property
    def arguments(self) -> str:
        """The arguments as streamed so far (JSON text, maybe incomplete)."""
        parts = self._parts
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    @property
    def parsed(self) -> Any:
        """The arguments parsed as JSON, or None when they are not (yet) valid JSON."""
        try:
            return json.loads(self.arguments) if self.arguments else None
        except ValueError:
            return None

    @property
    def valid(self) -> bool:
        """True when the arguments are complete, valid JSON (what the widget flags when not)."""
        return self.arguments_valid

    @property
    def arguments_valid(self) -> bool:
        """False when the arguments are not valid JSON (a model can emit broken arguments)."""
        try:
            json.loads(self.arguments)
        except ValueError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "arguments_valid": self.arguments_valid,
            "parsed": self.parsed,
        }

    def __repr__(self) -> str:
        return (
            f"ToolCall(index={self.index}, id={self.id!r}, name={self.name!r}, "
            f"arguments={self.arguments!r})"
        )


# Text pieces are joined every this many chunks: kept one str object per chunk, a word-sized token
# costs ~50 bytes of object header for ~6 bytes of text (~10x the text on a long stream). Only the
# new pieces are joined (into one more block), never the whole text: re-joining everything would
# copy the whole answer every 4,096 chunks and briefly hold it twice.
COMPACT_EVERY = 4096


# The consumer appends pieces without a lock (one atomic list.append). Joining replaces a range of
# pieces by one string: the consumer's compaction and a reader on another thread (``view.text``
# while a background stream runs) both do it, so they take this lock, and each joins only the
# pieces it counted (``parts[a:n]``): a piece appended meanwhile stays after the joined range
# instead of being overwritten.
_JOIN_LOCK = threading.Lock()


def _compact(parts: list[str], blocks: int) -> int:
    """Join the pieces after the first ``blocks`` joined blocks into one; the new block count."""
    if len(parts) - blocks >= COMPACT_EVERY:
        with _JOIN_LOCK:
            n = len(parts)
            blocks = min(blocks, n - 1)  # a reader may have joined everything meanwhile
            parts[blocks:n] = ["".join(parts[blocks:n])]
        return blocks + 1
    return blocks


@dataclass
class ChoiceState:
    """Everything streamed for one choice (``n > 1`` gives several)."""

    index: int
    _text: list[str] = field(default_factory=list, repr=False)
    _refusal: list[str] = field(default_factory=list, repr=False)
    _reasoning: list[str] = field(default_factory=list, repr=False)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    refusal_logprobs: list[TokenLogprob] = field(default_factory=list)
    content_filter: list[dict[str, Any]] = field(default_factory=list)
    chars: int = 0
    _text_blocks: int = field(default=0, repr=False)  # leading items of _text already joined
    _reasoning_blocks: int = field(default=0, repr=False)

    @staticmethod
    def _joined(parts: list[str]) -> str:
        if len(parts) > 1:
            with _JOIN_LOCK:  # see _compact: the consumer may append while we join
                n = len(parts)
                text = "".join(parts[:n])
                parts[:n] = [text]
            return text
        return parts[0] if parts else ""

    @property
    def text(self) -> str:
        text = self._joined(self._text)
        self._text_blocks = len(self._text)
        return text

    @property
    def refusal(self) -> str | None:
        """The refusal text, or None when the model did not refuse."""
        return self._joined(self._refusal) if self._refusal else None

    @property
    def reasoning(self) -> str:
        text = self._joined(self._reasoning)
        self._reasoning_blocks = len(self._reasoning)
        return text

    def tool(self, index: int) -> ToolCall:
        for call in self.tool_calls:
            if call.index == index:
                return call
        call = ToolCall(index)
        self.tool_calls.append(call)
        return call


class AnswerState:
    """Apply events in order; read ``.text`` (choice 0), ``.choices[i]``, ``.usage``, ``.error``."""

    def __init__(self) -> None:
        self.choices: list[ChoiceState] = []
        self.usage: Usage | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.prompt_filter: list[dict[str, Any]] = []
        self.error: Failed | None = None
        self.first_content: bool = False

    def choice(self, index: int) -> ChoiceState:
        choices = self.choices
        while len(choices) <= index:
            choices.append(ChoiceState(len(choices)))
        return choices[index]

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def chars(self) -> int:
        return sum(c.chars for c in self.choices)

    @property
    def finish_reasons(self) -> dict[int, str | None]:
        return {c.index: c.finish_reason for c in self.choices}

    def apply(self, events: list[Event]) -> None:
        """Fold events into the state (the hot path: plain attribute work, no copies)."""
        for ev in events:
            cls = type(ev)
            if cls is TextDelta:
                c = (
                    self.choice(ev.choice)
                    if ev.choice >= len(self.choices)
                    else self.choices[ev.choice]
                )
                parts = c._text
                parts.append(ev.text)
                if len(parts) - c._text_blocks >= COMPACT_EVERY:
                    c._text_blocks = _compact(parts, c._text_blocks)
                c.chars += len(ev.text)
                self.first_content = True
            elif cls is ReasoningDelta:
                c = self.choice(ev.choice)
                parts = c._reasoning
                parts.append(ev.text)
                if len(parts) - c._reasoning_blocks >= COMPACT_EVERY:
                    c._reasoning_blocks = _compact(parts, c._reasoning_blocks)
                self.first_content = True
            elif cls is RefusalDelta:
                c = self.choice(ev.choice)
                c._refusal.append(ev.text)
                c.chars += len(ev.text)
                self.first_content = True
            elif cls is ToolCallDelta:
                call = self.choice(ev.choice).tool(ev.index)
                if ev.id:
                    call.id = ev.id
                if ev.name:
                    call.name = ev.name
                if ev.arguments:
                    call._add(ev.arguments)
                self.first_content = True
            elif cls is Finished:
                self.choice(ev.choice).finish_reason = ev.reason
            elif cls is Usage:
                self.usage = ev
            elif cls is LogprobsDelta:
                c = self.choice(ev.choice)
                (c.logprobs if ev.kind == "content" else c.refusal_logprobs).extend(ev.tokens)
            elif cls is ContentFilter:
                if ev.choice is None:
                    self.prompt_filter.append(ev.results)
                else:
                    self.choice(ev.choice).content_filter.append(ev.results)
            elif cls is Started:
                self.model = ev.model or self.model
                self.response_id = ev.response_id or self.response_id
            elif cls is Failed:
                self.error = ev

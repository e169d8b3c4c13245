"""AnswerState: the answer so far, as a pure accumulation of events (no I/O, no clock).

Kept apart from the runner so replay, tests and the widget can rebuild an answer from events alone.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from nbstream.events import (
    Citation,
    ContentFilter,
    Event,
    Failed,
    Finished,
    HostedToolDelta,
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
    """One tool call: ``arguments`` is the raw JSON text; ``parsed`` once complete and valid.

    ``kind`` is ``"function"``, or ``"custom"`` for a freeform tool whose input is plain text
    (never flagged invalid for not being JSON)."""

    __slots__ = ("index", "id", "name", "kind", "_parts")

    def __init__(self, index: int, id: str | None = None, name: str | None = None) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.kind = "function"
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
        if self.kind == "custom":
            return True
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
            "kind": self.kind,
            "arguments": self.arguments,
            "arguments_valid": self.arguments_valid,
            "parsed": self.parsed,
        }

    def __repr__(self) -> str:
        return (
            f"ToolCall(index={self.index}, id={self.id!r}, name={self.name!r}, "
            f"arguments={self.arguments!r})"
        )


class HostedTool:
    """A tool the server ran (web search, file search, code interpreter, MCP, image generation),
    folded from :class:`~nbstream.events.HostedToolDelta`: the latest status, the input the model
    gave it, what it returned when the server says (MCP, Groq)."""

    __slots__ = ("index", "kind", "id", "status", "name", "_input", "output", "images")

    def __init__(self, index: int, kind: str) -> None:
        self.index = index
        self.kind = kind
        self.id: str | None = None
        self.status: str | None = None
        self.name: str | None = None
        self._input: list[str] = []
        self.output: str | None = None
        self.images = 0

    @property
    def input(self) -> str:
        if len(self._input) > 1:
            self._input[:] = ["".join(self._input)]
        return self._input[0] if self._input else ""

    def _apply(self, ev: HostedToolDelta) -> None:
        self.kind = ev.kind or self.kind
        if ev.id is not None:
            self.id = ev.id
        if ev.status is not None:
            self.status = ev.status
        if ev.name is not None:
            self.name = ev.name
        if ev.input:
            self._input.append(ev.input)
        if ev.output is not None:
            self.output = ev.output
        if ev.images is not None:
            self.images = ev.images

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "id": self.id,
            "status": self.status,
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "images": self.images,
        }

    def __repr__(self) -> str:
        return f"HostedTool(index={self.index}, kind={self.kind!r}, status={self.status!r})"


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


def join_pieces(parts: list[str]) -> str:
    """The text of pieces a consumer appends on another thread, joined once and kept joined
    (``parts`` becomes one string): only the pieces counted are joined (see ``_JOIN_LOCK``)."""
    if len(parts) > 1:
        with _JOIN_LOCK:
            n = len(parts)
            text = "".join(parts[:n])
            parts[:n] = [text]
        return text
    return parts[0] if parts else ""


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
    hosted_tools: list[HostedTool] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)  # each source once, first seen first
    chars: int = 0
    _text_blocks: int = field(default=0, repr=False)  # leading items of _text already joined
    _reasoning_blocks: int = field(default=0, repr=False)

    @property
    def text(self) -> str:
        text = join_pieces(self._text)
        self._text_blocks = len(self._text)
        return text

    @property
    def refusal(self) -> str | None:
        """The refusal text, or None when the model did not refuse."""
        return join_pieces(self._refusal) if self._refusal else None

    @property
    def reasoning(self) -> str:
        text = join_pieces(self._reasoning)
        self._reasoning_blocks = len(self._reasoning)
        return text

    def peek(self, kind: Literal["text", "reasoning"] = "text") -> str:
        """The text (or reasoning) so far, read from another thread while the consumer may still
        append: joined from a copy of the pieces, which stay as they are (``text`` and
        ``reasoning`` join them in place, for the consumer or once it is done)."""
        return "".join(list(self._text if kind == "text" else self._reasoning))

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
        # ``type(ev) is C``, not isinstance or ``match`` (the events are final dataclasses): the
        # cheapest test per branch, and one the type checker narrows ``ev`` on.
        for ev in events:
            if type(ev) is TextDelta:
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
            elif type(ev) is ReasoningDelta:
                c = self.choice(ev.choice)
                parts = c._reasoning
                parts.append(ev.text)
                if len(parts) - c._reasoning_blocks >= COMPACT_EVERY:
                    c._reasoning_blocks = _compact(parts, c._reasoning_blocks)
                self.first_content = True
            elif type(ev) is RefusalDelta:
                c = self.choice(ev.choice)
                c._refusal.append(ev.text)
                c.chars += len(ev.text)
                self.first_content = True
            elif type(ev) is ToolCallDelta:
                call = self.choice(ev.choice).tool(ev.index)
                if ev.id:
                    call.id = ev.id
                if ev.name:
                    call.name = ev.name
                if ev.arguments:
                    call._add(ev.arguments)
                if ev.kind:
                    call.kind = ev.kind
                self.first_content = True
            elif type(ev) is Finished:
                self.choice(ev.choice).finish_reason = ev.reason
            elif type(ev) is HostedToolDelta:
                c = self.choice(ev.choice)
                tools = c.hosted_tools
                while len(tools) <= ev.index:
                    tools.append(HostedTool(len(tools), ev.kind))
                tools[ev.index]._apply(ev)
                self.first_content = True
            elif type(ev) is Citation:
                c = self.choice(ev.choice)
                if ev.index >= len(c.citations):  # the adapter numbers each source once
                    c.citations.append(ev)
            elif type(ev) is Usage:
                self.usage = ev
            elif type(ev) is LogprobsDelta:
                c = self.choice(ev.choice)
                (c.logprobs if ev.kind == "content" else c.refusal_logprobs).extend(ev.tokens)
            elif type(ev) is ContentFilter:
                if ev.choice is None:
                    self.prompt_filter.append(ev.results)
                else:
                    self.choice(ev.choice).content_filter.append(ev.results)
            elif type(ev) is Started:
                self.model = ev.model or self.model
                self.response_id = ev.response_id or self.response_id
            elif type(ev) is Failed:
                self.error = ev

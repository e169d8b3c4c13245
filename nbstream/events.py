"""Typed events: the one vocabulary every source adapter speaks.

Sources turn whatever they read (OpenAI chunks, Responses API events, plain strings, a replayed
log) into these small frozen records; the runner, the log, the coalescer and the widget only ever
see events. ``choice`` is the index of the choice (``n > 1``); everything defaults to choice 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Started:
    """The upstream answered: model and response id, known from the first chunk."""

    model: str | None = None
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A piece of a refusal (``delta.refusal``): shown as a refusal, not as text."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of reasoning: ``delta.reasoning``/``reasoning_content`` or a Responses summary."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call. ``id``/``name`` arrive once, ``arguments`` in fragments."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    choice: int = 0


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One token with its log-probability and the top alternatives ``(token, logprob)``."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class LogprobsDelta:
    """Log-probabilities for tokens just streamed; ``kind`` says whether of content or refusal."""

    tokens: tuple[TokenLogprob, ...]
    choice: int = 0
    kind: str = "content"


@dataclass(frozen=True, slots=True)
class ContentFilter:
    """Azure content-filter results for a choice (or for the prompt when ``choice`` is None)."""

    results: dict[str, Any]
    choice: int | None = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage as the server reported it. A field the server did not report is ``None``."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finished:
    """A choice ended with ``reason`` (``stop``, ``length``, ``tool_calls``, ``content_filter``)."""

    reason: str | None
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """The upstream reported an error in the stream (error payload, ``response.failed``)."""

    message: str
    code: str | None = None
    incomplete: bool = False


Event = (
    Started
    | TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ToolCallDelta
    | LogprobsDelta
    | ContentFilter
    | Usage
    | Finished
    | Failed
)

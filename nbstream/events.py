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
    """A piece of a tool call. ``id``/``name`` arrive once, ``arguments`` in fragments.

    ``kind`` is ``"custom"`` for a Responses freeform (custom) tool, whose input is plain text, not
    JSON; None leaves it as it was (``"function"`` by default)."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    choice: int = 0
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class HostedToolDelta:
    """Activity of a tool the *server* runs (web search, file search, code interpreter, MCP,
    image generation, Groq's ``executed_tools``): shown as what it is, never as a call the user
    must answer. Updates of one tool share ``index`` (per choice, in order of appearance).

    ``input`` is a fragment of what the model sent the tool (code, MCP arguments, the search
    query), appended like tool-call arguments (adapters send only what was not sent yet); fields
    left None keep their value."""

    index: int
    kind: str  # the item type without "_call": web_search, code_interpreter, mcp, ...
    id: str | None = None
    status: str | None = None  # in_progress, searching, interpreting, generating, completed...
    name: str | None = None  # MCP: the tool (or the server label for mcp_list_tools)
    input: str = ""
    output: str | None = None  # MCP or Groq: what the tool returned (text)
    images: int | None = None  # image generation: partial images received so far
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites (a URL or a file), once per source and choice, ``index`` in
    order of first appearance. Untrusted: the widget sanitises the link before showing it."""

    index: int
    url: str | None = None
    title: str | None = None
    file_id: str | None = None
    filename: str | None = None
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
    | HostedToolDelta
    | Citation
    | LogprobsDelta
    | ContentFilter
    | Usage
    | Finished
    | Failed
)

"""Chat Completions chunks -> events: a pure state machine over the SDK's ``ChatCompletionChunk``.

Handles what real servers send: ``n > 1`` interleaved choices, refusal deltas, parallel tool
calls, ``delta.reasoning`` / ``reasoning_content`` (extra fields of compatible servers), the usage
chunk with empty ``choices``, Azure chunks with ``prompt_filter_results`` /
``content_filter_results``, logprobs, and ``<think>…</think>`` reasoning inline in the content
of open models (split out by :class:`nbstream.think.ThinkSplitter`).
"""

from __future__ import annotations

from typing import Any

from openai._models import construct_type
from openai.types.chat import ChatCompletionChunk

from nbstream.events import (
    ContentFilter,
    Event,
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
from nbstream.think import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")

# TextDelta(text, choice) without the frozen dataclass's __init__ (one object.__setattr__ call
# per field): one is made per chunk, and the slots are set directly at a third of the cost.
assert tuple(TextDelta.__dataclass_fields__) == ("text", "choice")
_new = object.__new__
_set_text = TextDelta.text.__set__  # type: ignore[attr-defined]
_set_choice = TextDelta.choice.__set__  # type: ignore[attr-defined]


def _text_delta(text: str, choice: int) -> TextDelta:
    event = _new(TextDelta)
    _set_text(event, text)
    _set_choice(event, choice)
    return event


def chunk_from_json(data: dict[str, Any]) -> ChatCompletionChunk:
    """Build a chunk from its JSON the way the SDK does (lenient: Azure's ``object: ""`` passes)."""
    return construct_type(type_=ChatCompletionChunk, value=data)  # type: ignore[return-value]


def usage_event(usage: Any) -> Usage:
    """``CompletionUsage`` (or a Responses usage) -> :class:`Usage`; unreported fields stay None."""
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if prompt is None and completion is None:  # Responses API names
        prompt = getattr(usage, "input_tokens", None)
        completion = getattr(usage, "output_tokens", None)
        out_details = getattr(usage, "output_tokens_details", None)
        in_details = getattr(usage, "input_tokens_details", None)
    else:
        out_details = getattr(usage, "completion_tokens_details", None)
        in_details = getattr(usage, "prompt_tokens_details", None)
    extra = getattr(usage, "model_extra", None) or {}
    cached = getattr(in_details, "cached_tokens", None) if in_details else None
    if cached is None and isinstance(extra.get("cached_tokens"), int):
        cached = extra["cached_tokens"]  # Together reports it at the top level
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=getattr(usage, "total_tokens", None),
        reasoning_tokens=getattr(out_details, "reasoning_tokens", None) if out_details else None,
        cached_tokens=cached,
        extra=dict(extra),
    )


def _logprobs(items: Any) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=lp.token,
            logprob=lp.logprob,
            top=tuple((t.token, t.logprob) for t in (lp.top_logprobs or ())),
        )
        for lp in items
    )


class ChatAdapter:
    """``handle(chunk) -> list[Event]``; remembers whether it has started and, per choice,
    where the content is in a ``<think>`` section."""

    kind = "chat"

    def __init__(self) -> None:
        self._started = False
        self._think: dict[int, ThinkSplitter] = {}
        self._plain: set[int] = set()  # choices whose splitter is done (it stays done)

    def handle(self, chunk: ChatCompletionChunk) -> list[Event]:
        """Events carried by one chunk, in wire order (text before finish, usage last).

        The hot path: plain attribute reads; ``__pydantic_extra__`` holds the fields the SDK's
        model does not declare (``reasoning``, ``content_filter_results``...).
        """
        events: list[Event] = []
        if not self._started and chunk.model:
            self._started = True
            events.append(Started(model=chunk.model, response_id=chunk.id or None))
        extra = chunk.__pydantic_extra__
        if extra:
            pfr = extra.get("prompt_filter_results")
            if pfr:
                events.append(ContentFilter(results={"prompt_filter_results": pfr}, choice=None))
        if chunk.moderation is not None:
            events.append(
                ContentFilter(results={"moderation": chunk.moderation.to_dict()}, choice=None)
            )
        for choice in chunk.choices:
            i = choice.index
            delta = choice.delta
            if delta is not None:
                dextra = delta.__pydantic_extra__
                if dextra:
                    for name in _REASONING_FIELDS:
                        value = dextra.get(name)
                        if value and isinstance(value, str):
                            events.append(ReasoningDelta(value, i))
                            break
                content = delta.content
                if content:
                    if i in self._plain:  # past any <think> section: the text as it is
                        events.append(_text_delta(content, i))
                    else:
                        splitter = self._think.get(i)
                        if splitter is None:
                            splitter = self._think[i] = ThinkSplitter()
                        if splitter.done:
                            self._plain.add(i)
                            events.append(_text_delta(content, i))
                        else:
                            self._split(events, splitter.feed(content), i)
                if delta.refusal:
                    events.append(RefusalDelta(delta.refusal, i))
                if delta.tool_calls:
                    for tc in delta.tool_calls:
                        fn = tc.function
                        events.append(
                            ToolCallDelta(
                                index=tc.index,
                                arguments=(fn.arguments or "") if fn else "",
                                id=tc.id,
                                name=fn.name if fn else None,
                                choice=i,
                            )
                        )
            lp = choice.logprobs
            if lp is not None:
                if lp.content:
                    events.append(LogprobsDelta(_logprobs(lp.content), i, "content"))
                if lp.refusal:
                    events.append(LogprobsDelta(_logprobs(lp.refusal), i, "refusal"))
            cextra = choice.__pydantic_extra__
            if cextra:
                cfr = cextra.get("content_filter_results")
                if cfr:
                    events.append(ContentFilter(results=cfr, choice=i))
            if choice.finish_reason:
                splitter = self._think.get(i)
                if splitter is not None and not splitter.done:
                    self._split(events, splitter.flush(), i)
                events.append(Finished(choice.finish_reason, i))
        if chunk.usage is not None:
            events.append(usage_event(chunk.usage))
        return events

    def end(self) -> list[Event]:
        """The stream ended without a finish reason (a disconnect, an error): release what a
        ``<think>`` splitter still holds back (a possible partial tag), so no text is lost."""
        events: list[Event] = []
        for i, splitter in self._think.items():
            if not splitter.done:
                self._split(events, splitter.flush(), i)
        return events

    @staticmethod
    def _split(events: list[Event], pieces: list[tuple[str, str]], choice: int) -> None:
        for kind, text in pieces:
            events.append(
                TextDelta(text, choice) if kind == "text" else ReasoningDelta(text, choice)
            )

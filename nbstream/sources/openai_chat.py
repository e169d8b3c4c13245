"""Chat Completions chunks -> events: a pure state machine over the SDK's ``ChatCompletionChunk``.

Handles what real servers send: ``n > 1`` interleaved choices, refusal deltas, parallel tool
calls, ``delta.reasoning`` / ``reasoning_content`` / ``reasoning_details`` (extra fields of
compatible servers: DeepSeek, OpenRouter, Snowflake...), ``delta.content`` as a list of blocks
(Mistral: ``thinking`` and ``text`` blocks), the usage chunk with empty ``choices`` and Groq's
``x_groq.usage``, Azure chunks with ``prompt_filter_results`` / ``content_filter_results``,
logprobs, url citations (``delta.annotations``, Perplexity's ``citations``), Groq's server-side
``executed_tools``, and ``<think>…</think>`` reasoning inline in the content of open models (split
out by ``ThinkSplitter``). A shape it does not know degrades: the text it can
find is shown, the rest stays in the chunk log (every raw chunk is logged).
"""

from __future__ import annotations

from typing import Any

from openai._models import construct_type
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from nbstream.events import (
    Citation,
    ContentFilter,
    Event,
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
from nbstream.sources.think import ThinkSplitter

_REASONING_FIELDS = ("reasoning_content", "reasoning")
# reasoning_details entries (OpenRouter's normalised format) and the field holding their text;
# "reasoning.encrypted" carries none (an opaque blob to send back, nothing to show)
_DETAIL_TEXT = {"reasoning.text": "text", "reasoning.summary": "summary"}

# TextDelta(text, choice) without the frozen dataclass's __init__ (one object.__setattr__ call
# per field): one is made per chunk, and the slots are set directly at a third of the cost.
assert tuple(TextDelta.__dataclass_fields__) == ("text", "choice")
_new = object.__new__
_set_text = vars(TextDelta)["text"].__set__  # the slots' member descriptors
_set_choice = vars(TextDelta)["choice"].__set__


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


def content_blocks(content: Any) -> list[tuple[str, str]]:
    """A list-shaped ``delta.content`` (Mistral) as ``[(kind, text)]``, kind ``"text"`` or
    ``"reasoning"``: ``{"type":"text","text"}`` is answer text, ``{"type":"thinking",
    "thinking":[{"type":"text","text"}]}`` (or a plain string) is reasoning. Any other block
    with a string ``text`` is shown as text rather than lost; one without is left to the log."""
    out: list[tuple[str, str]] = []
    for block in content if isinstance(content, list) else (content,):
        if isinstance(block, str):
            out.append(("text", block))
            continue
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking":
            inner = block.get("thinking")
            for piece in inner if isinstance(inner, list) else (inner,):
                text = piece.get("text") if isinstance(piece, dict) else piece
                if isinstance(text, str) and text:
                    out.append(("reasoning", text))
        elif isinstance(block.get("text"), str) and block["text"]:
            out.append(("text", block["text"]))
    return out


def _details_text(details: Any) -> str:
    """The readable text of ``reasoning_details`` entries (none for encrypted ones)."""
    out = ""
    for d in details if isinstance(details, list) else ():
        field_name = _DETAIL_TEXT.get(str(d.get("type"))) if isinstance(d, dict) else None
        if field_name and isinstance(d.get(field_name), str):
            out += d[field_name]
    return out


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
        self._cited: dict[int, dict[str, int]] = {}  # per choice: source -> citation index
        # per choice: Groq executed_tools index -> hosted tool index (ours, in order of appearance)
        self._hosted: dict[int, dict[int, int]] = {}
        self._hosted_sent: dict[tuple[int, int], int] = {}  # (choice, index) -> input chars sent

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
        groq_usage = None
        if extra:
            pfr = extra.get("prompt_filter_results")
            if pfr:
                events.append(ContentFilter(results={"prompt_filter_results": pfr}, choice=None))
            urls = extra.get("citations")  # Perplexity: the whole source list on every chunk
            if urls and isinstance(urls, list):
                for i in [c.index for c in chunk.choices] or [0]:
                    for url in urls:
                        if isinstance(url, str):
                            self._cite(events, i, url, None)
            xg = extra.get("x_groq")
            if isinstance(xg, dict) and isinstance(xg.get("usage"), dict):
                groq_usage = xg["usage"]
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
                    self._extras(events, dextra, i)
                content = delta.content
                if content and type(content) is not str:  # a list of blocks (Mistral)
                    for kind, text in content_blocks(content):
                        if kind == "reasoning":
                            events.append(ReasoningDelta(text, i))
                        else:
                            self._text(events, text, i)
                elif content:
                    if i in self._plain:  # past any <think> section: the text as it is
                        events.append(_text_delta(content, i))
                    else:
                        self._text(events, content, i)
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
        elif groq_usage is not None:  # Groq without stream_options: usage only in x_groq
            usage = construct_type(type_=CompletionUsage, value=groq_usage)
            events.append(usage_event(usage))
        return events

    def _text(self, events: list[Event], content: str, i: int) -> None:
        """Answer text of choice ``i``, through its ``<think>`` splitter until that is done."""
        if i in self._plain:
            events.append(_text_delta(content, i))
            return
        splitter = self._think.get(i)
        if splitter is None:
            splitter = self._think[i] = ThinkSplitter()
        if splitter.done:
            self._plain.add(i)
            events.append(_text_delta(content, i))
        else:
            self._split(events, splitter.feed(content), i)

    def _extras(self, events: list[Event], dextra: dict[str, Any], i: int) -> None:
        """Fields of the delta the SDK does not declare: reasoning, citations, server tools."""
        for name in _REASONING_FIELDS:
            value = dextra.get(name)
            if value and isinstance(value, str):
                events.append(ReasoningDelta(value, i))
                break
        else:  # reasoning_details only when no plain field carried the same text
            details = dextra.get("reasoning_details")
            text = _details_text(details) if details else ""
            if text:
                events.append(ReasoningDelta(text, i))
        annotations = dextra.get("annotations")
        if annotations and isinstance(annotations, list):
            for ann in annotations:
                cite = ann.get("url_citation") if isinstance(ann, dict) else None
                if isinstance(cite, dict) and isinstance(cite.get("url"), str):
                    self._cite(events, i, cite["url"], cite.get("title"))
        executed = dextra.get("executed_tools")
        if executed and isinstance(executed, list):
            seen = self._hosted.setdefault(i, {})
            for tool in executed:
                if not isinstance(tool, dict):
                    continue
                given = tool.get("index")
                wire = given if isinstance(given, int) else len(seen)
                idx = seen.setdefault(wire, len(seen))
                output = tool.get("output")
                args = tool.get("arguments")
                # each update repeats the whole arguments: send only what was not sent yet
                sent = self._hosted_sent.get((i, idx), 0)
                fresh = args[sent:] if isinstance(args, str) and len(args) > sent else ""
                self._hosted_sent[(i, idx)] = sent + len(fresh)
                events.append(
                    HostedToolDelta(
                        index=idx,
                        kind=str(tool.get("type") or "tool"),
                        status="completed" if output is not None else "in_progress",
                        input=fresh,
                        output=output if isinstance(output, str) else None,
                        choice=i,
                    )
                )

    def _cite(self, events: list[Event], i: int, url: str, title: Any) -> None:
        """A url citation, once per source and choice (Perplexity repeats the list per chunk)."""
        seen = self._cited.setdefault(i, {})
        if url and url not in seen:
            seen[url] = len(seen)
            title = title if isinstance(title, str) and title else None
            events.append(Citation(index=seen[url], url=url, title=title, choice=i))

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

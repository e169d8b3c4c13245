"""Chat Completions chunks -> events: a pure state machine over a chunk's JSON dict (as
``json.loads`` gives it: the shape of the SDK's ``ChatCompletionChunk``, with every extra field).

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

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

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


# Keys of a chunk / a delta that need no look beyond the hot path (anything else: the slow path)
_PLAIN_CHUNK = frozenset(
    {"id", "object", "created", "model", "system_fingerprint", "service_tier", "choices"}
    | {"usage", "obfuscation"}
)
_PLAIN_DELTA = frozenset({"role", "content", "refusal", "tool_calls", "function_call", "audio"})


def chunk_from_json(data: dict[str, Any]) -> ChatCompletionChunk:
    """Build a chunk from its JSON the way the SDK does (lenient: Azure's ``object: ""`` passes).
    The adapter reads the JSON dict itself; this is for comparing with the SDK's models (the SDK
    is imported here only: the adapters never need it, issue 16 §4)."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk

    return construct_type(type_=ChatCompletionChunk, value=data)  # type: ignore[return-value]


# The fields the SDK's usage models declare (``CompletionUsage`` and ``ResponseUsage``): any
# other key is an extra (``Usage.extra``). Written out so that reading a chunk needs no SDK
# import; tests/test_sources_recorded.py checks them against the installed SDK's models.
USAGE_FIELDS = frozenset(
    {"prompt_tokens", "completion_tokens", "total_tokens"}
    | {"prompt_tokens_details", "completion_tokens_details"}
    | {"input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"}
)


def usage_event(usage: Any) -> Usage:
    """A usage dict (Chat Completions or Responses names) -> :class:`Usage`; unreported fields
    stay None. An SDK model is read through its JSON dump."""
    if not isinstance(usage, dict):
        usage = usage.model_dump(mode="json", exclude_unset=True)
    get = usage.get
    prompt = get("prompt_tokens")
    completion = get("completion_tokens")
    if prompt is None and completion is None:  # Responses API names
        prompt = get("input_tokens")
        completion = get("output_tokens")
        out_details = get("output_tokens_details")
        in_details = get("input_tokens_details")
    else:
        out_details = get("completion_tokens_details")
        in_details = get("prompt_tokens_details")
    extra = {k: v for k, v in usage.items() if k not in USAGE_FIELDS}
    cached = in_details.get("cached_tokens") if isinstance(in_details, dict) else None
    if cached is None and isinstance(extra.get("cached_tokens"), int):
        cached = extra["cached_tokens"]  # Together reports it at the top level
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=get("total_tokens"),
        reasoning_tokens=reasoning,
        cached_tokens=cached,
        extra=extra,
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
            token=lp["token"],
            logprob=lp["logprob"],
            top=tuple((t["token"], t["logprob"]) for t in (lp.get("top_logprobs") or ())),
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

    def handle(self, chunk: dict[str, Any]) -> list[Event]:
        """Events carried by one chunk (its JSON dict), in wire order (text before finish,
        usage last).

        The hot path: a plain OpenAI delta (``content`` and maybe ``role`` / ``refusal``) costs
        a few dict reads; any other field of the delta, the choice or the chunk (``reasoning``,
        ``content_filter_results``...) is looked at only when the dict has more keys than that.
        """
        events: list[Event] = []
        if not self._started and chunk.get("model"):
            self._started = True
            events.append(Started(model=chunk["model"], response_id=chunk.get("id") or None))
        choices = chunk.get("choices") or ()
        groq_usage = None
        if not chunk.keys() <= _PLAIN_CHUNK:
            pfr = chunk.get("prompt_filter_results")
            if pfr:
                events.append(ContentFilter(results={"prompt_filter_results": pfr}, choice=None))
            urls = chunk.get("citations")  # Perplexity: the whole source list on every chunk
            if urls and isinstance(urls, list):
                for i in [c["index"] for c in choices] or [0]:
                    for url in urls:
                        if isinstance(url, str):
                            self._cite(events, i, url, None)
            xg = chunk.get("x_groq")
            if isinstance(xg, dict) and isinstance(xg.get("usage"), dict):
                groq_usage = xg["usage"]
            moderation = chunk.get("moderation")
            if moderation is not None:
                events.append(ContentFilter(results={"moderation": moderation}, choice=None))
        for choice in choices:
            i = choice["index"]
            delta = choice.get("delta")
            if delta is not None:
                if not delta.keys() <= _PLAIN_DELTA:
                    self._extras(events, delta, i)
                content = delta.get("content")
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
                refusal = delta.get("refusal")
                if refusal:
                    events.append(RefusalDelta(refusal, i))
                tool_calls = delta.get("tool_calls")
                if tool_calls:
                    for tc in tool_calls:
                        fn = tc.get("function")
                        events.append(
                            ToolCallDelta(
                                index=tc["index"],
                                arguments=(fn.get("arguments") or "") if fn else "",
                                id=tc.get("id"),
                                name=fn.get("name") if fn else None,
                                choice=i,
                            )
                        )
            lp = choice.get("logprobs")
            if lp is not None:
                if lp.get("content"):
                    events.append(LogprobsDelta(_logprobs(lp["content"]), i, "content"))
                if lp.get("refusal"):
                    events.append(LogprobsDelta(_logprobs(lp["refusal"]), i, "refusal"))
            cfr = choice.get("content_filter_results")
            if cfr:
                events.append(ContentFilter(results=cfr, choice=i))
            finish = choice.get("finish_reason")
            if finish:
                splitter = self._think.get(i)
                if splitter is not None and not splitter.done:
                    self._split(events, splitter.flush(), i)
                events.append(Finished(finish, i))
        usage = chunk.get("usage")
        if usage is not None:
            events.append(usage_event(usage))
        elif groq_usage is not None:  # Groq without stream_options: usage only in x_groq
            events.append(usage_event(groq_usage))
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
        """Fields of the delta beyond OpenAI's own: reasoning, citations, server tools."""
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

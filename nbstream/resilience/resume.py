"""Resume an interrupted answer: ask the model to continue, and join without duplicating text.

After the first token nbstream never retries silently (the text shown would be duplicated). The
run ends ``incomplete`` with its partial text, and the user can **Resume**: for Chat Completions the
partial answer goes back as the assistant's turn, followed by a short user turn asking to continue
exactly where it stopped (``style="prompt"``, works with every Chat Completions server), or as an
assistant *prefix* to be completed (``style="prefix"``: the ``"prefix": true`` message flag that
DeepSeek / Mistral / vLLM-style servers understand).

Models often repeat the last few words before continuing, so :func:`join_overlap` drops the longest
overlap between the end of the partial text and the start of the continuation (and a continuation
that restarts the whole answer). **Retry** is simpler: the same request again, a new version.

This module is the one implementation of Resume, for Chat Completions and Responses requests:
:func:`resume_source` makes the continuation request wrapped in a :class:`ResumeSource` (whose
choice-0 text goes through an :class:`OverlapJoiner`, so its run's ``text`` is only what comes
after the partial answer). ``Resilience.resume(run)`` and ``StreamView.resume()`` both call it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from nbstream.events import Event, Finished, TextDelta
from nbstream.redact import redact_text
from nbstream.run.state import join_pieces
from nbstream.sources.base import AOpened, Opened, Source, SourceWrapper

if TYPE_CHECKING:
    from nbstream.run.stream_run import StreamRun

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly from where it stopped: do not repeat "
    "anything already written, do not add an introduction, start with the next characters."
)

Style = Literal["prompt", "prefix"]


def continuation_messages(
    messages: Sequence[dict[str, Any]],
    partial: str,
    *,
    style: Style = "prompt",
    prompt: str = CONTINUE_PROMPT,
) -> list[dict[str, Any]]:
    """The original conversation plus the partial answer, arranged so the model continues it."""
    if style not in ("prompt", "prefix"):
        raise ValueError(f"style must be 'prompt' or 'prefix', got {style!r}.")
    out = [dict(m) for m in messages]
    if not partial:
        return out
    partial = redact_text(partial)  # a key the model repeated does not go out again
    if style == "prefix":
        out.append({"role": "assistant", "content": partial, "prefix": True})
    else:
        out.append({"role": "assistant", "content": partial})
        out.append({"role": "user", "content": prompt})
    return out


def overlap_length(
    partial: str, continuation: str, max_overlap: int = 400, min_overlap: int = 4
) -> int:
    """Length of the longest suffix of ``partial`` that is also a prefix of ``continuation``.

    Overlaps shorter than ``min_overlap`` characters count only when they are whitespace: one shared
    letter is more likely a coincidence than a repetition.
    """
    limit = min(len(partial), len(continuation), max_overlap)
    for k in range(limit, 0, -1):
        if partial.endswith(continuation[:k]):
            return k if k >= min_overlap or continuation[:k].isspace() else 0
    return 0


def join_overlap(partial: str, continuation: str, max_overlap: int = 400) -> str:
    """``partial + continuation`` without the repeated part; a full restart keeps one copy."""
    if not partial:
        return continuation
    if continuation.startswith(partial):
        return continuation
    return partial + continuation[overlap_length(partial, continuation, max_overlap) :]


class OverlapJoiner:
    """The streaming form of :func:`join_overlap`: feed continuation deltas, get the text to append.

    The start of the continuation is held back only while it could still be a repetition of the
    end of the partial text (or a restart of the whole answer); as soon as it cannot, the new part
    is released and later deltas pass straight through. ``joined`` is always the joined text so far.
    """

    def __init__(self, partial: str, max_overlap: int = 400) -> None:
        self.partial = partial
        self.max_overlap = max_overlap
        self._buffer = ""
        self._decided = not partial
        self.overlap = 0  # characters dropped
        # what was released, as pieces: ``+=`` on an attribute copies the whole string each time
        # (quadratic over a long continuation); joined only when read, like AnswerState's text
        self._appended: list[str] = []

    def _could_still_repeat(self) -> bool:
        b, p = self._buffer, self.partial
        if p.startswith(b):
            return True  # maybe a restart of the whole answer
        if len(b) > self.max_overlap:
            return False
        tail_start = max(0, len(p) - self.max_overlap)
        j = p.find(b[:1], tail_start)
        while j != -1:
            if p.startswith(b, j) or (p[j:] and b.startswith(p[j:])):
                return p.startswith(b, j)  # a full suffix match is decided by overlap_length
            j = p.find(b[:1], j + 1)
        return False

    def _decide(self) -> str:
        self._decided = True
        b = self._buffer
        self._buffer = ""
        if b.startswith(self.partial):
            self.overlap = len(self.partial)
        else:
            self.overlap = overlap_length(self.partial, b, self.max_overlap)
        return b[self.overlap :]

    def feed(self, delta: str) -> str:
        """A continuation delta in; the text to append to the partial answer out (maybe "")."""
        if self._decided:
            self._appended.append(delta)
            return delta
        self._buffer += delta
        if self._could_still_repeat():
            return ""
        out = self._decide()
        self._appended.append(out)
        return out

    def finish(self) -> str:
        """The continuation ended: release what was held back."""
        if self._decided:
            return ""
        out = self._decide()
        self._appended.append(out)
        return out

    @property
    def appended(self) -> str:
        """The text released so far (the continuation minus the overlap)."""
        return join_pieces(self._appended)  # the consumer may append meanwhile

    @property
    def joined(self) -> str:
        return self.partial + self.appended


# ---- the continuation request ---------------------------------------------------------------


def request_of(source: Any) -> Any:
    """The ChatRequest / ResponsesRequest inside (possibly wrapped) ``source``, or None.
    Wrappers (rate limits, Resume) hold what they wrap as ``inner``."""
    from nbstream.sources.request import ChatRequest, ResponsesRequest

    while source is not None:
        if isinstance(source, (ChatRequest, ResponsesRequest)):
            return source
        source = getattr(source, "inner", None)
    return None


def _resumed(source: Any) -> ResumeSource | None:
    """The ResumeSource inside (possibly wrapped) ``source``, or None."""
    while source is not None:
        if isinstance(source, ResumeSource):
            return source
        source = getattr(source, "inner", None)
    return None


def _conversation(params: Mapping[str, Any], kind: str) -> list[dict[str, Any]] | None:
    """The request's conversation: Chat ``messages``, Responses ``input`` (a str: one user turn)."""
    if kind == "responses":
        given = params.get("input")
        if isinstance(given, str):
            return [{"role": "user", "content": given}]
        return list(given) if isinstance(given, list) else None
    messages = params.get("messages")
    return list(messages) if isinstance(messages, list) else None


def resumable(source: Any) -> bool:
    """True when ``source`` is (or wraps) a Chat Completions or Responses request with a
    conversation to extend: what Continue (Resume) needs."""
    origin = _resumed(source)
    request = request_of(origin.original if origin is not None else source)
    return (
        request is not None
        and request.kind in ("chat", "responses")
        and _conversation(request.params, request.kind) is not None
    )


def resume_source(
    source: Any,
    partial: str,
    *,
    style: Style = "prompt",
    params: Mapping[str, Any] | None = None,
) -> ResumeSource:
    """The request that continues ``partial`` (the whole answer so far), as a
    :class:`ResumeSource`. ``source`` is the answer's source; a resumed one is continued from
    its original request (the conversation carries the whole partial answer once). ``params``
    changes request parameters for the continuation (e.g. a larger ``max_tokens``)."""
    origin = _resumed(source)
    if origin is not None:
        source = origin.original
    request = request_of(source)
    conversation = _conversation(request.params, request.kind) if request is not None else None
    if request is None or conversation is None:
        raise TypeError(
            "Resume needs a re-runnable request (nbstream ChatRequest / ResponsesRequest, "
            "as made by nbstream.chat/stream with messages); this answer's source is "
            f"{source!r}. Use Retry (a new answer) instead."
        )
    messages = continuation_messages(conversation, partial, style=style)
    name = "input" if request.kind == "responses" else "messages"
    changed = request.with_params(**{name: messages}, **(params or {}))
    # the request itself, not its wrappers: a wrapper would keep the first run (and its log)
    return ResumeSource(changed, partial, original=request)


def answer_text(run: StreamRun) -> str:
    """The whole answer of ``run``: a resumed run's text is only what came after the partial
    answer it continued, so that comes first."""
    origin = _resumed(run.source)
    return origin.partial + run.text if origin is not None else run.text


def resume_blocked(run: StreamRun) -> str | None:
    """Why ``run``'s answer must not be continued (a hook stopped it: moderation, budget), from
    its resilience layer (``run.resilience``), or None."""
    guard = run.resilience
    blocked: str | None = guard.resume_blocked if guard is not None else None
    return blocked


class ResumeSource(SourceWrapper):
    """The continuation request, its choice-0 text passed through an :class:`OverlapJoiner`.

    A Source: attempts keep every field of the inner attempt (kind, meta, close, pending raw data,
    ``expects_finish``, ``watch_reads``); its ``end_events`` go through the joiner too, then
    release what the joiner still holds, so an attempt that ends without a finish reason (cut
    off, not stopped) loses no text. ``partial`` is the answer being continued, ``original``
    the request it came from (Continue again starts from there).
    """

    def __init__(self, inner: Source, partial: str, *, original: Any = None) -> None:
        super().__init__(inner)
        self.partial = partial
        self.original = original if original is not None else inner
        self.joiner = OverlapJoiner(partial)

    def sync_twin(self) -> ResumeSource | None:
        """This continuation with a synchronous client (see ``ChatRequest.sync_twin``)."""
        twin = getattr(self.inner, "sync_twin", None)
        inner = twin() if twin is not None else None
        return ResumeSource(inner, self.partial, original=self.original) if inner else None

    def _transform(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        joiner = self.joiner
        for event in events:
            if type(event) is TextDelta and event.choice == 0:
                text = joiner.feed(event.text)
                if text:
                    out.append(TextDelta(text))
                continue
            if type(event) is Finished and event.choice == 0:
                rest = joiner.finish()
                if rest:
                    out.append(TextDelta(rest))
            out.append(event)
        return out

    def _end(self, events: list[Event]) -> list[Event]:
        out = self._transform(events)
        rest = self.joiner.finish()
        return [*out, TextDelta(rest)] if rest else out

    def open(self) -> Opened:
        self.joiner = OverlapJoiner(self.partial)  # a retried attempt starts the join again
        opened = self.inner.open()
        transform = self._transform

        def items() -> Iterator[tuple[Any, list[Event]]]:
            for raw, events in opened.items:
                yield raw, transform(events)
            # the inner attempt decides this while it is read ([DONE] without a finish reason)
            outer.expects_finish = opened.expects_finish

        outer = Opened(
            items(),
            kind=opened.kind,
            meta=opened.meta,
            close=opened.close,
            pending_raw=opened.pending_raw,
            expects_finish=opened.expects_finish,
            adapter=_Joined(lambda: opened.kind, lambda: self._end(opened.end_events())),
            watch_reads=opened.watch_reads,
        )
        return outer

    async def aopen(self) -> AOpened:
        self.joiner = OverlapJoiner(self.partial)
        opened = await self.inner.aopen()
        transform = self._transform

        async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
            async for raw, events in opened.items:
                yield raw, transform(events)
            outer.expects_finish = opened.expects_finish

        outer = AOpened(
            items(),
            kind=opened.kind,
            meta=opened.meta,
            aclose=opened.aclose,
            pending_raw=opened.pending_raw,
            expects_finish=opened.expects_finish,
            adapter=_Joined(lambda: opened.kind, lambda: self._end(opened.end_events())),
        )
        return outer


class _Joined:
    """The inner attempt's adapter as ``Opened`` asks for it: its kind (an SDK stream's is found
    on the first item), its end events passed through the joiner."""

    __slots__ = ("_kind", "end")

    def __init__(self, kind: Callable[[], str], end: Callable[[], list[Event]]) -> None:
        self._kind = kind
        self.end = end

    @property
    def kind(self) -> str:
        return self._kind()

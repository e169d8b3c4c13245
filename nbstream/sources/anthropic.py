"""Anthropic Messages streams -> events: a pure state machine over the events' JSON dicts.

Reads ``client.messages.create(stream=True)`` (an ``anthropic.Stream``), ``client.messages
.stream(...)`` (the manager: re-runnable, each ``with`` makes a new request) or the
``MessageStream`` it yields. The SDK decodes SSE; we keep the ``data`` text of each event as it
passes (a wrapper around the stream's SSE iterator, installed before iteration starts) so the log
holds every event as received and a replay goes through this same adapter.

Mapping: text -> text, thinking -> reasoning (signatures and redacted thinking stay in the log
only: they are opaque), ``tool_use`` + ``input_json_delta`` -> tool calls; server tools (web
search) run on Anthropic's side: hosted-tool activity (their query, then done), never calls for
the caller, and ``citations_delta`` -> cited sources (once per URL). Stop reasons: ``end_turn``
/ ``stop_sequence`` -> ``stop``, ``max_tokens`` -> ``length`` (incomplete), ``tool_use`` ->
``tool_calls``, ``pause_turn`` -> incomplete (continue the turn), ``refusal`` -> a refusal.
An ``event: error`` (``overloaded_error``) ends the run "error" with the server's message, and
before the first token is retried like an HTTP 529 (what Anthropic documents it to mean).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from nbstream.events import (
    Citation,
    Event,
    Failed,
    Finished,
    HostedToolDelta,
    ReasoningDelta,
    RefusalDelta,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from nbstream.sources.base import AOpened, Opened, StreamError
from nbstream.sources.native import dump, response_meta
from nbstream.sources.sockets import close_response

KIND = "anthropic"
RAW_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
    }
)
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}
OVERLOADED_STATUS = 529  # the HTTP status Anthropic gives overloaded_error


def usage_of(*parts: dict[str, Any] | None) -> Usage:
    """Anthropic usage (``message_start`` then ``message_delta``, later values win) -> Usage.

    ``input_tokens`` excludes cached tokens there; ``prompt_tokens`` counts them, as OpenAI's
    does, so ``cached_tokens`` (cache reads) is a part of it.
    """
    u: dict[str, Any] = {}
    for part in parts:
        if part:
            u.update({k: v for k, v in part.items() if v is not None})
    counts = [u.get(k) for k in ("input_tokens", "cache_creation_input_tokens")]
    cache_read = u.get("cache_read_input_tokens")
    ints = [c for c in (*counts, cache_read) if isinstance(c, int)]
    prompt = sum(ints) if ints else None
    completion = u.get("output_tokens")
    details = u.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if prompt is not None and completion is not None else None,
        reasoning_tokens=details.get("thinking_tokens") if isinstance(details, dict) else None,
        cached_tokens=cache_read,
        extra=u,
    )


class AnthropicAdapter:
    """``handle(event_dict) -> list[Event]``; maps content-block indexes to tool-call indexes."""

    kind = KIND

    def __init__(self) -> None:
        self._tools: dict[int, int] = {}  # content-block index -> tool-call index
        self._args: set[int] = set()  # tool-call indexes that received argument text
        self._hosted: dict[int, tuple[int, str]] = {}  # block index -> (hosted index, kind)
        self._hosted_ids: dict[str, tuple[int, str]] = {}  # server tool use id -> same
        self._cited: dict[str, int] = {}  # url -> citation index
        self._start_usage: dict[str, Any] | None = None

    def handle(self, ev: dict[str, Any]) -> list[Event]:
        etype = ev.get("type")
        if etype == "content_block_delta":
            delta = ev.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return [TextDelta(delta["text"])] if delta.get("text") else []
            if dtype == "thinking_delta":
                return [ReasoningDelta(delta["thinking"])] if delta.get("thinking") else []
            if dtype == "citations_delta":
                return self._citation(delta.get("citation") or {})
            if dtype == "input_json_delta":
                hosted = self._hosted.get(ev.get("index", -1))
                if hosted is not None and delta.get("partial_json"):
                    return [HostedToolDelta(hosted[0], hosted[1], input=delta["partial_json"])]
                idx = self._tools.get(ev.get("index", -1))
                if idx is None or not delta.get("partial_json"):
                    return []  # a server tool's input, or the empty first fragment
                self._args.add(idx)
                return [ToolCallDelta(index=idx, arguments=delta["partial_json"])]
            return []  # signature_delta, citations_delta, unknown future deltas
        if etype == "content_block_start":
            block = ev.get("content_block") or {}
            btype = block.get("type")
            if btype == "text":
                out: list[Event] = [TextDelta(block["text"])] if block.get("text") else []
                for citation in block.get("citations") or ():
                    out.extend(self._citation(citation))
                return out
            if btype == "server_tool_use":  # runs on Anthropic's side (web search...)
                hosted = (len(self._hosted), str(block.get("name") or "server_tool"))
                self._hosted[ev.get("index", -1)] = hosted
                self._hosted_ids[str(block.get("id"))] = hosted
                given = block.get("input")
                return [
                    HostedToolDelta(
                        hosted[0],
                        hosted[1],
                        id=block.get("id"),
                        status="in_progress",
                        input=json.dumps(given) if given else "",
                    )
                ]
            if str(btype).endswith("_tool_result") and block.get("tool_use_id") in self._hosted_ids:
                idx, kind = self._hosted_ids[block["tool_use_id"]]
                content = block.get("content")
                failed = isinstance(content, dict) and str(content.get("type", "")).endswith(
                    "error"
                )
                return [HostedToolDelta(idx, kind, status="failed" if failed else "completed")]
            if btype == "thinking":
                return [ReasoningDelta(block["thinking"])] if block.get("thinking") else []
            if btype == "tool_use":
                idx = self._tools[ev.get("index", len(self._tools))] = len(self._tools)
                given = block.get("input")
                args = json.dumps(given) if given else ""  # ``{}`` at start: deltas follow
                if args:
                    self._args.add(idx)
                name = block.get("name") or None
                return [ToolCallDelta(index=idx, arguments=args, id=block.get("id"), name=name)]
            return []  # redacted_thinking, server_tool_use, *_tool_result, compaction...
        if etype == "content_block_stop":
            idx = self._tools.get(ev.get("index", -1))
            if idx is not None and idx not in self._args:
                # a tool without arguments sends only "": its arguments are the empty object
                self._args.add(idx)
                return [ToolCallDelta(index=idx, arguments="{}")]
            return []
        if etype == "message_start":
            message = ev.get("message") or {}
            self._start_usage = message.get("usage")
            return [
                Started(model=message.get("model") or None, response_id=message.get("id") or None)
            ]
        if etype == "message_delta":
            out = []
            delta = ev.get("delta") or {}
            reason = delta.get("stop_reason")
            if reason == "refusal":
                details = delta.get("stop_details") or {}
                explanation = details.get("explanation") if isinstance(details, dict) else None
                out.append(RefusalDelta(explanation or "The model declined to answer (refusal)."))
            if reason:
                out.append(Finished(STOP_REASONS.get(reason, reason)))
            if reason == "pause_turn":
                out.append(
                    Failed(
                        "pause_turn: the server paused a long turn; send the answer back to "
                        "continue it",
                        code="pause_turn",
                        incomplete=True,
                    )
                )
            out.insert(0, usage_of(self._start_usage, ev.get("usage")))
            return out
        if etype == "error":  # only in a replayed log: live, the SDK raises instead
            err = ev.get("error") or {}
            return [Failed(err.get("message") or "error event", code=err.get("type"))]
        return []

    def _citation(self, citation: dict[str, Any]) -> list[Event]:
        """A cited source, once per URL (the cited text stays in the log)."""
        url = citation.get("url")
        if not isinstance(url, str) or url in self._cited:
            return []
        self._cited[url] = len(self._cited)
        return [Citation(self._cited[url], url=url, title=citation.get("title"))]


class AnthropicStreamError(StreamError):
    """An ``event: error`` in the stream. ``overloaded_error`` carries ``status_code`` 529 so the
    retry layer treats it as the 5xx it stands for."""

    def __init__(self, body: dict[str, Any]) -> None:
        err: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        super().__init__(err.get("message") or "error event", code=err.get("type"), data=body)
        if err.get("type") in ("overloaded_error", "api_error"):
            self.status_code = OVERLOADED_STATUS if err.get("type") == "overloaded_error" else 500


def _error_body(exc: BaseException, raw: str | None) -> dict[str, Any] | None:
    """The body of an ``event: error`` the SDK raised as an exception (it carries a 200)."""
    body = getattr(exc, "body", None)
    if not isinstance(body, dict) and raw:
        with contextlib.suppress(ValueError):
            body = json.loads(raw)
    if isinstance(body, dict) and body.get("type") == "error":
        return body
    return None


class _Capture:
    """The last SSE ``data`` text the SDK decoded (None until one is)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: str | None = None


def _install_capture(stream: Any, cap: _Capture, is_async: bool) -> None:
    original = getattr(stream, "_iter_events", None)
    if original is None or "_iterator" in getattr(stream, "__dict__", {}):
        return  # already iterating: events are dumped from their models instead

    if is_async:

        async def aiter_events() -> Any:
            async for sse in original():
                cap.data = sse.data
                yield sse

        stream._iter_events = aiter_events
    else:

        def iter_events() -> Any:
            for sse in original():
                cap.data = sse.data
                yield sse

        stream._iter_events = iter_events


def _raw_stream(obj: Any) -> Any:
    """The ``anthropic.Stream`` under a ``MessageStream`` (or the stream itself)."""
    return getattr(obj, "_raw_stream", obj)


def _raw_of(item: Any, cap: _Capture) -> dict[str, Any]:
    data = cap.data
    if data is not None:
        try:
            parsed: object = json.loads(data)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("type") == getattr(item, "type", None):
            return parsed
    raw: dict[str, Any] = dump(item)
    return raw


def open_sync(stream: Any) -> Opened:
    """One attempt over an ``anthropic.Stream`` or ``MessageStream`` (already requested)."""
    raw_stream = _raw_stream(stream)
    cap = _Capture()
    _install_capture(raw_stream, cap, is_async=False)
    adapter = AnthropicAdapter()
    finished = False

    def items() -> Iterator[tuple[Any, list[Event]]]:
        nonlocal finished
        try:
            for item in stream:
                if getattr(item, "type", None) not in RAW_TYPES:
                    continue  # MessageStream's own helper events (text, thinking, ...)
                raw = _raw_of(item, cap)
                yield raw, adapter.handle(raw)
        except Exception as exc:
            body = _error_body(exc, cap.data)
            if body is None:
                raise
            raise AnthropicStreamError(body) from None
        finished = True

    response = raw_stream.response
    return Opened(
        items(),
        kind=KIND,
        meta=response_meta(response),
        close=lambda: close_response(response, finished),
        pending_raw=lambda: _pending(cap),
        adapter=adapter,
    )


def _pending(cap: _Capture) -> Any:
    if cap.data is None:
        return None
    with contextlib.suppress(ValueError):
        data = json.loads(cap.data)
        return data if isinstance(data, dict) and data.get("type") == "error" else None
    return None


async def open_async(stream: Any) -> AOpened:
    raw_stream = _raw_stream(stream)
    cap = _Capture()
    _install_capture(raw_stream, cap, is_async=True)
    adapter = AnthropicAdapter()

    async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
        try:
            async for item in stream:
                if getattr(item, "type", None) not in RAW_TYPES:
                    continue
                raw = _raw_of(item, cap)
                yield raw, adapter.handle(raw)
        except Exception as exc:
            body = _error_body(exc, cap.data)
            if body is None:
                raise
            raise AnthropicStreamError(body) from None

    async def aclose() -> None:
        await stream.close()

    return AOpened(
        items(),
        kind=KIND,
        meta=response_meta(raw_stream.response),
        aclose=aclose,
        pending_raw=lambda: _pending(cap),
        adapter=adapter,
    )


def is_anthropic(obj: Any) -> bool:
    """An anthropic SDK stream, ``MessageStream`` or ``messages.stream()`` manager."""
    module = type(obj).__module__
    return (module == "anthropic" or module.startswith("anthropic.")) and type(obj).__name__ in (
        "Stream",
        "AsyncStream",
        "MessageStream",
        "AsyncMessageStream",
        "MessageStreamManager",
        "AsyncMessageStreamManager",
        "BetaMessageStream",
        "BetaAsyncMessageStream",
        "BetaMessageStreamManager",
        "BetaAsyncMessageStreamManager",
    )


class AnthropicSource:
    """An anthropic stream. A ``messages.stream()`` manager is re-runnable (each ``with`` asks
    again); a stream already requested is single use (pass ``lambda: client.messages.create(
    ..., stream=True)`` for Regenerate)."""

    kind = KIND
    params = None

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        name = type(obj).__name__
        self._manager = name.endswith("Manager")
        self.rerunnable = self._manager
        self.supports_async = "Async" in name
        self.supports_sync = not self.supports_async
        self._used = False

    def _take(self) -> Any:
        if self._manager:
            return self._obj
        if self._used:
            raise RuntimeError(
                "this anthropic stream was already consumed; pass a zero-argument callable "
                "(lambda: client.messages.create(..., stream=True)) to make it re-runnable"
            )
        self._used = True
        return self._obj

    def open(self) -> Opened:
        obj = self._take()
        return open_sync(obj.__enter__() if self._manager else obj)

    async def aopen(self) -> AOpened:
        if self.supports_sync:  # from a callable under ``await``: read it blocking
            from nbstream.sources.native import as_async

            return as_async(self.open())
        obj = self._take()
        return await open_async(await obj.__aenter__() if self._manager else obj)

    def __repr__(self) -> str:
        return f"AnthropicSource({type(self._obj).__name__})"

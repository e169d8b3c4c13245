"""Adapters from everything ``nbstream.stream()`` accepts to one :class:`Source` contract.

``to_source(obj)`` is the single entry point; it imports ``openai`` only when given an SDK object
or a request, so text and replay sources work without touching the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import os
import sys
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

from nbstream.sources.base import (
    AOpened,
    ErrorInfo,
    Opened,
    ResponseMeta,
    Source,
    StreamError,
    describe_error,
)

if TYPE_CHECKING:
    from nbstream.run.log import ChunkLog

__all__ = [
    "AOpened",
    "CallableSource",
    "ErrorInfo",
    "Opened",
    "ResponseMeta",
    "Source",
    "SourceLike",
    "StreamError",
    "describe_error",
    "to_source",
]

# What ``nbstream.stream()`` accepts (see ACCEPTED): SDK streams and iterables of ``str`` are
# iterables, a zero-argument callable returns one, a str or path names a ``.jsonl`` chunk log.
SourceLike: TypeAlias = (
    "Source | ChunkLog | str | os.PathLike[str] | Iterable[Any] | AsyncIterable[Any]"
    " | Callable[[], Any]"
)

ACCEPTED = (
    "an openai Stream/AsyncStream (client.chat.completions.create(..., stream=True) or "
    "client.responses.create(..., stream=True)), a zero-argument callable returning one "
    "(re-runnable: Regenerate works), an iterable or async iterable of str, "
    "an anthropic / google-genai / ollama / cohere / LiteLLM / Hugging Face stream, "
    "LangChain message chunks or OpenAI-shaped chunk dicts, "
    "a ChatRequest/ResponsesRequest, a ChunkLog, or a path to a .jsonl chunk log"
)


def _is_source(obj: object) -> TypeGuard[Source]:
    return (
        hasattr(obj, "open")
        and hasattr(obj, "aopen")
        and hasattr(obj, "rerunnable")
        and hasattr(obj, "kind")
    )


def _is_openai_stream(obj: Any) -> bool:
    openai = sys.modules.get("openai")
    return openai is not None and isinstance(obj, (openai.Stream, openai.AsyncStream))


class CallableSource:
    """``fn()`` returns a stream (or anything else accepted) each time: re-runnable."""

    rerunnable = True
    params = None
    supports_sync = True
    supports_async = True

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.kind = "openai"

    def open(self) -> Opened:
        result = self.fn()
        if inspect.isawaitable(result):
            if hasattr(result, "close"):
                result.close()  # do not leak an un-awaited coroutine
            raise TypeError(
                "this callable returns a coroutine (async client?): run it with "
                "`await run.arun()` or pass a sync client"
            )
        source = to_source(result, _nested=True)
        if not source.supports_sync:
            raise TypeError(
                f"the callable returned {type(result).__name__}, which is async: "
                "use `await run.arun()`"
            )
        return source.open()

    async def aopen(self) -> AOpened:
        # Called in a worker thread: with a sync client, fn() is the whole HTTP request (connect,
        # the SDK's own retries, the response head), which must not block the event loop (the
        # kernel's, in background mode). An async client's fn() only makes a coroutine.
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(None, contextvars.copy_context().run, self.fn)
        try:
            result = await call
        except asyncio.CancelledError:
            call.add_done_callback(_discard)  # Stop while connecting: close what fn() returns
            raise
        if inspect.isawaitable(result):
            result = await result
        source = to_source(result, _nested=True)
        if not source.supports_sync:
            return await source.aopen()
        # a sync stream (or a sync iterable: a blocking generator, LangChain's .stream()) from
        # the callable: read it in a thread of its own, never by blocking calls on the loop
        from nbstream.sources.threaded import read_in_thread

        return read_in_thread(await loop.run_in_executor(None, source.open))

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return f"CallableSource({name})"


def _discard(call: Any) -> None:
    """Close a stream whose opening finished after Stop: nobody will read it."""
    if call.cancelled() or call.exception() is not None:
        return
    close = getattr(call.result(), "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            closing = close()
            if inspect.isawaitable(closing):  # an AsyncStream (this runs on its loop)
                asyncio.ensure_future(closing)


def to_source(obj: Any, *, _nested: bool = False) -> Source:
    """Turn anything ``nbstream.stream()`` accepts into a :class:`Source` (TypeError otherwise)."""
    if _is_source(obj):
        return obj
    if _is_openai_stream(obj):
        from nbstream.sources.openai_stream import StreamSource

        return StreamSource(obj)
    from nbstream.sources.native import native_source

    native = native_source(obj)
    if native is not None:
        return native
    from nbstream.run.log import ChunkLog

    if isinstance(obj, ChunkLog):
        from nbstream.sources.replay import ReplaySource

        return ReplaySource(obj)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.suffix == ".jsonl":
            from nbstream.sources.replay import ReplaySource

            return ReplaySource(path)
        raise TypeError(
            "a str is taken as the path of a .jsonl chunk log to replay; "
            f"{str(obj)[:60]!r} is not one. To stream a fixed text, pass [text] "
            f"or iter([text]). Accepted: {ACCEPTED}."
        )
    if isinstance(obj, (bytes, bytearray, Mapping)):
        raise TypeError(
            f"cannot stream a {type(obj).__name__} (for request parameters use "
            f"ChatRequest(params, client)). Accepted: {ACCEPTED}."
        )
    if hasattr(obj, "__aiter__") or (hasattr(obj, "__iter__") and not callable(obj)):
        from nbstream.sources.text import TextSource

        return TextSource(obj)
    if callable(obj) and not _nested and not inspect.isclass(obj):
        try:
            sig = inspect.signature(obj)
            required = [
                p
                for p in sig.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
        except (TypeError, ValueError):
            required = []
        if required:
            raise TypeError(
                f"a callable source must take no arguments; {obj!r} requires "
                f"{', '.join(p.name for p in required)}. Wrap it: lambda: fn(...)."
            )
        return CallableSource(obj)
    raise TypeError(f"cannot stream {type(obj).__name__!s}. Accepted: {ACCEPTED}.")

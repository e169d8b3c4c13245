"""What a source is: the contract between pure adapters and ``StreamRun``.

A ``Source`` opens one attempt at a time; an ``Opened`` yields ``(raw, events)`` pairs and can be
closed from any thread so a Stop click closes the HTTP response at once.
"""

from __future__ import annotations

import email.utils
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nbstream.events import Event

Item = tuple[Any, list[Event]]

RATE_LIMIT_HEADERS = ("x-ratelimit-", "retry-after", "x-request-id", "openai-processing-ms")


@dataclass
class ResponseMeta:
    """The HTTP response head of one attempt (None/empty for sources without HTTP)."""

    status: int | None = None
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class StreamError(Exception):
    """A failure reported by the stream itself (mid-stream error payload, replayed error)."""

    def __init__(self, message: str, code: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


def select_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers worth logging: request id and rate limits (never Authorization)."""
    if not headers:
        return {}
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(RATE_LIMIT_HEADERS)}


@dataclass
class ErrorInfo:
    """An exception read once for the log, the status line, retries, rate limits and error
    messages (:func:`describe_error`; duck-typed, no openai import)."""

    message: str
    """For the log and the status line: the server's words, after ``HTTP <status>: ``."""
    error_type: str
    status: int | None = None
    """The HTTP response's status (None for a :class:`StreamError`, which came in a 200)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The response's headers worth logging (:func:`select_headers`: rate limits, Retry-After,
    request id), lower-case names."""
    data: Any = None
    retry_after: float | None = None
    """Seconds the server asked to wait (``retry-after-ms``, else ``Retry-After``)."""
    server_reported: bool = False
    """True when the server said so (an HTTP status, an error payload in the stream: its message
    is the reason), False for a transport failure (disconnect, timeout, a chunk that is not
    JSON). After the first token the first ends a run "error", the second "incomplete"."""
    error_status: int | None = None
    """The HTTP status the error stands for: ``status``, or the ``status_code`` a stream error
    names (Anthropic's ``overloaded_error`` event: 529), for retries and error messages."""
    request_id: str | None = None
    server_message: str = ""
    """The server's own words (the payload's ``error.message``), else the exception's text."""
    code: str = ""
    """The payload's error code (``model_not_found``, ``insufficient_quota``...) or ""."""
    should_retry: bool | None = None
    """The ``x-should-retry`` header (True/False), None when absent."""
    responded: bool = False
    """An HTTP response came with the error (its headers are known, maybe none of interest)."""


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """``retry-after-ms`` (ms), else ``Retry-After`` (seconds or an HTTP date) -> seconds (the
    order and units of the openai SDK's ``_parse_retry_after_header``); None when absent or
    unreadable, never negative."""
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = lower.get("retry-after")
    if value:
        try:
            parsed = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):  # Python >= 3.10 raises, never returns None
            return None
        wall = time.time() if now is None else now
        return max(0.0, parsed.timestamp() - wall)
    return None


def sdk_isinstance(obj: object, name: str) -> bool:
    """``isinstance(obj, openai.<name>)`` when the SDK is loaded (never imports it: an object of
    the SDK's was made with it loaded)."""
    openai = sys.modules.get("openai")
    cls = getattr(openai, name, None) if openai is not None else None
    return isinstance(cls, type) and isinstance(obj, cls)


_OWN_ERRORS = "nbstream.sources.openai_http"  # the errors of nbstream's own requests


def sdk_error_is(exc: BaseException, name: str) -> bool:
    """``isinstance(exc, openai.<name>)``, or ``exc`` is of nbstream's own class of that name
    (``sources/openai_http.py``: the requests sent without the SDK raise errors of the SDK's
    names and attributes). Imports neither."""
    for cls in type(exc).__mro__:
        if cls.__name__ == name and cls.__module__ == _OWN_ERRORS:
            return True
    return sdk_isinstance(exc, name)


def describe_error(exc: BaseException) -> ErrorInfo:
    """The one reader of an SDK or stream error: status, headers, Retry-After, request id,
    the server's message and code, its payload."""
    code_status = getattr(exc, "status_code", None)
    error_status = code_status if isinstance(code_status, int) else None
    # A StreamError came in a 200 stream: a ``status_code`` on it (Anthropic's overloaded event,
    # 529) only tells the retry layer which HTTP failure it stands for; it is not the response's.
    status = None if isinstance(exc, StreamError) else error_status
    response = getattr(exc, "response", None)
    all_headers = getattr(response, "headers", None) if response is not None else None
    headers = select_headers(all_headers)
    body = getattr(exc, "body", None)
    data = getattr(exc, "data", None) if isinstance(exc, StreamError) else body
    server_message = ""
    code = getattr(exc, "code", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            if inner.get("message"):
                server_message = str(inner["message"])
            if code is None:
                code = inner.get("code")
        if not server_message and body.get("message"):
            server_message = str(body["message"])
    if not server_message:
        server_message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    lower = {str(k).lower(): v for k, v in all_headers.items()} if all_headers else {}
    should = str(lower.get("x-should-retry", "")).lower()
    request_id = getattr(exc, "request_id", None)
    return ErrorInfo(
        message=f"HTTP {status}: {server_message}" if status is not None else server_message,
        error_type=type(exc).__name__,
        status=status,
        headers=headers,
        data=data,
        retry_after=parse_retry_after(headers),
        server_reported=status is not None or isinstance(data, Mapping),
        error_status=error_status,
        request_id=request_id if isinstance(request_id, str) else None,
        server_message=server_message,
        code=str(code or ""),
        should_retry={"true": True, "false": False}.get(should),
        responded=all_headers is not None,
    )


class Opened:
    """One sync attempt: ``items`` yields ``(raw, events)``; ``close()`` works from any thread."""

    def __init__(
        self,
        items: Iterator[Item],
        *,
        kind: str,
        meta: ResponseMeta | None = None,
        close: Callable[[], None] | None = None,
        pending_raw: Callable[[], Any] | None = None,
        expects_finish: bool = True,
        adapter: Any = None,
        watch_reads: Callable[[Callable[[], None], Callable[[], None]], bool] | None = None,
    ) -> None:
        self.items = items
        self._kind = kind
        self._adapter = adapter
        self.meta = meta or ResponseMeta()
        self._close = close
        self._pending_raw = pending_raw
        self.expects_finish = expects_finish
        self.closed = False
        self._watch_reads = watch_reads

    def close(self) -> None:
        """Close the underlying response at once; idempotent, safe from any thread."""
        self.closed = True
        if self._close is not None:
            self._close()

    def watch_reads(self, before: Callable[[], None], after: Callable[[], None]) -> bool:
        """Call ``before()`` on the consuming thread when it is about to wait for the network
        (no data ready) and ``after()`` once the read returned. Call before iterating ``items``.
        False when the source cannot tell (then nothing is called)."""
        return self._watch_reads(before, after) if self._watch_reads is not None else False

    @property
    def kind(self) -> str:
        """``chat`` | ``responses`` | ``text`` | ``openai`` (an SDK stream not yet started)."""
        return self._adapter.kind if self._adapter is not None else self._kind

    def pending_raw(self) -> Any:
        """Raw data read but not yielded as a chunk: the payload of a mid-stream error."""
        return self._pending_raw() if self._pending_raw is not None else None

    def end_events(self) -> list[Event]:
        """Events the adapter still holds when the attempt ends early (see ``ChatAdapter.end``)."""
        end = getattr(self._adapter, "end", None)
        return end() if end is not None else []


class AOpened:
    """One async attempt: ``items`` is an async iterator; ``await aclose()`` closes the response."""

    def __init__(
        self,
        items: AsyncIterator[Item],
        *,
        kind: str,
        meta: ResponseMeta | None = None,
        aclose: Callable[[], Any] | None = None,
        pending_raw: Callable[[], Any] | None = None,
        expects_finish: bool = True,
        adapter: Any = None,
    ) -> None:
        self.items = items
        self._kind = kind
        self._adapter = adapter
        self.meta = meta or ResponseMeta()
        self._aclose = aclose
        self._pending_raw = pending_raw
        self.expects_finish = expects_finish
        self.closed = False

    async def aclose(self) -> None:
        """Close the underlying response (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._aclose is not None:
            await self._aclose()

    @property
    def kind(self) -> str:
        """``chat`` | ``responses`` | ``text`` | ``openai`` (an SDK stream not yet started)."""
        return self._adapter.kind if self._adapter is not None else self._kind

    def pending_raw(self) -> Any:
        return self._pending_raw() if self._pending_raw is not None else None

    def end_events(self) -> list[Event]:
        """Events the adapter still holds when the attempt ends early (see ``ChatAdapter.end``)."""
        end = getattr(self._adapter, "end", None)
        return end() if end is not None else []


class Adapter(Protocol):
    """Turns one item of a stream (an SDK chunk or event) into events."""

    @property
    def kind(self) -> str: ...

    def handle(self, item: Any) -> list[Event]: ...


@runtime_checkable
class Source(Protocol):
    """Anything :class:`~nbstream.run.stream_run.StreamRun` can drive (read-only attributes: a class
    attribute such as ``params = None`` satisfies them)."""

    @property
    def rerunnable(self) -> bool: ...
    @property
    def kind(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any] | None: ...
    @property
    def supports_sync(self) -> bool: ...
    @property
    def supports_async(self) -> bool: ...

    def open(self) -> Opened: ...

    async def aopen(self) -> AOpened: ...


class SourceWrapper:
    """A Source around another (``inner``): delegates the Source attributes to it. Wrappers
    (the rate limiter's, Resume's) keep what they wrap as ``inner``, so what is inside can be
    found (``resilience.resume.request_of``)."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.rerunnable = inner.rerunnable
        self.kind = inner.kind
        self.params = inner.params
        self.supports_sync = inner.supports_sync
        self.supports_async = inner.supports_async

    def __repr__(self) -> str:
        return repr(self.inner)

"""What a source is: the contract between pure adapters and ``StreamRun``.

A ``Source`` opens one attempt at a time; an ``Opened`` yields ``(raw, events)`` pairs and can be
closed from any thread so a Stop click closes the HTTP response at once.
"""

from __future__ import annotations

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
    """An exception described for the log and the status line (duck-typed, no openai import)."""

    message: str
    error_type: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None
    retry_after: float | None = None
    server_reported: bool = False
    """True when the server said so (an HTTP status, an error payload in the stream: its message
    is the reason), False for a transport failure (disconnect, timeout, a chunk that is not
    JSON). After the first token the first ends a run "error", the second "incomplete"."""


def describe_error(exc: BaseException) -> ErrorInfo:
    """Message, HTTP status, rate-limit headers and payload of an SDK or stream error."""
    # A StreamError came in a 200 stream: a ``status_code`` on it (Anthropic's overloaded event,
    # 529) only tells the retry layer which HTTP failure it stands for; it is not the response's.
    status = None if isinstance(exc, StreamError) else getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    headers = select_headers(getattr(response, "headers", None)) if response is not None else {}
    body = getattr(exc, "body", None)
    data = getattr(exc, "data", None) if isinstance(exc, StreamError) else body
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            message = inner["message"]
    if status is not None:
        message = f"HTTP {status}: {message}"
    retry_after = None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value:
            try:
                retry_after = float(value) / (1000.0 if name.endswith("ms") else 1.0)
                break
            except ValueError:
                pass
    return ErrorInfo(
        message=message,
        error_type=type(exc).__name__,
        status=status,
        headers=headers,
        data=data,
        retry_after=retry_after,
        server_reported=status is not None or isinstance(data, Mapping),
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

"""I/O around an ``openai`` ``Stream`` / ``AsyncStream``: iterate, capture raw JSON, close at once.

The path of a stream the caller opened (requests nbstream makes itself take the faster
``openai_raw`` path). The SDK decodes SSE and builds the typed chunks. To log each chunk exactly
as received without re-serialising it, we keep the ``data`` text of the SDK's own
``ServerSentEvent`` as it passes by (a wrapper around the stream's event iterator, installed
before iteration starts), and parse it once with orjson for the adapters (which read JSON dicts)
and for the SDK (its ``sse.json()`` returns that dict). If that is not possible, the chunk is
dumped from its model instead, and the adapters read the dump.

``close()`` from another thread first shuts the socket down (which wakes a read blocked in
``recv`` at once, and the server sees the disconnect), then closes the response.
"""

from __future__ import annotations

import logging
import select
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from nbstream.events import Event
from nbstream.redact import register_client
from nbstream.sources.base import Adapter, AOpened, Opened, ResponseMeta, select_headers
from nbstream.sources.openai_chat import ChatAdapter
from nbstream.sources.openai_responses import ResponsesAdapter
from nbstream.sources.sockets import close_response
from nbstream.sources.sse import loads

if TYPE_CHECKING:  # a stream of the SDK is only ever handed in: it is loaded by then
    import openai

_log = logging.getLogger("nbstream")


class AutoAdapter:
    """Chooses the chat or Responses adapter from the first item (a JSON dict): a chat chunk
    has ``choices``, a Responses event none."""

    def __init__(self) -> None:
        self.kind = "openai"
        self._inner: Adapter | None = None

    def handle(self, item: Any) -> list[Event]:
        inner = self._inner
        if inner is None:
            chosen: Adapter = ChatAdapter() if _is_chat(item) else ResponsesAdapter()
            inner = self._inner = chosen
            self.kind = inner.kind
            self.handle = inner.handle  # type: ignore[method-assign]  # later items go direct
        return inner.handle(item)


def _is_chat(item: Any) -> bool:
    return isinstance(item, dict) and (
        "choices" in item or item.get("object") == "chat.completion.chunk"
    )


def adapter_for(kind: str) -> Adapter:
    if kind == "chat":
        return ChatAdapter()
    if kind == "responses":
        return ResponsesAdapter()
    return AutoAdapter()


class _Capture:
    """The last SSE ``data`` text the SDK decoded (and its JSON), and the one already handed out
    as a chunk."""

    __slots__ = ("data", "parsed", "used", "done")

    def __init__(self) -> None:
        self.data: str | None = None
        self.parsed: Any = None  # the JSON of ``data``: the adapters read it
        self.used: str | None = None
        # the server sent ``data: [DONE]``: the stream ended cleanly even when no chunk carried a
        # finish reason (Snowflake Cortex never sends one), so the run need not expect one
        self.done = False

    def pending(self) -> str | None:
        return self.data if self.data is not self.used else None


def _share_json(sse: Any, data: str, cap: _Capture) -> None:
    """Parse the event's data once (orjson; ``json``'s result and errors) for the adapter and the
    SDK both: the SDK's ``sse.json()`` then returns the same dict instead of parsing again."""
    parsed = cap.parsed = loads(data)
    try:  # noqa: SIM105 - contextlib.suppress costs ~0.5 us per chunk
        sse.json = lambda: parsed
    except AttributeError:  # a ServerSentEvent with slots: the SDK parses it again
        pass


def _install_capture(stream: Any, cap: _Capture, is_async: bool) -> None:
    """Observe the SDK's decoded SSE events. If the stream had already started, the wrapper is
    never called and ``cap.data`` stays None: chunks are then dumped from their models."""
    original = getattr(stream, "_iter_events", None)
    if original is None:
        return

    if is_async:

        async def aiter_events() -> Any:
            async for sse in original():
                data = cap.data = sse.data
                if data.startswith("[DONE]"):
                    cap.done = True
                else:
                    _share_json(sse, data, cap)
                yield sse

        stream._iter_events = aiter_events
    else:

        def iter_events() -> Any:
            events = original()
            for sse in events:
                data = cap.data = sse.data
                if data.startswith("[DONE]"):
                    cap.done = True
                    # The SDK stops reading at [DONE] and closes the response with the end of
                    # the chunked body unread, which drops the connection: read to the end so
                    # the pool can reuse it (keep-alive across streams and cells).
                    for _rest in events:
                        pass
                else:
                    _share_json(sse, data, cap)
                yield sse

        stream._iter_events = iter_events


def response_meta(response: Any) -> ResponseMeta:
    """Status, ``x-request-id`` and rate-limit headers of an httpx response."""
    if response is None:
        return ResponseMeta()
    headers = getattr(response, "headers", None)
    return ResponseMeta(
        status=getattr(response, "status_code", None),
        request_id=headers.get("x-request-id") if headers is not None else None,
        headers=select_headers(headers),
    )


def _readable(sock: Any) -> bool:
    """True when a read would not wait: bytes are in the socket (or in its TLS buffer)."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    try:
        return bool(select.select((sock,), (), (), 0)[0])
    except (OSError, ValueError):  # closed under us (Stop): let the read report it
        return True


def _watch_reads(response: Any, before: Callable[[], None], after: Callable[[], None]) -> bool:
    """Wrap the HTTP response's byte stream so that a read that will wait for the network is
    announced (``before``) and its end too (``after``). Needs the connection's socket and a
    response not yet read; otherwise False and nothing changes."""
    # the byte-stream class of the SDK's own HTTP library, already imported by it: ``httpx2``
    # (openai >= 3) or ``httpx`` (openai 1.x and 2.x)
    http = sys.modules.get(type(response).__module__.partition(".")[0])
    byte_stream: Any = getattr(http, "SyncByteStream", None)
    inner = getattr(response, "stream", None)
    if (
        response is None
        or inner is None
        or byte_stream is None
        or not isinstance(inner, byte_stream)
        or getattr(response, "is_stream_consumed", True)
    ):
        return False
    try:
        network = response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
    except Exception:
        sock = None
    if sock is None:
        return False
    body: Any = inner  # checked above (a nested class does not keep the narrowing)

    class WatchedBytes(byte_stream):  # type: ignore[misc]  # httpx's or httpx2's base (Any)
        def __iter__(self) -> Iterator[bytes]:
            chunks = iter(body)
            while True:
                if _readable(sock):
                    data = next(chunks, None)
                else:
                    before()
                    try:
                        data = next(chunks, None)
                    finally:
                        after()
                if data is None:
                    return
                yield data

        def close(self) -> None:
            body.close()

    response.stream = WatchedBytes()
    return True


def _dump(item: Any) -> Any:
    return item.model_dump(mode="json", exclude_unset=True)


def _events(adapter: Adapter, item: Any) -> list[Event]:
    """The adapter's events for one item; a shape it trips on costs that item's events, never
    the answer (the raw chunk is in the chunk log all the same)."""
    try:
        return adapter.handle(item)
    except Exception:
        _log.warning("nbstream: could not read a chunk; it is kept in the log", exc_info=True)
        return []


def open_stream(stream: openai.Stream[Any], kind: str = "openai") -> Opened:
    """Wrap a sync SDK stream as one attempt."""
    register_client(getattr(stream, "_client", None))  # a stream made by the caller's client
    cap = _Capture()
    _install_capture(stream, cap, is_async=False)
    adapter = adapter_for(kind)

    finished = False

    def items() -> Iterator[tuple[Any, list[Event]]]:
        nonlocal finished
        for item in stream:
            raw = cap.data
            if raw is None or raw is cap.used:
                raw = parsed = _dump(item)
            else:
                cap.used = raw
                parsed = cap.parsed
            yield raw, _events(adapter, parsed)
        finished = True
        if cap.done:
            opened.expects_finish = False

    def close() -> None:
        close_response(stream.response, finished)  # Stop: the run sees it; else keep-alive

    opened = Opened(
        items(),
        kind=kind,
        meta=response_meta(stream.response),
        close=close,
        pending_raw=cap.pending,
        adapter=adapter,
        watch_reads=lambda before, after: _watch_reads(stream.response, before, after),
    )
    return opened


def open_async_stream(stream: openai.AsyncStream[Any], kind: str = "openai") -> AOpened:
    """Wrap an async SDK stream as one attempt."""
    register_client(getattr(stream, "_client", None))  # a stream made by the caller's client
    cap = _Capture()
    _install_capture(stream, cap, is_async=True)
    adapter = adapter_for(kind)

    async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
        async for item in stream:
            raw = cap.data
            if raw is None or raw is cap.used:
                raw = parsed = _dump(item)
            else:
                cap.used = raw
                parsed = cap.parsed
            yield raw, _events(adapter, parsed)
        if cap.done:
            opened.expects_finish = False

    async def aclose() -> None:
        await stream.close()

    opened = AOpened(
        items(),
        kind=kind,
        meta=response_meta(stream.response),
        aclose=aclose,
        pending_raw=cap.pending,
        adapter=adapter,
    )
    return opened


class StreamSource:
    """A stream the caller already opened: single use (not re-runnable)."""

    rerunnable = False
    params = None

    def __init__(self, stream: Any) -> None:
        import openai  # the caller's stream is the SDK's: loaded already

        self._stream = stream
        self._used = False
        self.supports_sync = isinstance(stream, openai.Stream)
        self.supports_async = isinstance(stream, openai.AsyncStream)
        self.kind = "openai"

    def _take(self) -> Any:
        if self._used:
            raise RuntimeError(
                "this openai stream was already consumed; pass a zero-argument callable "
                "(lambda: client.chat.completions.create(..., stream=True)) to make it re-runnable"
            )
        self._used = True
        return self._stream

    def open(self) -> Opened:
        return open_stream(self._take())

    async def aopen(self) -> AOpened:
        return open_async_stream(self._take())

    def __repr__(self) -> str:
        return f"StreamSource({type(self._stream).__name__})"

"""I/O around an ``openai`` ``Stream`` / ``AsyncStream``: iterate, capture raw JSON, close at once.

The path of a stream the caller opened (requests nbstream makes itself take the faster
``openai_raw`` path). The SDK decodes SSE and builds the typed chunks. To log each chunk exactly
as received without re-serialising it, we keep the ``data`` text of the SDK's own
``ServerSentEvent`` as it passes by (a wrapper around the stream's event iterator, installed
before iteration starts), and parse it once with orjson for the adapters (which read JSON dicts)
and for the SDK (its ``sse.json()`` returns that dict). If that is not possible, the chunk is
dumped from its model instead, and the adapters read the dump.

While the next chunk is already in the socket, the SDK decodes a batch of chunks (``BATCH``)
before they are handed out one by one: the SDK's work and nbstream's then each run over a batch
instead of alternating per chunk (issue 16 §1; a live stream goes out chunk by chunk).

``close()`` from another thread first shuts the socket down (which wakes a read blocked in
``recv`` at once, and the server sees the disconnect), then closes the response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from nbstream.events import Event, Started
from nbstream.redact import register_client
from nbstream.sources.base import Adapter, AOpened, Opened, ResponseMeta, select_headers
from nbstream.sources.openai_chat import ChatAdapter
from nbstream.sources.openai_responses import ResponsesAdapter
from nbstream.sources.sockets import available_bytes, close_response, drain, readable
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
                    # the pool can reuse it (keep-alive across streams and cells), for a bounded
                    # time (a proxy that leaves the body open must not keep a complete answer
                    # "streaming" until the read timeout).
                    drain(events, stream.response, (Exception,))
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


# SDK chunks decoded in a row, at most, before nbstream's own work on them (adapter, log, state,
# hooks, view): while the next chunk is already in the socket, the SDK decodes it first, so its
# pydantic work and nbstream's each run over a batch instead of alternating per chunk, which
# kept both out of the CPU's caches: nbstream's ~5 us of own work per chunk cost 11-12 us
# interleaved, 5 us batched (10k chunks x 12, same run, load 2-3); bench/bench_consumer.py,
# 100k chunks: 1.062-1.075x the bare SDK loop's CPU, main 1.133-1.145x in the same hour
# (BENCHMARKS.md §1). A chunk is held only while the socket has data (a live stream, whose
# reads wait, is handed out chunk by chunk; conservative: chunks already in the SDK's and
# httpcore's buffers, a burst read whole by one recv, are not seen and go out one by one),
# never before the first content, never after Stop, and the batch is bounded: 32 chunks are
# ~3 ms of the SDK's work.
BATCH = 32
# ... and only while this much more is waiting in the socket: readable alone is not enough, the
# bytes there may be a keep-alive comment, half an event or the body's end after [DONE], and the
# SDK would then wait in its next read with the held chunks unseen (a review showed 31 chunks
# held across a 2 s pause). With 8 kB waiting (~40 events of the local server) the SDK's next
# events are there; a live stream, or a pause's first bytes, goes out chunk by chunk.
HOLD_BYTES = 8192


def _more_waiting(sock: Any) -> bool:
    """Whether a batch may hold one more chunk: ``HOLD_BYTES`` waiting in the socket."""
    waiting = available_bytes(sock)
    return waiting is not None and waiting >= HOLD_BYTES


def _socket_of(response: Any) -> Any:
    """The socket of an HTTP/1.1 response (its own connection), else None: an HTTP/2
    connection's socket carries other responses too, so its data says nothing of this one's."""
    if response is None or getattr(response, "http_version", None) != "HTTP/1.1":
        return None
    try:
        return response.extensions.get("network_stream").get_extra_info("socket")
    except Exception:
        return None


def _has_content(events: list[Event]) -> bool:
    """Whether a chunk carried more than its start (the first token has gone out)."""
    return any(type(e) is not Started for e in events)


def _watch_reads(response: Any, before: Callable[[], None], after: Callable[[], None]) -> bool:
    """Announce each network read of the HTTP response that will wait (``before``, on the
    reading thread) and its end (``after``). Needs an HTTP/1.1 connection with a socket and a
    response not yet read; otherwise False and nothing changes.

    The check sits on the connection's socket reads (``network_stream.read``), not on the
    response's byte iterator: httpcore hands the body out one chunked-encoding piece at a time
    (~2 per SSE event from the local server), while one ``recv`` of a consumer that is behind
    brings up to 64 kB (hundreds of events). A ``select`` per piece cost ~0.8 us twice per
    chunk; per ``recv`` it is ~0 at full speed and one per chunk on a live stream, where reads
    wait anyway. The read is restored when the response closes (the connection goes back to
    the pool without it)."""
    sock = _socket_of(response)
    if sock is None or getattr(response, "is_stream_consumed", True):
        return False
    network = response.extensions["network_stream"]
    read, close = network.read, response.close

    def watched_read(max_bytes: int, timeout: float | None = None) -> bytes:
        if readable(sock):
            return read(max_bytes, timeout)  # type: ignore[no-any-return]
        before()
        try:
            return read(max_bytes, timeout)  # type: ignore[no-any-return]
        finally:
            after()

    def unwatch() -> None:
        if getattr(network, "__dict__", {}).get("read") is watched_read:
            del network.read
        if getattr(response, "__dict__", {}).get("close") is closing:
            del response.close

    def closing() -> None:
        unwatch()
        close()

    try:
        network.read = watched_read
        response.close = closing
    except AttributeError:  # a stream class with slots: not watched
        unwatch()
        return False
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
    sock = _socket_of(stream.response)

    def items() -> Iterator[tuple[Any, list[Event]]]:
        nonlocal finished
        held: list[tuple[Any, Any]] = []  # decoded by the SDK, not yet handed out (see BATCH)
        batching = False  # from the first content on: the first token is never held
        try:
            for item in stream:
                raw = cap.data
                if raw is None or raw is cap.used:
                    raw = parsed = _dump(item)
                else:
                    cap.used = raw
                    parsed = cap.parsed
                if batching and len(held) < BATCH - 1 and not opened.closed and _more_waiting(sock):
                    held.append((raw, parsed))  # the next chunk is there: decode it first
                    continue
                if held:
                    for h_raw, h_parsed in held:
                        yield h_raw, _events(adapter, h_parsed)
                    held.clear()
                events = _events(adapter, parsed)
                yield raw, events
                if not batching and sock is not None:
                    batching = _has_content(events)
        except Exception:
            for h_raw, h_parsed in held:  # what was received, then the error
                yield h_raw, _events(adapter, h_parsed)
            raise
        finished = True  # read to the end (the SDK closed the response): keep-alive
        if cap.done:
            opened.expects_finish = False
        for h_raw, h_parsed in held:
            yield h_raw, _events(adapter, h_parsed)

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

    sock = _socket_of(stream.response)

    async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
        held: list[tuple[Any, Any]] = []  # as in open_stream
        batching = False
        try:
            async for item in stream:
                raw = cap.data
                if raw is None or raw is cap.used:
                    raw = parsed = _dump(item)
                else:
                    cap.used = raw
                    parsed = cap.parsed
                if batching and len(held) < BATCH - 1 and not opened.closed and _more_waiting(sock):
                    held.append((raw, parsed))
                    continue
                if held:
                    for h_raw, h_parsed in held:
                        yield h_raw, _events(adapter, h_parsed)
                    held.clear()
                events = _events(adapter, parsed)
                yield raw, events
                if not batching and sock is not None:
                    batching = _has_content(events)
        except Exception:
            for h_raw, h_parsed in held:
                yield h_raw, _events(adapter, h_parsed)
            raise
        if cap.done:
            opened.expects_finish = False
        for h_raw, h_parsed in held:
            yield h_raw, _events(adapter, h_parsed)

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

"""The fast path of requests nbstream makes itself: our SSE and JSON, no SDK models.

The response comes unread from :meth:`~nbstream.sources.openai_http.Endpoint.send` (no client
given: no openai import at all, issue 16 §4) or from an SDK client's
``client.chat.completions.with_streaming_response.create(..., stream=True)`` (or
``client.responses...``), which sends the request as the SDK does. Either way this module reads
the body: :class:`~nbstream.sources.sse.SSEDecoder` per HTTP read, ``orjson`` for the ``data``
(:func:`~nbstream.sources.sse.loads`), and the adapters get the JSON dicts, never pydantic models
(building them is ~90% of the SDK loop's CPU). What the SDK's ``Stream`` does while iterating is
kept: ``[DONE]`` ends the stream, a ``data`` payload with an ``error`` raises ``APIError`` (same
message and body), a transport failure while reading the body raises ``APITimeoutError`` /
``APIConnectionError`` (as openai >= 3 does): nbstream's own classes of those names
(``openai_http``), read like the SDK's. The log gets each ``data`` text as received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from nbstream.events import Event
from nbstream.sources.base import Adapter, AOpened, Opened
from nbstream.sources.openai_http import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    transport_errors,
)
from nbstream.sources.openai_stream import (
    _events,
    _watch_reads,
    adapter_for,
    response_meta,
)
from nbstream.sources.sockets import DRAIN_S, close_response, drain
from nbstream.sources.sse import SSEDecoder, loads

_STREAMING_ERROR = "An error occurred during streaming"


def _payload_error(obj: Any, response: Any) -> APIError | None:
    """The SDK's ``APIError`` for a ``data`` payload carrying an ``error`` (as ``Stream`` does)."""
    if not isinstance(obj, Mapping) or not obj.get("error"):
        return None
    error = obj["error"]
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = _STREAMING_ERROR
    return APIError(message, response.request, body=error)


class _State:
    """One attempt's ``data`` payloads to events, the same for the sync and async reads; keeps
    the payload decoded but not handed out (a mid-stream error's) as ``pending``."""

    __slots__ = ("pending", "adapter", "response")

    def __init__(self, adapter: Adapter, response: Any) -> None:
        self.pending: str | None = None
        self.adapter = adapter
        self.response = response

    def events(self, data: str) -> list[Event]:
        self.pending = data
        obj = loads(data)
        if type(obj) is not dict or "error" in obj:
            err = _payload_error(obj, self.response)
            if err is not None:
                raise err
        self.pending = None
        return _events(self.adapter, obj)  # a chunk the adapter trips on costs that chunk


def open_response(response: Any, kind: str) -> Opened:
    """One sync attempt over an unread streaming HTTP response."""
    adapter = adapter_for(kind)
    state = _State(adapter, response)
    finished = False
    timeouts, request_errors = transport_errors(response)

    def items() -> Iterator[tuple[Any, list[Event]]]:
        nonlocal finished
        decoder = SSEDecoder()
        feed = decoder.feed
        reads = response.iter_bytes()
        try:
            for read in reads:
                for _event, data in feed(read):
                    if data.startswith("[DONE]"):
                        opened.expects_finish = False
                        finished = drain(reads, response, timeouts + request_errors)
                        return
                    yield data, state.events(data)
        except timeouts as err:
            raise APITimeoutError(response.request) from err
        except request_errors as err:
            raise APIConnectionError(request=response.request) from err
        finished = True

    def close() -> None:
        close_response(response, finished)  # Stop: the run sees it; else keep-alive

    opened = Opened(
        items(),
        kind=kind,
        meta=response_meta(response),
        close=close,
        pending_raw=lambda: state.pending,
        adapter=adapter,
        watch_reads=lambda before, after: _watch_reads(response, before, after),
    )
    return opened


def aopen_response(response: Any, kind: str) -> AOpened:
    """One async attempt over an unread streaming HTTP response."""
    adapter = adapter_for(kind)
    state = _State(adapter, response)
    timeouts, request_errors = transport_errors(response)

    async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
        decoder = SSEDecoder()
        feed = decoder.feed
        reads = response.aiter_bytes()
        try:
            async for read in reads:
                for _event, data in feed(read):
                    if data.startswith("[DONE]"):
                        opened.expects_finish = False

                        async def drain() -> None:
                            async for _rest in reads:  # read to the end: keep-alive
                                pass

                        # bounded: the SDK's AsyncStream returns at [DONE]; a body left open
                        # costs the connection, never the run (aclose drops it)
                        with contextlib.suppress(asyncio.TimeoutError, *timeouts, *request_errors):
                            await asyncio.wait_for(drain(), DRAIN_S)
                        return
                    yield data, state.events(data)
        except timeouts as err:
            raise APITimeoutError(response.request) from err
        except request_errors as err:
            raise APIConnectionError(request=response.request) from err

    async def aclose() -> None:
        await response.aclose()

    opened = AOpened(
        items(),
        kind=kind,
        meta=response_meta(response),
        aclose=aclose,
        pending_raw=lambda: state.pending,
        adapter=adapter,
    )
    return opened

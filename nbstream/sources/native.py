"""What the native-SDK sources share: HTTP response heads, closing a socket from another thread,
turning an SDK's typed chunk into its JSON dict, and finding the HTTP response of an SDK that
hides it inside a generator.

Native adapters are pure state machines over each API's chunks *as JSON dicts* (the wire form),
so the same adapter reads a live SDK stream (its objects dumped, or the SSE data captured as
received) and a replayed chunk log (the dicts the log kept). No SDK is imported here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping
from typing import Any

from nbstream.sources.base import ResponseMeta

# What each provider calls its request id and rate-limit headers (never the Authorization or
# x-api-key / x-goog-api-key headers of the request: these are response headers only).
_REQUEST_ID_HEADERS = ("request-id", "x-request-id", "x-goog-request-id", "cf-ray")
_KEPT_PREFIXES = (
    "x-ratelimit-",
    "anthropic-ratelimit-",
    "retry-after",
    "x-request-id",
    "request-id",
    "x-should-retry",
    "openai-processing-ms",
    "x-api-warning",
)


def response_meta(response: Any) -> ResponseMeta:
    """Status, request id and rate-limit headers of an httpx/httpx2 response (or None)."""
    if response is None:
        return ResponseMeta()
    return meta_from_headers(
        getattr(response, "headers", None), getattr(response, "status_code", None)
    )


def meta_from_headers(headers: Mapping[str, str] | None, status: int | None = None) -> ResponseMeta:
    if not headers:
        return ResponseMeta(status=status)
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    request_id = next((lower[h] for h in _REQUEST_ID_HEADERS if lower.get(h)), None)
    kept = {k: v for k, v in lower.items() if k.startswith(_KEPT_PREFIXES)}
    return ResponseMeta(status=status, request_id=request_id, headers=kept)


def shutdown_socket(response: Any) -> None:
    """Wake a read blocked in another thread: shut the connection's socket down (httpx and
    httpx2 responses expose it the same way). Closing alone would not wake a blocked ``recv``."""
    try:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
    except Exception:
        sock = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def close_response(response: Any, finished: bool) -> None:
    """Stop: shut the socket down unless the body was read to the end, then close the response."""
    if response is None:
        return
    if not finished:
        shutdown_socket(response)
    with contextlib.suppress(Exception):
        response.close()


def dump(item: Any) -> Any:
    """An SDK chunk as the JSON dict its API sends (camelCase aliases where the SDK has them)."""
    if isinstance(item, Mapping):
        return dict(item)
    model_dump = getattr(item, "model_dump", None)
    if callable(model_dump):
        try:
            return model_dump(mode="json", by_alias=True, exclude_none=True)
        except TypeError:
            return model_dump()
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return item


class ResponseCatcher:
    """The HTTP response of a request an SDK makes inside a generator it hands out (Gemini,
    Ollama, Cohere, Hugging Face): found through a one-shot response event hook on the SDK's
    httpx client, installed before the generator starts. Only the response of a request made
    on the consuming thread is taken, so two streams of one client (``compare()``) do not swap.
    """

    def __init__(self) -> None:
        self.response: Any = None
        self._thread: int | None = None
        self._client: Any = None
        self._hook: Any = None

    def install(self, client: Any, is_async: bool) -> bool:
        hooks = getattr(client, "event_hooks", None)
        if not isinstance(hooks, Mapping):
            return False
        self._thread = threading.get_ident()

        def take(response: Any) -> None:
            if self.response is None and threading.get_ident() == self._thread:
                self.response = response

        if is_async:

            async def ahook(response: Any) -> None:
                take(response)

            self._hook = ahook
        else:
            self._hook = take
        new = {k: list(v) for k, v in hooks.items()}
        new.setdefault("response", []).append(self._hook)
        client.event_hooks = new
        self._client = client
        return True

    def remove(self) -> None:
        client, hook = self._client, self._hook
        self._client = None
        if client is None:
            return
        with contextlib.suppress(Exception):
            hooks = {k: [h for h in v if h is not hook] for k, v in client.event_hooks.items()}
            client.event_hooks = hooks


_CLIENT_PATHS = (
    ("_api_client", "_httpx_client"),  # google-genai (sync)
    ("_client",),  # ollama.Client
    ("_raw_client", "_client_wrapper", "httpx_client", "httpx_client"),  # cohere v2
    ("_client_wrapper", "httpx_client", "httpx_client"),
)
_ASYNC_CLIENT_PATHS = (("_api_client", "_async_httpx_client"), *_CLIENT_PATHS)


def httpx_client_of(gen: Any, is_async: bool) -> Any:
    """The httpx client behind a not-yet-started SDK generator: its frame's ``self`` is the SDK
    resource (``client.models``, ``ollama.Client``...). None when not found."""
    frame = getattr(gen, "ag_frame" if is_async else "gi_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    if owner is None:
        return None
    for path in _ASYNC_CLIENT_PATHS if is_async else _CLIENT_PATHS:
        obj = owner
        for name in path:
            obj = getattr(obj, name, None)
            if obj is None:
                break
        if obj is not None and isinstance(getattr(obj, "event_hooks", None), Mapping):
            return obj
    return None


def native_source(obj: Any) -> Any:
    """The source for a native SDK's stream object, or None (checked by module name and duck
    typing: no SDK is imported unless ``obj`` came from it)."""
    from nbstream.sources import anthropic

    if anthropic.is_anthropic(obj):
        return anthropic.AnthropicSource(obj)
    return None


def adapter_for_kind(kind: str | None) -> Any:
    """A fresh native adapter for a source kind found in a chunk log (None: not a native one)."""
    if kind == "anthropic":
        from nbstream.sources.anthropic import AnthropicAdapter

        return AnthropicAdapter()
    return None

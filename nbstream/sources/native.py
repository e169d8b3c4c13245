"""What the native-SDK sources share: HTTP response heads (closing one: sources/sockets.py),
turning an SDK's typed chunk into its JSON dict, and finding the HTTP response of an SDK that
hides it inside a generator.

Native adapters are pure state machines over each API's chunks *as JSON dicts* (the wire form),
so the same adapter reads a live SDK stream (its objects dumped, or the SSE data captured as
received) and a replayed chunk log (the dicts the log kept). No SDK is imported here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from nbstream.events import Event, TextDelta
from nbstream.sources.base import AOpened, Opened, ResponseMeta, Source, StreamError
from nbstream.sources.sockets import close_response

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


# ---- which adapter reads an item ------------------------------------------------------------


def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def _from(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def reader_for(item: Any) -> tuple[Any, Callable[[Any], Any]] | None:
    """``(adapter, to_raw)`` for an SDK chunk, by its class's module (no SDK imported), or None.
    ``to_raw`` turns the chunk into the JSON dict the adapter reads and the log keeps."""
    module = _module(item)
    if _from(module, "anthropic"):
        from nbstream.sources.anthropic import AnthropicAdapter

        return AnthropicAdapter(), dump
    if _from(module, "google.genai"):
        from nbstream.sources import gemini

        return gemini.GeminiAdapter(), gemini.to_raw
    if _from(module, "ollama"):
        from nbstream.sources import ollama

        return ollama.OllamaAdapter(), ollama.to_raw
    if _from(module, "cohere"):
        from nbstream.sources import cohere

        return cohere.CohereAdapter(), cohere.to_raw
    from nbstream.sources import chunks, langchain

    if langchain.is_message_chunk(item):
        return langchain.LangChainAdapter(), langchain.to_raw
    if chunks.looks_like_chat(item):
        return chunks.ChunkAdapter(), chunks.to_raw
    return None


def adapter_for_kind(kind: str | None) -> Any:
    """A fresh native adapter for a source kind found in a chunk log (None: not a native one)."""
    if kind == "anthropic":
        from nbstream.sources.anthropic import AnthropicAdapter

        return AnthropicAdapter()
    if kind == "gemini":
        from nbstream.sources.gemini import GeminiAdapter

        return GeminiAdapter()
    if kind == "ollama":
        from nbstream.sources.ollama import OllamaAdapter

        return OllamaAdapter()
    if kind == "cohere":
        from nbstream.sources.cohere import CohereAdapter

        return CohereAdapter()
    if kind == "langchain":
        from nbstream.sources.langchain import LangChainAdapter

        return LangChainAdapter()
    if kind == "chunks":
        from nbstream.sources.chunks import ChunkAdapter

        return ChunkAdapter()
    return None


class ItemReader:
    """Reads the items of an iterable: ``str`` as text; the first non-str item picks the
    adapter (by its SDK's module, or its shape) for the rest. ``kind`` says which."""

    def __init__(self, strict_text: Callable[[Any, int], str]) -> None:
        self.kind = "text"
        self.expects_finish = False
        self._adapter: Any = None
        self._to_raw: Callable[[Any], Any] = dump
        self._strict_text = strict_text

    def read(self, item: Any, n: int) -> tuple[Any, list[Event]]:
        if type(item) is str:
            return item, [TextDelta(item)] if item else []
        adapter = self._adapter
        if adapter is None:
            found = reader_for(item)
            if found is None:
                text = self._strict_text(item, n)  # a str .content, or a clear TypeError
                return text, [TextDelta(text)] if text else []
            adapter, self._to_raw = found
            self._adapter = adapter
            self.kind = adapter.kind
            # a LangChain model may not say why it stopped: its chunks need no finish reason
            self.expects_finish = self.kind != "langchain"
        raw = self._to_raw(item)
        return raw, adapter.handle(raw)

    def end(self) -> list[Event]:
        end = getattr(self._adapter, "end", None)
        return end() if end is not None else []


# ---- SDK errors as the rest of nbstream reads them -------------------------------------------


def bridge_error(exc: BaseException) -> BaseException:
    """Give an SDK exception the attributes ``describe_error`` / the retry layer read
    (``status_code``, ``body``, ``message``) when it names them otherwise; an error the server
    reported inside a 200 stream becomes a :class:`StreamError` with its payload."""
    if isinstance(exc, StreamError):
        return exc
    module = _module(exc)
    status = getattr(exc, "status_code", None)
    if _from(module, "ollama"):
        message = str(getattr(exc, "error", None) or exc)
        if status is None or status < 100:  # an {"error": ...} line inside the stream
            return StreamError(message, data={"error": message})
        with contextlib.suppress(Exception):
            exc.message = message  # type: ignore[attr-defined]
        return exc
    if _from(module, "google.genai"):
        code = getattr(exc, "code", None)
        with contextlib.suppress(Exception):
            if status is None and isinstance(code, int) and 100 <= code < 600:
                exc.status_code = code  # type: ignore[attr-defined]
            details = getattr(exc, "details", None)
            if getattr(exc, "body", None) is None and isinstance(details, Mapping):
                exc.body = dict(details)  # type: ignore[attr-defined]
        return exc
    return exc


# ---- a generator an SDK handed out -----------------------------------------------------------

_SDK_PACKAGES = ("google.genai", "ollama", "cohere", "huggingface_hub", "litellm", "llama_cpp")
_END = object()


def sdk_generator_package(obj: Any) -> str | None:
    """The SDK package whose code made this generator (its frame's module), or None."""
    frame = getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None)
    module = _module(obj)
    if frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
    for package in _SDK_PACKAGES:
        if _from(module, package):
            return package
    return None


def _strict_text(item: Any, n: int) -> str:
    content = getattr(item, "content", None)
    if isinstance(content, str):
        return content
    raise TypeError(
        f"cannot read item {n} ({type(item).__name__}) of this stream: not a chunk of a "
        "supported SDK (anthropic, google-genai, ollama, cohere, LangChain, OpenAI-shaped)"
    )


class SdkIterSource:
    """A stream an SDK handed out as a (async) generator: google-genai's
    ``generate_content_stream``, ``ollama.Client.chat(stream=True)``, cohere's ``chat_stream``,
    Hugging Face's ``chat_completion(stream=True)``... Single use (pass a zero-argument callable
    for Regenerate). The first chunk is read when the attempt opens, so the response head
    (status, request id) is known; Stop shuts the HTTP connection down from any thread."""

    rerunnable = False
    params = None

    def __init__(self, obj: Any, package: str) -> None:
        self._obj = obj
        self.package = package
        is_async = hasattr(obj, "__aiter__")
        self.supports_async = is_async  # a sync one under ``await`` runs in a worker thread
        self.supports_sync = not is_async
        self.kind = "text"  # the attempt's kind is the API's, once its first chunk is read
        self._used = False

    def _take(self) -> Any:
        if self._used:
            raise RuntimeError(
                f"this {self.package} stream was already consumed; pass a zero-argument "
                "callable (lambda: client....(..., stream=True)) to make it re-runnable"
            )
        self._used = True
        return self._obj

    def open(self) -> Opened:
        gen = self._take()
        catcher = ResponseCatcher()
        client = httpx_client_of(gen, is_async=False)
        if client is not None:
            catcher.install(client, is_async=False)
        iterator = iter(gen)
        reader = ItemReader(_strict_text)
        try:
            first = next(iterator, _END)  # makes the request: the response head is known
        except Exception as exc:
            raise bridge_error(exc) from None
        finally:
            catcher.remove()
        # a Stream object keeps its response (google-genai's Interactions API)
        response = catcher.response or getattr(gen, "response", None)
        finished = False

        def items() -> Iterator[tuple[Any, list[Event]]]:
            nonlocal finished
            item, n = first, 0
            try:
                while item is not _END:
                    yield reader.read(item, n)
                    n += 1
                    item = next(iterator, _END)
            except Exception as exc:
                raise bridge_error(exc) from None
            finished = True

        def close() -> None:
            close_response(response, finished)
            closer = getattr(iterator, "close", None)
            if callable(closer):
                with contextlib.suppress(ValueError):  # running in another thread
                    closer()

        opened = Opened(items(), kind="text", meta=_meta(response, first), close=close)
        opened._adapter = reader  # its kind is the API's once the first chunk is read
        opened.expects_finish = first is not _END
        return opened

    async def aopen(self) -> AOpened:
        if self.supports_sync:  # from a callable under ``await``: read it blocking
            return as_async(self.open())
        gen = self._take()
        catcher = ResponseCatcher()
        client = httpx_client_of(gen, is_async=True)
        if client is not None:
            catcher.install(client, is_async=True)
        aiterator = gen.__aiter__()
        reader = ItemReader(_strict_text)
        try:
            first = await anext(aiterator, _END)
        except Exception as exc:
            raise bridge_error(exc) from None
        finally:
            catcher.remove()

        async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
            item, n = first, 0
            try:
                while item is not _END:
                    yield reader.read(item, n)
                    n += 1
                    item = await anext(aiterator, _END)
            except Exception as exc:
                raise bridge_error(exc) from None

        async def aclose() -> None:
            closer = getattr(aiterator, "aclose", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    await closer()
            response = catcher.response
            if response is not None and hasattr(response, "aclose"):
                with contextlib.suppress(Exception):
                    await response.aclose()

        opened = AOpened(items(), kind="text", meta=_meta(catcher.response, first), aclose=aclose)
        opened._adapter = reader
        opened.expects_finish = first is not _END
        return opened

    def __repr__(self) -> str:
        return f"SdkIterSource({self.package})"


def as_async(opened: Opened) -> AOpened:
    """A sync attempt under ``await`` (a sync SDK client in a background view): each read
    blocks the loop, as a sync iterable of text does (TextSource); Stop still closes it."""

    async def items() -> AsyncIterator[tuple[Any, list[Event]]]:
        for item in opened.items:
            yield item

    async def aclose() -> None:
        opened.close()

    aopened = AOpened(items(), kind=opened.kind, meta=opened.meta, aclose=aclose)
    aopened._adapter = opened._adapter
    aopened.expects_finish = opened.expects_finish
    aopened._pending_raw = opened._pending_raw
    return aopened


def _meta(response: Any, first: Any) -> ResponseMeta:
    if response is not None:
        return response_meta(response)
    http = getattr(first, "sdk_http_response", None)  # google-genai keeps the headers
    headers = getattr(http, "headers", None)
    return meta_from_headers(headers) if headers else ResponseMeta()


def native_source(obj: Any) -> Source | None:
    """The source for a native SDK's stream object, or None (recognised by module name and
    duck typing: no SDK is imported unless ``obj`` came from it)."""
    from nbstream.sources import anthropic

    if anthropic.is_anthropic(obj):
        return anthropic.AnthropicSource(obj)
    package = sdk_generator_package(obj)
    if package is not None and (hasattr(obj, "__next__") or hasattr(obj, "__anext__")):
        return SdkIterSource(obj, package)
    return None

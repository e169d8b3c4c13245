"""Re-runnable requests: the parameters and the client, so Regenerate, Resume and retries can ask
again.

Without a client of the caller's (``nbstream.chat``, ``%%stream``, compare), ``open()`` sends the
request through the endpoint ``sources/client.py`` resolves (an
:class:`~nbstream.sources.openai_http.Endpoint`: the SDK's HTTP library, no openai import: issue 16
§4). With an SDK client (``OpenAI(...)`` / ``AsyncOpenAI(...)``) it calls
``client.chat.completions.with_streaming_response.create(**params, stream=True)`` (or
``client.responses...``): the SDK does the HTTP (URL, auth, headers, timeouts, the connection
pool, HTTP errors -> its exceptions). Either way nbstream reads the SSE body itself, without
building the SDK's typed chunks (``openai_raw``: ~5x less CPU per chunk than the SDK's loop).
``fast = False`` (on the class or one request) takes the SDK client's own ``Stream`` instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from nbstream.redact import redact_text, register_client, register_params, scrub_url
from nbstream.sources.base import AOpened, Opened, sdk_isinstance
from nbstream.sources.openai_http import Endpoint
from nbstream.sources.openai_raw import aopen_response, open_response
from nbstream.sources.openai_stream import open_async_stream, open_stream

_NO_RETRY: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class _Request:
    kind = "chat"
    rerunnable = True
    path = "chat/completions"  # below the base URL
    # an SDK client's response: read the SSE body ourselves (openai_raw) rather than through the
    # SDK's typed Stream (an Endpoint's is always read so)
    fast = True

    def __init__(self, params: Mapping[str, Any], client: Any = None) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{type(self).__name__} takes the request parameters as a dict, e.g. "
                "{'model': 'gpt-4o-mini', 'messages': [...]}; got " + type(params).__name__
            )
        params = dict(params)
        params.pop("stream", None)  # always streamed
        if "api_key" in params:
            raise TypeError(
                "api_key is not a request parameter: give it to the client "
                "(OpenAI(api_key=...)) or set OPENAI_API_KEY"
            )
        self.params: dict[str, Any] = params
        self.client = client
        self.notice: str | None = None  # a line for the widget about the endpoint (local demo)
        register_client(client)  # its key, auth headers and URL credentials are scrubbed anywhere
        register_params(params)  # extra_headers / extra_query tokens given per request
        own = client is None or isinstance(client, Endpoint)
        self.supports_sync = own or sdk_isinstance(client, "OpenAI")
        self.supports_async = own or sdk_isinstance(client, "AsyncOpenAI")

    def _client(self) -> Any:
        """The client for one attempt: the caller's, else the endpoint resolved now (the
        environment is read again for each attempt). An SDK client's own retries are turned off:
        nbstream owns retries (resilience/retry.py), so every HTTP attempt is visible and none
        is doubled. The copy shares the original client's connection pool (keep-alive across
        cells)."""
        client = self.client
        if client is None:
            from nbstream.sources.client import default_client

            client = default_client()
        from nbstream.sources.client import local_notice

        self.notice = local_notice(client)  # the widget says the demo server answered
        if getattr(client, "max_retries", 0) == 0:
            return client
        cached = _NO_RETRY.get(client)
        if cached is None:
            cached = _NO_RETRY[client] = client.with_options(max_retries=0)
        return cached

    def _resource(self, client: Any) -> Any:  # pragma: no cover - overridden
        """``client.chat.completions`` or ``client.responses``."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return self.params

    def _create(self, client: Any) -> Any:
        return self._resource(client).create(**self._params(), stream=True)

    def _raw(self, client: Any) -> Any:
        """The resource's ``with_streaming_response`` (None for a client without one)."""
        if not self.fast:
            return None
        return getattr(self._resource(client), "with_streaming_response", None)

    def open(self) -> Opened:
        client = self._client()
        # the request is sent and its head read (an HTTP error raises here, as create() does)
        if isinstance(client, Endpoint):
            return open_response(client.send(self.path, self._params()), self.kind)
        raw = self._raw(client)
        if raw is None:
            return open_stream(self._create(client), kind=self.kind)
        api_response = raw.create(**self._params(), stream=True).__enter__()
        return open_response(api_response.http_response, self.kind)

    async def aopen(self) -> AOpened:
        client = self._client()
        if isinstance(client, Endpoint):
            return aopen_response(await client.asend(self.path, self._params()), self.kind)
        raw = self._raw(client)
        if raw is None:
            return open_async_stream(await self._create(client), kind=self.kind)
        manager = raw.create(**self._params(), stream=True)
        return aopen_response((await manager.__aenter__()).http_response, self.kind)

    def sync_twin(self) -> _Request | None:
        """This request with a synchronous client of the same settings, or None when it is not
        async. For a synchronous cell: an async client's pooled connections belong to the event
        loop that the cell is blocking, so it cannot be driven from there."""
        c = self.client
        if not sdk_isinstance(c, "AsyncOpenAI"):
            return None
        twin = getattr(self, "_sync_twin", None)
        if twin is None:
            import openai  # the caller's client is the SDK's: loaded already

            client = openai.OpenAI(
                api_key=c.api_key,
                organization=c.organization,
                project=c.project,
                base_url=c.base_url,
                timeout=c.timeout,
                max_retries=c.max_retries,
                default_headers=c._custom_headers,
                default_query=c._custom_query,
            )
            twin = self._sync_twin = type(self)(self.params, client=client)
            twin.fast = self.fast
        return twin

    def with_params(self, **changes: Any) -> _Request:
        """A copy with some parameters changed (e.g. a resume prompt)."""
        copy = type(self)({**self.params, **changes}, client=self.client)
        copy.fast = self.fast
        return copy

    def __repr__(self) -> str:
        model = self.params.get("model")
        base = getattr(self.client, "base_url", None)
        where = f", base_url={str(scrub_url(base))!r}" if base is not None else ""
        return redact_text(f"{type(self).__name__}(model={model!r}{where})")


class ChatRequest(_Request):
    """A Chat Completions request: ``ChatRequest({"model": ..., "messages": [...]}, client)``.

    Asks for usage by default (``stream_options={"include_usage": True}``, unless the caller set
    ``stream_options``): the last chunk then carries the exact token counts, so tokens/s is
    measured rather than estimated from characters. OpenAI and compatible servers support it;
    for a server that rejects the option, pass ``stream_options=None`` (then nothing is sent).
    """

    kind = "chat"

    def __init__(self, params: Mapping[str, Any], client: Any = None) -> None:
        super().__init__(params, client)
        self.params.setdefault("stream_options", {"include_usage": True})

    def _resource(self, client: Any) -> Any:
        return client.chat.completions

    def _params(self) -> dict[str, Any]:
        params = self.params
        if params.get("stream_options", ...) is None:  # the caller turned it off: omit it
            params = {k: v for k, v in params.items() if k != "stream_options"}
        return params


class ResponsesRequest(_Request):
    """A Responses API request: ``ResponsesRequest({"model": ..., "input": ...}, client)``."""

    kind = "responses"
    path = "responses"

    def _resource(self, client: Any) -> Any:
        return client.responses

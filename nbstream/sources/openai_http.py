"""The HTTP of the requests nbstream makes itself when no SDK client was given: no openai import.

Cold start (issue 16 §4): ``import openai`` alone costs 430-460 ms (its ~680 pydantic models are
built at import), more than the whole budget from Shift+Enter to the first token. The requests
nbstream makes without a client of the caller's (``nbstream.chat``, ``%%stream``, ``compare``,
Regenerate, Resume, retries) are sent here, through an :class:`Endpoint`, with the SDK's own HTTP
library (``httpx2`` where installed, as openai >= 3 has it; else ``httpx``, openai 2.x's), and their
body is read by :mod:`~nbstream.sources.openai_raw` like the body of an SDK client's response. A
client or a stream of the caller's keeps the SDK (``sources/request.py``).

What the SDK's ``OpenAI(api_key=..., base_url=...)`` does is kept, so neither the user nor the
server sees a difference:

- the endpoint: the base URL given (else ``https://api.openai.com/v1``), the key, ``OPENAI_ORG_ID``
  and ``OPENAI_PROJECT_ID`` read when the endpoint is made (``sources/client.py`` resolves
  ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` and the bundled local server);
- the request: ``POST {base_url}chat/completions`` (or ``responses``), the parameters as JSON with
  ``"stream": true``; headers ``Authorization: Bearer``, ``Content-Type`` and ``Accept:
  application/json``, ``OpenAI-Organization`` / ``OpenAI-Project`` when set, ``User-Agent:
  nbstream/<version>``; the SDK's per-request options ``extra_headers`` (merged over the
  defaults case-insensitively, ``omit`` / ``NOT_GIVEN`` removing one), ``extra_query``,
  ``extra_body`` and ``timeout`` (a number, None, or an ``httpx`` / ``httpx2`` ``Timeout``);
- the connection: timeout 600 s (connect 5 s), up to 1,000 connections (100 kept alive),
  redirects followed, proxies and certificates from the environment (the library's defaults);
  one pool per endpoint for synchronous runs and one per event loop for async ones (keep-alive
  across cells);
- errors, by the SDK's class names, messages and attributes (``status_code``, ``response``,
  ``body``: the payload's ``error``, ``code``, ``request_id``, ``Error code: 429 - <message>``),
  raised where the SDK raises them: a status >= 400 once its body is read; ``APITimeoutError``
  ("Request timed out.") / ``APIConnectionError`` ("Connection error.") from a transport failure,
  the library's exception as the cause. :func:`~nbstream.sources.base.describe_error` reads them
  as it reads the SDK's, and :func:`~nbstream.sources.base.sdk_error_is` knows them by name, so
  retries, rate limits, the log and the messages in words are the same for both.
- no credential in an error: the request an error carries has no ``Authorization`` header (as the
  SDK's ``_error_request``), nor has any redirect hop in its response's ``history`` or a
  ``next_request`` (as the SDK's ``_error_response``); an endpoint's ``repr`` shows no key.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import os
import ssl
import sys
import threading
import weakref
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import orjson

from nbstream import __version__
from nbstream.redact import redact_text, scrub_url

DEFAULT_BASE_URL = "https://api.openai.com/v1"
USER_AGENT = f"nbstream/{__version__}"
# the SDK's DEFAULT_TIMEOUT and DEFAULT_CONNECTION_LIMITS (openai/_constants.py)
TIMEOUT_S, CONNECT_TIMEOUT_S = 600.0, 5.0
MAX_CONNECTIONS, MAX_KEEPALIVE = 1000, 100
# the per-request options of the SDK's ``create()``: not request parameters
_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
# headers an error's request must not carry (the SDK's SENSITIVE_HEADERS)
_SENSITIVE = ("authorization", "api-key", "x-amz-security-token")

_lib: ModuleType | None = None


def http_library() -> ModuleType:
    """``httpx2`` (openai >= 3 depends on it) where installed, else ``httpx`` (openai 2.x's).
    Imported on the first request: ~25 ms, plus ~40 ms of its transport and the certificates
    when the first client is made (BENCHMARKS.md §4)."""
    global _lib
    if _lib is None:
        try:
            _lib = importlib.import_module("httpx2")
        except ImportError:
            _lib = importlib.import_module("httpx")
    return _lib


# --- errors: the SDK's names and attributes, nbstream's classes -------------------------------


class APIError(Exception):
    """An error of a request nbstream sent itself (the SDK's ``APIError``, same attributes)."""

    def __init__(self, message: str, request: Any, *, body: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = _safe_request(request)
        self.body = body
        code = body.get("code") if isinstance(body, Mapping) else None
        self.code = str(code) if code is not None else None


class APIStatusError(APIError):
    """The server answered with a status >= 400 (``status_code``, ``response``, ``request_id``)."""

    def __init__(self, message: str, *, response: Any, body: object | None) -> None:
        super().__init__(message, response.request, body=body)
        self.response = _safe_response(response, self.request)
        self.status_code: int = response.status_code
        self.request_id: str | None = response.headers.get("x-request-id")


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


class APIConnectionError(APIError):
    """No response: the connection failed (the cause is the HTTP library's exception)."""

    def __init__(self, *, message: str = "Connection error.", request: Any) -> None:
        super().__init__(message, request, body=None)


class APITimeoutError(APIConnectionError):
    def __init__(self, request: Any) -> None:
        super().__init__(message="Request timed out.", request=request)


def _safe_request(request: Any) -> Any:
    """The request without its credentials, for an error to carry (the SDK's ``_error_request``)."""
    headers = getattr(request, "headers", None)
    if headers is None or not any(name in headers for name in _SENSITIVE):
        return request
    safe = copy.copy(request)
    safe.stream = request.stream  # (the SDK sets both again: a copy may leave them out)
    safe.extensions = request.extensions.copy()
    safe.headers = headers.copy()
    for name in _SENSITIVE:
        safe.headers.pop(name, None)
    return safe


def _safe_response(response: Any, request: Any) -> Any:
    """The response with ``request`` (its request without credentials) and a cleaned copy of
    each redirect hop in its ``history`` (and of any ``next_request``): a 307 followed keeps the
    first request, ``Authorization`` and all, in the history (the SDK's ``_error_response``)."""
    history = getattr(response, "history", None) or []
    if response.request is request and not history and response.next_request is None:
        return response
    hops: list[Any] = []
    for hop in [*history, response]:
        safe = copy.copy(hop)
        safe.extensions = hop.extensions.copy()
        safe.request = request if hop is response else _safe_request(hop.request)
        if hop.next_request is not None:
            safe.next_request = _safe_request(hop.next_request)
        safe.history = hops.copy()
        hops.append(safe)
    return hops[-1]


def status_error(response: Any) -> APIStatusError:
    """The error for a response with a status >= 400 whose body was read (the SDK's
    ``_make_status_error_from_response``: the JSON body's ``error`` object, else the body)."""
    message = f"Error code: {response.status_code}"
    try:
        text = response.text.strip()
    except Exception:  # noqa: BLE001 - a body that cannot be decoded: no body, as the SDK
        text = None
    body: Any = text
    if text is not None:
        try:
            body = json.loads(text)
        except ValueError:
            pass
        else:
            error = body.get("error", body) if isinstance(body, Mapping) else None
            said = error.get("message") if isinstance(error, Mapping) else None
            if isinstance(said, str) and said:
                message += f" - {said}"
    data = body.get("error", body) if isinstance(body, Mapping) else body
    status = response.status_code
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    return cls(message, response=response, body=data)


def transport_errors(response: Any) -> tuple[tuple[type[BaseException], ...], ...]:
    """(timeouts, other failures) of the response's HTTP library while its body is read: they
    become :class:`APITimeoutError` / :class:`APIConnectionError` (as openai >= 3 maps them)."""
    lib = sys.modules.get(type(response).__module__.partition(".")[0])
    timeout = getattr(lib, "TimeoutException", None)
    request_error = getattr(lib, "RequestError", None)
    if not isinstance(timeout, type) or not isinstance(request_error, type):
        return (), ()
    return (timeout,), (request_error, ssl.SSLError)


# --- the endpoint -------------------------------------------------------------------------------


class Endpoint:
    """An OpenAI-compatible server as nbstream talks to it without the SDK: base URL, key,
    organization, project, and the connection pools. Made once per endpoint by
    ``sources/client.py``; shared by every request to it (keep-alive across cells)."""

    max_retries = 0  # nbstream owns retries (resilience/retry.py): one HTTP attempt per try

    def __init__(
        self,
        base_url: str | None,
        api_key: str,
        *,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        base = str(base_url or DEFAULT_BASE_URL)
        self.base_url = base if base.endswith("/") else base + "/"  # as the SDK's client keeps it
        self.api_key = api_key
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self.project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def default_headers(self) -> dict[str, str]:
        """The headers of every request (``redact.register_client`` reads them too)."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self.api_key}",
        }
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def __repr__(self) -> str:
        return redact_text(f"Endpoint(base_url={str(scrub_url(self.base_url))!r})")

    # the pools

    def _options(self) -> dict[str, Any]:
        lib = http_library()
        return {
            "timeout": lib.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            "limits": lib.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE
            ),
            "follow_redirects": True,
        }

    def http(self) -> Any:
        """The synchronous client (one pool per endpoint)."""
        with self._lock:
            if self._sync is None:
                self._sync = http_library().Client(**self._options())
            return self._sync

    def ahttp(self) -> Any:
        """The async client of the running event loop: pooled connections belong to one loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            # a closed loop's pool can never be used again, and its connections keep the loop
            # alive (the weak key is never freed): each asyncio.run() kept a client and its
            # sockets until the process ended. Dropped here, they are collected with the loop.
            for old in [old for old in self._async if old.is_closed()]:
                del self._async[old]
            client = self._async.get(loop)
            if client is None:
                client = self._async[loop] = http_library().AsyncClient(**self._options())
            return client

    # the request

    def _request(self, http: Any, path: str, params: Mapping[str, Any]) -> Any:
        body = {k: v for k, v in params.items() if k not in _OPTIONS and not _omitted(v)}
        extra_body = params.get("extra_body")
        if isinstance(extra_body, Mapping):
            body.update(extra_body)
        body["stream"] = True
        # case-insensitive, as the SDK merges them: a per-request header replaces the default of
        # the same name whatever its case, and ``omit`` / ``NOT_GIVEN`` removes it
        lib = http_library()
        headers = lib.Headers(self.default_headers)
        extra_headers = params.get("extra_headers")
        if isinstance(extra_headers, Mapping):
            for name, value in extra_headers.items():
                if _omitted(value):
                    headers.pop(str(name), None)
                else:
                    headers[str(name)] = str(value)
        # the SDK's per-request ``timeout``: a number, None for none, or a Timeout (the other
        # library's too: an ``httpx.Timeout`` given with httpx2, converted as openai 3 does)
        given = "timeout" in params and not _omitted(params["timeout"])
        return http.build_request(
            "POST",
            self.base_url + path,
            content=_dumps(body),
            headers=headers,
            params=params.get("extra_query") or None,
            **({"timeout": _timeout(lib, params["timeout"])} if given else {}),
        )

    def send(self, path: str, params: Mapping[str, Any]) -> Any:
        """Send a streaming request; the response once its head is read (body unread). A status
        >= 400 raises its :class:`APIStatusError` (body read), a transport failure
        :class:`APITimeoutError` / :class:`APIConnectionError`."""
        http = self.http()
        lib = http_library()
        request = self._request(http, path, params)
        try:
            response = http.send(request, stream=True)
        except lib.TimeoutException as err:
            raise APITimeoutError(request) from err
        except Exception as err:
            raise APIConnectionError(request=request) from err
        if response.status_code >= 400:
            try:
                response.read()
            except Exception:  # noqa: BLE001 - the status says enough; the body stays unknown
                pass
            finally:
                response.close()
            raise status_error(response) from None
        return response

    async def asend(self, path: str, params: Mapping[str, Any]) -> Any:
        """:meth:`send` on the running event loop."""
        http = self.ahttp()
        lib = http_library()
        request = self._request(http, path, params)
        try:
            response = await http.send(request, stream=True)
        except lib.TimeoutException as err:
            raise APITimeoutError(request) from err
        except Exception as err:
            raise APIConnectionError(request=request) from err
        if response.status_code >= 400:
            try:
                await response.aread()
            except Exception:  # noqa: BLE001
                pass
            finally:
                await response.aclose()
            raise status_error(response) from None
        return response


def _omitted(value: Any) -> bool:
    """The SDK's ``NOT_GIVEN`` / ``omit`` markers (a user with the SDK may pass them): not sent."""
    return type(value).__name__ in ("NotGiven", "Omit")


def _timeout(lib: ModuleType, value: Any) -> Any:
    """A per-request ``timeout`` for ``lib``: a number and None as given, the library's own
    ``Timeout`` as is, another library's (``httpx.Timeout`` with ``httpx2``) rebuilt from its
    ``as_dict()`` (the library rejects it: "Invalid timeout")."""
    as_dict = getattr(value, "as_dict", None)
    if isinstance(value, lib.Timeout) or not callable(as_dict):
        return value
    return lib.Timeout(**as_dict())


def _jsonable(value: Any) -> Any:
    """What orjson cannot write itself: a pydantic model (an SDK object in the messages)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_unset=True)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _dumps(body: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, default=_jsonable)
    except TypeError:  # a key that is not a str, an int beyond 64 bits: json writes them
        return json.dumps(body, default=_jsonable).encode()

"""Errors users understand: one message that says what went wrong and what to do, never a secret.

The SDK's exceptions are precise but arrive as a deep traceback ending in ``httpx2`` internals, and
some carry the request (with its headers) or a key fragment in their text. :func:`explain` maps
them to :class:`NbstreamError` subclasses with a ``message`` (what happened) and a ``hint`` (what to
do), both passed through ``nbstream.redact``. In IPython the error prints as those two lines, not
as a traceback (``_render_traceback_``); the widget shows :attr:`NbstreamError.text`.

Raise them with ``raise explain(exc, ...) from None``: the SDK frames are dropped on purpose; the
original class name and status stay on the error (``original``, ``status``, ``request_id``).
This module does not import openai: SDK errors are recognised by ``sys.modules`` and duck typing.
"""

from __future__ import annotations

import re
import socket
import ssl
import urllib.parse
from typing import Any, TypedDict

from nbstream.redact import redact_text
from nbstream.sources.base import describe_error, sdk_error_is


class NbstreamError(Exception):
    """Base of nbstream's user-facing errors: ``message`` + ``hint``, already redacted."""

    kind = "error"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
        original: str | None = None,
    ) -> None:
        self.message = redact_text(message)
        self.hint = redact_text(hint)
        self.status = status
        # a server-chosen header, shown and logged: it may quote what it received
        self.request_id = redact_text(request_id) if request_id else request_id
        self.original = original
        super().__init__(self.text)

    @property
    def text(self) -> str:
        """What the widget shows: the message, then what to do."""
        return f"{self.message}\n{self.hint}" if self.hint else self.message

    def record(self) -> dict[str, Any]:
        """JSON-safe dict for the chunk log."""
        return {
            "type": "error",
            "kind": self.kind,
            "message": self.message,
            "hint": self.hint,
            "status": self.status,
            "request_id": self.request_id,
            "original": self.original,
        }

    def _render_traceback_(self) -> list[str]:
        """IPython: show our two lines instead of a traceback through the SDK."""
        return [f"{type(self).__name__}: {self.message}", *([self.hint] if self.hint else [])]


class MissingAPIKey(NbstreamError):
    kind = "missing_api_key"


class AuthenticationFailed(NbstreamError):
    kind = "authentication"


class UnknownModel(NbstreamError):
    kind = "unknown_model"


class BadBaseURL(NbstreamError):
    kind = "bad_base_url"


class BadRequest(NbstreamError):
    kind = "bad_request"


class ConnectionFailed(NbstreamError):
    kind = "connection"


class RequestTimedOut(NbstreamError):
    kind = "timeout"


class RateLimited(NbstreamError):
    kind = "rate_limited"


class ServerError(NbstreamError):
    kind = "server_error"


class _Common(TypedDict):
    """The keyword arguments every error made from an SDK exception shares."""

    status: int | None
    request_id: str | None
    original: str | None


def _os_detail(chain: list[BaseException]) -> str:
    """The first operating-system error's text in the chain (DNS, TLS, socket), or ""."""
    for e in chain:
        if isinstance(e, OSError) and str(e):
            return str(e)
    return ""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_ENDPOINTS = re.compile(
    r"/(chat/completions|responses|completions|embeddings|moderations|models)\b.*$"
)
_MODEL_MISSING = re.compile(r"\bmodel\b.*\b(does not exist|not found|unknown)", re.IGNORECASE)


def _url_of(exc: BaseException) -> str | None:
    """The base URL the failing request used (its URL without the endpoint path)."""
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return _ENDPOINTS.sub("", str(url)) if url is not None else None


def explain(
    exc: BaseException, *, base_url: str | None = None, model: str | None = None
) -> NbstreamError:
    """Turn any exception from creating or reading a stream into a clear :class:`NbstreamError`."""
    if isinstance(exc, NbstreamError):
        return exc
    original = type(exc).__name__
    info = describe_error(exc)  # the one reader: retries and the log read the same
    status = info.error_status
    request_id = info.request_id
    where = base_url or _url_of(exc) or "the server"
    server_says = info.server_message
    common: _Common = {"status": status, "request_id": request_id, "original": original}
    text = str(exc)

    missing = "must be set" in text or "missing credentials" in text.lower()
    if sdk_error_is(exc, "OpenAIError") and "api_key" in text and missing:
        return MissingAPIKey(
            "No API key is set.",
            "Set the OPENAI_API_KEY environment variable (or pass api_key=... to the client). "
            "Without a key and a base URL, nbstream uses its local demo server instead.",
            original=original,
        )
    if status == 401 or sdk_error_is(exc, "AuthenticationError"):
        return AuthenticationFailed(
            f"The API key was rejected by {where} (HTTP 401): {server_says}",
            "Check OPENAI_API_KEY (a typo, a revoked key, or a key for another organisation or "
            "server); for a compatible server, use the key that server expects.",
            **common,
        )
    if status == 404:
        about_model = info.code == "model_not_found" or _MODEL_MISSING.search(server_says)
        if about_model:
            name = f" {model!r}" if model else ""
            return UnknownModel(
                f"Unknown model{name} at {where}: {server_says}",
                "Check the model name (client.models.list() lists what this server offers); "
                "some models need an organisation with access.",
                **common,
            )
        return BadBaseURL(
            f"{where} answered HTTP 404: it does not look like an OpenAI-compatible API.",
            "Check the base URL: it usually ends with /v1 (e.g. http://localhost:8000/v1).",
            **common,
        )
    if status == 429:
        quota = info.code == "insufficient_quota"
        return RateLimited(
            f"HTTP 429 from {where} (rate limited): {server_says}",
            "Your quota is used up: check your plan and billing."
            if quota
            else "Wait a little and retry, or lower the number of streams running at once.",
            **common,
        )
    if status is not None and status >= 500:
        return ServerError(
            f"HTTP {status} from {where}: {server_says}",
            "This is on the server's side: retry in a moment (nbstream already retried "
            "before the first token).",
            **common,
        )
    if status is not None and 400 <= status < 500:
        return BadRequest(
            f"The server rejected the request (HTTP {status}): {server_says}",
            "Fix the parameter the message names, then run the cell again.",
            **common,
        )
    if status is None and isinstance(info.data, dict):
        # an error payload in the stream (after a 200): the server's own words
        return ServerError(
            f"{where} reported an error in the stream: {server_says}",
            "The partial answer is kept: Regenerate asks again (for chat requests, Continue picks "
            "up where the answer stopped).",
            **common,
        )
    chain = _chain(exc)
    names = " ".join(type(e).__name__ for e in chain)
    # what the operating system said (the SDK's own text is a bare "Connection error."); not
    # the last of the chain, which may be an unrelated exception raised while handling it
    detail = redact_text(_os_detail(chain) or str(chain[-1]) or original)
    if sdk_error_is(exc, "APITimeoutError") or any(isinstance(e, TimeoutError) for e in chain):
        if "ConnectTimeout" in names:
            return RequestTimedOut(
                f"Could not connect to {where}: the connection timed out.",
                "Is the host reachable (a firewall, a VPN, a server still starting)? Check the "
                "base URL, or raise the client's timeout (OpenAI(timeout=...)).",
                original=original,
            )
        return RequestTimedOut(
            f"The server at {where} did not answer in time (the request timed out).",
            "The server may be overloaded or the network slow: retry, or raise the client's "
            "timeout (OpenAI(timeout=...)).",
            original=original,
        )
    refused = any(isinstance(e, ConnectionRefusedError) for e in chain) or any(
        "connection refused" in str(e).lower() or "connect call failed" in str(e).lower()
        for e in chain
    )
    if refused:
        return ConnectionFailed(
            f"Could not connect to {where}: connection refused.",
            "Is the server running, and on this port? Check the base URL (OPENAI_BASE_URL), "
            "or unset it to use nbstream's local demo server.",
            original=original,
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        host = urllib.parse.urlsplit(where).hostname or where
        return ConnectionFailed(
            f"Could not find the server {host}: the DNS lookup failed ({detail}).",
            "Check the host name in the base URL (OPENAI_BASE_URL); if it is right, check the "
            "network, VPN or proxy, then run the cell again.",
            original=original,
        )
    if any(isinstance(e, ssl.SSLError) for e in chain):
        plain = re.search(r"WRONG_VERSION_NUMBER|record layer|HTTP_REQUEST", detail, re.I)
        certificate = "CERTIFICATE" in detail.upper()
        return ConnectionFailed(
            f"The secure (TLS) connection to {where} failed: {detail}",
            "The server answered in plain HTTP: use an http:// base URL for it (a local "
            "server usually has no TLS, e.g. http://127.0.0.1:8000/v1)."
            if plain
            else "The server's certificate was not accepted: for a private CA set "
            "SSL_CERT_FILE to its bundle; check the host name in the base URL."
            if certificate
            else "Check the base URL (http:// or https://) and the server's TLS setup.",
            original=original,
        )
    if "UnsupportedProtocol" in names or "InvalidURL" in names:
        return BadBaseURL(
            f"The base URL {where} cannot be reached: {detail}",
            "Check the base URL: a full URL such as https://api.openai.com/v1 or "
            "http://127.0.0.1:8000/v1.",
            original=original,
        )
    if sdk_error_is(exc, "APIConnectionError") or isinstance(exc, ConnectionError):
        return ConnectionFailed(
            f"The connection to {where} failed: {detail}",
            "Check the network and the base URL, then run the cell again.",
            original=original,
        )
    if not isinstance(exc, Exception):  # SystemExit, GeneratorExit from a generator
        what = f"{original} ({text})" if text else original
        return NbstreamError(
            f"The stream's source raised {what}.",
            "A generator or callable given to nbstream.stream() ended with it; the partial "
            "answer and the chunk log (view.log) are kept.",
            **common,
        )
    return NbstreamError(f"{original}: {text}", "", **common)

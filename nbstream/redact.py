"""The one place secrets are known and scrubbed: one registry, one redaction function.

The registry holds every credential nbstream can know, by value: secret-named environment
variables (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``...), and for every client nbstream touches its
``api_key``, the values of its auth-like ``default_headers``, its base URL's password and
secret-named query parameters, and the Basic-auth token derived from the URL's userinfo. It is fed
automatically (:func:`register_client` when a request or client is seen, :func:`refresh_env` when a
run starts). Each secret is kept in the forms it can take in text: as is, URL-encoded and
JSON-escaped.

:func:`redact_text` (and :func:`redact_obj` for JSON-like values, :func:`redact_json_text` for raw
JSON whose escapes could hide a key) is the one function applied at every exit: log records and
exports, widget state, reprs, error messages and exceptions. Keys are also caught by shape
(``sk-...``, ``Bearer ...``, a password in a URL) when nbstream never saw them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

REDACTED = "[REDACTED]"

# Keys by shape: OpenAI-style (sk-..., sk-proj-...), bearer tokens, a few vendor prefixes, and
# the password in a URL's userinfo (``scheme://user:password@host``: the user is kept).
# A prefix starts a word ("spark-tech-stock" in a URL is not an "rk-" key).
_KEY_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{8,}"
    r"|(?<![A-Za-z0-9])hf_[A-Za-z0-9]{8,}"
    r"|(?<=://)(?P<user>[^\s/:@\"'<>\\]*):(?P<pw>[^\s/@\"'<>\\]+)(?=@)"
)


def _shape_repl(match: re.Match[str]) -> str:
    if match.group("pw") is not None:
        return f"{match.group('user')}:{REDACTED}"
    return REDACTED


# Mapping keys whose value is a secret whatever it looks like.
_SECRET_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "openai-api-key",
        "password",
        "access_token",
        "client_secret",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
    }
)
# Names (of headers, query parameters, environment variables) that hold a credential: matched
# as a word of the name, so ``X-Auth-Token``, ``api-key``, ``AZURE_OPENAI_API_KEY``, ``HF_TOKEN``.
_SECRETISH = re.compile(
    r"(?:^|[-_.])(?:api[-_]?key|key|token|secret|password|passwd|auth|authorization|"
    r"credentials?|signature|sig|access[-_]?key|subscription[-_]?key|session)(?:$|[-_.])",
    re.IGNORECASE,
)
# Environment variables that look secret-named but never hold one.
_ENV_NOT_SECRET = frozenset({"PWD", "OLDPWD", "TOKENIZERS_PARALLELISM", "SSH_AUTH_SOCK"})
# Placeholders that are public (nbstream's own key for its local server): never scrubbed.
_PUBLIC_VALUES = frozenset({"nbstream-local"})
MIN_SECRET = 6  # shorter values would scrub ordinary words everywhere; see SECURITY.md

_extra_secrets: set[str] = set()
# [secrets registered so far (a LineRedactor forgets what it found clean when it grows), the
# longest one's length]
_secrets_seen = [0, 0]

# What redact_text looks for before running the regex: every key shape above contains one of
# these; the longest is 5 characters.
_FRAGMENT_MAX = 5


# the registered values as they were given (no encoded forms): what a model could echo in its
# answer, looked for across chunk boundaries by the chunk log
_plain_secrets: set[str] = set()


_register_lock = threading.Lock()


def _add(value: str) -> None:
    global _extra_secrets
    if len(value) >= MIN_SECRET and value not in _extra_secrets:
        with _register_lock:
            # copy on write: a stream thread may be iterating the set right now
            _extra_secrets = _extra_secrets | {value}
            _secrets_seen[0] += 1
            _secrets_seen[1] = max(_secrets_seen[1], len(value))


def plain_secrets() -> set[str]:
    """The registered secrets as given (not their encoded forms)."""
    return _plain_secrets


def register_secret(value: str | None) -> None:
    """Remember a secret by value (a key with no recognisable shape) so it is scrubbed too, in
    the forms it takes in text: as is, URL-encoded, JSON-escaped (``\\/``, non-ASCII)."""
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET or value in _PUBLIC_VALUES:
        return
    global _plain_secrets
    value = value.strip()
    if value not in _plain_secrets:
        with _register_lock:
            _plain_secrets = _plain_secrets | {value}  # copy on write, as in _add
    _add(value)
    _add(quote(value, safe=""))
    _add(quote(value, safe="/:"))
    _add(json.dumps(value)[1:-1])
    _add(json.dumps(value)[1:-1].replace("/", "\\/"))


def is_secret_name(name: str) -> bool:
    """True when a field of that name holds a secret whatever it looks like (exact names: a
    JSON field such as ``prompt_cache_key`` is data, not a credential)."""
    return name.lower() in _SECRET_NAMES


def _secretish(name: str) -> bool:
    """True when a header, query parameter or environment variable of that name holds a
    credential (a word of the name: ``X-Auth-Token``, ``AZURE_OPENAI_API_KEY``, ``HF_TOKEN``)."""
    return name.lower() in _SECRET_NAMES or bool(_SECRETISH.search(name))


def register_header(name: str, value: Any) -> None:
    """An auth-like header's value (``Authorization: Bearer X``: both ``Bearer X`` and ``X``;
    ``Basic B``: ``B`` and the ``user:password`` it encodes)."""
    if not isinstance(value, str) or not _secretish(str(name)):
        return
    register_secret(value)
    scheme, _, token = value.strip().partition(" ")
    if token:
        register_secret(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return
            register_secret(decoded)
            register_secret(decoded.partition(":")[2])


def register_url(url: Any) -> None:
    """A URL's password, the Basic-auth token an HTTP client derives from its userinfo, and its
    secret-named query parameters (``?api-key=...``)."""
    text = str(url) if url is not None else ""
    if "://" not in text:
        return
    try:
        parts = urlsplit(text)
        password = parts.password
        username = parts.username or ""
    except ValueError:
        return
    if password:
        password = unquote(password)
        register_secret(password)
        user = unquote(username)
        register_secret(f"{user}:{password}")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        register_secret(basic)
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if _secretish(name):
            register_secret(value)


def register_client(client: Any) -> None:
    """Everything secret about an OpenAI-style client: ``api_key``, auth-like default headers and
    query, the base URL's credentials. Called whenever nbstream sees a client or a request."""
    if client is None:
        return
    api_key = getattr(client, "api_key", None)
    if isinstance(api_key, str):
        register_secret(api_key)
    for attr in ("_custom_headers", "default_headers"):
        headers = getattr(client, attr, None)
        if isinstance(headers, Mapping):
            for name, value in headers.items():
                register_header(str(name), value)
    query = getattr(client, "_custom_query", None)
    if isinstance(query, Mapping):
        for name, value in query.items():
            if _secretish(str(name)) and isinstance(value, str):
                register_secret(value)
    register_url(getattr(client, "base_url", None))
    refresh_env()


def register_params(params: Mapping[str, Any]) -> None:
    """The auth-like ``extra_headers`` and ``extra_query`` of request parameters (the SDK's
    per-request options): logged with the parameters, so known before the first record."""
    headers = params.get("extra_headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            register_header(str(name), value)
    query = params.get("extra_query")
    if isinstance(query, Mapping):
        for name, value in query.items():
            if _secretish(str(name)) and isinstance(value, str):
                register_secret(value)


_env_seen: dict[str, str] = {}


def refresh_env() -> None:
    """Register the secret-named environment variables (and passwords in ``*_URL`` values); only
    the ones that changed since the last call are looked at again."""
    try:
        environ = os.environ.copy()
    except RuntimeError:  # another thread changed it while it was copied: next run reads it
        return
    for name, value in environ.items():
        if _env_seen.get(name) == value:
            continue
        _env_seen[name] = value
        if name.upper() in _ENV_NOT_SECRET:
            continue
        if "://" in value:
            register_url(value)
        if _SECRETISH.search(name):
            register_secret(value)


def _fragment(text: str) -> bool:
    """True when one of the key shapes could be in ``text``: each contains one of these."""
    return (
        "k-" in text
        or "k_" in text
        or "f_" in text
        or "earer" in text
        or "EARER" in text
        or "://" in text
    )


def redact_text(text: str) -> str:
    """Replace anything that looks like a key (or a registered secret) in ``text``.

    The one redaction function: every exit of nbstream (log records and exports, widget state,
    reprs, error messages, exceptions) passes its text through it. Called on every chunk the log
    spills, so the common case (nothing key-like) is a few substring scans.
    """
    if _fragment(text):  # shapes first: "Bearer <key>" goes whole
        text = _KEY_PATTERN.sub(_shape_repl, text)
    if _extra_secrets:
        for secret in _extra_secrets:
            if secret in text:
                # longest first: a password inside a registered user:password goes with it
                for s in sorted(_extra_secrets, key=len, reverse=True):
                    if s in text:
                        text = text.replace(s, REDACTED)
                break
    return text


def _escaped(text: str) -> bool:
    """True when JSON text holds an escape that could spell a key in disguise (``sk\\u002d``,
    ``\\/``): only decoding it shows what it says."""
    return "\\u" in text or "\\/" in text


def redact_json_text(text: str) -> str:
    """:func:`redact_text` for raw JSON (a chunk as the server sent it): also finds keys spelled
    with JSON escapes. Such a text is decoded and, when its decoded strings held a secret, written
    again (compact, unescaped) with them scrubbed; otherwise it stays as received."""
    out = redact_text(text)
    if not _escaped(out):
        return out
    try:
        decoded = json.loads(out)
    except ValueError:
        # not JSON after all: undo the escapes that could hide a key, scrub, keep it if clean
        plain = _unescape(out)
        scrubbed_text = redact_text(plain)
        return scrubbed_text if scrubbed_text != plain else out
    scrubbed = redact_obj(decoded)
    if scrubbed == decoded:
        return out
    return json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":"))


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).replace("\\/", "/")


def _suspect(text: str) -> bool:
    """True when :func:`redact_json_text` could change ``text``."""
    for secret in _extra_secrets:
        if secret in text:
            return True
    return _fragment(text) or _escaped(text)


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (a few C-level compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # invariant: a[:lo] == b[:lo]
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class LineRedactor:
    """:func:`redact_json_text` for a series of similar JSON lines, as the chunks of one stream
    are (the same JSON head, a different delta): the part a line shares with the previous clean
    lines is not scanned again, only the rest (plus a few characters before it, where a fragment
    or a secret could start). Same result as ``redact_json_text(line)``, at a fraction of the
    scanning."""

    __slots__ = ("_clean", "_last", "_seen", "_tail")

    def __init__(self) -> None:
        self._clean = ""  # a prefix known to hold no fragment and no registered secret
        self._last = ""  # the last line found clean by a full scan
        self._seen = _secrets_seen[0]
        self._tail = 0  # where the scan of a line that starts with _clean begins

    def __call__(self, text: str) -> str:
        if self._seen != _secrets_seen[0]:  # a new secret may be inside the known prefix
            self._clean = self._last = ""
            self._seen = _secrets_seen[0]
        clean = self._clean
        if clean and text.startswith(clean):  # the hot path: _suspect inlined
            tail = text[self._tail :]
            if _extra_secrets and any(secret in tail for secret in _extra_secrets):
                return redact_json_text(text)
            if (
                "k-" in tail
                or "k_" in tail
                or "f_" in tail
                or "earer" in tail
                or "EARER" in tail
                or "://" in tail
                or "\\u" in tail
                or "\\/" in tail
            ):
                return redact_json_text(text)
            return text
        if _suspect(text):
            return redact_json_text(text)
        last, self._last = self._last, text
        if last:
            self._clean = text[: _common_prefix(last, text)]
            # a fragment or a secret that ends past the clean prefix may start this far before it
            self._tail = max(0, len(self._clean) - max(_FRAGMENT_MAX, _secrets_seen[1]) + 1)
        return text


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value: secret-named entries blanked, key-shaped strings scrubbed."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_name(k) else redact_obj(v))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def scrub_url(url: Any) -> Any:
    """An ``httpx.URL`` (or a string) without its userinfo and with its secrets scrubbed; the
    same type back, so code that reads ``.host`` or ``.path`` keeps working."""
    copy_with = getattr(url, "copy_with", None)
    if copy_with is None:
        return redact_text(str(url)) if isinstance(url, str) else url
    try:
        bare = copy_with(userinfo=b"")
        text = redact_text(str(bare))
        return bare if text == str(bare) else type(url)(text)
    except Exception:  # noqa: BLE001 - an URL type we do not know: never keep the secret
        return url


def _scrub_http(message: Any) -> None:
    """Scrub an ``httpx.Request`` in place (its URL, its auth-like headers) once it is done."""
    url = getattr(message, "url", None)
    if url is not None:
        with contextlib.suppress(Exception):
            message.url = scrub_url(url)
    headers = getattr(message, "headers", None)
    if headers is not None and hasattr(headers, "items"):
        with contextlib.suppress(Exception):
            for name, value in list(headers.items()):
                if _secretish(name):
                    headers[name] = REDACTED
                elif isinstance(value, str) and redact_text(value) != value:
                    headers[name] = redact_text(value)


def _scrub_response(response: Any) -> None:
    """Scrub the requests an ``httpx.Response`` holds, in place: its own, and each redirect
    hop's in its ``history`` with their ``next_request`` (a 307 followed keeps the first request,
    ``Authorization`` and all, there)."""
    hops: list[Any] = []
    with contextlib.suppress(Exception):
        hops = [*(getattr(response, "history", None) or ()), response]
    for hop in hops:
        with contextlib.suppress(Exception):
            _scrub_http(hop.request)
        with contextlib.suppress(Exception):
            _scrub_http(getattr(hop, "next_request", None))


def scrub_exception(exc: BaseException | None) -> BaseException | None:
    """The same exception (type, status, body kept: code reads them) with every secret removed
    from what it shows or carries: ``args`` and text attributes (``message``...), a ``body``, the
    ``request``/``response`` it holds (URL userinfo, auth headers; a response's redirect
    ``history`` and ``next_request`` too), ``__notes__``, and the same
    for each exception in its ``__cause__``/``__context__`` chain. In place, once it ended a run."""
    seen: set[int] = set()
    current = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        with contextlib.suppress(Exception):
            current.args = tuple(
                redact_text(a) if isinstance(a, str) else redact_obj(a) if _jsonish(a) else a
                for a in current.args
            )
        for name, value in list(vars(current).items()):
            with contextlib.suppress(Exception):
                if isinstance(value, str):
                    setattr(current, name, redact_text(value))
                elif _jsonish(value):
                    setattr(current, name, redact_obj(value))
                elif name in ("request", "_request"):
                    _scrub_http(value)
                elif name == "response":
                    _scrub_response(value)
        current = current.__cause__ or current.__context__
    return exc


def _jsonish(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and not isinstance(value, str)

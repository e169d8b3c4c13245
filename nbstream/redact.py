"""The one place secrets are scrubbed: API keys, Authorization headers, ``api_key`` parameters.

Everything that leaves nbstream as text (log records, JSONL exports, reprs, error messages) goes
through :func:`redact_text` or :func:`redact_obj`, so a key never reaches a notebook output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Keys by shape: OpenAI-style (sk-..., sk-proj-...), bearer tokens, a few vendor prefixes.
_KEY_PATTERN = re.compile(
    r"(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|gsk_[A-Za-z0-9]{8,}"
    r"|hf_[A-Za-z0-9]{8,}"
)

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
    }
)

_extra_secrets: set[str] = set()
# [secrets registered so far (a LineRedactor forgets what it found clean when it grows), the
# longest one's length]
_secrets_seen = [0, 0]

# What redact_text looks for before running the regex: every key shape above contains one of
# these; the longest is 5 characters.
_FRAGMENT_MAX = 5


def register_secret(value: str | None) -> None:
    """Remember a secret by value (a key with no recognisable shape) so it is scrubbed too."""
    if value and len(value) >= 6 and value not in _extra_secrets:
        _extra_secrets.add(value)
        _secrets_seen[0] += 1
        _secrets_seen[1] = max(_secrets_seen[1], len(value))


def is_secret_name(name: str) -> bool:
    """True when a parameter or header of that name holds a secret."""
    return name.lower() in _SECRET_NAMES


def redact_text(text: str) -> str:
    """Replace anything that looks like a key (or a registered secret) in ``text``.

    Called on every chunk the log spills, so the common case (nothing key-like) is a few substring
    scans: every pattern above contains one of these fragments.
    """
    if _extra_secrets:
        for secret in _extra_secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
    if "k-" in text or "k_" in text or "f_" in text or "earer" in text or "EARER" in text:
        return _KEY_PATTERN.sub(REDACTED, text)
    return text


def _suspect(text: str) -> bool:
    """True when :func:`redact_text` could change ``text`` (a fragment or a registered secret)."""
    for secret in _extra_secrets:
        if secret in text:
            return True
    return "k-" in text or "k_" in text or "f_" in text or "earer" in text or "EARER" in text


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
    """:func:`redact_text` for a series of similar lines, as the chunks of one stream are (the
    same JSON head, a different delta): the part a line shares with the previous clean lines is
    not scanned again, only the rest (plus a few characters before it, where a fragment or a
    secret could start). Same result as ``redact_text(line)``, at a fraction of the scanning."""

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
                return redact_text(text)
            if "k-" in tail or "k_" in tail or "f_" in tail or "earer" in tail or "EARER" in tail:
                return redact_text(text)
            return text
        if _suspect(text):
            return redact_text(text)
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

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


def register_secret(value: str | None) -> None:
    """Remember a secret by value (a key with no recognisable shape) so it is scrubbed too."""
    if value and len(value) >= 6:
        _extra_secrets.add(value)


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

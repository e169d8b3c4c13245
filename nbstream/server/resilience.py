"""Local-server support for the resilience features: a moderation endpoint and demo continuation.

``POST /v1/moderations`` answers like OpenAI's endpoint, deterministically: an input is flagged
when it contains one of a few trigger words (whole word, any case), so a notebook or a test can
show a moderation hook stopping a stream (the ``echo`` model streams a prompt containing one). A
``model`` shorthand ``"omni-moderation-latest?ttft=0.5"`` delays the answer, to show that a slow
moderation endpoint never slows the stream.

Continuation: when a chat request to the ``demo`` model ends with an assistant message that is the
start of the demo answer (Resume sends the partial answer back, optionally followed by a user turn
asking to continue), the demo model continues the answer instead of starting over - and, like real
models do, it repeats the last few words first (at least ``REPEAT_CHARS`` characters), so the
client's overlap join is exercised.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from nbstream.server import demo
from nbstream.server.options import RequestOptions

TRIGGERS = {
    "violence": ("bomb", "kill", "attack"),
    "harassment": ("idiot", "stupid"),
    "hate": ("hateful",),
}
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_PATTERNS = {
    category: re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)", re.IGNORECASE)
    for category, words in TRIGGERS.items()
}
REPEAT_CHARS = 8


def moderation_result(text: str) -> dict[str, Any]:
    """One ``results[]`` entry for ``text``."""
    hits = {category for category, pattern in _PATTERNS.items() if pattern.search(text)}
    return {
        "flagged": bool(hits),
        "categories": {c: c in hits for c in CATEGORIES},
        "category_scores": {c: (0.97 if c in hits else 0.001) for c in CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
    }


def moderation_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The whole response for a ``/v1/moderations`` request body (``input``: str or list of str)."""
    value = body.get("input")
    inputs = value if isinstance(value, list) else [value]
    texts = [v if isinstance(v, str) else (v or {}).get("text", "") for v in inputs]
    ident = hashlib.sha256(repr(texts).encode()).hexdigest()[:24]
    return {
        "id": "modr-" + ident,
        "model": model,
        "results": [moderation_result(t or "") for t in texts],
    }


def without_stream_faults(options: RequestOptions) -> RequestOptions:
    """The options minus the faults injected into a stream (after ``fail_times`` attempts)."""
    return dataclasses.replace(
        options, disconnect_after=None, malformed_after=None, error_after=None, stall_after=None
    )


def continued_tokens(tokens: list[str], messages: list[Any]) -> list[str] | None:
    """The demo tokens that continue a partial answer found at the end of ``messages``, or None.

    The partial answer is the last assistant message, either last or followed by one user turn.
    It must be a prefix of the demo answer; the continuation starts a few tokens before its end.
    """
    if not messages or not isinstance(messages[-1], dict):
        return None
    tail = messages[-2:] if messages[-1].get("role") == "user" else messages[-1:]
    assistant = tail[0] if isinstance(tail[0], dict) else {}
    if assistant.get("role") != "assistant":
        return None
    partial = demo._content_text(assistant.get("content"))
    full = "".join(tokens)
    if not partial or not full.startswith(partial) or partial == full:
        return None
    # index of the first token not wholly inside the partial answer
    covered, index = 0, 0
    while index < len(tokens) and covered + len(tokens[index]) <= len(partial):
        covered += len(tokens[index])
        index += 1
    start, repeated = index, 0
    while start > 0 and repeated < REPEAT_CHARS:
        start -= 1
        repeated += len(tokens[start])
    return tokens[start:]

"""Resume an interrupted answer: ask the model to continue, and join without duplicating text.

After the first token nbstream never retries silently (the text shown would be duplicated). The
run ends ``incomplete`` with its partial text, and the user can **Resume**: for Chat Completions the
partial answer goes back as the assistant's turn, followed by a short user turn asking to continue
exactly where it stopped (``style="prompt"``, works with every Chat Completions server), or as an
assistant *prefix* to be completed (``style="prefix"``: the ``"prefix": true`` message flag that
DeepSeek / Mistral / vLLM-style servers understand).

Models often repeat the last few words before continuing, so :func:`join_overlap` drops the longest
overlap between the end of the partial text and the start of the continuation (and a continuation
that restarts the whole answer). **Retry** is simpler: the same request again, a new version.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

from nbstream.redact import redact_text

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly from where it stopped: do not repeat "
    "anything already written, do not add an introduction, start with the next characters."
)

Style = Literal["prompt", "prefix"]


def continuation_messages(
    messages: Sequence[dict[str, Any]],
    partial: str,
    *,
    style: Style = "prompt",
    prompt: str = CONTINUE_PROMPT,
) -> list[dict[str, Any]]:
    """The original conversation plus the partial answer, arranged so the model continues it."""
    if style not in ("prompt", "prefix"):
        raise ValueError(f"style must be 'prompt' or 'prefix', got {style!r}.")
    out = [dict(m) for m in messages]
    if not partial:
        return out
    partial = redact_text(partial)  # a key the model repeated does not go out again
    if style == "prefix":
        out.append({"role": "assistant", "content": partial, "prefix": True})
    else:
        out.append({"role": "assistant", "content": partial})
        out.append({"role": "user", "content": prompt})
    return out


def overlap_length(
    partial: str, continuation: str, max_overlap: int = 400, min_overlap: int = 4
) -> int:
    """Length of the longest suffix of ``partial`` that is also a prefix of ``continuation``.

    Overlaps shorter than ``min_overlap`` characters count only when they are whitespace: one shared
    letter is more likely a coincidence than a repetition.
    """
    limit = min(len(partial), len(continuation), max_overlap)
    for k in range(limit, 0, -1):
        if partial.endswith(continuation[:k]):
            return k if k >= min_overlap or continuation[:k].isspace() else 0
    return 0


def join_overlap(partial: str, continuation: str, max_overlap: int = 400) -> str:
    """``partial + continuation`` without the repeated part; a full restart keeps one copy."""
    if not partial:
        return continuation
    if continuation.startswith(partial):
        return continuation
    return partial + continuation[overlap_length(partial, continuation, max_overlap) :]


class OverlapJoiner:
    """The streaming form of :func:`join_overlap`: feed continuation deltas, get the text to append.

    The start of the continuation is held back only while it could still be a repetition of the
    end of the partial text (or a restart of the whole answer); as soon as it cannot, the new part
    is released and later deltas pass straight through. ``joined`` is always the joined text so far.
    """

    def __init__(self, partial: str, max_overlap: int = 400) -> None:
        self.partial = partial
        self.max_overlap = max_overlap
        self._buffer = ""
        self._decided = not partial
        self.overlap = 0  # characters dropped
        # what was released, as pieces: ``+=`` on an attribute copies the whole string each time
        # (quadratic over a long continuation); joined only when read, like AnswerState's text
        self._appended: list[str] = []
        self._lock = threading.Lock()

    def _could_still_repeat(self) -> bool:
        b, p = self._buffer, self.partial
        if p.startswith(b):
            return True  # maybe a restart of the whole answer
        if len(b) > self.max_overlap:
            return False
        tail_start = max(0, len(p) - self.max_overlap)
        j = p.find(b[:1], tail_start)
        while j != -1:
            if p.startswith(b, j) or (p[j:] and b.startswith(p[j:])):
                return p.startswith(b, j)  # a full suffix match is decided by overlap_length
            j = p.find(b[:1], j + 1)
        return False

    def _decide(self) -> str:
        self._decided = True
        b = self._buffer
        self._buffer = ""
        if b.startswith(self.partial):
            self.overlap = len(self.partial)
        else:
            self.overlap = overlap_length(self.partial, b, self.max_overlap)
        return b[self.overlap :]

    def feed(self, delta: str) -> str:
        """A continuation delta in; the text to append to the partial answer out (maybe "")."""
        if self._decided:
            self._appended.append(delta)
            return delta
        self._buffer += delta
        if self._could_still_repeat():
            return ""
        out = self._decide()
        self._appended.append(out)
        return out

    def finish(self) -> str:
        """The continuation ended: release what was held back."""
        if self._decided:
            return ""
        out = self._decide()
        self._appended.append(out)
        return out

    @property
    def appended(self) -> str:
        """The text released so far (the continuation minus the overlap)."""
        pieces = self._appended
        if len(pieces) > 1:
            with self._lock:  # the consumer may append meanwhile: join only what was counted
                n = len(pieces)
                text = "".join(pieces[:n])
                pieces[:n] = [text]
            return text
        return pieces[0] if pieces else ""

    @property
    def joined(self) -> str:
        return self.partial + self.appended

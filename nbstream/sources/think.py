"""``<think>…</think>`` inline reasoning: split it out of the content of open models.

Some open models (DeepSeek-R1, Qwen3 through Together / Hugging Face...) send their reasoning in
``delta.content`` wrapped in ``<think>…</think>`` before the answer. Shown as text it buries the
answer, so the adapter splits it into reasoning. The tags can arrive split across chunks
(``"<thi"`` + ``"nk>"``), so a possible tag prefix at the end of a chunk is held back until the
next chunk says what it is. Only a ``<think>`` at the very start of the content (after
whitespace) opens reasoning: an answer that merely *mentions* the tag is left alone.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def _held_prefix(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ThinkSplitter:
    """Per choice: ``feed(content) -> [(kind, text)]`` with kind ``"reasoning"`` or ``"text"``.

    States: ``start`` (undecided: only whitespace or part of ``<think>`` seen), ``inside``
    (reasoning), ``after`` (plain answer text: the hot path, returned unchanged).
    """

    __slots__ = ("state", "_held", "_trim")

    def __init__(self) -> None:
        self.state = "start"
        self._held = ""  # text held back: maybe the start of a tag
        self._trim = False  # drop the newlines right after a tag (however the chunks fall)

    @property
    def done(self) -> bool:
        """True once the content is plain answer text (no more splitting needed)."""
        return self.state == "after" and not self._held and not self._trim

    def feed(self, content: str) -> list[tuple[str, str]]:
        """The pieces this content adds, in order; a possible partial tag is held back."""
        if self.state == "after" and not self._held and not self._trim:
            return [("text", content)]
        text = self._held + content
        self._held = ""
        out: list[tuple[str, str]] = []
        if self.state == "start":
            stripped = text.lstrip()
            if stripped.startswith(OPEN):
                self.state = "inside"
                self._trim = True
                text = stripped[len(OPEN) :]
            elif OPEN.startswith(stripped):  # "", "<", "<th"...: not decided yet
                self._held = text
                return out
            else:
                self.state = "after"
                return [("text", text)]
        if self.state == "inside":
            end = text.find(CLOSE)
            if end < 0:
                keep = _held_prefix(text, CLOSE)
                piece = text[: len(text) - keep]
                self._held = text[len(text) - keep :]
                self._add(out, "reasoning", piece)
                return out
            self._add(out, "reasoning", text[:end])
            self.state = "after"
            self._trim = True
            text = text[end + len(CLOSE) :]
        self._add(out, "text", text)
        return out

    def _add(self, out: list[tuple[str, str]], kind: str, text: str) -> None:
        if self._trim:
            text = text.lstrip("\n")
            if text:
                self._trim = False
        if text:
            out.append((kind, text))

    def flush(self) -> list[tuple[str, str]]:
        """The end of the choice: whatever was held back, as what it was going to be."""
        held, self._held = self._held, ""
        if not held:
            return []
        if self.state == "inside":
            return [("reasoning", held)]
        self.state = "after"
        return [("text", held)]

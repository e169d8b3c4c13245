"""Named conversations for ``%%stream --chat NAME``: the messages carried from cell to cell.

A notebook reads top to bottom, but a chat with a model needs its history: each ``--chat NAME``
cell sends the earlier turns of ``NAME`` along with its prompt and, once the answer is in, adds
both to the history. Running the same cell again (same notebook cell id) does not add a second
exchange: it sends the turns from *before* that cell, as the first run did, and its new answer
replaces the old one in place - the history stays what the notebook shows, top to bottom. The
store is plain data (no widget, no OpenAI) so it can be shown, reset and tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nbstream.redact import redact_text


@dataclass
class Conversation:
    """The turns of one named conversation, as Chat Completions messages."""

    name: str
    system: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)
    cells: list[str | None] = field(default_factory=list)  # per exchange: the cell it came from

    def messages(
        self, prompt: str | None = None, *, cell: str | None = None
    ) -> list[dict[str, str]]:
        """The messages to send: the system prompt, earlier turns, then ``prompt`` if given.

        ``cell`` (a notebook cell id) that already holds an exchange: only the turns before it
        are sent, as when that cell first ran.
        """
        out: list[dict[str, str]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        end = 2 * self.cells.index(cell) if cell is not None and cell in self.cells else None
        out.extend(dict(turn) for turn in self.turns[:end])
        if prompt is not None:
            out.append({"role": "user", "content": prompt})
        return out

    def record(self, prompt: str, answer: str, *, cell: str | None = None) -> None:
        """Add a finished exchange, or replace the one ``cell`` added before (a re-run).

        An empty answer (the request failed) changes nothing, so the cell can simply be run
        again.
        """
        if not answer:
            return
        # the history is sent with every later turn and shown by --show: a key the model
        # repeated must not go out again
        answer = redact_text(answer)
        exchange = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        if cell is not None and cell in self.cells:
            at = 2 * self.cells.index(cell)
            self.turns[at : at + 2] = exchange
            return
        self.turns.extend(exchange)
        self.cells.append(cell)

    def reset(self) -> None:
        """Forget every turn and the system prompt."""
        self.turns.clear()
        self.cells.clear()
        self.system = None

    def __len__(self) -> int:
        """The number of exchanges (a question and its answer count as one)."""
        return len(self.turns) // 2

    def __repr__(self) -> str:
        lines = [f"Conversation {self.name!r}: {len(self)} exchange(s)"]
        for message in self.messages():
            text = message["content"]
            short = text if len(text) <= 70 else text[:67] + "..."
            lines.append(f"  {message['role']}: {short!r}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        if not self.system and not self.turns:
            return f"**Conversation `{self.name}`** is empty."
        parts = [f"**Conversation `{self.name}`** — {len(self)} exchange(s)"]
        for message in self.messages():
            quoted = "\n".join("> " + line for line in message["content"].splitlines())
            parts.append(f"**{message['role']}**\n\n{quoted}")
        return "\n\n".join(parts)


class Conversations:
    """All named conversations of a session, created on first use."""

    def __init__(self) -> None:
        self._by_name: dict[str, Conversation] = {}

    def get(self, name: str) -> Conversation:
        """The conversation called ``name``, new and empty if it did not exist."""
        if name not in self._by_name:
            self._by_name[name] = Conversation(name)
        return self._by_name[name]

    def reset(self, name: str | None = None) -> None:
        """Forget one conversation, or all of them when ``name`` is None."""
        if name is None:
            self._by_name.clear()
        else:
            self._by_name.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        if not self._by_name:
            return "No conversations yet (start one with %%stream --chat NAME)."
        return "\n".join(repr(c).splitlines()[0] for c in self._by_name.values())

    def as_dict(self) -> dict[str, Any]:
        """A plain copy (name -> messages), e.g. to save a session's conversations as JSON."""
        return {name: conv.messages() for name, conv in self._by_name.items()}

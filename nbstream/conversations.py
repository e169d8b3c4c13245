"""Named conversations for ``%%stream --chat NAME``: the messages carried from cell to cell.

A notebook reads top to bottom, but a chat with a model needs its history: each ``--chat NAME``
cell sends the earlier turns of ``NAME`` along with its prompt and, once the answer is in, adds
both to the history. The store is plain data (no widget, no OpenAI) so it can be shown, reset and
tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Conversation:
    """The turns of one named conversation, as Chat Completions messages."""

    name: str
    system: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)

    def messages(self, prompt: str | None = None) -> list[dict[str, str]]:
        """The messages to send: the system prompt, earlier turns, then ``prompt`` if given."""
        out: list[dict[str, str]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.extend(dict(turn) for turn in self.turns)
        if prompt is not None:
            out.append({"role": "user", "content": prompt})
        return out

    def record(self, prompt: str, answer: str) -> None:
        """Add a finished exchange. An empty answer (the request failed) adds nothing, so the
        cell can simply be run again."""
        if not answer:
            return
        self.turns.append({"role": "user", "content": prompt})
        self.turns.append({"role": "assistant", "content": answer})

    def reset(self) -> None:
        """Forget every turn and the system prompt."""
        self.turns.clear()
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

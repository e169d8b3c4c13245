"""Budget guard: stop a stream when it reaches a cap on tokens (or cost), per stream or session.

A forgotten ``max_tokens`` or a model that rambles can burn a budget in a loop of cells; the guard
is an ``on_chunk`` hook (``resilience/hooks.py``) that stops the stream *while it streams*, with the
reason in the status line and the log, keeping the partial text.

Counting. During the stream the server has not said how many tokens it produced, so the guard
estimates: each text delta counts ``max(1, round(len(delta) / chars_per_token))`` tokens (an OpenAI
chunk is about one token; a text source's longer pieces count by length). The estimate leans high on
purpose - a guard should stop a little early rather than overspend. When the usage chunk arrives
(:meth:`BudgetGuard.on_usage`) the exact numbers replace the estimate, and they are what the
session is charged at the end.

Cost is computed only where a price table is configured (``prices={"gpt-4o": Price(2.5, 10.0)}``,
USD per million tokens); nbstream ships no prices (they change; a stale table would mislead).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nbstream.resilience.hooks import Flag


@dataclass(frozen=True)
class Price:
    """Price per million tokens (in your currency), input and output."""

    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class SessionBudget:
    """Caps shared by every stream of a session (a kernel); thread-safe.

    ``used_tokens`` / ``used_cost`` include what finished streams were charged; live streams'
    running estimates count too, so two concurrent streams cannot both spend the last tokens.
    """

    def __init__(self, max_tokens: int | None = None, max_cost: float | None = None) -> None:
        _check_cap("max_tokens", max_tokens)
        _check_cap("max_cost", max_cost)
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self._lock = threading.Lock()
        self._committed_tokens = 0
        self._committed_cost = 0.0
        self._live: dict[int, tuple[int, float]] = {}

    def _set_live(self, key: int, tokens: int, cost: float) -> None:
        with self._lock:
            self._live[key] = (tokens, cost)

    def _commit(self, key: int, tokens: int, cost: float) -> None:
        with self._lock:
            self._live.pop(key, None)
            self._committed_tokens += tokens
            self._committed_cost += cost

    @property
    def used_tokens(self) -> int:
        with self._lock:
            return self._committed_tokens + sum(t for t, _ in self._live.values())

    @property
    def used_cost(self) -> float:
        with self._lock:
            return self._committed_cost + sum(c for _, c in self._live.values())

    def exhausted(self) -> str | None:
        """Why no new stream may start, or None."""
        if self.max_tokens is not None and self.used_tokens >= self.max_tokens:
            return f"session token budget used up ({self.used_tokens:,}/{self.max_tokens:,} tokens)"
        if self.max_cost is not None and self.used_cost >= self.max_cost:
            return f"session cost budget used up ({self.used_cost:.4f}/{self.max_cost:.4f})"
        return None

    def reset(self) -> None:
        """Start counting again (e.g. a new day); live streams keep their running count."""
        with self._lock:
            self._committed_tokens = 0
            self._committed_cost = 0.0


def _check_cap(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise ValueError(f"{name} must be a positive number, or None for no cap; got {value!r}.")


class BudgetGuard:
    """An ``on_chunk`` hook enforcing per-stream caps and a :class:`SessionBudget`.

    ``max_tokens`` / ``max_cost``: caps for this stream (completion tokens; cost includes the
    prompt). ``prompt_tokens``: the prompt's size if known before the answer (an estimate is fine;
    the usage chunk corrects it). ``model`` + ``prices``: enable cost.
    """

    name = "budget"
    _ids = itertools.count()

    def __init__(
        self,
        *,
        max_tokens: int | None = None,
        max_cost: float | None = None,
        session: SessionBudget | None = None,
        model: str | None = None,
        prices: Mapping[str, Price] | None = None,
        prompt_tokens: int = 0,
        chars_per_token: float = 4.0,
    ) -> None:
        _check_cap("max_tokens", max_tokens)
        _check_cap("max_cost", max_cost)
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.session = session
        self.price = _price_for(model, prices)
        if max_cost is not None and self.price is None:
            raise ValueError(
                f"max_cost needs a price for model {model!r}: pass prices={{{model!r}: "
                "Price(input_per_1m, output_per_1m)}."
            )
        self.prompt_tokens = prompt_tokens
        self.chars_per_token = chars_per_token
        self.completion_tokens = 0
        self.exact = False  # True once the server's usage replaced the estimate
        self.stopped: str | None = None
        self._key = next(self._ids)
        self._ended = False
        self._chars = 0  # length of the text so far (on_delta counts it from the deltas)

    @property
    def cost(self) -> float | None:
        if self.price is None:
            return None
        return self.price.cost(self.prompt_tokens, self.completion_tokens)

    def preflight(self) -> str | None:
        """Before opening the request: the reason the session budget forbids it, or None."""
        return self.session.exhausted() if self.session is not None else None

    def on_chunk(self, delta: str, text: str) -> Flag | None:
        self._chars = len(text)
        if not delta or self.exact or self.stopped:
            return None
        self.completion_tokens += max(1, round(len(delta) / self.chars_per_token))
        return self._check(len(text))

    def on_delta(self, delta: str, text_so_far: Callable[[], str]) -> Flag | None:
        """:meth:`on_chunk` counting the characters itself (the whole text is never needed)."""
        self._chars += len(delta)
        if not delta or self.exact or self.stopped:
            return None
        self.completion_tokens += max(1, round(len(delta) / self.chars_per_token))
        return self._check(self._chars)

    def on_usage(self, prompt_tokens: int | None, completion_tokens: int | None) -> Flag | None:
        """The server's usage: exact numbers from now on."""
        if prompt_tokens is not None:
            self.prompt_tokens = prompt_tokens
        if completion_tokens is not None:
            self.completion_tokens = completion_tokens
            self.exact = True
        return None if self.stopped else self._check(None)

    def on_end(self, text: str) -> Flag | None:
        """Charge the session (once) with this stream's final count."""
        if not self._ended and self.session is not None:
            self._ended = True
            self.session._commit(
                self._key, self.prompt_tokens + self.completion_tokens, self.cost or 0.0
            )
        return None

    def _check(self, at_char: int | None) -> Flag | None:
        cost = self.cost
        session = self.session
        if session is not None:
            session._set_live(self._key, self.prompt_tokens + self.completion_tokens, cost or 0.0)
        reason = None
        if self.max_tokens is not None and self.completion_tokens >= self.max_tokens:
            reason = f"token budget reached: {self.completion_tokens:,}/{self.max_tokens:,} tokens"
        elif self.max_cost is not None and cost is not None and cost >= self.max_cost:
            reason = f"cost budget reached: {cost:.4f}/{self.max_cost:.4f}"
        elif session is not None:
            reason = session.exhausted()
        if reason is None:
            return None
        if not self.exact:
            reason += " (estimated)"
        self.stopped = reason
        return Flag(self.name, reason, "stop", "budget", at_char, self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The counts for the status line and the log."""
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated": not self.exact,
        }
        if self.cost is not None:
            out["cost"] = round(self.cost, 6)
        return out


def _price_for(model: str | None, prices: Mapping[str, Price] | None) -> Price | None:
    if not prices or model is None:
        return None
    if model in prices:
        return prices[model]
    # "gpt-4o-2024-08-06" uses the "gpt-4o" price: the longest configured prefix wins
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


_SESSION = SessionBudget()


def session_budget() -> SessionBudget:
    """The kernel-wide session budget (no caps until you set ``max_tokens`` / ``max_cost``)."""
    return _SESSION

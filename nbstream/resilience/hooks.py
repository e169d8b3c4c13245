"""``on_chunk`` hooks: look at the answer while it streams, flag it, or stop it at once.

A hook sees each text delta and the accumulated text of its choice, and returns ``None`` (fine) or a
:class:`Flag`. ``action="flag"`` records the finding (chunk log + widget) and lets the stream go on;
``action="stop"`` stops the stream immediately (the HTTP response is closed; the partial text is
kept) with the flag's reason. :class:`HookSet` is what the run loop talks to: it calls every hook,
records every flag, and turns the first ``stop`` into one call of the run's stop function.

Hooks run on the consuming thread between two chunks, so they must be cheap. The accumulated text
is one ``str`` built from the stream's pieces, so handing it over costs a copy of the whole answer
per chunk (quadratic over a long answer). The shipped hooks therefore implement
``on_delta(delta, text_so_far)`` as well: :class:`HookSet` gives them a function that builds the
text only when they need it (a moderation check every ``every_chars``; never for keywords or the
budget). Plain ``on_chunk(delta, text)`` hooks still get the string. Slow checks (a
moderation API call) belong on a worker: :class:`OpenAIModerationHook` sends the accumulated text
every ``every_chars`` characters from a background thread and reports its verdict through
``HookSet.report`` the moment it arrives - the stream never waits for the moderation endpoint.

Shipped hooks: :class:`KeywordHook` (regex / keywords), :class:`OpenAIModerationHook`,
and the budget guard in ``nbstream.resilience.budget``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from nbstream.redact import redact_text

Action = Literal["flag", "stop"]
log = logging.getLogger(__name__)

_CONTEXT = 64  # characters kept before KeywordHook's overlap (anchors and lookbehinds look back)


@dataclass(frozen=True)
class Flag:
    """A hook's finding. ``at_char``: length of the text when it was made (where to mark it)."""

    hook: str
    reason: str
    action: Action = "flag"
    category: str | None = None
    at_char: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-safe dict for the chunk log."""
        out: dict[str, Any] = {
            "type": "flag",
            "hook": self.hook,
            "action": self.action,
            "reason": self.reason,
        }
        if self.category is not None:
            out["category"] = self.category
        if self.at_char is not None:
            out["at_char"] = self.at_char
        if self.details:
            out["details"] = self.details
        return out


@runtime_checkable
class ChunkHook(Protocol):
    """What a hook implements. ``on_end`` and ``bind`` are optional (see :class:`HookSet`)."""

    name: str

    def on_chunk(self, delta: str, text: str) -> Flag | None: ...


class HookSet:
    """Runs hooks for one stream; collects flags; stops the stream on the first ``stop`` flag.

    ``stop(reason)`` must be thread-safe (``StreamRun.stop``): a hook's worker may call it.
    ``record(flag)`` writes the flag to the chunk log / widget; it is called once per flag.
    """

    def __init__(
        self,
        hooks: Iterable[ChunkHook],
        *,
        stop: Callable[[str], None] | None = None,
        record: Callable[[Flag], None] | None = None,
    ) -> None:
        self.hooks = list(hooks)
        for hook in self.hooks:
            if not callable(getattr(hook, "on_chunk", None)):
                raise TypeError(
                    f"{hook!r} is not an on_chunk hook: give an object with "
                    "on_chunk(delta, text) -> Flag | None (see nbstream.KeywordHook)."
                )
        self._stop = stop
        self._record = record
        self._lock = threading.Lock()
        self.flags: list[Flag] = []
        self.stopped_by: Flag | None = None
        self._calls = [(hook, getattr(hook, "on_delta", None)) for hook in self.hooks]
        for hook in self.hooks:
            bind = getattr(hook, "bind", None)
            if callable(bind):
                bind(self.report)

    def report(self, flag: Flag) -> None:
        """Record a flag (any thread); a ``stop`` flag stops the stream, once."""
        with self._lock:
            self.flags.append(flag)
            first_stop = flag.action == "stop" and self.stopped_by is None
            if first_stop:
                self.stopped_by = flag
        if self._record is not None:
            self._record(flag)
        if first_stop and self._stop is not None:
            self._stop(f"stopped by {flag.hook}: {flag.reason}")

    def on_chunk(self, delta: str, text: str | Callable[[], str]) -> list[Flag]:
        """Call every hook with the new delta and the accumulated text; returns the new flags.

        ``text`` may be a function returning the accumulated text: hooks with ``on_delta`` get the
        function (they call it only when they need the whole text), the others the string, built
        at most once per call.
        """
        found: list[Flag] = []
        whole = text if isinstance(text, str) else None
        text_so_far: Callable[[], str] = text if not isinstance(text, str) else (lambda: text)
        for hook, on_delta in self._calls:
            if on_delta is not None:
                flag = on_delta(delta, text_so_far)
            else:
                if whole is None:
                    whole = text_so_far()
                flag = hook.on_chunk(delta, whole)
            if flag is not None:
                found.append(flag)
                self.report(flag)
        return found

    def on_end(self, text: str) -> list[Flag]:
        """The stream ended: hooks with an ``on_end(text)`` get a last look (a final check)."""
        found: list[Flag] = []
        for hook in self.hooks:
            end = getattr(hook, "on_end", None)
            flag = end(text) if callable(end) else None
            if flag is not None:
                found.append(flag)
                self.report(flag)
        return found

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


class KeywordHook:
    """Flag (or stop) when a regex or a keyword appears in the answer.

    ``patterns``: regular expressions (str or compiled); ``keywords``: plain words matched whole and
    case-insensitively. Each match is reported once. Only the tail of the text is searched on each
    chunk (the new delta plus ``overlap`` characters before it), so the cost per chunk stays flat
    however long the answer grows; a regex match longer than ``overlap`` may be missed. With
    keywords only, the overlap is the longest keyword plus one (enough, and cheaper).
    """

    def __init__(
        self,
        patterns: Iterable[str | re.Pattern[str]] = (),
        *,
        keywords: Iterable[str] = (),
        action: Action = "flag",
        name: str = "keyword",
        category: str | None = None,
        overlap: int | None = None,
    ) -> None:
        if action not in ("flag", "stop"):
            raise ValueError(f"action must be 'flag' or 'stop', got {action!r}.")
        compiled = [p if isinstance(p, re.Pattern) else re.compile(p) for p in patterns]
        words = [w for w in keywords if w]
        if words:
            alternation = "|".join(re.escape(w) for w in words)
            compiled.append(re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE))
        if not compiled:
            raise ValueError("KeywordHook needs at least one pattern or keyword.")
        self.patterns = compiled
        self.action: Action = action
        self.name = name
        self.category = category
        if overlap is None:
            overlap = max(len(w) for w in words) + 1 if words and len(compiled) == 1 else 200
        self.overlap = overlap
        self._scanned = 0  # text length already searched
        self._seen: set[tuple[int, int]] = set()
        # on_delta keeps the end of the text itself: the overlap plus some context before it,
        # so \b, (?<!\w) and short lookbehinds see the same characters as in the whole text
        self._keep = overlap + _CONTEXT
        self._tail = ""

    def on_chunk(self, delta: str, text: str) -> Flag | None:
        start = max(0, self._scanned - self.overlap)
        self._scanned = len(text)
        self._tail = text[-self._keep :]
        return self._search(text, start, 0)

    def on_delta(self, delta: str, text_so_far: Callable[[], str]) -> Flag | None:
        """:meth:`on_chunk` without the whole text: the same matches, searched in the kept tail."""
        base = self._scanned - len(self._tail)  # where the window starts in the whole text
        window = self._tail + delta
        start = max(0, self._scanned - self.overlap)
        self._scanned += len(delta)
        self._tail = window[-self._keep :]
        return self._search(window, start - base, base)

    def _search(self, text: str, pos: int, base: int) -> Flag | None:
        for pattern in self.patterns:
            for match in pattern.finditer(text, pos):
                start, end = match.span()
                span = (start + base, end + base)
                if span in self._seen or span[1] == span[0]:
                    continue
                self._seen.add(span)
                return Flag(
                    self.name,
                    f"matched {match.group(0)!r}",
                    self.action,
                    self.category,
                    at_char=span[1],
                    details={"pattern": pattern.pattern, "span": list(span)},
                )
        return None


class OpenAIModerationHook:
    """Send the accumulated text to a moderation endpoint every ``every_chars``, off the stream.

    ``client``: a *sync* ``openai.OpenAI`` (any OpenAI-compatible server with ``/v1/moderations``;
    the local server has one). The call runs on one worker thread per hook; at most one check is in
    flight, later text is checked by the next one. A flagged result is reported the moment it comes
    back (``action="stop"`` stops the stream from the worker). A moderation call that fails is
    recorded as a ``flag`` with category ``moderation_error`` - it never stops or slows the stream.
    """

    def __init__(
        self,
        client: Any,
        *,
        every_chars: int = 400,
        model: str = "omni-moderation-latest",
        action: Action = "stop",
        name: str = "moderation",
        check_at_end: bool = True,
    ) -> None:
        if every_chars < 1:
            raise ValueError("every_chars must be >= 1.")
        if action not in ("flag", "stop"):
            raise ValueError(f"action must be 'flag' or 'stop', got {action!r}.")
        create = getattr(getattr(client, "moderations", None), "create", None)
        if not callable(create):
            raise TypeError(
                "OpenAIModerationHook needs a sync openai client (openai.OpenAI(...)), "
                f"got {type(client).__name__}."
            )
        self.client = client
        self.every_chars = every_chars
        self.model = model
        self.action: Action = action
        self.name = name
        self.check_at_end = check_at_end
        self._checked = 0  # length of the text sent last
        self._length = 0  # length of the text so far (counted from the deltas by on_delta)
        self._inflight: Future[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbstream-moderation")
        self._report: Callable[[Flag], None] | None = None
        self.checks: list[dict[str, Any]] = []  # one entry per call: chars, flagged, error

    def bind(self, report: Callable[[Flag], None]) -> None:
        """Called by :class:`HookSet`: where verdicts go when they arrive."""
        self._report = report

    def on_chunk(self, delta: str, text: str) -> Flag | None:
        self._length = len(text)
        if len(text) - self._checked >= self.every_chars:
            self._submit(text)
        return None

    def on_delta(self, delta: str, text_so_far: Callable[[], str]) -> Flag | None:
        """:meth:`on_chunk` that builds the text only when a check is due."""
        self._length += len(delta)
        if self._length - self._checked >= self.every_chars:
            busy = self._inflight is not None and not self._inflight.done()
            if not busy:
                text = text_so_far()
                self._length = len(text)
                self._submit(text)
        return None

    def on_end(self, text: str) -> Flag | None:
        if self.check_at_end and len(text) > self._checked:
            self._submit(text, force=True)
        return None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the check in flight (tests, or to be sure before using the text)."""
        future = self._inflight
        if future is not None:
            future.result(timeout)

    def close(self) -> None:
        """Stop the worker after the check in flight."""
        self._pool.shutdown(wait=False)

    def _submit(self, text: str, force: bool = False) -> None:
        busy = self._inflight is not None and not self._inflight.done()
        if busy and not force:
            return
        self._checked = len(text)
        self._inflight = self._pool.submit(self._check, text)

    def _check(self, text: str) -> None:
        try:
            response = self.client.moderations.create(model=self.model, input=text)
            result = response.results[0]
        except Exception as exc:  # reported, never raised into the stream
            self.checks.append({"chars": len(text), "error": redact_text(str(exc))})
            self._emit(
                Flag(self.name, "moderation check failed", "flag", "moderation_error", len(text))
            )
            log.warning("moderation check failed: %s", redact_text(str(exc)))
            return
        categories = _true_categories(getattr(result, "categories", None))
        self.checks.append({"chars": len(text), "flagged": bool(result.flagged)})
        if result.flagged:
            label = ", ".join(categories) or "flagged"
            self._emit(
                Flag(
                    self.name,
                    f"moderation flagged: {label}",
                    self.action,
                    categories[0] if categories else None,
                    len(text),
                    {"categories": categories},
                )
            )

    def _emit(self, flag: Flag) -> None:
        if self._report is not None:
            self._report(flag)


def _true_categories(categories: Any) -> list[str]:
    if categories is None:
        return []
    data = categories.model_dump() if hasattr(categories, "model_dump") else dict(categories)
    return sorted(k for k, v in data.items() if v is True)

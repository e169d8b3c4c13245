"""Rate limits: read the ``x-ratelimit-*`` headers of every response, and queue new streams.

OpenAI-style servers report their budget on every response::

    x-ratelimit-limit-requests: 60        x-ratelimit-limit-tokens: 150000
    x-ratelimit-remaining-requests: 59    x-ratelimit-remaining-tokens: 149984
    x-ratelimit-reset-requests: 1s        x-ratelimit-reset-tokens: 6m0s

:func:`parse_headers` turns them into a :class:`RateLimitInfo` (shown in the status line, kept in
the chunk log). :class:`Limiter` uses them to *queue* new streams of one endpoint instead of firing
them all and collecting a storm of 429s: a stream is admitted while the remaining budget (minus the
streams already admitted whose headers have not arrived yet) stays above a reserve; otherwise it
waits, in FIFO order, until the reset time. A 429 closes the gate until its ``Retry-After``.
Before the first headers are known only ``probe`` streams go at once, so 50 streams started
together learn the limit from the first answer instead of all hitting it blind.

The limiter is thread-safe; :meth:`Limiter.acquire` blocks a thread, :meth:`Limiter.aacquire`
awaits (it polls the gate with short sleeps, so it works from any event loop and any thread).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float | None:
    """``"1s"`` -> 1.0, ``"6m0s"`` -> 360.0, ``"20ms"`` -> 0.02, ``"1h2m3.5s"``, ``"0.5"``.

    Go-style durations as OpenAI sends them; a bare number is seconds. Anything else -> None.
    """
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if value >= 0 else None
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# The widget shows the rate-limit budget once this little is left (the chunk log always has it).
NEAR_FRACTION = 0.1


@dataclass(frozen=True)
class RateLimitInfo:
    """One response's view of the rate limit (``None`` = the server did not say)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    @property
    def known(self) -> bool:
        """True if the server sent any rate-limit header."""
        return any(v is not None for v in asdict(self).values())

    @property
    def near(self) -> bool:
        """True when requests or tokens are nearly used up (at most ``NEAR_FRACTION`` of the
        limit left, or none left): only then is the budget worth a line under every answer."""
        for remaining, limit in (
            (self.remaining_requests, self.limit_requests),
            (self.remaining_tokens, self.limit_tokens),
        ):
            if remaining is None:
                continue
            if remaining <= 0 or (limit and remaining <= limit * NEAR_FRACTION):
                return True
        return False

    def summary(self, received_at: float | None = None) -> str:
        """Status-line text: ``"requests 59/60 left (resets in 1 s) · tokens ..."``.

        With ``received_at`` (the wall-clock time the headers arrived, ``time.time()``) a reset
        is a clock time, ``"(resets at 14:03:12)"``: the note is saved with the answer, and
        "in 1 s" read in a notebook reopened tomorrow would be wrong (and is wrong even live,
        once the note outlives the response it came from)."""
        parts = []
        for name, remaining, limit, reset in (
            ("requests", self.remaining_requests, self.limit_requests, self.reset_requests_s),
            ("tokens", self.remaining_tokens, self.limit_tokens, self.reset_tokens_s),
        ):
            if remaining is None and limit is None:
                continue
            text = f"{name} {_n(remaining)}/{_n(limit)} left"
            if reset is not None and received_at is not None:
                text += f" (resets at {_clock(received_at + reset)})"
            elif reset is not None:
                text += f" (resets in {_dur(reset)})"
            parts.append(text)
        return " · ".join(parts)

    def record(self) -> dict[str, Any]:
        """JSON-safe dict for the chunk log."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _clock(epoch: float) -> str:
    """Local time of day; the date too when it is not today (a reset hours away, past midnight)."""
    when = time.localtime(epoch)
    if time.strftime("%Y-%m-%d", when) != time.strftime("%Y-%m-%d"):
        return time.strftime("%Y-%m-%d %H:%M:%S", when)
    return time.strftime("%H:%M:%S", when)


def _dur(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def parse_headers(headers: Mapping[str, str] | None) -> RateLimitInfo:
    """Read the six ``x-ratelimit-*`` headers (any case); absent or garbled ones are None."""
    if not headers:
        return RateLimitInfo()
    h = {str(k).lower(): v for k, v in headers.items()}
    return RateLimitInfo(
        limit_requests=_int(h.get("x-ratelimit-limit-requests")),
        remaining_requests=_int(h.get("x-ratelimit-remaining-requests")),
        reset_requests_s=parse_duration(h.get("x-ratelimit-reset-requests")),
        limit_tokens=_int(h.get("x-ratelimit-limit-tokens")),
        remaining_tokens=_int(h.get("x-ratelimit-remaining-tokens")),
        reset_tokens_s=parse_duration(h.get("x-ratelimit-reset-tokens")),
    )


class Ticket:
    """An admitted stream. Report what happened with :meth:`observe` / :meth:`rate_limited` /
    :meth:`release`; any of them ends the ticket's "in flight, headers unknown" status."""

    def __init__(self, limiter: Limiter, waited_s: float) -> None:
        self._limiter = limiter
        self.waited_s = waited_s
        self._open = True

    def observe(self, headers: Mapping[str, str] | RateLimitInfo | None) -> RateLimitInfo:
        """The response's headers arrived (any status): update the shared budget."""
        info = headers if isinstance(headers, RateLimitInfo) else parse_headers(headers)
        self._limiter._observe(self, info)
        return info

    def rate_limited(
        self, retry_after: float | None, headers: Mapping[str, str] | None = None
    ) -> None:
        """The server answered 429: close the gate for every stream of this endpoint."""
        self._limiter._on_429(self, retry_after, parse_headers(headers) if headers else None)

    def release(self) -> None:
        """The attempt ended without headers (connection error...): free its place. Idempotent."""
        self._limiter._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Limiter:
    """Per-endpoint admission control driven by the server's rate-limit headers.

    ``reserve_requests``: keep this many requests of the window unused (other clients share it).
    ``min_tokens``: wait for the token reset when fewer tokens than this remain.
    ``probe``: streams admitted at once before any header is known.
    ``default_block_s``: how long a 429 without Retry-After (and without reset headers) blocks.
    ``reset_margin_s``: added to every reset time: our clock and the server's window never agree
    exactly, and arriving a few ms early turns a whole queue into 429s.
    """

    def __init__(
        self,
        *,
        reserve_requests: int = 0,
        min_tokens: int = 1,
        probe: int = 1,
        default_block_s: float = 1.0,
        reset_margin_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.01,
    ) -> None:
        self.reserve_requests = reserve_requests
        self.min_tokens = min_tokens
        self.probe = max(1, probe)
        self.default_block_s = default_block_s
        self.reset_margin_s = reset_margin_s
        self.clock = clock
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._queue: list[int] = []  # FIFO of waiting tickets
        self._pending: set[Ticket] = set()  # admitted, headers not yet seen
        self._known = False  # has any response told us about its limits (or their absence)?
        self._limited = False  # did the server ever send rate-limit headers?
        self._remaining_requests: int | None = None
        self._requests_reset_at: float | None = None
        self._limit_requests: int | None = None
        self._remaining_tokens: int | None = None
        self._tokens_reset_at: float | None = None
        self._blocked_until = 0.0
        self.last: RateLimitInfo = RateLimitInfo()
        self.stats = {"admitted": 0, "queued": 0, "rate_limited": 0, "max_wait_s": 0.0}

    # -- admission -------------------------------------------------------------------------
    def _wait_needed(self, now: float) -> float | None:
        """None: admit now. Otherwise a wait in seconds (``poll_s`` when waiting on others)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self._known:
            return None if len(self._pending) < self.probe else self.poll_s
        if not self._limited:
            return None
        if self._requests_reset_at is not None and now >= self._requests_reset_at:
            # the window rolled over: the full limit is back (less what is still unconfirmed)
            self._remaining_requests = self._limit_requests
            self._requests_reset_at = None
        if self._tokens_reset_at is not None and now >= self._tokens_reset_at:
            self._remaining_tokens = None
            self._tokens_reset_at = None
        waits = []
        if self._remaining_requests is not None:
            free = self._remaining_requests - len(self._pending) - self.reserve_requests
            if free <= 0:
                waits.append(
                    self._requests_reset_at - now
                    if self._requests_reset_at is not None
                    else self.poll_s
                )
        if self._remaining_tokens is not None and self._remaining_tokens < self.min_tokens:
            waits.append(
                self._tokens_reset_at - now if self._tokens_reset_at is not None else self.poll_s
            )
        return max(waits) if waits else None

    def _try_admit(self, number: int, started: float) -> Ticket | float:
        now = self.clock()
        wait = self._wait_needed(now) if self._queue and self._queue[0] == number else self.poll_s
        if wait is None:
            self._queue.pop(0)
            ticket = Ticket(self, now - started)
            self._pending.add(ticket)
            self.stats["admitted"] += 1
            self.stats["max_wait_s"] = max(self.stats["max_wait_s"], now - started)
            self._cond.notify_all()
            return ticket
        return max(wait, 0.0)

    def _enqueue(self) -> int:
        number = next(self._tickets)
        self._queue.append(number)
        return number

    def acquire(self, *, cancelled: Callable[[], bool] | None = None) -> Ticket:
        """Block until this endpoint's budget admits one more stream (FIFO)."""
        with self._cond:
            number, started, counted = self._enqueue(), self.clock(), False
            try:
                while True:
                    result = self._try_admit(number, started)
                    if isinstance(result, Ticket):
                        return result
                    if not counted:
                        self.stats["queued"] += 1
                        counted = True
                    if cancelled is not None and cancelled():
                        raise InterruptedError("stopped while queued for the rate limit")
                    self._cond.wait(min(result, 0.25))
            except BaseException:
                if number in self._queue:
                    self._queue.remove(number)
                    self._cond.notify_all()
                raise

    async def aacquire(self) -> Ticket:
        """Async :meth:`acquire`: awaits in short sleeps; cancelling the task leaves the queue."""
        with self._cond:
            number, started = self._enqueue(), self.clock()
        counted = False
        try:
            while True:
                with self._cond:
                    result = self._try_admit(number, started)
                if isinstance(result, Ticket):
                    return result
                if not counted:
                    with self._cond:
                        self.stats["queued"] += 1
                    counted = True
                await asyncio.sleep(min(result, self.poll_s * 5))
        except BaseException:
            with self._cond:
                if number in self._queue:
                    self._queue.remove(number)
                    self._cond.notify_all()
            raise

    def queue_position(self) -> int:
        """How many streams wait in this endpoint's queue (for the widget)."""
        with self._cond:
            return len(self._queue)

    # -- feedback --------------------------------------------------------------------------
    def _observe(self, ticket: Ticket, info: RateLimitInfo) -> None:
        with self._cond:
            self._pending.discard(ticket)
            self._known = True
            if info.known:
                self._limited = True
                self.last = info
                now = self.clock()
                if info.limit_requests is not None:
                    self._limit_requests = info.limit_requests
                self._remaining_requests, self._requests_reset_at = self._merge(
                    self._remaining_requests,
                    self._requests_reset_at,
                    info.remaining_requests,
                    info.reset_requests_s,
                    now,
                )
                self._remaining_tokens, self._tokens_reset_at = self._merge(
                    self._remaining_tokens,
                    self._tokens_reset_at,
                    info.remaining_tokens,
                    info.reset_tokens_s,
                    now,
                )
            self._cond.notify_all()

    def _merge(
        self,
        remaining: int | None,
        reset_at: float | None,
        new_remaining: int | None,
        new_reset_s: float | None,
        now: float,
    ) -> tuple[int | None, float | None]:
        """Fold one response's budget into ours. Responses of concurrent requests arrive in any
        order: within one window (same reset time, give or take) the lowest ``remaining`` is the
        newest news; a later reset time means a new window, whose numbers replace ours."""
        if new_remaining is None:
            return remaining, reset_at
        if new_reset_s is None:
            return new_remaining, reset_at
        new_reset_at = now + new_reset_s + self.reset_margin_s
        if (  # the same window
            remaining is not None
            and reset_at is not None
            and new_reset_at <= reset_at + 0.05 + 0.1 * new_reset_s
        ):
            return min(remaining, new_remaining), max(reset_at, new_reset_at)
        return new_remaining, new_reset_at

    def _on_429(
        self, ticket: Ticket, retry_after: float | None, info: RateLimitInfo | None
    ) -> None:
        if info is not None and info.known:
            self._observe(ticket, info)
        with self._cond:
            self._pending.discard(ticket)
            self._known = True
            self._limited = True
            self.stats["rate_limited"] += 1
            delay = retry_after
            if delay is None and info is not None:
                delay = info.reset_requests_s
            if delay is None:
                delay = self.default_block_s
            self._blocked_until = max(
                self._blocked_until, self.clock() + delay + self.reset_margin_s
            )
            self._remaining_requests = 0
            self._requests_reset_at = self._blocked_until
            self._cond.notify_all()

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            self._pending.discard(ticket)
            self._cond.notify_all()


_LIMITERS: dict[str, Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(endpoint: str, **options: Any) -> Limiter:
    """The one limiter of an endpoint (its base URL), shared by every stream of the session."""
    key = str(endpoint).rstrip("/")
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = Limiter(**options)
        return limiter

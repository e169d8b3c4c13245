"""Server-side bookkeeping: rate-limit budget windows and per-request-key attempt counters."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """A server-wide budget per fixed window; ``None`` means unlimited for that dimension."""

    requests: int | None = None
    tokens: int | None = None
    window_s: float = 60.0


# What the headers advertise when no limit is configured (never enforced).
ADVERTISED = RateLimit(requests=10_000, tokens=10_000_000, window_s=60.0)


def format_reset(seconds: float) -> str:
    """OpenAI's reset format: ``"20ms"``, ``"1.5s"``, ``"6m0s"``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{int(rest)}s"


class RateLimiter:
    """Fixed-window budget of requests and tokens; makes the ``x-ratelimit-*`` headers."""

    def __init__(
        self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.enforced = limit is not None
        self.limit = limit or ADVERTISED
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._requests = 0
        self._tokens = 0

    def _roll(self, now: float) -> None:
        if now - self._window_start >= self.limit.window_s:
            elapsed_windows = math.floor((now - self._window_start) / self.limit.window_s)
            self._window_start += elapsed_windows * self.limit.window_s
            self._requests = 0
            self._tokens = 0

    def take(self, tokens: int) -> tuple[bool, float, dict[str, str]]:
        """Spend one request and ``tokens``: (allowed, seconds until reset, headers)."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            reset = self._window_start + self.limit.window_s - now
            lim = self.limit
            over = self.enforced and (
                (lim.requests is not None and self._requests + 1 > lim.requests)
                or (lim.tokens is not None and self._tokens + tokens > lim.tokens)
            )
            if not over:
                self._requests += 1
                self._tokens += tokens
            headers = self._headers(reset)
            return not over, reset, headers

    def headers(self) -> dict[str, str]:
        """The current ``x-ratelimit-*`` headers without spending anything."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            return self._headers(self._window_start + self.limit.window_s - now)

    def _headers(self, reset: float) -> dict[str, str]:
        lim = self.limit
        req_limit = lim.requests if lim.requests is not None else ADVERTISED.requests
        tok_limit = lim.tokens if lim.tokens is not None else ADVERTISED.tokens
        assert req_limit is not None and tok_limit is not None
        return {
            "x-ratelimit-limit-requests": str(req_limit),
            "x-ratelimit-limit-tokens": str(tok_limit),
            "x-ratelimit-remaining-requests": str(max(0, req_limit - self._requests)),
            "x-ratelimit-remaining-tokens": str(max(0, tok_limit - self._tokens)),
            "x-ratelimit-reset-requests": format_reset(reset),
            "x-ratelimit-reset-tokens": format_reset(reset),
        }

    def reset(self) -> None:
        with self._lock:
            self._window_start = self._clock()
            self._requests = 0
            self._tokens = 0


class AttemptCounter:
    """Counts attempts of the same request key; a key idle for ``forget_after_s`` starts over.

    This is what lets ``fail=503&fail_times=2`` fail the SDK's first two identical attempts and
    let the third through, and lets a notebook cell demonstrate it again when re-run later.
    """

    def __init__(
        self,
        forget_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ):
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys  # every distinct body is a key: bounded, like the records
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def next(self, key: str) -> int:
        """Record one more attempt for ``key``; returns its 1-based number."""
        with self._lock:
            now = self._clock()
            count, last = self._seen.get(key, (0, now))
            if now - last > self.forget_after_s:
                count = 0
            count += 1
            self._seen.pop(key, None)  # re-inserted last: the dict stays in last-seen order
            self._seen[key] = (count, now)
            while len(self._seen) > self.max_keys:  # forget the least recently seen key
                del self._seen[next(iter(self._seen))]
            return count

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

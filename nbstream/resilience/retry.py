"""Retries before the first token: which failures are worth another attempt, and how long to wait.

Why this module owns retries (and not the SDK)
----------------------------------------------
The openai SDK retries by itself (``max_retries=2`` by default) on connection errors, timeouts,
408/409/429/5xx, honouring ``retry-after-ms`` / ``retry-after``. Those attempts happen inside
``create()``: nbstream would never see them, so the chunk log and the widget could not say
"retrying in 3 s (attempt 2/4)", and stacking our retries on top of the SDK's would multiply the
attempts (3 x 4 = 12 requests for a limit of 4). So **nbstream owns the retries**:

- request sources (``ChatRequest`` / ``ResponsesRequest``) call the SDK through
  ``client.with_options(max_retries=0)`` - one ``create()`` is exactly one HTTP attempt;
- this policy decides whether and when to try again, each attempt is a record in the ChunkLog;
- a user's zero-argument callable is retried the same way (each call is one attempt), but any
  retries of the client *inside* that callable remain the user's setting and stay invisible: pass
  a ``ChatRequest`` (or a client with ``max_retries=0``) to see every HTTP attempt.

Only failures *before the first token* are retried. Once text has been shown a retry would
duplicate it; the run becomes ``incomplete`` and offers Resume / Retry instead (see ``resume.py``).

The backoff is exponential with *full jitter* (``uniform(0, min(cap, base * 2**n))``, the AWS
"Exponential Backoff and Jitter" scheme): it spreads a burst of failing clients over the whole
window instead of letting them retry in lock-step. A server's ``retry-after-ms`` / ``Retry-After``
(seconds or an HTTP date) wins over the computed delay, up to ``max_retry_after``; beyond that the
error is returned at once, because waiting minutes in a notebook cell is worse than a clear message.

This module does not import openai (see docs/architecture.md): SDK exceptions are recognised through
``sys.modules`` when the SDK is loaded, and by duck typing (``status_code``, ``response.headers``).
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nbstream.sources.base import describe_error, sdk_error_is
from nbstream.sources.base import parse_retry_after as parse_retry_after  # (its home: the reader)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429})
"""Plus every status >= 500: the same set the SDK retries."""


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them.

    ``max_attempts`` counts every attempt including the first (``1`` disables retries).
    ``base_delay`` / ``max_delay`` shape the full-jitter backoff; ``max_retry_after`` is the longest
    server-requested wait we accept (longer: give up with the error, do not hang the cell).
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(
                f"max_attempts must be an integer >= 1 (1 = no retry), got {self.max_attempts!r}."
            )
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0 seconds.")

    def retryable_status(self, status: int) -> bool:
        """408/409/429 and every 5xx: the SDK's own list."""
        return status in self.retry_statuses or status >= 500

    def backoff(self, retry_number: int, rand: Callable[[], float] | None = None) -> float:
        """Full jitter: a uniform draw in ``[0, min(max_delay, base_delay * 2**retry_number))``.

        ``rand=None`` draws from ``random.random`` (the default every user gets)."""
        ceiling = min(self.max_delay, self.base_delay * math.pow(2.0, min(retry_number, 60)))
        return ceiling * (rand or random.random)()


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Failure:
    """What went wrong in one attempt, reduced to what the retry decision needs."""

    kind: str  # "connection" | "timeout" | "status" | "other"
    message: str
    status: int | None = None
    retry_after: float | None = None  # seconds the server asked us to wait
    headers: Mapping[str, str] | None = None
    should_retry: bool | None = None  # the server's x-should-retry header


@dataclass(frozen=True)
class RetryDecision:
    """The outcome of one failed attempt: retry after ``delay`` seconds, or give up (``why``)."""

    retry: bool
    delay: float
    attempt: int  # the attempt that just failed (1-based)
    max_attempts: int
    failure: Failure
    why: str

    @property
    def message(self) -> str:
        """Status-line text, e.g. ``"HTTP 503, retrying in 1.2 s (attempt 2/4)"``."""
        what = (
            self.failure.message if self.failure.kind != "status" else f"HTTP {self.failure.status}"
        )
        if not self.retry:
            return f"{what}: {self.why}"
        attempt = f"attempt {self.attempt + 1}/{self.max_attempts}"
        return f"{what}, retrying in {_seconds(self.delay)} ({attempt})"

    def record(self) -> dict[str, Any]:
        """A JSON-safe record for the chunk log."""
        return {
            "type": "retry" if self.retry else "giving_up",
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "delay_s": round(self.delay, 4),
            "failure": self.failure.kind,
            "status": self.failure.status,
            "retry_after_s": self.failure.retry_after,
            "error": self.failure.message,
            "why": self.why,
        }


def _seconds(value: float) -> str:
    return (
        f"{value:.0f} s"
        if value >= 10
        else f"{value:.1f} s"
        if value >= 0.1
        else f"{value * 1000:.0f} ms"
    )


def classify(exc: BaseException) -> Failure:
    """Reduce an exception from opening a stream to a :class:`Failure` (no SDK import needed):
    the error is read by :func:`nbstream.sources.base.describe_error`, as for the log."""
    if sdk_error_is(exc, "APITimeoutError") or isinstance(exc, (TimeoutError, socket.timeout)):
        return Failure("timeout", "request timed out")
    if sdk_error_is(exc, "APIConnectionError") or isinstance(exc, ConnectionError):
        return Failure("connection", "connection error")
    info = describe_error(exc)
    status = info.error_status
    if status is not None:
        return Failure(
            "status", info.server_message, status, info.retry_after, info.headers, info.should_retry
        )
    return Failure("other", info.server_message)


class Retrier:
    """Decides, attempt after attempt, whether to try again; runs the sleeps (sync or async).

    ``rand`` and ``sleep`` are injectable so tests are exact and fast; ``rand=None`` (what
    ``Resilience()`` passes when none is given) means ``random.random``. ``sleep`` may return
    True to mean "interrupted" (pass a Stop button's ``threading.Event.wait``): the retry is
    abandoned.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        rand: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        asleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        # None must mean "the real draw": Resilience() passes its unset ``rand`` through, and a
        # None here once crashed every self-timed retry (connection refused, timeouts, 5xx)
        self.rand: Callable[[], float] = rand if rand is not None else random.random
        self.sleep = sleep
        self.asleep = asleep

    def decide(
        self, exc: BaseException, attempt: int, *, first_token_seen: bool = False
    ) -> RetryDecision:
        """Pure decision for the failure of ``attempt`` (1-based)."""
        policy = self.policy
        failure = classify(exc)

        def give_up(why: str) -> RetryDecision:
            return RetryDecision(False, 0.0, attempt, policy.max_attempts, failure, why)

        if first_token_seen:
            return give_up("the answer had started; not retried (it would duplicate text)")
        if failure.kind == "other":
            return give_up("not a retryable error")
        if failure.kind == "status" and not policy.retryable_status(failure.status or 0):
            return give_up(f"HTTP {failure.status} is not retryable")
        if failure.should_retry is False:
            return give_up("the server said not to retry (x-should-retry: false)")
        if attempt >= policy.max_attempts:
            return give_up(f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}")
        if failure.retry_after is not None:
            if failure.retry_after > policy.max_retry_after:
                return give_up(
                    f"the server asked to wait {failure.retry_after:.0f} s, more than "
                    f"max_retry_after={policy.max_retry_after:.0f} s"
                )
            delay = failure.retry_after
            why = "server asked (Retry-After)"
        else:
            delay = policy.backoff(attempt - 1, self.rand)
            why = "exponential backoff with full jitter"
        return RetryDecision(True, delay, attempt, policy.max_attempts, failure, why)

    def call(
        self,
        attempt_fn: Callable[[int], T],
        *,
        on_retry: Callable[[RetryDecision], None] | None = None,
    ) -> T:
        """Call ``attempt_fn(attempt)`` until it returns, retrying what :meth:`decide` allows.

        The last error is re-raised unchanged when retries are exhausted, not retryable, or the
        sleep was interrupted (``sleep`` returned True).
        """
        attempt = 1
        while True:
            try:
                return attempt_fn(attempt)
            except Exception as exc:
                decision = self.decide(exc, attempt)
                if on_retry is not None:
                    on_retry(decision)
                if not decision.retry or self.sleep(decision.delay) is True:
                    raise
            attempt += 1

    async def acall(
        self,
        attempt_fn: Callable[[int], Awaitable[T]],
        *,
        on_retry: Callable[[RetryDecision], None] | None = None,
    ) -> T:
        """Async twin of :meth:`call`; a ``CancelledError`` during the wait ends it at once."""
        attempt = 1
        while True:
            try:
                return await attempt_fn(attempt)
            except Exception as exc:
                decision = self.decide(exc, attempt)
                if on_retry is not None:
                    on_retry(decision)
                if not decision.retry or (await self.asleep(decision.delay)) is True:
                    raise
            attempt += 1

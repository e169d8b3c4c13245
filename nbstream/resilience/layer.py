"""The resilience layer wired into a StreamRun: retries, rate limits, stalls, hooks, budget, Resume.

Each feature lives in its own module (``retry``, ``ratelimit``, ``stall``, ``hooks``, ``budget``,
``resume``, ``errors``); this one only plugs them into ``StreamRun``'s extension
points, so a run is built the same way everywhere (``api.stream``, the magic, tests)::

    res = Resilience(retry=RetryPolicy(max_attempts=4), stall=StallPolicy(10, 5),
                     hooks=[KeywordHook(keywords=["secret"], action="stop")], max_tokens=2000)
    run = res.build(ChatRequest(params, client))   # a StreamRun, not started
    run.run()                                      # or: await run.arun()
    if run.status == "incomplete":
        more = res.resume(run).run()               # continues the answer; more.text is the new part

What goes where:

- **retries** (before the first token only): ``StreamRun(retry=...)`` asks :class:`Retrier` per
  failed attempt; the decision goes to the log (``{"type": "retry", ...}``) and to the status line
  (``run.reason = "HTTP 503, retrying in 1.2 s (attempt 2/4)"``). Request sources call the SDK
  with ``max_retries=0`` (``sources/request.py``), so no attempt is doubled or hidden.
- **rate limits**: request sources are wrapped so each attempt first takes a ticket from the
  endpoint's ``Limiter`` (queued FIFO when the budget is low or after a
  429) and reports the response's ``x-ratelimit-*`` headers back; ``run.resilience.rate_limit``
  holds the last :class:`~nbstream.resilience.ratelimit.RateLimitInfo` for the status line.
- **stalls**: a ``Watch`` per attempt (started once the attempt is admitted);
  on timeout the run is stopped with ``status="incomplete"`` and the reason.
- **hooks and budget**: a ``HookSet`` sees every text delta of choice 0 with
  the accumulated text; flags become ``{"type": "flag", ...}`` log records and ``run.resilience.
  flags``; a ``stop`` flag stops the run (status ``stopped``, reason "stopped by <hook>: ...").
  A :class:`~nbstream.resilience.budget.BudgetGuard` is one more hook; the session budget is checked
  before the first attempt.
- **Resume**: :meth:`Resilience.resume` builds a run of the continuation request
  (``resume.resume_source``, the one implementation, also behind ``StreamView.resume``) whose
  text deltas go through ``OverlapJoiner``, so ``partial + new.text`` has neither a gap nor a
  repeated part. **Retry** is simply :meth:`Resilience.build` on the same
  source again (a new version).

Keep-alive: request sources without a client use ``sources.client.default_client`` (one endpoint
and connection pool per server and key); an SDK client's no-retry copy shares its pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbstream.events import Event, TextDelta, Usage
from nbstream.resilience.budget import BudgetGuard, Price, SessionBudget, session_budget
from nbstream.resilience.errors import NbstreamError, explain
from nbstream.resilience.hooks import ChunkHook, Flag, HookSet
from nbstream.resilience.ratelimit import Limiter, RateLimitInfo, limiter_for
from nbstream.resilience.resume import Style, answer_text, request_of, resume_blocked, resume_source
from nbstream.resilience.retry import Retrier, RetryDecision, RetryPolicy
from nbstream.resilience.stall import StallPolicy, Watch, watchdog
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.sources import AOpened, Opened, Source, describe_error, to_source
from nbstream.sources.base import SourceWrapper


@dataclass
class Resilience:
    """Settings for robust streams; :meth:`build` applies them to one run.

    ``retry``: attempts before the first token (None: no retry). ``stall``: first-chunk and
    inter-chunk timeouts (None: off). ``hooks``: ``on_chunk`` hooks. ``max_tokens`` /
    ``max_cost`` (+ ``prices``): per-stream budget; ``session``: the shared session budget.
    ``rate_limit``: queue request sources per endpoint from their ``x-ratelimit-*`` headers
    (``limiter``: use this :class:`Limiter` instead of the endpoint's shared one).
    ``rand``: the backoff's random draw in [0, 1) (None: ``random.random``); tests may pin it,
    but keep at least one test on the default (see tests/test_failures.py).
    """

    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    stall: StallPolicy | None = field(default_factory=StallPolicy)
    hooks: Sequence[ChunkHook] = ()
    max_tokens: int | None = None
    max_cost: float | None = None
    prices: Mapping[str, Price] | None = None
    session: SessionBudget | None = field(default_factory=session_budget)
    rate_limit: bool = True
    limiter_options: Mapping[str, Any] = field(default_factory=dict)
    limiter: Limiter | None = None
    rand: Callable[[], float] | None = None

    def build(
        self,
        source: Any,
        *,
        log: ChunkLog | None = None,
        hooks: Sequence[Any] = (),
        retry: Any = None,
        **run_options: Any,
    ) -> StreamRun:
        """A :class:`StreamRun` of ``source`` with every resilience feature attached (not run).

        ``hooks``: more run-level hooks ``hook(run, events)``; ``retry``: a run-level retry
        callable that replaces this policy (``StreamRun(retry=...)``).
        """
        src = to_source(source)
        model = (src.params or {}).get("model") if src.params else None
        guard = RunGuard(self, model if isinstance(model, str) else None)
        if self.rate_limit and request_of(src) is not None:
            src = LimitedSource(src, guard)
        own = guard.retry if guard.retrier is not None else None
        run = StreamRun(
            src, log=log, hooks=[guard, *hooks], retry=retry or own, resilience=guard, **run_options
        )
        guard.attach(run)
        return run

    def resume(
        self,
        run: StreamRun,
        *,
        style: Style = "prompt",
        params: Mapping[str, Any] | None = None,
        log: ChunkLog | None = None,
        **run_options: Any,
    ) -> StreamRun:
        """A run that continues ``run``'s partial answer (Chat Completions or Responses requests).

        Its ``text`` is only what comes *after* the partial answer (the overlap removed);
        ``resumed_from`` on its guard holds the partial answer: ``partial + new.text`` is the whole.
        ``params`` changes request parameters for the continuation (e.g. a larger ``max_tokens``).
        """
        blocked = resume_blocked(run)
        if blocked:
            raise RuntimeError(
                f"not continued: {blocked}. Continuing would extend the answer a hook stopped; "
                "Regenerate (Retry) asks again from the start."
            )
        partial = answer_text(run)  # a resumed run's text is only its new part
        source = resume_source(run.source, partial, style=style, params=params)
        new = self.build(source, log=log, **run_options)
        new.resilience.resumed_from = partial
        return new


class RunGuard:
    """Per-run state of the resilience layer; reachable as ``run.resilience``.

    It is the run's hook (``__call__`` per chunk, ``on_attempt`` per attempt) and its retry policy.
    """

    def __init__(self, config: Resilience, model: str | None = None) -> None:
        self.config = config
        self.run: StreamRun | None = None
        self.retrier = Retrier(config.retry, rand=config.rand) if config.retry else None
        self.budget: BudgetGuard | None = None
        session = config.session
        capped = session is not None and (session.max_tokens or session.max_cost)
        if config.max_tokens is not None or config.max_cost is not None or capped:
            self.budget = BudgetGuard(
                max_tokens=config.max_tokens,
                max_cost=config.max_cost,
                session=session,
                model=model,
                prices=config.prices,
            )
        hooks = [*config.hooks, *([self.budget] if self.budget else [])]
        self.hookset = HookSet(hooks, stop=self._stop, record=self._record_flag)
        self._active = bool(config.hooks) or self.budget is not None
        self.watch: Watch | None = None
        self.rate_limit: RateLimitInfo | None = None
        self.rate_limit_at: float | None = None  # wall clock of those headers ("resets at")
        self.decisions: list[RetryDecision] = []
        self.resumed_from: str | None = None
        self.queued_s = 0.0
        self.model = model
        self.error: NbstreamError | None = None

    @property
    def flags(self) -> list[Flag]:
        return self.hookset.flags

    @property
    def resume_blocked(self) -> str | None:
        """Why this answer must not be continued (a hook stopped it: moderation, budget), or None.
        The view should hide Continue then and offer Regenerate only."""
        flag = self.hookset.stopped_by
        return f"stopped by {flag.hook}: {flag.reason}" if flag is not None else None

    def attach(self, run: StreamRun) -> None:
        """Follow ``run`` (made with ``StreamRun(..., resilience=self)``): its status changes."""
        self.run = run
        run.subscribe(self._on_status)

    def notes(self) -> list[str]:
        """Short lines for the widget: flags raised, rate-limit budget, time queued."""
        out = [
            f"{'stopped' if f.action == 'stop' else 'flagged'} by {f.hook}: {f.reason}"
            for f in self.flags
        ]
        # the budget only when it is nearly spent: "9,999/10,000 left" under every answer is noise
        # (every response's headers are in the chunk log)
        if self.rate_limit is not None and self.rate_limit.known and self.rate_limit.near:
            out.append(f"rate limit: {self.rate_limit.summary(self.rate_limit_at)}")
        if self.queued_s >= 0.05:
            out.append(f"queued {self.queued_s:.1f} s for the rate limit")
        if self.budget is not None and self.budget.completion_tokens:
            snap = self.budget.snapshot()
            cost = f", cost {snap['cost']:.4f}" if "cost" in snap else ""
            est = " (estimated)" if snap["estimated"] else ""
            out.append(f"budget: {snap['completion_tokens']:,} tokens{est}{cost}")
        return out

    # -- StreamRun extension points -----------------------------------------------------------
    def __call__(self, run: StreamRun, events: list[Event]) -> None:
        watch = self.watch
        if watch is not None:
            watch.tick()
        if not self._active:
            return
        for event in events:
            if type(event) is TextDelta and event.choice == 0:
                # the text so far as a function: hooks build it only when they need it (a copy
                # of the whole answer per chunk would make long answers quadratic)
                self.hookset.on_chunk(event.text, lambda: run.state.text)
            elif type(event) is Usage and self.budget is not None:
                flag = self.budget.on_usage(event.prompt_tokens, event.completion_tokens)
                if flag is not None:
                    self.hookset.report(flag)

    def on_attempt(self, run: StreamRun, attempt: int) -> None:
        if attempt == 1 and self.budget is not None:
            why = self.budget.preflight()
            if why is not None:
                run.stop(f"not started: {why}")
                return
        self.start_watch()

    def retry(self, run: StreamRun, exc: BaseException, attempt: int) -> float | None:
        self.stop_watch()  # the backoff wait is not a stall; the next attempt starts a new watch
        if self.retrier is None:
            return None
        decision = self.retrier.decide(exc, attempt, first_token_seen=run.state.first_content)
        self.decisions.append(decision)
        record = decision.record()
        kind = record.pop("type")
        record.pop("attempt")
        run.log.note(attempt, self._t(), kind, **record)
        if decision.retry:
            run.set_reason(decision.message)
            return decision.delay
        return None

    # -- helpers --------------------------------------------------------------------------------
    def stop_watch(self) -> None:
        """No stall clock while waiting (backoff, rate-limit queue)."""
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None

    def start_watch(self) -> None:
        """(Re)start the stall watch for the current attempt."""
        self.stop_watch()
        policy = self.config.stall
        self.watch = watchdog().watch(policy, self._on_stall) if policy is not None else None

    def _on_stall(self, reason: str) -> None:
        run = self.run
        if run is not None and not run.done:
            run.log.note(run.attempt, self._t(), "stall", reason=reason)
            run.stop(reason, status="incomplete")

    def _stop(self, reason: str) -> None:
        if self.run is not None:
            self.run.stop(reason)

    def _record_flag(self, flag: Flag) -> None:
        run = self.run
        if run is not None:
            record = flag.record()
            record.pop("type")
            run.log.note(run.attempt, self._t(), "flag", **record)
            if flag.action == "flag":
                run.set_reason(f"flagged by {flag.hook}: {flag.reason}")  # widget shows it now

    def _on_status(self, run: StreamRun, events: list[Event]) -> None:
        if events or not run.done:
            return
        if self.watch is not None:
            self.watch.cancel()
        exc = run.exception
        if run.status == "error" and exc is not None:
            # one clear message with what to do, before the view reads the reason (this
            # listener was subscribed first)
            self.error = explain(exc, base_url=self._base_url(), model=self.model)
            run.reason = self.error.text
        self.hookset.on_end(run.text)

    def _base_url(self) -> str | None:
        request = request_of(self.run.source if self.run is not None else None)
        client = getattr(request, "client", None)
        return str(client.base_url).rstrip("/") if client is not None else None

    def _t(self) -> float:
        run = self.run
        return run.attempt_elapsed() if run is not None else 0.0

    def stop_requested(self) -> bool:
        run = self.run
        return bool(run is not None and (run.done or run.stop_requested))


class LimitedSource(SourceWrapper):
    """A request source that waits for its endpoint's rate-limit budget before each attempt."""

    def __init__(self, inner: Source, guard: RunGuard) -> None:
        super().__init__(inner)
        self.guard = guard

    def _limiter(self) -> Limiter:
        if self.guard.config.limiter is not None:
            return self.guard.config.limiter
        request = request_of(self.inner)
        client = request.client if request is not None else None
        if client is None:
            from nbstream.sources.client import default_client

            client = default_client()
        return limiter_for(str(client.base_url), **self.guard.config.limiter_options)

    def _admitted(self, waited: float) -> None:
        guard = self.guard
        guard.queued_s += waited
        run = guard.run
        if waited > 0.001 and run is not None:
            run.log.note(run.attempt, guard._t(), "rate_limit_wait", waited_s=round(waited, 4))
            run.set_reason(None)
        guard.start_watch()  # the stall clock starts when the request is really sent

    def _queued(self, limiter: Limiter) -> None:
        run = self.guard.run
        if run is not None and limiter.queue_position() > 0:
            run.set_reason("queued: waiting for the rate limit")

    def _report(self, ticket: Any, headers: Mapping[str, str]) -> None:
        """The attempt got its response: its rate-limit headers update the endpoint's budget."""
        info = ticket.observe(headers)
        if info.known:
            self.guard.rate_limit = info
            self.guard.rate_limit_at = time.time()

    def _report_error(self, ticket: Any, exc: BaseException) -> None:
        """The attempt failed: a 429 blocks the endpoint (Retry-After, read by the same reader
        as the retry and the log); any other response's headers still count; no response
        frees the place."""
        info = describe_error(exc)
        if info.error_status == 429:
            ticket.rate_limited(info.retry_after, info.headers)
        elif info.responded:
            self._report(ticket, info.headers)
        else:
            ticket.release()

    def open(self) -> Opened:
        limiter = self._limiter()
        self.guard.stop_watch()  # queueing is not stalling
        self._queued(limiter)
        ticket = limiter.acquire(cancelled=self.guard.stop_requested)
        self._admitted(ticket.waited_s)
        try:
            opened = self.inner.open()
        except Exception as exc:
            self._report_error(ticket, exc)
            raise
        except BaseException:  # KeyboardInterrupt: free the place, or the endpoint would jam
            ticket.release()
            raise
        self._report(ticket, opened.meta.headers)
        return opened

    async def aopen(self) -> AOpened:
        limiter = self._limiter()
        self.guard.stop_watch()
        self._queued(limiter)
        ticket = await limiter.aacquire()
        self._admitted(ticket.waited_s)
        try:
            opened = await self.inner.aopen()
        except Exception as exc:
            self._report_error(ticket, exc)
            raise
        except BaseException:  # CancelledError (Stop, interrupt): free the place
            ticket.release()
            raise
        self._report(ticket, opened.meta.headers)
        return opened

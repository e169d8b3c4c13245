"""StreamRun: drive one source through a sequence of attempts, sync or async.

It owns the status (``pending -> streaming -> done | stopped | error | incomplete``), the
``AnswerState``, the ``ChunkLog`` and the timings, and it
makes Stop work from anywhere: ``stop()`` is thread-safe and closes the HTTP response at once
(sync: the socket is shut down from the calling thread; async: the consuming task is cancelled via
``loop.call_soon_threadsafe``). KeyboardInterrupt / CancelledError end the run as "stopped" with
the partial text kept and no traceback.

Extension points for a resilience layer (retries, stall timeouts, moderation, budgets):

- ``hooks``: callables ``hook(run, events)`` called after each chunk (before listeners), on the
  consuming thread; a hook may call ``run.stop(reason)``. A hook object may also define
  ``on_attempt(run, attempt)`` (called before each attempt opens).
- ``retry``: ``retry(run, exc, attempt) -> delay_s | None``, asked when an attempt fails before
  any content arrived and the source is re-runnable; a number means "try again after that many
  seconds" (attempts are numbered in the log), None means give up.
- ``resilience``: the layer's per-run object (``StreamRun(..., resilience=guard)``, None when the
  run was built without one), a :class:`RunLayer`. Views read its ``notes()`` (lines under the
  answer) and ``resume_blocked`` (why Continue is hidden); the layer's own code reads the rest.
- Public state a layer may read while the run streams: ``stop_requested`` (Stop was asked, the
  run may not have ended yet), ``attempt_elapsed()`` (seconds since the current attempt began, on
  the run's clock: the ``t`` of the layer's log notes), ``set_reason(text)`` (the status line),
  ``log.note(...)`` (a record in the chunk log), ``state``, ``exception``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, get_args

from nbstream.events import Event
from nbstream.redact import redact_text, refresh_env, scrub_exception
from nbstream.run.log import ChunkLog
from nbstream.run.metrics import Metrics, compute
from nbstream.run.state import AnswerState
from nbstream.run.turns import due as turns_due
from nbstream.run.turns import give_back
from nbstream.sources import AOpened, Opened, Source, describe_error, to_source
from nbstream.sources.surrogates import SurrogateMender

Status = Literal["pending", "streaming", "done", "stopped", "error", "incomplete"]
"""Where a run is; the one definition (the wire protocol and the views import it from here)."""
STATUSES: tuple[Status, ...] = get_args(Status)
FINAL: frozenset[str] = frozenset(STATUSES) - {"pending", "streaming"}
"""The statuses a run ends in: ``done``, ``stopped``, ``error``, ``incomplete``."""
Listener = Callable[["StreamRun", list[Event]], Any]
Hook = Callable[["StreamRun", list[Event]], Any]
RetryPolicy = Callable[["StreamRun", BaseException, int], "float | None"]


class RunLayer(Protocol):
    """What a view may ask of ``run.resilience`` (``nbstream.resilience.layer.RunGuard``)."""

    def notes(self) -> list[str]:
        """Short lines for the status area (flags, rate-limit budget, time queued, budget)."""
        ...

    @property
    def resume_blocked(self) -> str | None:
        """Why this answer must not be continued (a hook stopped it), or None."""
        ...


_TRUNCATED = {
    "length": "finish_reason length: the token limit cut the answer",
    "max_output_tokens": "max_output_tokens: the token limit cut the answer",
    "content_filter": "finish_reason content_filter: the answer was filtered",
}


def _speaks_for_itself(exc: BaseException) -> bool:
    """SDK and HTTP errors name what failed ("Request timed out."); anything else (a user's
    generator raising ``RuntimeError("boom")``) needs its class name to be understood."""
    module = type(exc).__module__.split(".")[0]
    return module in ("openai", "httpx", "httpx2", "httpcore", "httpcore2", "nbstream")


class _Stopped(Exception):
    """Internal: Stop arrived while opening or between attempts."""


class StreamRun:
    """One answer being streamed: ``run()`` or ``await arun()``, ``stop()`` from anywhere."""

    def __init__(
        self,
        source: Any,
        log: ChunkLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        hooks: Sequence[Hook] = (),
        retry: RetryPolicy | None = None,
        wall_clock: Callable[[], float] = time.time,
        resilience: RunLayer | None = None,
    ) -> None:
        self.source: Source = to_source(source)  # a Source stays as it is (Resilience.build's)
        self.log = log if log is not None else ChunkLog()
        self.state = AnswerState()
        self.status: Status = "pending"
        self.reason: str | None = None
        self.attempt = 0
        self.hooks: list[Hook] = list(hooks)
        self.retry = retry
        self.resilience: Any = resilience  # a RunLayer (Any: the layer's own fields for tests)
        self._clock = clock
        self._wall_clock = wall_clock
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self._stop_requested = False
        self._wake = threading.Event()
        self._opened: Opened | None = None
        self._owner: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = False
        self._t_start: float | None = None
        self._t_first: float | None = None
        self._t_end: float | None = None
        self._chunks = 0
        self._http_status: int | None = None
        self._request_id: str | None = None
        self.error_message: str | None = None
        self.exception: BaseException | None = None  # the last attempt's error (errors.explain)
        self._read_hooks: tuple[Callable[[], None], Callable[[], None]] | None = None
        self.reads_watched = False  # this attempt announces its waits for the network

    # ---- public surface ---------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The answer so far (choice 0)."""
        return self.state.text

    @property
    def metrics(self) -> Metrics:
        """A fresh snapshot of the timings and counts."""
        start = self._t_start
        end = self._t_end
        if end is None and start is not None:
            end = self._clock()
        first = self._t_first
        state = self.state
        return compute(
            ttft_s=(first - start) if first is not None and start is not None else None,
            duration_s=(end - start) if start is not None and end is not None else None,
            chunks=self._chunks,
            chars=state.chars,
            usage=state.usage,
            request_id=self._request_id,
            model=state.model,
            finish_reasons=state.finish_reasons,
            attempts=self.attempt,
            http_status=self._http_status,
        )

    @property
    def done(self) -> bool:
        """True once the run reached a final status."""
        return self.status in FINAL

    @property
    def stop_requested(self) -> bool:
        """True once Stop was asked (``stop()``, an interrupt), even before the run has ended."""
        return self._stop_requested

    def attempt_elapsed(self) -> float:
        """Seconds since the current attempt began, on the run's clock (0.0 before the first)."""
        start = self._t_attempt
        return self._clock() - start if start else 0.0

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(run, events)`` after each chunk and ``fn(run, [])`` on status changes.

        Returns a function that unsubscribes. A listener that raises is removed (and logged) so a
        broken view cannot kill the stream.
        """
        with self._lock:
            self._listeners = (*self._listeners, fn)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(f for f in self._listeners if f is not fn)

        return unsubscribe

    def watch_reads(self, before: Callable[[], None], after: Callable[[], None]) -> None:
        """Ask every sync attempt to call ``before()`` (consuming thread) when it is about to
        wait for the network and ``after()`` once the read returned; ``reads_watched`` says
        whether the current attempt can (SDK streams with a socket). A view uses it to flush the
        tail of a paused stream without waking a thread while data keeps coming."""
        self._read_hooks = (before, after)

    def stop(
        self,
        reason: str = "stopped by user",
        *,
        status: Literal["stopped", "incomplete"] = "stopped",
    ) -> None:
        """Stop now, from any thread or task: closes the HTTP response, keeps the partial text.

        ``status="incomplete"`` is for stops that are failures, not choices (a stall timeout):
        the view then offers Resume / Retry.
        """
        with self._lock:
            if self.status in FINAL or self._stop_requested:
                return
            self._stop_requested = True
            self._stop_reason = reason
            self._stop_status = status
            opened, loop, task, owner = self._opened, self._loop, self._task, self._owner
        self._wake.set()
        if loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop and asyncio.current_task() is task:
                return  # called by a hook/listener inside the run: the loop checks the flag
            with contextlib.suppress(RuntimeError):  # a closed loop: nothing runs any more
                loop.call_soon_threadsafe(self._cancel_task)
            return
        if owner == threading.get_ident():
            return  # same thread (hook, listener): the loop breaks after this chunk
        if opened is not None:
            opened.close()

    def set_reason(self, reason: str | None) -> None:
        """Say what is happening while streaming ("retrying in 3 s (attempt 2/4)", "queued for
        the rate limit") and notify listeners; ignored once the run has ended."""
        if self.status not in FINAL:
            self._set_status(self.status, reason)

    def run(self) -> StreamRun:
        """Stream to the end in this thread (blocking). Returns self."""
        self._check_fresh()
        if not self.source.supports_sync:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.arun())
            raise RuntimeError(
                f"{self.source!r} is async and an event loop is running in this thread: "
                "use `await run.arun()`"
            )
        self._run_sync_guarded()
        return self

    async def arun(self) -> StreamRun:
        """Stream to the end in the running event loop. Returns self."""
        self._check_fresh()
        if not self.source.supports_async:
            return await self._arun_in_thread()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        with self._lock:
            self._loop, self._task = loop, task
        try:
            await self._run_async()
        except asyncio.CancelledError:
            ours = self._cancelling
            self._cancelling = False
            if ours and task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            self._on_interrupt(self._stop_reason or "cancelled")
            if not ours:
                raise  # someone else cancelled this task (asyncio.timeout, TaskGroup): honour it
        except KeyboardInterrupt:
            self._on_interrupt("stopped (kernel interrupt)")
        except BaseException as exc:  # noqa: BLE001 - the last resort: see _abort
            self._abort(exc)
        finally:
            with self._lock:
                self._loop = self._task = None
        return self

    # ---- sync path ----------------------------------------------------------------------------

    def _run_sync(self) -> None:
        self._begin()
        while True:
            attempt, t0 = self._next_attempt()
            opened: Opened | None = None
            exc: BaseException | None = None
            try:
                if self._stop_requested:
                    raise _Stopped
                opened = self.source.open()
                hooks, watch = self._read_hooks, getattr(opened, "watch_reads", None)
                self.reads_watched = bool(hooks and watch is not None and watch(*hooks))
                with self._lock:
                    self._opened = opened
                if self._stop_requested:  # set by stop() on another thread while open() ran
                    opened.close()  # type: ignore[unreachable]  # (mypy keeps the check above)
                    raise _Stopped
                self._record_meta(opened, attempt, t0)
                self._consume_sync(opened, attempt, t0)
            except _Stopped:
                pass
            except KeyboardInterrupt:
                raise  # the notebook's interrupt (or a source raising it): Stop, in run()
            except BaseException as e:  # noqa: BLE001 - SystemExit, GeneratorExit from a source
                exc = e  # are its failure like any other: the run ends "error", not "streaming"
            finally:
                with self._lock:
                    self._opened = None
                if opened is not None:
                    self._close_quietly(opened.close, attempt, t0)
                    if opened.kind != self.source.kind:
                        self.log.set_source(attempt, opened.kind)
            if (
                exc is not None
                and self._should_retry(exc, attempt, t0, opened)
                and not self._wake.wait(self._retry_delay)
            ):
                continue
            self._release_held(opened)
            self._conclude(exc, attempt, t0, opened)
            return

    def _consume_sync(self, opened: Opened, attempt: int, t0: float) -> None:
        clock = self._clock
        log_chunk = self.log.chunk
        apply = self.state.apply
        mend = self._mender.mend
        hooks = self.hooks
        for index, (raw, events) in enumerate(opened.items):
            t = clock()
            log_chunk(attempt, index, t - t0, raw, events)
            self._chunks += 1
            if events:
                events = mend(events)  # valid text only past this point (an emoji's halves)
                apply(events)
                if self._t_first is None and self.state.first_content:
                    self._t_first = t
            for hook in hooks:
                hook(self, events)
            listeners = self._listeners
            if listeners:
                self._notify(listeners, events)
            if self._stop_requested:
                break

    # ---- async path ---------------------------------------------------------------------------

    async def _run_async(self) -> None:
        self._begin()
        while True:
            attempt, t0 = self._next_attempt()
            opened: AOpened | None = None
            exc: BaseException | None = None
            try:
                if self._stop_requested:
                    raise _Stopped
                opened = await self.source.aopen()
                if self._stop_requested:
                    raise _Stopped
                self._record_meta(opened, attempt, t0)
                await self._consume_async(opened, attempt, t0)
            except _Stopped:
                pass
            except asyncio.CancelledError:
                self._stop_requested = True
                self._stop_reason = self._stop_reason or "cancelled"
                raise  # closed in finally; arun() concludes "stopped"
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001 - see _run_sync
                exc = e
            finally:
                if opened is not None:
                    try:
                        await opened.aclose()
                    except Exception as close_exc:  # noqa: BLE001 - see _close_quietly
                        self._close_failed(close_exc, attempt, t0)
                    if opened.kind != self.source.kind:
                        self.log.set_source(attempt, opened.kind)
            if exc is not None and self._should_retry(exc, attempt, t0, opened):
                await asyncio.sleep(self._retry_delay)
                if not self._stop_requested:
                    continue
            self._release_held(opened)
            self._conclude(exc, attempt, t0, opened)
            return

    async def _consume_async(self, opened: AOpened, attempt: int, t0: float) -> None:
        clock = self._clock
        log_chunk = self.log.chunk
        apply = self.state.apply
        mend = self._mender.mend
        hooks = self.hooks
        index = 0
        async for raw, events in opened.items:
            t = clock()
            log_chunk(attempt, index, t - t0, raw, events)
            index += 1  # noqa: SIM113 - no async enumerate
            self._chunks += 1
            if events:
                events = mend(events)  # valid text only past this point (an emoji's halves)
                apply(events)
                if self._t_first is None and self.state.first_content:
                    self._t_first = t
            for hook in hooks:
                hook(self, events)
            listeners = self._listeners
            if listeners:
                self._notify(listeners, events)
            if self._stop_requested:
                break
            if turns_due():  # other streams and the kernel's messages get the loop (turns.py)
                await give_back()

    async def _arun_in_thread(self) -> StreamRun:
        """A sync-only source under ``await``: consume in a worker thread, Stop still works."""
        done = asyncio.get_running_loop().run_in_executor(None, self._run_sync_guarded)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            self.stop(self._stop_reason or "cancelled")
            await asyncio.shield(done)
            raise
        return self

    def _run_sync_guarded(self) -> None:
        """``_run_sync`` that always ends in a final status (run() and the worker thread)."""
        self._owner = threading.get_ident()
        try:
            self._run_sync()
        except KeyboardInterrupt:
            self._on_interrupt("stopped (kernel interrupt)")
        except BaseException as exc:  # noqa: BLE001 - the last resort: see _abort
            self._abort(exc)

    def _cancel_task(self) -> None:
        task = self._task
        if task is not None and not task.done() and self.status == "streaming":
            self._cancelling = True
            task.cancel()

    # ---- bookkeeping --------------------------------------------------------------------------

    def _check_fresh(self) -> None:
        if self.status != "pending" or self._t_start is not None:
            raise RuntimeError(
                "a StreamRun runs once; for another answer make a new StreamRun(source) "
                "(a re-runnable source can be run again)"
            )

    def _begin(self) -> None:
        refresh_env()  # a key set since the last run (%env, os.environ[...]) is known too
        self._t_start = self._clock()
        self._set_status("streaming", None)

    def _next_attempt(self) -> tuple[int, float]:
        self.attempt += 1
        attempt = self.attempt
        for hook in self.hooks:
            on_attempt = getattr(hook, "on_attempt", None)
            if on_attempt is not None:
                on_attempt(self, attempt)
        source = self.source
        self._mender = SurrogateMender()  # a retried attempt starts its text again
        self.log.begin(attempt, source.kind, source.params, wall_time=self._wall_clock())
        self._t_attempt = self._clock()
        return attempt, self._t_attempt

    def _record_meta(self, opened: Opened | AOpened, attempt: int, t0: float) -> None:
        meta = opened.meta
        self._http_status = meta.status
        self._request_id = redact_text(meta.request_id) if meta.request_id else meta.request_id
        if meta.status is not None or meta.request_id is not None or meta.headers:
            t = self._clock() - t0
            self.log.response(attempt, t, meta.status, meta.request_id, meta.headers)

    def _notify(self, listeners: tuple[Listener, ...], events: list[Event]) -> None:
        for fn in listeners:
            try:
                fn(self, events)
            except Exception as exc:
                self.log.error(
                    self.attempt,
                    self._clock() - (self._t_start or 0.0),
                    f"listener {getattr(fn, '__qualname__', fn)!r} raised {exc!r}; unsubscribed",
                    error_type=type(exc).__name__,
                )
                with self._lock:
                    self._listeners = tuple(f for f in self._listeners if f is not fn)

    def _set_status(self, status: Status, reason: str | None) -> None:
        self.status = status
        self.reason = redact_text(reason) if reason else reason  # shown, saved in the widget
        listeners = self._listeners
        if listeners:
            self._notify(listeners, [])

    def _should_retry(
        self, exc: BaseException, attempt: int, t0: float, opened: Opened | AOpened | None
    ) -> bool:
        if self.retry is None or self._stop_requested or not self.source.rerunnable:
            return False
        if self.state.first_content:
            return False  # never retry once text reached the user
        try:
            delay = self.retry(self, exc, attempt)
        except Exception as policy_exc:  # noqa: BLE001 - a broken policy must not hide exc
            self.log.error(
                attempt,
                self._clock() - t0,
                f"the retry policy failed ({type(policy_exc).__name__}: {policy_exc}); not retried",
                error_type=type(policy_exc).__name__,
            )
            return False
        if delay is None:
            return False
        info = describe_error(exc)
        self.log.error(
            attempt,
            self._clock() - t0,
            info.message,
            error_type=info.error_type,
            status=info.status,
            data=(opened.pending_raw() if opened is not None else None) or info.data,
            headers=info.headers,
        )
        self.log.end(attempt, self._clock() - t0, "retry", f"retrying in {delay:.3g}s")
        self._retry_delay = max(0.0, float(delay))
        self.state = AnswerState()
        return True

    _retry_delay = 0.0
    _t_attempt = 0.0
    _mender = SurrogateMender()  # replaced per attempt (_next_attempt)
    _stop_status: Status = "stopped"

    def _on_interrupt(self, reason: str) -> None:
        if self.status in FINAL:
            return
        self._stop_requested = True
        self._stop_reason = self._stop_reason or reason
        opened = self._opened
        if opened is not None:
            opened.close()
        self._conclude(None, self.attempt, self._t_attempt, None, stopped=True)

    def _close_quietly(self, close: Callable[[], Any], attempt: int, t0: float) -> None:
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - see _close_failed
            self._close_failed(exc, attempt, t0)

    def _close_failed(self, exc: BaseException, attempt: int, t0: float) -> None:
        """Closing an attempt failed (a source whose close is broken, a sync stream closed as
        an async one): the attempt is over anyway; logged, and never the run's end."""
        self.log.error(
            attempt,
            self._clock() - t0,
            f"closing the stream failed: {type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
        )

    def _abort(self, exc: BaseException) -> None:
        """The last resort: anything that escaped the attempt loop (a retry policy, a hook or
        a source raising SystemExit...) ends the run "error" with a reason, never "streaming"
        with a dead Stop button. ``self.exception`` keeps it for ``errors.explain``."""
        if self.status in FINAL:
            return
        opened = self._opened
        if opened is not None:
            with contextlib.suppress(Exception):
                opened.close()
        try:
            self._conclude(exc, self.attempt, self._t_attempt, None)
        except Exception:  # noqa: BLE001 - even the conclusion failed: a bare final status
            self._t_end = self._clock()
            self.exception = exc
            self.error_message = f"the stream failed: {type(exc).__name__}"
            self._set_status("error", self.error_message)

    def end_unfinished(self, reason: str) -> None:
        """Whoever ran this run saw it return without a final status (should not happen):
        end it "error" with ``reason`` so no view stays "streaming"."""
        if self.status not in FINAL:
            self._abort(RuntimeError(reason))

    def _release_held(self, opened: Opened | AOpened | None) -> None:
        """The last attempt ended (finished, failed or cut): text its adapter still held back (a
        possible partial ``<think>`` tag) joins the answer before the run concludes, on the
        consuming thread. Not after Stop: the stopping thread concludes at once."""
        if opened is None or self._stop_requested or self.status in FINAL:
            return
        events = self._mender.mend(opened.end_events()) + self._mender.flush()
        if events:
            self.state.apply(events)
            listeners = self._listeners
            if listeners:
                self._notify(listeners, events)

    def _conclude(
        self,
        exc: BaseException | None,
        attempt: int,
        t0: float,
        opened: Opened | AOpened | None,
        stopped: bool = False,
    ) -> None:
        if self.status in FINAL:
            return
        now = self._clock()
        self._t_end = now
        state = self.state
        status: Status
        if stopped or self._stop_requested:
            status, reason = self._stop_status, self._stop_reason or "stopped"
        elif exc is not None:
            info = describe_error(exc)
            self.log.error(
                attempt,
                now - t0,
                info.message,
                error_type=info.error_type,
                status=info.status,
                data=(opened.pending_raw() if opened is not None else None) or info.data,
                headers=info.headers,
            )
            if info.status is not None and self._http_status is None:
                self._http_status = info.status
            # after the first token there is no silent retry (it would duplicate text) and the
            # partial answer is kept: a transport failure (disconnect, malformed chunk) leaves it
            # cut short, "incomplete"; an error the server reported in the stream is an "error"
            # with the server's message. Before the first token every failure is an "error".
            status = "incomplete" if state.first_content and not info.server_reported else "error"
            self.exception = scrub_exception(exc)  # public: it must not carry a credential
            reason = info.message
            if not isinstance(exc, Exception):  # SystemExit(3): "3" would say nothing
                detail = f" ({exc})" if str(exc) else ""
                reason = f"the source raised {type(exc).__name__}{detail}"
            elif not info.server_reported and not _speaks_for_itself(exc):
                reason = f"{type(exc).__name__}: {reason}"  # a generator's "boom": say what
            if status == "incomplete":
                reason = f"the answer was cut off: {reason}"
        elif state.error is not None:
            failed = state.error  # reported by the server (response.failed, an error event)
            status = "incomplete" if failed.incomplete else "error"
            reason = failed.message
        else:
            status, reason = "done", None
            expects_finish = opened.expects_finish if opened is not None else False
            finishes = [c.finish_reason for c in state.choices]
            if expects_finish and (not finishes or any(f is None for f in finishes)):
                status, reason = "incomplete", "the stream ended before a finish reason"
            else:
                for f in finishes:
                    if f in _TRUNCATED:
                        status, reason = "incomplete", _TRUNCATED[f]
                        break
        reason = redact_text(reason) if reason else reason
        if status == "error":
            self.error_message = reason
        self.log.end(attempt, now - t0, status, reason)
        self._set_status(status, reason)

    def __repr__(self) -> str:
        return (
            f"StreamRun(status={self.status!r}, chars={self.state.chars}, "
            f"chunks={self._chunks}, attempts={self.attempt})"
        )

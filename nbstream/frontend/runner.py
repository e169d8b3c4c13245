"""Where a view's answers run, and how a cell waits for them.

Each version's ``StreamRun`` runs one of four ways (see docs/architecture.md, "Event loops and
Stop"): in the calling cell, blocking (the notebook's interrupt ■ is the Stop); as a task on the
running event loop (background, async sources); on a thread of its own (background, sync
sources); or on a private event loop in a helper thread (an async-only source from a waiting
cell). Waiting - ``view.wait()``, ``await view`` - turns the interrupt into a Stop that keeps the
partial text. :func:`wait_in_cell` is the one way a waiting cell (``stream()``, ``%%stream``,
``compare()``) runs its answers and writes their outputs.

The view's ``mode`` (how a Stop click can reach the kernel: ``idle``, ``background``, ``await``,
``blocking``) follows where its run runs, so it is set here, on the :class:`Host` (the view).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nbstream.frontend import hosts as frontends

if TYPE_CHECKING:
    from nbstream.frontend.output import CellOutputs
    from nbstream.run.stream_run import StreamRun
    from nbstream.sources.base import Source

T = TypeVar("T")


class Host(Protocol):
    """What the runner needs of the view: its ``mode`` trait."""

    mode: str


class Job:
    """One version's run: where it runs, and its end (``done``, set once its final state is
    out: the final frame and snapshot)."""

    def __init__(self, index: int, run: StreamRun) -> None:
        self.index = index
        self.run = run
        self.done: concurrent.futures.Future[str] = concurrent.futures.Future()
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop its task runs on
        self.thread: threading.Thread | None = None


class Runner:
    """Runs one view's versions and waits for them. ``finish(job)`` is called when a run has
    returned (on the thread or task that ran it): the view publishes its end there and sets
    ``job.done``. It may come twice for one run (a private loop's thread, then the waiting
    cell): it must be idempotent."""

    def __init__(self, host: Host, finish: Callable[[Job], None]) -> None:
        self._host = host
        self._finish = finish
        self.jobs: list[Job] = []

    @property
    def current(self) -> Job | None:
        jobs = self.jobs
        return jobs[-1] if jobs else None

    def busy(self) -> bool:
        """The newest version has not ended yet."""
        job = self.current
        return job is not None and not job.done.done()

    @staticmethod
    def source_for(source: Source, *, background: bool) -> Source:
        """The source to run: a synchronous cell blocks the loop an async client belongs to, so
        there it takes the same request with a synchronous client (ChatRequest /
        ResponsesRequest), when the source has one."""
        if not background and not source.supports_sync and _running_loop() is not None:
            twin = getattr(source, "sync_twin", None)
            return (twin() if twin is not None else None) or source
        return source

    def add(self, run: StreamRun) -> Job:
        job = Job(len(self.jobs), run)
        self.jobs.append(job)
        return job

    def start(self, job: Job, *, background: bool) -> None:
        if background:
            self._run_background(job)
        else:
            self._run_blocking(job)

    def _run_blocking(self, job: Job) -> None:
        """Waiting mode: the cell ends when the stream ends. Interrupt (■) acts as Stop; in
        marimo the Stop button too (its clicks reach the widget while the cell runs)."""
        host = self._host
        host.mode = "await" if frontends.frontend() == "marimo" else "blocking"
        run = job.run
        try:
            if run.source.supports_sync or _running_loop() is None:
                run.run()
            else:
                # an async-only source from a synchronous cell (the kernel's loop is busy with
                # this cell): drive it on a private loop in a helper thread, wait here.
                self._run_in_thread(job, asyncio_run=True)
                self.wait(job)
        except KeyboardInterrupt:
            self.interrupted(job)
        finally:
            self._finish(job)
            host.mode = "idle"

    def _run_background(self, job: Job) -> None:
        """Background mode: return at once; the stream runs as a task on the running loop
        (async sources) or in a thread (sync sources). Stop clicks arrive within milliseconds."""
        self._host.mode = "background"
        loop = _running_loop()
        if loop is not None and job.run.source.supports_async:
            job.loop = loop
            job.task = loop.create_task(self._arun(job))
        else:
            self._run_in_thread(job, asyncio_run=not job.run.source.supports_sync)

    async def _arun(self, job: Job) -> None:
        try:
            await job.run.arun()
        finally:
            self._finish(job)

    def _run_in_thread(self, job: Job, *, asyncio_run: bool) -> None:
        def target() -> None:
            try:
                if asyncio_run:
                    asyncio.run(job.run.arun())
                else:
                    job.run.run()
            finally:
                self._finish(job)

        job.thread = threading.Thread(target=target, name=f"nbstream-v{job.index}", daemon=True)
        job.thread.start()

    def interrupted(self, job: Job) -> None:
        """The notebook's interrupt (■) while waiting: a Stop that keeps the text."""
        job.run.stop("stopped (kernel interrupt)")
        if job.thread is not None and job.thread is not threading.current_thread():
            job.thread.join(timeout=5)

    # ---- waiting -----------------------------------------------------------------------------

    def wait(self, job: Job, timeout: float | None = None) -> None:
        """Block until ``job`` has ended. Interrupt (■) = Stop."""
        if job.loop is not None and not job.done.done() and _running_loop() is job.loop:
            raise RuntimeError(
                "this stream runs on this thread's event loop, so blocking here would freeze it: "
                "use `await view` (or `await view.wait_async()`) instead of view.wait()."
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                step = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
                try:
                    job.done.result(timeout=step)
                    break
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"the stream did not end within {timeout} s (status {job.run.status})"
                        ) from None
        except KeyboardInterrupt:
            self.interrupted(job)

    async def wait_async(self, job: Job) -> None:
        """Wait for ``job``'s end without blocking the event loop (Stop clicks still arrive):
        the view is in ``await`` mode meanwhile."""
        host = self._host
        previous = host.mode
        if not job.done.done():
            host.mode = "await"
        try:
            await asyncio.shield(asyncio.wrap_future(job.done))
        except (asyncio.CancelledError, KeyboardInterrupt):
            # the notebook's interrupt (■) while awaiting: acts as Stop, keeps the text
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            self.interrupted(job)
            while not job.done.done():
                await asyncio.sleep(0.01)
        finally:
            if host.mode == "await":
                host.mode = previous if not job.done.done() else "idle"

    def waited_on(self) -> None:
        """A cell waits for this view's run on another thread: a Stop click reaches the busy
        kernel only as an interrupt (``blocking``)."""
        self._host.mode = "blocking"

    def released(self) -> None:
        """The waiting cell is done with it: ``idle`` again, unless it moved on meanwhile."""
        if self._host.mode == "blocking":
            self._host.mode = "idle"


class _Waited(Protocol):
    """What :func:`wait_in_cell` needs of a view (``StreamView``)."""

    _runner: Runner

    def wait(self, timeout: float | None = None) -> str: ...
    def stop(self, reason: str = ...) -> None: ...


def wait_in_cell(
    views: Sequence[_Waited],
    outputs: CellOutputs | None,
    *,
    run: Callable[[], Any] | None = None,
    then: Callable[[], Any] | None = None,
) -> None:
    """The one way a waiting cell runs answers: the live output (``outputs``, None when not
    displayed), the answers to their end in this cell (the interrupt ■ is Stop: partial text
    kept, no traceback, Run All goes on), ``then()`` (``--out``, ``--log``), then the answer
    output, in this cell, where nbval and headless runs record it.

    ``run``: run the answers here (``stream()``: the view's blocking run, which sets its own
    mode). Without it they run already on their own threads (started with
    :func:`start_detached`) and the cell waits for all of them in ``blocking`` mode.
    """
    if run is None:
        for view in views:
            view._runner.waited_on()
    if outputs is not None:
        outputs.show(waiting=True)
    if run is not None:
        run()
    else:
        wait_all(views)
        for view in views:
            view._runner.released()
    with late_stops_dropped():
        if then is not None:
            then()
        if outputs is not None:
            outputs.finished_in_cell()


@contextlib.contextmanager
def late_stops_dropped() -> Iterator[None]:
    """Drop the kernel interrupt while a waiting cell finishes after its answers ended.

    In a waiting cell Stop is the kernel's interrupt. A click as the answer ends (the page has not
    heard of the end yet) interrupts what the cell does next: ``then()`` and the answer output (the
    static copy: its Markdown libraries load here, 25-100 ms under load). A KeyboardInterrupt
    there would print a traceback, lose the answer output, and make Run All drop the next cells
    (a CI run saw the next cell never run). The answers have ended, so such a Stop has nothing to
    stop: it is dropped. Only on the main thread (where Python runs signal handlers), and only for
    this short tail; the previous handler is back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_all(views: Sequence[_Waited], timeout: float | None = None) -> None:
    """Block until every view has ended; the interrupt button (■) stops them all."""
    try:
        for view in views:
            view.wait(timeout)
    except KeyboardInterrupt:
        for view in views:
            view.stop("stopped (kernel interrupt)")
        for view in views:
            view.wait(5)


def start_detached(start: Callable[[], T]) -> T:
    """Call ``start`` on a helper thread that has no running event loop, and return its result.

    Why: ``nbstream.stream(..., background=True)`` called from a notebook cell schedules the
    stream as a task on the kernel's event loop, which a cell that waits would block. Called from
    a thread without a loop, the stream runs on its own thread instead, so the cell can display
    the widget first and then wait for the end, with the interrupt button acting as Stop.
    """
    result: list[T] = []
    error: list[BaseException] = []
    context = contextvars.copy_context()  # the cell's context: outputs and comms stay with it

    def target() -> None:
        try:
            result.append(context.run(start))
        except BaseException as exc:  # re-raised on the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="nbstream-start", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:  # the interrupt button while starting: start, then stop at once
        thread.join()
        if result and hasattr(result[0], "stop"):
            result[0].stop("stopped (kernel interrupt)")
    if error:
        raise error[0]
    return result[0]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

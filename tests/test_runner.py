"""The runner (nbstream.frontend.runner): where a version's run runs, the mode it gives the view,
waiting for it (interrupt = Stop), and the one way a waiting cell runs its answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import nbstream
from nbstream.frontend.runner import Job, Runner, start_detached, wait_in_cell
from nbstream.run.stream_run import StreamRun


class Host:
    """A view's mode, with every value it took."""

    def __init__(self) -> None:
        self.modes: list[str] = []

    @property
    def mode(self) -> str:
        return self.modes[-1] if self.modes else "idle"

    @mode.setter
    def mode(self, value: str) -> None:
        self.modes.append(value)


def _runner() -> tuple[Runner, Host, list[str]]:
    host = Host()
    finished: list[str] = []

    def finish(job: Job) -> None:  # what the view does: publish the end, then wake the waiters
        finished.append(threading.current_thread().name)
        if not job.done.done():
            job.done.set_result(job.run.status)

    return Runner(host, finish), host, finished


def _slow(n: int, delay: float = 0.01) -> Iterator[str]:
    for i in range(n):
        time.sleep(delay)
        yield f"t{i} "


async def _aslow(n: int) -> AsyncIterator[str]:
    for i in range(n):
        await asyncio.sleep(0.01)
        yield f"t{i} "


def test_blocking_runs_here_in_blocking_mode_then_idle() -> None:
    runner, host, finished = _runner()
    job = runner.add(StreamRun(["a", "b"]))
    runner.start(job, background=False)
    assert job.run.text == "ab" and job.done.result(0) == "done"
    assert host.modes == ["blocking", "idle"]
    assert finished == [threading.current_thread().name]
    assert not runner.busy()


def test_background_without_a_loop_runs_on_a_thread_and_wait_blocks() -> None:
    runner, host, finished = _runner()
    job = runner.add(StreamRun(lambda: _slow(20)))
    runner.start(job, background=True)
    assert host.modes == ["background"] and job.thread is not None and runner.busy()
    runner.wait(job)
    assert job.run.status == "done" and finished == ["nbstream-v0"]


def test_wait_times_out_with_the_status() -> None:
    runner, _host, _ = _runner()
    job = runner.add(StreamRun(lambda: _slow(200, 0.02)))
    runner.start(job, background=True)
    with pytest.raises(TimeoutError, match="status"):
        runner.wait(job, timeout=0.05)
    job.run.stop()
    runner.wait(job, timeout=10)
    assert job.run.status == "stopped"


def test_an_async_source_in_the_background_is_a_task_on_the_loop() -> None:
    runner, host, _ = _runner()

    async def main() -> None:
        job = runner.add(StreamRun(lambda: _aslow(5)))
        runner.start(job, background=True)
        assert job.task is not None and job.loop is asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="await view"):
            runner.wait(job)  # blocking would freeze the loop the stream runs on
        await runner.wait_async(job)
        assert job.run.status == "done"

    asyncio.run(main())
    assert host.modes == ["background", "await", "idle"]


def test_an_async_only_source_from_a_waiting_cell_runs_on_a_private_loop() -> None:
    runner, host, finished = _runner()

    async def cell() -> StreamRun:  # a synchronous cell, while the kernel's loop runs
        job = runner.add(StreamRun(_aslow(3)))  # an async iterable: no sync way to read it
        runner.start(job, background=False)
        return job.run

    run = asyncio.run(cell())
    assert run.status == "done"
    assert finished == ["nbstream-v0", "MainThread"]  # its thread, then the waiting cell
    assert host.modes == ["blocking", "idle"]


def test_the_interrupt_while_waiting_is_a_stop() -> None:
    runner, _host, _ = _runner()
    job = runner.add(StreamRun(lambda: _slow(500)))
    runner.start(job, background=True)
    main = threading.main_thread()
    assert threading.current_thread() is main

    def interrupt() -> None:
        time.sleep(0.1)
        import _thread

        _thread.interrupt_main()

    threading.Thread(target=interrupt).start()
    runner.wait(job)  # the KeyboardInterrupt lands here: a Stop, no traceback
    assert job.run.status == "stopped" and job.run.reason == "stopped (kernel interrupt)"


class Outputs:
    def __init__(self, views: list[Any], log: list[str]) -> None:
        self.views, self.log = views, log

    def show(self, *, waiting: bool) -> None:
        self.log.append(f"show waiting={waiting} modes={[v.mode for v in self.views]}")

    def finished_in_cell(self) -> None:
        self.log.append(f"answer modes={[v.mode for v in self.views]}")


def test_a_waiting_cell_on_detached_views() -> None:
    """%%stream and compare(): started on their own threads, waited for in blocking mode."""
    views = [
        start_detached(lambda: nbstream.stream(_slow(10), background=True, display=False))
        for _ in range(2)
    ]
    log: list[str] = []
    wait_in_cell(views, Outputs(views, log), then=lambda: log.append("then"))
    assert [v.status for v in views] == ["done", "done"]
    assert log == [
        "show waiting=True modes=['blocking', 'blocking']",
        "then",
        "answer modes=['idle', 'idle']",
    ]


def test_a_waiting_cell_running_its_view_here() -> None:
    """stream(): the view runs in the cell (its own blocking run sets its mode)."""
    view = nbstream.StreamView(["a", "b"], mode="blocking")
    log: list[str] = []
    wait_in_cell([view], Outputs([view], log), run=view.start)
    assert view.text == "ab" and view.mode == "idle"
    assert log == ["show waiting=True modes=['blocking']", "answer modes=['idle']"]


def test_a_late_stop_while_the_cell_writes_its_answer_is_dropped() -> None:
    """The interrupt of a Stop clicked as the answer ended reaches the kernel while the cell
    writes the answer output: no KeyboardInterrupt there (a traceback, a lost answer output, Run
    All dropping the next cells); the interrupt works again after the cell."""
    import signal

    view = nbstream.StreamView(["a", "b"], mode="blocking")
    log: list[str] = []

    class LateStop(Outputs):
        def finished_in_cell(self) -> None:
            signal.raise_signal(signal.SIGINT)  # what the kernel's interrupt is, mid-write
            super().finished_in_cell()

    wait_in_cell([view], LateStop([view], log), run=view.start)
    assert view.status == "done" and log[-1] == "answer modes=['idle']"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_start_detached_runs_without_a_loop_and_reraises() -> None:
    async def cell() -> tuple[bool, str]:
        def start() -> tuple[bool, str]:
            try:
                asyncio.get_running_loop()
                return True, threading.current_thread().name
            except RuntimeError:
                return False, threading.current_thread().name

        return start_detached(start)

    assert asyncio.run(cell()) == (False, "nbstream-start")
    with pytest.raises(ValueError, match="bad"):
        start_detached(lambda: (_ for _ in ()).throw(ValueError("bad")))

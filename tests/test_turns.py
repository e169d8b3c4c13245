"""Streams consumed on one event loop take turns: a backlog of chunks does not hold the loop
(the kernel reads a new cell's request on that loop) - nbstream/run/turns.py."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from nbstream.run import turns
from nbstream.run.stream_run import StreamRun


async def backlog(n: int):
    """An async stream whose chunks are all there already: it never waits, never yields."""
    for i in range(n):
        yield f"w{i} "


@pytest.mark.parametrize("slice_spent_every", [1, 7])
def test_a_stream_with_a_backlog_gives_the_loop_back_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, slice_spent_every: int
) -> None:
    # a clock that passes one slice every `slice_spent_every` readings: no real time involved
    ticks = itertools.count()
    monkeypatch.setattr(
        turns, "_clock", lambda: next(ticks) // slice_spent_every * turns.SLICE_S * 1.01
    )
    monkeypatch.setattr(turns, "_slice_start", 0.0)
    seen_by_other_task: list[int] = []

    async def main() -> StreamRun:
        run = StreamRun(backlog(300))
        task = asyncio.ensure_future(run.arun())
        while not task.done():  # another task on the same loop (the kernel's shell handler)
            seen_by_other_task.append(len(run.text))
            await asyncio.sleep(0)
        return await task

    run = asyncio.run(main())
    assert run.status == "done"
    assert run.text == "".join(f"w{i} " for i in range(300))
    # the other task ran while the backlog was consumed, and saw it grow
    assert len(seen_by_other_task) > 10
    assert 0 < seen_by_other_task[len(seen_by_other_task) // 2] < len(run.text)


def test_a_stream_within_its_slice_does_not_yield(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "_clock", lambda: 0.0)  # time stands still: the slice never ends
    monkeypatch.setattr(turns, "_slice_start", 0.0)
    others = 0

    async def main() -> StreamRun:
        nonlocal others
        run = StreamRun(backlog(300))
        task = asyncio.ensure_future(run.arun())
        while not task.done():
            others += 1
            await asyncio.sleep(0)
        return await task

    run = asyncio.run(main())
    assert run.status == "done" and run.text.startswith("w0 w1 ")
    assert others <= 5  # opening and closing the source, not once per chunk

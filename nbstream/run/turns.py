"""Turn-taking for streams consumed as asyncio tasks on one event loop (the kernel's).

An ``async for chunk in stream`` does not give the loop back while the response's buffer holds
chunks: reading and parsing a backlog (the openai SDK: ~75 us a chunk) runs without a pause.
With 200 background streams in one kernel at 50 tokens/s each, the loop then spent seconds per
iteration on them, and a new cell (a shell message, read by the kernel on the same loop) waited
that long: the bare SDK loops' ping p95 was 12-16 s (BENCHMARKS.md, issue 16 §3).

Every consumer on a loop shares one time slice: once the loop has run consumers for
:data:`SLICE_S` since the slice began, each gives the loop back at its next chunk, with a timer
(``asyncio.sleep(0)`` would requeue it *before* the I/O callbacks of the next poll: a timer comes
after them), so the kernel's shell and iopub messages are served between slices. The first
consumer to resume starts the next slice. A lone stream is never slowed: it has the slice to
itself and yields at most every :data:`SLICE_S` (~1 % of a chunk's worth of time at 2-3 ms).
"""

from __future__ import annotations

import asyncio
import time

SLICE_S = 0.010  # loop time for consumers between two polls of the loop's I/O
_YIELD_S = 1e-6  # a timer (not asyncio.sleep(0)): resumes after the next poll's I/O callbacks

_clock = time.perf_counter
_slice_start = 0.0


def due() -> bool:
    """Whether the shared slice is spent (checked after each chunk; cheap)."""
    return _clock() - _slice_start >= SLICE_S


async def give_back() -> None:
    """Give the loop back until its next I/O poll has been served; the first consumer to resume
    starts a new slice."""
    global _slice_start
    now = _clock()
    await asyncio.sleep(_YIELD_S)
    if _slice_start <= now:
        _slice_start = _clock()

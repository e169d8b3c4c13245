"""Consumer + log + view overhead: nbstream against the bare openai SDK loop, same stream.

Run: ``.venv/bin/python bench/bench_consumer.py [--chunks 100000] [--reps 5] [--quick]``

The local server runs in a child process (``serve(process=True)``) so it does not share this
process's GIL. Each repetition streams the same ``demo`` answer of ``--chunks`` tokens twice, in
alternating order: once through the bare ``for chunk in client.chat.completions.create(...,
stream=True)`` loop (the baseline), once through ``nbstream.stream(stream, display=False)``, i.e.
StreamRun + ChunkLog (spilling to disk past 2,000 records) + a StreamView with no frontend
(coalescing and frame building included). The figure is the ratio of the medians (target
<= 1.10x).
"""

from __future__ import annotations

import argparse
import gc
import time

import openai
from _common import bare, header, median, open_stream

import nbstream
from nbstream.server import serve


def with_nbstream(client: openai.OpenAI, chunks: int) -> tuple[float, float, int]:
    """The same stream through StreamRun + ChunkLog + StreamView (no frontend)."""
    started, cpu = time.perf_counter(), time.process_time()
    view = nbstream.stream(open_stream(client, chunks), display=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if view.status != "done":
        raise SystemExit(f"nbstream run ended {view.status}: {view.reason}")
    return elapsed, cpu, view.run.metrics.chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 chunks, 2 reps")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.reps = 5_000, 2
    header(f"consumer + log + view overhead, {args.chunks:,} chunks x {args.reps} reps")
    bare_t: list[float] = []
    nbs_t: list[float] = []
    bare_cpu: list[float] = []
    nbs_cpu: list[float] = []
    with serve(process=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        bare(client, 2_000)  # warm up: connection, imports, pydantic models
        with_nbstream(client, 2_000)
        for rep in range(args.reps):
            order = (bare, with_nbstream) if rep % 2 == 0 else (with_nbstream, bare)
            for fn in order:
                gc.collect()
                elapsed, cpu, count = fn(client, args.chunks)
                (bare_t if fn is bare else nbs_t).append(elapsed)
                (bare_cpu if fn is bare else nbs_cpu).append(cpu)
                print(
                    f"  rep {rep + 1} {fn.__name__:13s} {elapsed:7.3f} s wall, {cpu:7.3f} s CPU"
                    f"  {count:,} chunks  {count / elapsed:,.0f} chunks/s",
                    flush=True,
                )
    b, n = median(bare_t), median(nbs_t)
    print(f"baseline (bare SDK loop): median {b:.3f} s ({args.chunks / b:,.0f} chunks/s)")
    print(f"nbstream (run+log+view):  median {n:.3f} s ({args.chunks / n:,.0f} chunks/s)")
    print(f"ratio nbstream / bare:    {n / b:.3f}x  (target <= 1.10x)")
    per_chunk_us = (n - b) / args.chunks * 1e6
    print(f"overhead per chunk:       {per_chunk_us:.1f} us (wall)")
    bc, nc = median(bare_cpu), median(nbs_cpu)
    print(
        f"CPU of this process (the server is another): bare {bc / args.chunks * 1e6:.1f} us/chunk,"
        f" nbstream {nc / args.chunks * 1e6:.1f} us/chunk, CPU ratio {nc / bc:.3f}x"
    )


if __name__ == "__main__":
    main()

"""Consumer + log + view overhead: nbstream against the bare openai SDK loop, same stream.

Run: ``.venv/bin/python bench/bench_consumer.py [--chunks 100000] [--reps 5] [--quick]``

The local server runs in a child process (``serve(process=True)``) so it does not share this
process's GIL. Each repetition streams the same ``demo`` answer of ``--chunks`` tokens three
times, the order rotating between repetitions:

- ``bare``: the bare ``for chunk in client.chat.completions.create(..., stream=True)`` loop (the
  baseline);
- ``sdk_path``: ``nbstream.stream(stream, display=False)`` over such a ``Stream`` the caller
  opened: the SDK builds its typed chunks, then StreamRun + resilience defaults + ChunkLog
  (spilling to disk past 2,000 records) + a StreamView with no frontend (coalescing and frame
  building included). Target <= 1.10x the baseline;
- ``fast_path``: ``nbstream.chat(..., client=client, display=False)``: the same run, log and
  view over a request nbstream makes itself (its own SSE decoder and orjson, no SDK models;
  one more chunk: the usage chunk it asks for). Target <= 0.25x the baseline (issue 16 §1).

Figures: the ratio of the medians of this process's CPU time (the steadier one) and wall time.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import openai
from _common import PROMPT, bare, header, median, open_stream

import nbstream
from nbstream.server import serve


def sdk_path(client: openai.OpenAI, chunks: int) -> tuple[float, float, int]:
    """The SDK's Stream through StreamRun + ChunkLog + StreamView (no frontend)."""
    started, cpu = time.perf_counter(), time.process_time()
    view = nbstream.stream(open_stream(client, chunks), display=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if view.status != "done":
        raise SystemExit(f"nbstream run ended {view.status}: {view.reason}")
    return elapsed, cpu, view.run.metrics.chunks


def fast_path(client: openai.OpenAI, chunks: int) -> tuple[float, float, int]:
    """``nbstream.chat``: a request nbstream makes, read without the SDK's models."""
    started, cpu = time.perf_counter(), time.process_time()
    view = nbstream.chat(
        PROMPT,
        model="demo",
        client=client,
        display=False,
        extra_body={"nbstream": {"tokens": chunks}},
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if view.status != "done":
        raise SystemExit(f"nbstream.chat ended {view.status}: {view.reason}")
    if len(view.text) < chunks:
        raise SystemExit(f"nbstream.chat: {len(view.text)} characters for {chunks} tokens")
    return elapsed, cpu, view.run.metrics.chunks


RUNNERS = (bare, sdk_path, fast_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 chunks, 2 reps")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.reps = 5_000, 2
    header(f"consumer + log + view overhead, {args.chunks:,} chunks x {args.reps} reps")
    wall: dict[str, list[float]] = {fn.__name__: [] for fn in RUNNERS}
    cpu_s: dict[str, list[float]] = {fn.__name__: [] for fn in RUNNERS}
    counts: dict[str, int] = {}
    with serve(process=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        for fn in RUNNERS:  # warm up: connection, imports, pydantic models
            fn(client, 2_000)
        for rep in range(args.reps):
            k = rep % len(RUNNERS)
            for fn in RUNNERS[k:] + RUNNERS[:k]:
                gc.collect()
                elapsed, cpu, count = fn(client, args.chunks)
                wall[fn.__name__].append(elapsed)
                cpu_s[fn.__name__].append(cpu)
                counts[fn.__name__] = count
                print(
                    f"  rep {rep + 1} {fn.__name__:10s} {elapsed:7.3f} s wall, {cpu:7.3f} s CPU"
                    f"  {count:,} chunks  {count / elapsed:,.0f} chunks/s",
                    flush=True,
                )
    print(f"load avg at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    b_wall, b_cpu = median(wall["bare"]), median(cpu_s["bare"])
    per = {name: median(cpu_s[name]) / counts[name] * 1e6 for name in cpu_s}
    print(f"baseline (bare SDK loop): median {b_wall:.3f} s wall, {per['bare']:.1f} us CPU/chunk")
    for name, target in (("sdk_path", "<= 1.10x"), ("fast_path", "<= 0.25x")):
        w, c = median(wall[name]), median(cpu_s[name])
        print(
            f"{name:10s} median {w:.3f} s wall, {per[name]:.1f} us CPU/chunk:"
            f" CPU ratio {c / b_cpu:.3f}x, wall ratio {w / b_wall:.3f}x  (target {target})"
        )


if __name__ == "__main__":
    main()

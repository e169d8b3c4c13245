"""Cost of the resilience layer per chunk: StreamRun alone vs Resilience().build(...), same stream.

Run: ``.venv/bin/python bench/bench_resilience.py [--chunks 50000] [--reps 3]``

Both sides stream the same ``demo`` answer of ``--chunks`` tokens from the local server in a child
process, through a re-runnable ``ChatRequest`` (so the limiter's ticket, the SDK-retry-free
client copy and the stall watch are on the path), alternating the order. The resilience side also
runs a ``KeywordHook`` (a regex over the tail of the text on every delta) and a token budget that
is never reached, i.e. the per-chunk hook path at its busiest. The figure is the ratio of the
CPU medians of this process (the server is another process). A third side, ``default``, is what
``stream()``/``chat()`` use when nothing is configured (no hooks, no caps).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import openai

from nbstream.resilience.hooks import KeywordHook
from nbstream.resilience.layer import Resilience
from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import serve
from nbstream.sources.request import ChatRequest

PROMPT = [{"role": "user", "content": "benchmark"}]


def request(client: openai.OpenAI, chunks: int) -> ChatRequest:
    params = {"model": "demo", "messages": PROMPT, "extra_body": {"nbstream": {"tokens": chunks}}}
    return ChatRequest(params, client)


def plain(client: openai.OpenAI, chunks: int) -> tuple[float, float, StreamRun]:
    started, cpu = time.perf_counter(), time.process_time()
    run = StreamRun(request(client, chunks), log=ChunkLog()).run()
    return time.perf_counter() - started, time.process_time() - cpu, run


def default(client: openai.OpenAI, chunks: int) -> tuple[float, float, StreamRun]:
    """What stream()/chat() do by default: retries, limiter, stall watch; no hooks, no caps."""
    started, cpu = time.perf_counter(), time.process_time()
    run = Resilience(session=None).build(request(client, chunks), log=ChunkLog()).run()
    return time.perf_counter() - started, time.process_time() - cpu, run


def guarded(client: openai.OpenAI, chunks: int) -> tuple[float, float, StreamRun]:
    res = Resilience(
        hooks=[KeywordHook(keywords=["never-in-the-demo-answer"])],
        max_tokens=10 * chunks + 100,
        session=None,
    )
    started, cpu = time.perf_counter(), time.process_time()
    run = res.build(request(client, chunks), log=ChunkLog()).run()
    return time.perf_counter() - started, time.process_time() - cpu, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# bench_resilience: {args.chunks} chunks x {args.reps} reps, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with serve(process=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        sides = {"plain": plain, "default": default, "guarded": guarded}
        for side in sides.values():
            side(client, 2000)  # warm up every path
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for which in order:
                gc.collect()
                wall, cpu, run = sides[which](client, args.chunks)
                if run.status != "done":
                    raise SystemExit(f"{which} run ended {run.status}: {run.reason}")
                times[which].append((wall, cpu))
                print(f"rep {rep + 1}: {which:<8} wall {wall:7.3f} s  CPU {cpu:7.3f} s")
                del run
        client.close()
    n = args.chunks
    for what, i in (("wall", 0), ("CPU", 1)):
        base = statistics.median(x[i] for x in times["plain"])
        for name in ("default", "guarded"):
            ours = statistics.median(x[i] for x in times[name])
            print(
                f"{what:>4}: StreamRun {base / n * 1e6:6.1f} us/chunk, + resilience ({name}) "
                f"{ours / n * 1e6:6.1f} us/chunk, ratio {ours / base:.3f}x"
            )


if __name__ == "__main__":
    main()

"""The streaming core's overhead: StreamRun + ChunkLog against the bare openai SDK loop.

Run: ``.venv/bin/python bench/bench_run.py [--chunks 100000] [--reps 3]``

The local server runs as a separate process (``nbstream serve`` via ``serve(process=True)``) so it
does not share this process's GIL. Each repetition streams the same ``demo`` answer of
``--chunks`` tokens twice, in alternating order: once through the bare
``for chunk in client.chat.completions.create(..., stream=True)`` loop (the baseline), once through
``StreamRun(stream, log=ChunkLog()).run()`` (adapter, AnswerState, metrics, the chunk log keeping
every chunk's JSON and spilling to a JSONL file past 2,000 records). Both in one run; the figure
is the ratio of the medians (target <= 1.10x). The widget's own overhead is measured by
``bench/bench_consumer.py`` (view + coalescing on top of this).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import openai
from _common import bare, open_stream

from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import serve


def with_run(client: openai.OpenAI, chunks: int) -> tuple[float, float, int, StreamRun]:
    """The same stream through StreamRun + ChunkLog. (wall s, CPU s, chunks, run)"""
    started, cpu = time.perf_counter(), time.process_time()
    run = StreamRun(open_stream(client, chunks), log=ChunkLog()).run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if run.status != "done":
        raise SystemExit(f"the run ended {run.status}: {run.reason}")
    return elapsed, cpu, run.metrics.chunks, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    print(
        f"# bench_run: {args.chunks} chunks x {args.reps} reps, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, openai {openai.__version__}, "
        f"load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with serve(process=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        bare(client, 2000)  # warm up both paths (imports, connection)
        with_run(client, 2000)
        times: dict[str, list[tuple[float, float]]] = {"bare": [], "run": []}
        for rep in range(args.reps):
            order = ("bare", "run") if rep % 2 == 0 else ("run", "bare")
            for which in order:
                gc.collect()
                if which == "bare":
                    t, cpu, n = bare(client, args.chunks)
                    label = "bare SDK loop"
                else:
                    t, cpu, n, run = with_run(client, args.chunks)
                    label = f"StreamRun+log ({len(run.log)} records, spilled)"
                    assert run.log.spill_path, "the log should have spilled"
                    del run
                times[which].append((t, cpu))
                print(
                    f"rep {rep + 1}: {label:<42} wall {t:7.3f} s  CPU {cpu:7.3f} s  {n / t:6.0f}/s"
                )
        client.close()
    n = args.chunks
    for what, i in (("wall", 0), ("CPU", 1)):
        base = statistics.median(x[i] for x in times["bare"])
        ours = statistics.median(x[i] for x in times["run"])
        print(
            f"{what:>4}: bare {base / n * 1e6:6.1f} us/chunk, StreamRun+log "
            f"{ours / n * 1e6:6.1f} us/chunk, ratio {ours / base:.3f}x (target <= 1.10x)"
        )


if __name__ == "__main__":
    main()

"""Peak Python memory of a long stream with logging on, against the size of its text.

Run: ``.venv/bin/python bench/bench_memory.py [--chunks 1000000] [--quick]``

Each measurement runs in a fresh child process (so one does not inherit the other's heap): it
imports everything, opens a client to the local server (itself a child process, so its memory is
not counted) and warms up with a short stream, then consumes one ``demo`` stream of ``--chunks``
tokens:

- nbstream: ``nbstream.stream(stream, display=False)``: StreamRun + ChunkLog (every chunk's JSON
  kept, spilled to a JSONL temp file past 2,000 records) + StreamView with no frontend;
- baseline: the bare SDK loop keeping the answer in one string (``text += delta.content``), the
  least a program that shows the answer must hold.

The figure is the peak resident memory growth: the peak RSS (``VmHWM``, reset to the current RSS
through ``/proc/self/clear_refs`` just before the stream) minus the RSS (``VmRSS``) just before
the stream, divided by the UTF-8 size of the answer text
(target <= 3x). It counts everything the process holds (Python objects, allocator slack, the
interpreter's free lists). ``--tracemalloc`` measures Python allocations instead (tracemalloc's
peak, net of what was allocated before): more precise, but it slows streaming ~10x, so it is
for diagnosis on smaller streams.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

from _common import header

CHILD = "--child"


def proc_status(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Reset the peak RSS (VmHWM) to the current RSS (Linux: ``5`` to ``/proc/self/clear_refs``)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(kind: str, base_url: str, chunks: int, trace: bool) -> None:
    import gc
    import tracemalloc

    import openai

    import nbstream

    client = openai.OpenAI(base_url=base_url, api_key="local", max_retries=0)

    def open_stream(n: int) -> openai.Stream:
        return client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "benchmark"}],
            stream=True,
            extra_body={"nbstream": {"tokens": n}},
        )

    def run(n: int) -> tuple[str, object]:
        if kind == "nbstream":
            view = nbstream.stream(open_stream(n), display=False)
            assert view.status == "done", view.reason
            return view.text, view
        text = ""
        for chunk in open_stream(n):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return text, None

    run(2_000)  # warm up: imports, connection pool, pydantic models
    gc.collect()
    reset_peak()
    rss0 = proc_status("VmRSS")
    if trace:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    text, keep = run(chunks)
    elapsed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = proc_status("VmHWM")
    spill = getattr(getattr(keep, "log", None), "spill_path", None)
    print(
        json.dumps(
            {
                "kind": kind,
                "chunks": chunks,
                "seconds": elapsed,
                "text_bytes": len(text.encode("utf-8")),
                "peak": peak - before,
                "retained": current - before,
                "rss_growth": rss1 - rss0,
                "traced": trace,
                "spill_bytes": os.path.getsize(spill) if spill else 0,
            }
        )
    )


def measure(kind: str, base_url: str, chunks: int, trace: bool) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, CHILD, kind, base_url, str(chunks), str(int(trace))],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 chunks")
    parser.add_argument("--tracemalloc", action="store_true", help="Python allocations (slow)")
    args = parser.parse_args()
    if args.quick:
        args.chunks = 20_000
    header(f"peak memory, {args.chunks:,}-chunk stream with the chunk log on")
    from nbstream.server import serve

    with serve(process=True) as server:
        results = [
            measure(k, server.base_url, args.chunks, args.tracemalloc)
            for k in ("baseline", "nbstream")
        ]
    mb = 1024 * 1024
    key = "peak" if args.tracemalloc else "rss_growth"
    what = "tracemalloc peak" if args.tracemalloc else "peak RSS growth"
    for r in results:
        tb = r["text_bytes"]
        traced = (
            f", tracemalloc peak {r['peak'] / mb:.2f} MB, retained {r['retained'] / mb:.2f} MB"
            if args.tracemalloc
            else ""
        )
        print(
            f"  {r['kind']:9s} {r['chunks']:,} chunks in {r['seconds']:.1f} s: text "
            f"{tb / mb:.2f} MB, peak RSS growth {r['rss_growth'] / mb:.1f} MB{traced}"
            + (f", log spilled to disk {r['spill_bytes'] / mb:.1f} MB" if r["spill_bytes"] else "")
        )
    base, ours = results
    print(
        f"nbstream {what} / text: {ours[key] / ours['text_bytes']:.2f}x (target <= 3x); "
        f"baseline {what} / text: {base[key] / base['text_bytes']:.2f}x"
    )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == CHILD:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    else:
        main()

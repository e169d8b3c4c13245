"""200 concurrent streams in one real kernel: all finish, the kernel stays responsive, messages
stay bounded.

Run: ``.venv/bin/python bench/bench_concurrency.py [--streams 200] [--quick]``

A real ipykernel (``jupyter_client``, this interpreter) runs a cell that starts ``--streams``
background streams (``nbstream.stream(request, background=True)``: asyncio tasks on the kernel's
event loop, one AsyncOpenAI client) against the local server in a child process, each ``demo``
answer ``--tokens`` long at ``--rate`` tokens/s. While they run, this script sends a ping cell
(``1``) every 0.2 s (and a cell counting finished views every second) and times execute_request
-> execute_reply of each; the baseline is the same ping on the idle kernel just before. Every
iopub message is counted by type (the widgets' ``comm_msg`` are what the frontend has to
process) to give messages per second, overall and per stream.
"""

from __future__ import annotations

import argparse
import collections
import queue
import threading
import time

from _common import header, median, percentile
from jupyter_client.manager import start_new_kernel

from nbstream.server import serve


def execute(kc, code: str, timeout: float = 60.0) -> tuple[float, dict]:
    """Run ``code``; return (seconds to the execute_reply, the reply content)."""
    started = time.perf_counter()
    msg_id = kc.execute(code, store_history=False)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return time.perf_counter() - started, reply["content"]


class IopubCounter(threading.Thread):
    """Drains iopub, counting messages per type with their arrival times; keeps the stdout."""

    def __init__(self, kc) -> None:
        super().__init__(daemon=True)
        self.kc = kc
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self.stdout: list[str] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            kind = msg["msg_type"]
            self.times[kind].append(time.monotonic())
            if kind == "stream":
                self.stdout.append(msg["content"].get("text", ""))


SETUP = """
import openai, nbstream
from nbstream.sources.request import ChatRequest
client = openai.AsyncOpenAI(base_url={base_url!r}, api_key="local", max_retries=0)
def ask(i):
    return ChatRequest({{"model": "demo", "messages": [{{"role": "user", "content": f"q{{i}}"}}],
        "extra_body": {{"nbstream": {{"tokens": {tokens}, "tokens_per_s": {rate}}}}}}}, client)
"""

LAUNCH = "views = [nbstream.stream(ask(i), background=True) for i in range({n})]"
COUNT_DONE = "print('DONE', sum(v.status == 'done' for v in views), len(views))"
CHECK = (
    "from nbstream.server.demo import demo_tokens\n"
    "expected = ''.join(demo_tokens({tokens}))\n"
    "print('CHECK', sum(v.text == expected for v in views), "
    "sorted({{v.status for v in views}}), max(v.frames_sent for v in views))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0, help="tokens/s of each stream")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 streams of 40 tokens")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.tokens, args.rate = 20, 40, 40.0
    header(
        f"{args.streams} concurrent streams in one kernel ({args.tokens} tokens at "
        f"{args.rate:g} tokens/s each)"
    )
    with serve(process=True) as server:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90)
        counter = IopubCounter(kc)
        counter.start()
        try:
            execute(kc, SETUP.format(base_url=server.base_url, tokens=args.tokens, rate=args.rate))
            idle = [execute(kc, "1")[0] for _ in range(20)]
            counter.times.clear()
            t_launch = time.monotonic()
            launch_s, reply = execute(kc, LAUNCH.format(n=args.streams), timeout=120)
            if reply["status"] != "ok":
                raise SystemExit(f"launch failed: {reply}")
            pings: list[float] = []
            deadline = time.monotonic() + 600
            done = 0
            last_check = 0.0
            while time.monotonic() < deadline:
                pings.append(execute(kc, "1", timeout=120)[0])
                if time.monotonic() - last_check > 1.0:
                    last_check = time.monotonic()
                    counter.stdout.clear()
                    pings.append(execute(kc, COUNT_DONE, timeout=120)[0])  # a ping too
                    time.sleep(0.05)
                    line = "".join(counter.stdout)
                    if "DONE" in line:
                        done = int(line.split("DONE")[1].split()[0])
                        if done == args.streams:
                            break
                time.sleep(0.2)
            t_end = time.monotonic()
            counter.stdout.clear()
            execute(kc, CHECK.format(tokens=args.tokens))
            time.sleep(0.1)
            check = "".join(counter.stdout).strip()
        finally:
            counter.running = False
            counter.join(timeout=5)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    wall = t_end - t_launch
    comm = [t for t in counter.times.get("comm_msg", []) if t <= t_end]
    total = sum(len(v) for v in counter.times.values())
    per_s = len(comm) / wall
    busiest = 0
    lo = 0
    for hi, t in enumerate(comm):
        while t - comm[lo] > 1.0:
            lo += 1
        busiest = max(busiest, hi - lo + 1)
    print(
        f"finished: {done}/{args.streams} done (target {args.streams}/{args.streams}) in "
        f"{wall:.1f} s; launch cell took {launch_s:.2f} s"
    )
    print(f"check (texts equal to the demo answer, statuses, max frames of one view): {check}")
    print(
        f"ping cell latency, idle kernel (baseline): p50 {median(idle) * 1e3:.1f} ms, "
        f"p95 {percentile(idle, 95) * 1e3:.1f} ms"
    )
    print(
        f"ping cell latency during the streams:      p50 {median(pings) * 1e3:.1f} ms, "
        f"p95 {percentile(pings, 95) * 1e3:.1f} ms, max {max(pings) * 1e3:.1f} ms "
        f"({len(pings)} pings); ratio p95 {percentile(pings, 95) / percentile(idle, 95):.1f}x"
    )
    print(
        f"iopub messages: {total:,} in all; widget comm_msg {len(comm):,} = {per_s:,.0f}/s "
        f"({per_s / args.streams:.1f}/s per stream), busiest 1 s window {busiest:,}"
    )
    per_second = collections.Counter(int(t - t_launch) for t in comm)
    print("  widget comm_msg per second since the launch: " + " ".join(
        str(per_second.get(i, 0)) for i in range(int(wall) + 1)))  # fmt: skip
    kinds = ", ".join(f"{k} {len(v):,}" for k, v in sorted(counter.times.items()))
    print(f"  by type: {kinds}")


if __name__ == "__main__":
    main()

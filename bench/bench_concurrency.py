"""200 concurrent streams in one real kernel: all finish, the kernel stays responsive, messages
stay bounded.

Run: ``.venv/bin/python bench/bench_concurrency.py [--streams 200] [--rate 50] [--ready
[--ready-per-view]] [--profile out.txt] [--quick]``

A real ipykernel (``jupyter_client``, this interpreter) runs the same ``--streams`` requests
twice, against the local server in a child process (each ``demo`` answer ``--tokens`` long at
``--rate`` tokens/s), one AsyncOpenAI client, asyncio tasks on the kernel's event loop:

1. baseline: bare SDK loops (``async for chunk in stream``, keeping the text), no widget;
2. nbstream: ``nbstream.stream(request, background=True)`` each, displayed.

During each phase this script sends a ping cell (``1``) every 0.2 s (and a cell counting finished
streams every second) and times execute_request -> execute_reply; the ping on the idle kernel
comes first. So the baseline says what 200 streams of SDK parsing cost the kernel's one thread by
themselves, and the difference is what nbstream adds. Every iopub message is counted by type
(the widgets' ``comm_msg`` are what the frontend's widget manager processes; ``display_data``,
``update_display_data`` and ``comm_open`` come on top) to give messages per second.

Headless by default (nobody says ``ready``, as under nbclient/nbval: the final snapshot is sent);
``--ready`` acts as JupyterLab does: a second client answers the StreamViews' ``comm_open`` with
the widget's ``ready`` message as js/widget.js sends it (one message for the views that came
within 20 ms of each other, at most 250 ms after the first, naming them by uid), so the kernel
takes the browser's path; ``--ready-per-view`` sends one per view, as pages did before issue 16.

A stream counts as finished once it is ``done`` and its end went out (``mode`` back to ``idle``:
background views' final frames may wait for their slot in the kernel-wide budget); messages are
counted until 1 s after the last one finished. ``--profile out.txt`` samples the kernel with
py-spy (next to this interpreter or on PATH) during the nbstream phase and prints where its
main thread spent the time.
"""

from __future__ import annotations

import argparse
import collections
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import busiest_window, header, median, percentile
from jupyter_client.blocking import BlockingKernelClient
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
    """Drains iopub, counting messages per type with their arrival times; keeps the stdout.

    With ``frontend`` (a second client), says the widget's ``ready`` for every StreamView's
    ``comm_open`` as the page's ``initialize`` does (js/widget.js): views that come together are
    named in one message (their uids) once none came for 20 ms or 250 ms after the first, sent
    through the first of them; ``per_view`` sends one message per view (what pages did before)."""

    QUIET_S = 0.020  # js/widget.js READY_QUIET_MS
    MAX_S = 0.250  # js/widget.js READY_MAX_MS

    def __init__(self, kc, frontend=None, per_view: bool = False) -> None:
        super().__init__(daemon=True)
        self.kc = kc
        self.frontend = frontend
        self.per_view = per_view
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self.stdout: list[str] = []
        self.readies = 0  # views said ready
        self.ready_messages = 0
        self.running = True
        self._batch: list[tuple[str, str]] = []  # (comm_id, uid) waiting
        self._first = self._last = 0.0

    def run(self) -> None:
        while self.running:
            if self._batch:
                now = time.monotonic()
                due = min(self._last + self.QUIET_S, self._first + self.MAX_S)
                if now >= due:
                    self._send_batch()
                    continue
                timeout = due - now
            else:
                timeout = 0.2
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                continue
            kind = msg["msg_type"]
            self.times[kind].append(time.monotonic())
            if kind == "stream":
                self.stdout.append(msg["content"].get("text", ""))
            elif kind == "comm_open" and self.frontend is not None:
                state = (msg["content"].get("data") or {}).get("state") or {}
                if "snapshot" in state:  # a StreamView (not its Layout)
                    self._ready(msg["content"]["comm_id"], state.get("uid", ""))

    def _ready(self, comm_id: str, uid: str) -> None:
        self.readies += 1
        if self.per_view:
            self._send(comm_id, {"type": "ready"})
            return
        self._last = time.monotonic()
        if not self._batch:
            self._first = self._last
        self._batch.append((comm_id, uid))

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._send(batch[0][0], {"type": "ready", "uids": [uid for _, uid in batch]})

    def _send(self, comm_id: str, content: dict) -> None:
        data = {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
        self.frontend.session.send(
            self.frontend.shell_channel.socket, self.frontend.session.msg("comm_msg", data)
        )
        self.ready_messages += 1

    def clear(self) -> None:
        self.times.clear()


SETUP = """
import asyncio, openai, nbstream
from nbstream.sources.request import ChatRequest
client = openai.AsyncOpenAI(base_url={base_url!r}, api_key="local", max_retries=0)
def params(i):
    return {{"model": "demo", "messages": [{{"role": "user", "content": f"q{{i}}"}}],
        "stream_options": {{"include_usage": True}},
        "extra_body": {{"nbstream": {{"tokens": {tokens}, "tokens_per_s": {rate}}}}}}}
def ask(i):
    return ChatRequest(params(i), client)
async def bare(i):
    pieces = []
    async for chunk in await client.chat.completions.create(**params(i), stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return "".join(pieces)
"""

TINY_BUNDLE = (
    "from nbstream.frontend.widget import StreamView\n"
    "StreamView._esm = 'export default { render() {} }'\n"
    "StreamView._css = ''"
)
BARE_LAUNCH = "tasks = [asyncio.ensure_future(bare(i)) for i in range({n})]"
BARE_DONE = "print('DONE', sum(t.done() for t in tasks), len(tasks))"
BARE_CHECK = (
    "from nbstream.server.demo import demo_tokens\n"
    "expected = ''.join(demo_tokens({tokens}))\n"
    "print('CHECK', sum(t.result() == expected for t in tasks), 'exact texts')"
)
LAUNCH = "views = [nbstream.stream(ask(i), background=True) for i in range({n})]"
# ended: done, and the end's messages sent (the final frame may wait for its slot in the budget)
COUNT_DONE = (
    "print('DONE', sum(v.status == 'done' and v.mode == 'idle' for v in views), len(views))"
)
CHECK = (
    "from nbstream.server.demo import demo_tokens\n"
    "expected = ''.join(demo_tokens({tokens}))\n"
    "print('CHECK', sum(v.text == expected for v in views), 'exact texts', "
    "sorted({{v.status for v in views}}), 'max frames of one view', "
    "max(v.frames_sent for v in views), 'retried', sum(v.run.attempt > 1 for v in views), "
    "'slowest (duration, ttft s)', max((round(v.metrics.duration_s or 0, 1), "
    "round(v.metrics.ttft_s or 0, 1)) for v in views))"
)


TAIL_S = 1.0


@dataclass
class Phase:
    name: str
    launch_s: float = 0.0
    wall: float = 0.0
    done: int = 0
    pings: list[float] = field(default_factory=list)
    check: str = ""
    times: dict[str, list[float]] = field(default_factory=dict)
    t0: float = 0.0


def run_phase(kc, counter, name, launch, count_done, check, n) -> Phase:
    """Launch ``n`` streams, ping every 0.2 s until all are done, then check their texts."""
    phase = Phase(name)
    counter.clear()
    phase.t0 = time.monotonic()
    phase.launch_s, reply = execute(kc, launch, timeout=120)
    if reply["status"] != "ok":
        raise SystemExit(f"{name}: launch failed: {reply}")
    deadline = time.monotonic() + 600
    last_check = 0.0
    while time.monotonic() < deadline:
        phase.pings.append(execute(kc, "1", timeout=120)[0])
        if time.monotonic() - last_check > 1.0:
            last_check = time.monotonic()
            counter.stdout.clear()
            phase.pings.append(execute(kc, count_done, timeout=120)[0])  # a ping too
            time.sleep(0.05)
            line = "".join(counter.stdout)
            if "DONE" in line:
                phase.done = int(line.split("DONE")[1].split()[0])
                if phase.done == n:
                    break
        time.sleep(0.2)
    phase.wall = time.monotonic() - phase.t0
    time.sleep(TAIL_S)  # messages still on their way (display updates) count too
    t_end = time.monotonic()
    phase.times = {k: [t for t in v if t <= t_end] for k, v in counter.times.items()}
    counter.stdout.clear()
    execute(kc, check)
    time.sleep(0.1)
    phase.check = "".join(counter.stdout).strip()
    return phase


def start_profiler(pid: int, out: Path) -> subprocess.Popen:
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():  # or anywhere on PATH (pip install --target ... py-spy)
        spy = Path(shutil.which("py-spy") or spy)
    cmd = [str(spy), "record", "--pid", str(pid), "--rate", "50", "--format", "raw", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return proc


def stop_profiler(proc: subprocess.Popen, out: Path) -> None:
    """Stop py-spy (it writes on SIGINT) and print the main thread's heaviest frames."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or "run_forever" not in stack:  # the main thread's event loop only
            continue
        total += int(count)
        for name in {f.split(" (")[0] for f in frames}:
            inclusive[name] += int(count)
    print(f"  profile ({out}): {total} samples of the kernel's main thread; inclusive share:")
    for name, count in inclusive.most_common(60):
        if count < total * 0.97:
            print(f"    {count / total:6.1%}  {name}")


def per_second(times: list[float], t0: float, wall: float) -> str:
    counts = collections.Counter(int(t - t0) for t in times)
    return " ".join(str(counts.get(i, 0)) for i in range(int(wall + TAIL_S) + 1))


def report(phase: Phase, idle: list[float], n: int) -> None:
    p95 = percentile(phase.pings, 95)
    print(f"-- {phase.name}")
    print(
        f"finished: {phase.done}/{n} done (target {n}/{n}) in {phase.wall:.1f} s; "
        f"launch cell took {phase.launch_s:.2f} s"
    )
    print(f"check: {phase.check}")
    print(
        f"ping cell latency during the streams: p50 {median(phase.pings) * 1e3:.1f} ms, "
        f"p95 {p95 * 1e3:.1f} ms, max {max(phase.pings) * 1e3:.1f} ms ({len(phase.pings)} "
        f"pings); ratio p95 {p95 / percentile(idle, 95):.1f}x idle"
    )
    comm = phase.times.get("comm_msg", [])
    every = sorted(t for k, v in phase.times.items() if k not in ("status", "execute_input",
                   "execute_result", "stream") for t in v)  # fmt: skip
    rate = len(comm) / phase.wall
    print(
        f"widget comm_msg {len(comm):,} = {rate:,.0f}/s ({rate / n:.1f}/s per stream), "
        f"busiest 1 s window {busiest_window(comm):,}; with comm_open and display messages: "
        f"{len(every):,}, busiest 1 s window {busiest_window(every):,}"
    )
    print("  widget comm_msg per second since the launch: " + per_second(comm, phase.t0,
          phase.wall))  # fmt: skip
    print("  all widget and display messages per second: " + per_second(every, phase.t0,
          phase.wall))  # fmt: skip
    kinds = ", ".join(f"{k} {len(v):,}" for k, v in sorted(phase.times.items()))
    print(f"  iopub by type: {kinds}")


def ready_kind(args: argparse.Namespace) -> str:
    if not args.ready:
        return "headless"
    return "frontend says ready " + ("per view" if args.ready_per_view else "in batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0, help="tokens/s of each stream")
    parser.add_argument(
        "--ready", action="store_true", help="act as a frontend: say `ready` for every view"
    )
    parser.add_argument(
        "--ready-per-view",
        action="store_true",
        help="with --ready: one `ready` message per view, as pages did before issue 16",
    )
    parser.add_argument("--profile", type=Path, help="py-spy the kernel during the nbstream phase")
    parser.add_argument(
        "--tiny-bundle",
        action="store_true",
        help="diagnosis: views carry a 1-line _esm instead of the 0.5 MB bundle (every comm_open "
        "carries it) to see what the bundle costs the launch and the pings",
    )
    parser.add_argument(
        "--turn-slice-ms",
        type=float,
        help="diagnosis: the streams' shared time slice on the kernel's loop "
        "(nbstream/run/turns.py SLICE_S) in ms, instead of the default",
    )
    parser.add_argument(
        "--frame-budget",
        type=float,
        help="diagnosis: the kernel-wide FrameBudget in messages/s (coalesce.KERNEL_BUDGET), "
        "instead of the default 300",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 streams of 40 tokens")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.tokens, args.rate = 20, 40, 40.0
    header(
        f"{args.streams} concurrent streams in one kernel ({args.tokens} tokens at "
        f"{args.rate:g} tokens/s each), {ready_kind(args)}"
    )
    n = args.streams
    with serve(process=True) as server:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90)
        frontend = None
        if args.ready:
            # its own session: a second client sharing the first one's would get its replies
            frontend = BlockingKernelClient(connection_file=km.connection_file)
            frontend.load_connection_file()
            frontend.start_channels(iopub=False, stdin=False, hb=False, control=False)
        counter = IopubCounter(kc, frontend, per_view=args.ready_per_view)
        counter.start()
        try:
            execute(kc, SETUP.format(base_url=server.base_url, tokens=args.tokens, rate=args.rate))
            if args.tiny_bundle:
                execute(kc, TINY_BUNDLE)
            if args.frame_budget is not None:
                execute(kc, "from nbstream.frontend.coalesce import KERNEL_BUDGET\n"
                            f"KERNEL_BUDGET.frames_per_s = {args.frame_budget!r}")  # fmt: skip
            if args.turn_slice_ms is not None:
                execute(kc, f"import nbstream.run.turns\nnbstream.run.turns.SLICE_S = "
                            f"{args.turn_slice_ms / 1e3!r}")  # fmt: skip
            idle = [execute(kc, "1")[0] for _ in range(20)]
            base = run_phase(kc, counter, "baseline: bare SDK loops, no widget",
                             BARE_LAUNCH.format(n=n), BARE_DONE,
                             BARE_CHECK.format(tokens=args.tokens), n)  # fmt: skip
            time.sleep(1.0)
            profiler = None
            if args.profile:
                profiler = start_profiler(km.provisioner.process.pid, args.profile)
            ours = run_phase(kc, counter, "nbstream: stream(request, background=True)",
                             LAUNCH.format(n=n), COUNT_DONE, CHECK.format(tokens=args.tokens),
                             n)  # fmt: skip
            if profiler is not None:
                stop_profiler(profiler, args.profile)
        finally:
            counter.running = False
            counter.join(timeout=5)
            if frontend is not None:
                frontend.stop_channels()
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    print(
        f"ping cell latency, idle kernel: p50 {median(idle) * 1e3:.1f} ms, "
        f"p95 {percentile(idle, 95) * 1e3:.1f} ms"
    )
    report(base, idle, n)
    report(ours, idle, n)
    if args.ready:
        print(
            f"  views said `ready` as a frontend: {counter.readies}, in "
            f"{counter.ready_messages} messages"
        )
    print(
        f"nbstream vs baseline (same run): ping p50 {median(ours.pings) * 1e3:.0f} vs "
        f"{median(base.pings) * 1e3:.0f} ms, p95 {percentile(ours.pings, 95) * 1e3:.0f} vs "
        f"{percentile(base.pings, 95) * 1e3:.0f} ms; wall {ours.wall:.1f} vs {base.wall:.1f} s"
    )


if __name__ == "__main__":
    main()

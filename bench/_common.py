"""Shared helpers of the benchmark scripts: the machine, medians, and a comm that records.

Not a benchmark itself (the leading underscore keeps it out of ``bench/*.py`` listings).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


PROMPT = [{"role": "user", "content": "benchmark"}]


def open_stream(client: Any, chunks: int) -> Any:
    """A ``demo`` answer of ``chunks`` tokens from the local server, as an openai ``Stream``."""
    return client.chat.completions.create(
        model="demo", messages=PROMPT, stream=True, extra_body={"nbstream": {"tokens": chunks}}
    )


def bare(client: Any, chunks: int) -> tuple[float, float, int]:
    """The baseline: the SDK's own loop, counting chunks and keeping nothing.

    Returns (wall s, CPU s of this process, chunks).
    """
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _chunk in open_stream(client, chunks):
        count += 1
    return time.perf_counter() - started, time.process_time() - cpu, count


def machine() -> str:
    """Cores, memory, CPU model, Python and load, read from this machine."""
    cores = os.cpu_count()
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    py = platform.python_version()
    return f"{cores} cores ({cpu}), {mem_gb:.1f} GB RAM, Python {py}, load avg {load}"


def header(title: str) -> None:
    """Print the benchmark's title and the machine it runs on."""
    print(f"== {title}")
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    sys.stdout.flush()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank, p in 0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def busiest_window(times: Sequence[float], width: float = 1.0) -> int:
    """Most events in any ``width``-second window (``times`` in seconds, any order)."""
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Recorder:
    """Every comm message a widget publishes: time, kind, and bytes of its ``data`` as JSON.

    Installed with :func:`record_comms`: ipywidgets creates each widget's comm through
    ``comm.create_comm``, which the ``comm`` package documents as the hook to replace. So this
    sees exactly what a kernel would put on the wire for the widget (``comm_open``, state
    ``update``s and ``custom`` messages), minus the Jupyter envelope, which is measured apart with
    ``jupyter_client``'s real ``Session`` serializer (:meth:`wire_bytes`).
    """

    def __init__(self) -> None:
        self.messages: list[tuple[float, str, str, int, dict[str, Any]]] = []
        self.keep_data = False

    def add(self, msg_type: str, data: Any) -> None:
        method = (data or {}).get("method", "") if isinstance(data, dict) else ""
        size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        self.messages.append(
            (time.monotonic(), msg_type, method, size, data if self.keep_data else {})
        )

    def widget_messages(self) -> list[tuple[float, str, str, int, dict[str, Any]]]:
        """State updates and custom messages (what the frontend must process while streaming)."""
        return [m for m in self.messages if m[1] == "comm_msg"]

    @staticmethod
    def wire_bytes(data: dict[str, Any], msg_type: str = "comm_msg") -> int:
        """Bytes of one message as ipykernel's Session would send it (header, content, HMAC)."""
        from jupyter_client.session import Session

        session = _SESSION.get("s")
        if session is None:
            session = _SESSION["s"] = Session(key=b"0" * 32, username="bench")
        msg = session.msg(msg_type, content={"comm_id": "0" * 32, "data": data})
        return sum(len(p) for p in session.serialize(msg))


_SESSION: dict[str, Any] = {}


def record_comms() -> Recorder:
    """Replace ``comm.create_comm`` so every widget made from now on records its messages."""
    import comm
    from comm.base_comm import BaseComm

    recorder = Recorder()

    class RecordingComm(BaseComm):
        def publish_msg(
            self,
            msg_type: str,
            data: Any = None,
            metadata: Any = None,
            buffers: Any = None,
            **keys: Any,
        ) -> None:
            recorder.add(msg_type, data)

    comm.create_comm = lambda *a, **kw: RecordingComm(*a, **kw)
    return recorder

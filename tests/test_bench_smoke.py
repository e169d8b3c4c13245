"""Each benchmark script runs in its quick mode and prints its figures (and their baselines).

No timing is asserted here: benchmarks are run on purpose (see BENCHMARKS.md); this only keeps
the scripts working as the code they measure changes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def run_quick(script: str, *extra: str, timeout: float = 600) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert "machine: " in out.stdout and " cores" in out.stdout, out.stdout
    return out.stdout


def figure(output: str, pattern: str) -> list[str]:
    """The numbers captured by ``pattern`` (NUMBER groups) in ``output``; fails if absent."""
    match = re.search(pattern, output)
    assert match, f"no line matching {pattern!r} in:\n{output}"
    return list(match.groups())


def test_consumer_overhead_prints_the_medians_and_both_ratios():
    out = run_quick("bench_consumer.py")
    figure(out, rf"baseline \(bare SDK loop\): median ({NUMBER}) s wall")
    for name in ("sdk_path", "fast_path"):
        (ratio,) = figure(out, rf"{name} +median {NUMBER} s wall, .*CPU ratio ({NUMBER})x")
        assert float(ratio) > 0
        assert out.count(f" {name} ") >= 2  # every repetition
    assert out.count(" bare ") >= 2


def test_sse_decoders_and_json_parsers_are_timed_per_event():
    out = run_quick("bench_sse.py")
    for name in ("sdk SSEDecoder", "nbstream SSEDecoder", "json.loads", "sse.loads"):
        (per_event,) = figure(out, rf"{name} +median +({NUMBER}) us per event")
        assert float(per_event) > 0


def test_messages_and_bytes_are_counted_at_each_rate():
    out = run_quick("bench_messages.py")
    for rate in ("50", "1,000", "20,000"):
        (per_s,) = figure(out, rf"{rate} tok/s: ({NUMBER}) msgs/s")
        assert float(per_s) > 0
    (ratio,) = figure(out, rf"widget message data: {NUMBER} bytes = ({NUMBER})x")
    assert float(ratio) >= 1.0  # every byte of text reaches the frontend at least once
    figure(out, rf"baseline, whole text re-sent each frame: {NUMBER} bytes = ({NUMBER})x")


def test_concurrent_streams_all_finish_in_a_real_kernel():
    out = run_quick("bench_concurrency.py")
    baseline, ours = out.split("-- baseline")[1].split("-- nbstream")
    for phase in (baseline, ours):
        done, total = figure(phase, rf"finished: ({NUMBER})/({NUMBER}) done")
        assert done == total == "20"
        assert "CHECK 20 exact texts" in phase
        figure(phase, rf"during the streams: +p50 ({NUMBER}) ms")
    figure(out, rf"idle kernel: p50 ({NUMBER}) ms")
    (messages, _rate) = figure(ours, rf"widget comm_msg ({NUMBER}) = ({NUMBER})/s")
    assert int(messages.replace(",", "")) > 0
    figure(out, rf"nbstream vs baseline \(same run\): ping p50 ({NUMBER}) vs ({NUMBER}) ms")


def test_cold_start_times_the_first_token_against_the_bare_sdk_in_fresh_kernels():
    out = run_quick("bench_cold_start.py", "--split")
    figure(out, rf"server TTFT \(raw HTTP, first content line\): median ({NUMBER}) ms")
    for kind in ("idle", "bare", "nbstream"):
        figure(out, rf"  {kind} +median ({NUMBER}) ms")
    figure(out, rf"nbstream - server TTFT: (-?{NUMBER}) ms")
    (imports,) = figure(out, rf"imports of the nbstream cell .*: ({NUMBER}) ms")
    assert float(imports) > 0
    figure(out, rf"  ({NUMBER})  import nbstream.notebook.api: anywidget")
    figure(
        out, rf"first token ({NUMBER}) ms; minus the server's TTFT \({NUMBER} ms\): ({NUMBER}) ms"
    )


def test_memory_peak_is_compared_with_the_text():
    out = run_quick("bench_memory.py")
    (ratio,) = figure(out, rf"nbstream peak RSS growth / text: ({NUMBER})x")
    figure(out, rf"baseline peak RSS growth / text: (-?{NUMBER})x")
    assert float(ratio) > 0


@pytest.mark.browser
def test_browser_figures_are_measured_in_real_jupyterlab():
    if not Path("/usr/bin/chromium").exists() or not (REPO / "node_modules" / ".bin").exists():
        reason = "bench_browser.py needs /usr/bin/chromium and `npm ci` (esbuild)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    out = run_quick("bench_browser.py", timeout=900)
    figure(out, rf"nbstream frame time \(rAF delta\): +p50 ({NUMBER}) ms, p95 ({NUMBER}) ms")
    figure(out, rf"baseline \(full re-render each frame\) frame time: p50 ({NUMBER}) ms")
    figure(out, rf"the whole answer at once .*: complete in ({NUMBER}) s, frame time p50")
    figure(out, rf"scrolling through the answer .* per frame: frame time p50 ({NUMBER}) ms")
    figure(out, rf"stop latency, background mode: p50 (-?{NUMBER}) ms, p95 (-?{NUMBER}) ms")
    figure(out, rf"stop latency, waiting \(await\): p50 (-?{NUMBER}) ms")
    (p50,) = figure(out, rf"first token, SDK chunk -> DOM: p50 (-?{NUMBER}) ms")
    assert float(p50) > 0  # the DOM cannot show the text before the kernel received it
    shots = figure(out, r"screenshots: (\S+\.png), (\S+\.png)")
    assert all((REPO / s).stat().st_size > 10_000 for s in shots)


@pytest.mark.browser
def test_waiting_mode_stop_is_timed_against_the_interrupt_button():
    if not Path("/usr/bin/chromium").exists():
        reason = "bench_browser_stop.py needs /usr/bin/chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    out = run_quick("bench_browser_stop.py", timeout=600)
    for label in ("widget Stop", r"baseline ■ interrupt"):
        for what in ("widget shows stopped", "kernel's stream ended", "server saw the disconnect"):
            p50, p95 = figure(
                out, rf"{label}, click -> {what}: p50 ({NUMBER}) ms, p95 ({NUMBER}) ms"
            )
            assert 0 < float(p50) <= float(p95)  # nothing ends before the click
    (ratio,) = figure(out, rf"ratio widget Stop / ■ \(p95, to stopped\): ({NUMBER})x")
    assert float(ratio) > 0


@pytest.mark.browser
def test_bytes_per_view_and_saved_answer_are_measured_against_the_whole_bundle():
    if not Path("/usr/bin/chromium").exists():
        reason = "bench_bytes.py needs /usr/bin/chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    out = run_quick("bench_bytes.py", timeout=600)
    (ratio,) = figure(out, rf"further view comm bytes, baseline / nbstream: ({NUMBER})x")
    assert float(ratio) > 1  # the baseline sends the bundle with every view
    for label in ("nbstream", r"baseline \(bundle\)"):
        figure(out, rf"{label}: first view ({NUMBER}) KB \(comm ({NUMBER}) KB\), further views")
        figure(out, rf"{label}: saved notebook, 3 answers: ({NUMBER}) KB")
    (size_ratio,) = figure(out, rf"saved notebook size, baseline / nbstream: ({NUMBER})x")
    assert float(size_ratio) > 1

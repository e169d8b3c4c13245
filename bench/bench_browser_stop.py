"""Stop in the default waiting mode, in real JupyterLab: the widget's Stop against the notebook's ■.

Run: ``.venv/bin/python bench/bench_browser_stop.py [--trials 20] [--quick]``

A synchronous cell streams ``nbstream.stream(...)`` in waiting mode (the cell holds the kernel,
the default of ``nbstream.chat``) from nbstream's local server in this process, paced at 100
chunks/s. Once text shows, one of two things is clicked, alternating trial by trial:

- the widget's Stop button (it asks nbstream's JupyterLab extension for the kernel's interrupt);
- baseline, same run, same page: the notebook toolbar's interrupt button (■), the one way to stop
  a waiting cell before.

Times, from the click (a capture listener stamps ``performance.timeOrigin + performance.now()``):
- to the widget showing ``stopped`` (a MutationObserver on the root's ``data-status``);
- to the kernel's stream ending (``time.time()`` in the cell right after ``stream()`` returned);
- to the server seeing the client hang up (``RequestRecord.ended``, same wall clock).
Target: widget Stop p95 <= 200 ms to ``stopped``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, header, percentile

sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_jupyter import start_jupyter  # noqa: E402
from browser_page import NotebookPage, StreamWidget, wait_until, write_notebook  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from streams import setup_cell  # noqa: E402

from nbstream.server import serve  # noqa: E402

INIT_SCRIPT = """
(() => {
  const B = (window.__stopBench = { clickAt: null, statusAt: null });
  const now = () => performance.timeOrigin + performance.now();
  document.addEventListener("click", (e) => {
    const t = e.target.closest && e.target.closest(
      "[data-testid=stop], [data-command='notebook:interrupt-kernel']");
    if (t) B.clickAt = now();
  }, true);
  B.watchStatus = (cellIndex, status) => {
    B.statusAt = null; B.clickAt = null;
    const root = document.querySelectorAll(".jp-Notebook .jp-Cell")[cellIndex]
      .querySelector(".nbstream-root");
    const obs = new MutationObserver(() => {
      if (root.dataset.status === status) { B.statusAt = now(); obs.disconnect(); }
    });
    obs.observe(root, { attributes: true, attributeFilter: ["data-status"] });
  };
})();
"""

STREAM_CELL = (
    "view = nbstream.stream(ask(tokens=100000, tokens_per_s=100, client=sync_client))\n"
    "import time\nSTREAM_END = time.time()"
)


def stats(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.0f} ms, p95 {percentile(values, 95):.0f} ms, n={len(values)}"
    )


def trial(nb: NotebookPage, llm: Any, how: str, offset: float) -> dict[str, float]:
    """Run the stream cell, let text arrive, stop it with ``how``; the three latencies in ms."""
    before = len(llm.requests)
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered()
    wait_until(lambda: len(widget.answer.inner_text()) > 100, 30, what="streamed text")
    wait_until(lambda: len(llm.requests) > before, 10, what="the request")
    assert widget.root.get_attribute("data-mode") == "blocking"
    record = llm.requests[-1]
    nb.page.evaluate("() => window.__stopBench.watchStatus(1, 'stopped')")
    if how == "stop":
        widget.click("stop")
    else:
        nb.interrupt_kernel()
    record.wait(10)
    widget.wait_status("stopped", timeout=30)
    nb.wait_cell_done(1, timeout=30)
    if "Traceback" in nb.output_text(1):
        raise SystemExit(f"{how}: the cell shows a traceback:\n{nb.output_text(1)}")
    nb.run_cell(2, wait=True)
    kernel_end = float(nb.output_text(2).strip().split()[-1]) * 1000
    marks = nb.page.evaluate("() => window.__stopBench")
    if marks["clickAt"] is None or marks["statusAt"] is None or record.ended is None:
        raise SystemExit(f"{how}: a mark is missing: {marks}, server end {record.ended}")
    click = marks["clickAt"]
    return {
        "status": marks["statusAt"] - click,
        "kernel": kernel_end - click,
        "server": (record.ended + offset) * 1000 - click,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="clicks of each kind")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 clicks of each")
    args = parser.parse_args()
    if args.quick:
        args.trials = 2
    header(f"Stop in waiting mode in real JupyterLab: {args.trials} clicks each, Stop vs ■")
    if not CHROMIUM.exists():
        raise SystemExit(f"bench_browser_stop needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="nbstream-bench-stop-"))
    server = None
    results: dict[str, list[dict[str, float]]] = {"stop": [], "interrupt": []}
    try:
        with serve() as llm, sync_playwright() as pw:
            server = start_jupyter("lab", home / "jupyter")
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(INIT_SCRIPT)
                page = context.new_page()
                page.set_default_timeout(60_000)
                cells = [setup_cell(llm.base_url), STREAM_CELL, "print('END', STREAM_END)"]
                name = write_notebook(server, "bench-stop.ipynb", cells)
                nb = NotebookPage(page, server, name).open(timeout=120)
                nb.run_cell(0, wait=True)
                offset = time.time() - time.monotonic()  # server records use time.monotonic()
                for i in range(args.trials * 2):
                    how = ("stop", "interrupt")[i % 2]  # alternate: same conditions for both
                    results[how].append(trial(nb, llm, how, offset))
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)

    labels = {"stop": "widget Stop", "interrupt": "baseline ■ interrupt"}
    for what, text in (
        ("status", "click -> widget shows stopped"),
        ("kernel", "click -> kernel's stream ended"),
        ("server", "click -> server saw the disconnect"),
    ):
        for how in ("stop", "interrupt"):
            print(f"{labels[how]}, {text}: {stats([r[what] for r in results[how]])}")
    stop95 = percentile([r["status"] for r in results["stop"]], 95)
    base95 = percentile([r["status"] for r in results["interrupt"]], 95)
    print(
        f"ratio widget Stop / ■ (p95, to stopped): {stop95 / base95:.2f}x  (target p95 <= 200 ms)"
    )


if __name__ == "__main__":
    main()

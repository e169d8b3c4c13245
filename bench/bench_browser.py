"""The widget in real JupyterLab (headless Chromium): render cost, Stop latency, first token.

Run: ``.venv/bin/python bench/bench_browser.py [--tokens 100000] [--trials 10] [--quick]``

One JupyterLab (``tests/browser/browser_jupyter.py``), one Chromium (Playwright, Debian's
``/usr/bin/chromium``), one notebook driven like a user would (``tests/browser/browser_page.py``),
and nbstream's local server in this process (the kernel reaches it over 127.0.0.1; this process
sees each request's records, including when the client hung up).

Figures:

1. Render cost while ``--tokens`` tokens of the ``demo`` Markdown (headings, lists, code, tables,
   math) stream at full speed in a background stream. Before the page loads, an init script wraps
   ``requestAnimationFrame`` so the script time of every frame's rAF callbacks (where the widget
   paints) is summed per frame; a separate rAF loop records frame-to-frame deltas (frame time as
   the page lives it, layout included; 16.7 ms is the 60 Hz floor) and a PerformanceObserver
   counts long tasks. Baseline, same run, same page: the same text revealed over the same
   duration, but re-rendered whole on every animation frame with the widget's own renderer
   (``bench/fullrender.js`` -> ``js/markdown.js``, bundled here with esbuild) into a
   ``.nbstream-root .nbstream-answer`` element. Target: p95 <= 16 ms.
2. Stop latency: from the click on the widget's Stop button (a capture listener stamps
   ``performance.timeOrigin + performance.now()``) to the server seeing the connection closed
   (``RequestRecord.ended``, converted to the same wall clock), in background mode (the cell has
   returned) and waiting mode (top-level ``await view``). Target: p95 <= 100 ms.
3. First token: from the kernel's hook seeing the first content chunk (``time.time()`` in a
   StreamRun hook, right after the SDK yielded it) to a MutationObserver seeing text in the
   widget's answer element (``performance.timeOrigin + performance.now()``). The request has a
   0.5 s time-to-first-token so the widget is mounted first. Target: <= 20 ms.

After the render run (also with ``--render-only``): frame times while a second view of the
finished answer renders it all at once (as after a reload or a late snapshot), and while the
notebook scrolls through the answer at 0.5 and 2 viewports per frame.

Screenshots land in ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, header, median, percentile

sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_jupyter import set_lab_setting, start_jupyter  # noqa: E402
from browser_page import NotebookPage, StreamWidget, wait_until, write_notebook  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from streams import setup_cell  # noqa: E402

from nbstream.server import serve  # noqa: E402
from nbstream.server.demo import demo_tokens, tokenize  # noqa: E402

INIT_SCRIPT = """
(() => {
  const orig = window.requestAnimationFrame.bind(window);
  const B = (window.__bench = { on: false, work: new Map(), orig });
  window.requestAnimationFrame = (cb) => orig((ts) => {
    const t0 = performance.now();
    try { cb(ts); } finally {
      if (B.on) B.work.set(ts, (B.work.get(ts) || 0) + performance.now() - t0);
    }
  });
  B.start = () => {
    const R = (B.rec = { deltas: [], at: [], long: [], big: [], stopped: false });
    R.t0 = performance.now();
    B.work = new Map(); B.on = true;
    let last = null;
    const loop = (ts) => {
      if (R.stopped) return;
      if (last !== null) { R.deltas.push(ts - last); R.at.push(ts - R.t0); }
      if (last !== null && ts - last > 500) R.big.push([last - R.t0, ts - last]); // when, how long
      last = ts; orig(loop);
    };
    orig(loop);
    R.po = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) R.long.push(e.duration);
    });
    R.po.observe({ type: "longtask" });
  };
  B.stop = () => {
    const R = B.rec; R.stopped = true; B.on = false; R.po.disconnect();
    return { deltas: R.deltas, at: R.at, work: [...B.work.values()], long: R.long, big: R.big };
  };
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("[data-testid=stop]"))
      B.stopClick = performance.timeOrigin + performance.now();
  }, true);
  B.watchFirstText = (cellIndex) => {
    B.firstText = null;
    const answerOf = () => {
      const cell = document.querySelectorAll(".jp-Notebook .jp-Cell")[cellIndex];
      return cell && cell.querySelector(".nbstream-root [data-testid=answer]");
    };
    const old = answerOf(); // the previous run's widget: its text does not count
    const obs = new MutationObserver(() => {
      const answer = answerOf();
      if (answer && answer !== old && answer.textContent.length > 0) {
        B.firstText = performance.timeOrigin + performance.now();
        obs.disconnect();
      }
    });
    obs.observe(document.body, { subtree: true, childList: true, characterData: true });
  };
})();
"""

WIDGET_STATUS_JS = """
({ cell, status }) => {
  const c = document.querySelectorAll(".jp-Notebook .jp-Cell")[cell];
  const root = c && c.querySelector(".nbstream-root");
  return !!root && root.dataset.status === status;
}
"""

WIDGET_DONE_JS = """
({ cell, status }) => {
  const c = document.querySelectorAll(".jp-Notebook .jp-Cell")[cell];
  const root = c && c.querySelector(".nbstream-root");
  if (!root || root.dataset.status !== status) return false;
  // the widget paints within a time budget per frame: it may still be catching up
  const answer = root.querySelector("[data-testid=answer]");
  return !answer.dataset.rendered || answer.dataset.rendered === "complete";
}
"""

NO_CONTAINMENT_CSS = (
    ".nbstream-blocks > .nbstream-group { content-visibility: visible !important; "
    "contain-intrinsic-size: none !important; }"
)

BASELINE_JS = """
async ({ text, duration, limit }) => {
  const render = window.__nbstreamRenderMarkdown;
  const root = document.createElement("div");
  root.className = "nbstream-root";
  root.style.cssText = "position:fixed;left:0;top:0;width:900px;height:100vh;overflow:hidden;"
    + "background:white;z-index:100000";
  const el = document.createElement("div");
  el.className = "nbstream-answer";
  root.appendChild(el);
  document.body.appendChild(root);
  const orig = window.__bench.orig;
  const deltas = [], work = [];
  let last = null, frac = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const step = (ts) => {
      if (last !== null) deltas.push(ts - last);
      last = ts;
      const elapsed = performance.now() - t0;
      frac = Math.min(1, elapsed / duration);
      const w0 = performance.now();
      el.innerHTML = render(text.slice(0, Math.floor(text.length * frac)));
      work.push(performance.now() - w0);
      if (frac >= 1 || elapsed > limit) resolve(); else orig(step);
    };
    orig(step);
  });
  root.remove();
  return { deltas, work, frac, frames: work.length };
}
"""


SCROLL_JS = """
async ({ cell, step }) => {
  // Scroll the notebook through the answer, `step` viewports per animation frame (a fast wheel
  // or a dragged scrollbar); frame-to-frame deltas of these frames (layout and paint included).
  const c = document.querySelectorAll(".jp-Notebook .jp-Cell")[cell];
  const answer = c.querySelector(".nbstream-root [data-testid=answer]");
  let scroller = answer.parentElement;
  const scrolls = (e) => e.scrollHeight > e.clientHeight
    && /auto|scroll/.test(getComputedStyle(e).overflowY);
  while (scroller && !scrolls(scroller)) scroller = scroller.parentElement;
  const orig = window.__bench.orig;
  const top = () => answer.getBoundingClientRect().top;
  scroller.scrollTop += top() - 100; // the answer's start near the top of the viewport
  const px = Math.round(scroller.clientHeight * step);
  const deltas = [];
  let last = null;
  // the jump to the answer's start is not part of the scroll: 10 frames to settle
  for (let i = 0; i < 10; i++) await new Promise((resolve) => orig(resolve));
  await new Promise((resolve) => {
    const frame = (ts) => {
      if (last !== null) deltas.push(ts - last);
      last = ts;
      if (answer.getBoundingClientRect().bottom < scroller.clientHeight) return resolve();
      scroller.scrollTop += px;
      orig(frame);
    };
    orig(frame);
  });
  return { deltas, px, height: answer.getBoundingClientRect().height };
}
"""


def rich_text(tokens: int) -> str:
    """About ``tokens`` tokens of Markdown with code: the demo answer (headings, lists, a fenced
    Python block, a table, inline and display math) repeated. Streamed back by the ``echo``
    model, one word-sized token per chunk."""
    return "\n\n".join(["".join(demo_tokens())] * rich_repeats(tokens))


def rich_cell(tokens: int) -> str:
    """The notebook line that builds the same text in the kernel."""
    return (
        "from nbstream.server.demo import demo_tokens\n"
        f"RICH = '\\n\\n'.join([''.join(demo_tokens())] * {rich_repeats(tokens)})"
    )


def rich_repeats(tokens: int) -> int:
    answer = "".join(demo_tokens())
    return max(1, round(tokens / len(tokenize(answer + "\n\n"))))


def build_baseline_bundle(out: Path) -> str:
    """Bundle ``bench/fullrender.js`` (the widget's renderer) with the repo's esbuild."""
    esbuild = REPO / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise SystemExit("bench_browser needs esbuild: run `npm ci` in the repository first")
    subprocess.run(
        [
            str(esbuild),
            str(REPO / "bench" / "fullrender.js"),
            "--bundle",
            "--format=iife",
            "--minify",
            "--loader:.woff2=empty",
            "--loader:.woff=empty",
            "--loader:.ttf=empty",
            "--alias:katex=./node_modules/katex/dist/katex.mjs",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        cwd=REPO,
        check=True,
    )
    return out.read_text()


def summary(values: list[float], unit: str = "ms") -> str:
    if not values:
        return "(none)"
    return (
        f"p50 {median(values):.1f} {unit}, p95 {percentile(values, 95):.1f} {unit}, "
        f"max {max(values):.1f} {unit} (n={len(values)})"
    )


def render_cost(
    nb: NotebookPage,
    tokens: int,
    text: str,
    quick: bool,
    profile: Path | None = None,
    trace: Path | None = None,
) -> dict[str, Any]:
    page = nb.page
    cdp = None
    if trace is not None:  # a Chromium trace (style, layout, paint, tasks) of the render
        page.context.browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    if profile is not None:  # a CPU profile of the page while the stream renders
        cdp = page.context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 500})
        cdp.send("Profiler.start")
    page.evaluate("() => window.__bench.start()")
    t0 = time.monotonic()
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered()
    # Not widget.wait_status(): Playwright's locators walk the whole DOM in script on every poll
    # (3.4 s of the page's CPU in a 100k-token run, measured with --profile); one native
    # querySelector every 250 ms does not disturb the frames being measured.
    page.wait_for_function(
        WIDGET_STATUS_JS, arg={"cell": 1, "status": "done"}, polling=250, timeout=600_000
    )
    done_at = time.monotonic()
    done_ms = page.evaluate("() => performance.now() - window.__bench.rec.t0")
    page.wait_for_function(
        WIDGET_DONE_JS, arg={"cell": 1, "status": "done"}, polling=100, timeout=600_000
    )
    duration = time.monotonic() - t0
    catch_up = time.monotonic() - done_at
    rec = page.evaluate("() => window.__bench.stop()")
    if trace is not None:
        trace.write_bytes(page.context.browser.stop_tracing())
        print_trace(trace)
    if cdp is not None and profile is not None:
        cpu = cdp.send("Profiler.stop")["profile"]
        profile.write_text(json.dumps(cpu))
        print_profile(cpu, profile)
    gaps = widget.root.get_attribute("data-gaps")
    shown = widget.copied_text()
    if shown != text:
        raise SystemExit(f"the widget holds {len(shown):,} chars, expected {len(text):,}")
    limit = 30_000 if quick else 120_000
    base = page.evaluate(BASELINE_JS, {"text": text, "duration": duration * 1000, "limit": limit})
    return {
        "duration": duration,
        "catch_up": catch_up,
        "rec": rec,
        "base": base,
        "paint_chars": len(shown),
        "gaps": gaps,
        "done_ms": done_ms,
    }


TRACE_CATEGORIES = ["devtools.timeline"]
TOC = "@jupyterlab/toc-extension:registry"  # JupyterLab's table of contents settings


def print_trace(path: Path, top: int = 20) -> None:
    """Time of the page's main thread by trace event name (complete events; nested events
    are counted in their own row too, so rows overlap: RunTask holds everything)."""
    events = json.loads(path.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    by_name: dict[str, list[float]] = {}
    for e in events:
        if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in main and "dur" in e:
            by_name.setdefault(e["name"], []).append(e["dur"] / 1000)
    print(f"  trace ({path}): main-thread time by event (ms total, count, max):")
    for n, ds in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:top]:
        print(f"    {sum(ds):9.1f} ms {len(ds):7d} x  max {max(ds):7.1f} ms  {n}")


def print_profile(cpu: dict[str, Any], path: Path, top: int = 25) -> None:
    """Self time by function, and the time under a few named renderer stages (inclusive)."""
    nodes = {n["id"]: n for n in cpu["nodes"]}
    parent = {c: n["id"] for n in cpu["nodes"] for c in n.get("children", [])}
    self_ms: dict[int, float] = {}
    for sample, dt in zip(cpu["samples"], cpu["timeDeltas"], strict=True):
        self_ms[sample] = self_ms.get(sample, 0.0) + dt / 1000
    total = sum(self_ms.values())

    def name(node_id: int) -> str:
        f = nodes[node_id]["callFrame"]
        url = f["url"].rsplit("/", 1)[-1][:40]
        return f"{f['functionName'] or '(anon)'} {url}:{f['lineNumber'] + 1}"

    by_name: dict[str, float] = {}
    for node_id, t in self_ms.items():
        by_name[name(node_id)] = by_name.get(name(node_id), 0.0) + t
    print(f"  CPU profile ({path}): {total:.0f} ms sampled; top self time:")
    for n, t in sorted(by_name.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {t:8.1f} ms {t / total * 100:5.1f}%  {n}")
    # inclusive time under functions whose name matches a stage (each sample counted once/stage)
    stages = {
        "paint (view)": ("paint", "pump"),
        "markdown-it render": ("render",),
        "katex": ("renderToString", "renderToHTMLTree", "buildTree"),
        "highlight.js": ("highlight", "_highlight"),
        "DOMPurify sanitize": ("sanitize",),
        "innerHTML set": ("set innerHTML",),
        "(garbage collector)": ("(garbage collector)",),
        "(idle)": ("(idle)",),
        "(program)": ("(program)",),
    }
    print("  inclusive time by stage (function name match):")
    for stage, names in stages.items():
        t = 0.0
        for node_id, dt in self_ms.items():
            cur: int | None = node_id
            while cur is not None:
                if nodes[cur]["callFrame"]["functionName"] in names:
                    t += dt
                    break
                cur = parent.get(cur)
        print(f"    {stage:22s} {t:8.1f} ms {t / total * 100:5.1f}%")


def late_view(
    nb: NotebookPage, text: str, trace: Path | None = None, profile: Path | None = None
) -> dict[str, Any]:
    """The whole answer arriving at once (a reload, a late snapshot, a second view): cell 7
    displays the finished 100k-token view again; frame times until that view shows it all."""
    page = nb.page
    if trace is not None:
        page.context.browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    cdp = None
    if profile is not None:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 500})
        cdp.send("Profiler.start")
    page.evaluate("() => window.__bench.start()")
    t0 = time.monotonic()
    nb.run_cell(7, wait=False)
    StreamWidget(nb, 7).wait_rendered(timeout=120)
    page.wait_for_function(
        WIDGET_DONE_JS, arg={"cell": 7, "status": "done"}, polling=100, timeout=600_000
    )
    duration = time.monotonic() - t0
    rec = page.evaluate("() => window.__bench.stop()")
    if trace is not None:
        trace.write_bytes(page.context.browser.stop_tracing())
        print_trace(trace)
    if cdp is not None and profile is not None:
        cpu = cdp.send("Profiler.stop")["profile"]
        profile.write_text(json.dumps(cpu))
        print_profile(cpu, profile)
    chars = page.evaluate(
        "() => document.querySelectorAll('.jp-Notebook .jp-Cell')[7]"
        ".querySelector('[data-testid=answer]').textContent.length"
    )
    return {"duration": duration, "rec": rec, "chars": chars}


def scroll_through(nb: NotebookPage, cell: int, step: float) -> dict[str, Any]:
    return nb.page.evaluate(SCROLL_JS, {"cell": cell, "step": step})


def screenshots(nb: NotebookPage) -> list[Path]:
    """A second run of the same stream, for pictures only (screenshots disturb frame times)."""
    nb.run_cell(1, wait=False)
    widget = StreamWidget(nb, 1).wait_rendered()
    wait_until(
        lambda: (
            widget.answer.evaluate("e => e.textContent.length") > 3000 or widget.status() == "done"
        ),
        300,  # a page busy rendering answers slowly
        what="3,000 characters on screen",
    )
    nb.cell(1).evaluate("e => e.scrollIntoView()")  # no waiting for a growing element to settle
    paths = [nb.screenshot("bench-render-midstream")]
    nb.page.wait_for_function(
        WIDGET_DONE_JS, arg={"cell": 1, "status": "done"}, polling=250, timeout=600_000
    )
    widget.part("status").evaluate("e => e.scrollIntoView({block: 'end'})")  # the answer's end
    paths.append(nb.screenshot("bench-render-done"))
    # Replace the big widget by a small one, so the 100k-token DOM does not slow down the
    # Stop and first-token measurements that follow.
    nb.run_cell(6, wait=True)
    nb.run_cell(1, wait=True)
    StreamWidget(nb, 1).wait_rendered().wait_status("done", timeout=60)
    return paths


def stop_latency(nb: NotebookPage, llm: Any, cell: int, trials: int) -> list[float]:
    """Click Stop ``trials`` times; ms from the click to the server seeing the disconnect."""
    offset = time.time() - time.monotonic()
    latencies = []
    for _ in range(trials):
        before = len(llm.requests)
        nb.run_cell(cell, wait=False)
        widget = StreamWidget(nb, cell).wait_rendered()
        wait_until(lambda w=widget: len(w.answer.inner_text()) > 200, 30, what="streamed text")
        wait_until(lambda b=before: len(llm.requests) > b, 10, what="the request")
        record = llm.requests[-1]
        widget.click("stop")
        record.wait(10)
        widget.wait_status("stopped", timeout=30)
        nb.wait_cell_done(cell, timeout=30)
        clicked = nb.page.evaluate("() => window.__bench.stopClick")
        if not record.disconnected or record.ended is None:
            raise SystemExit(f"the server did not see a disconnect: {record.end_reason}")
        latencies.append((record.ended + offset) * 1000 - clicked)
    return latencies


def first_token(nb: NotebookPage, trials: int) -> list[float]:
    """ms from the kernel seeing the first content chunk to its text in the widget's DOM."""
    out = []
    for _ in range(trials):
        nb.page.evaluate("() => window.__bench.watchFirstText(4)")
        nb.run_cell(4, wait=True)
        widget = StreamWidget(nb, 4).wait_rendered()
        widget.wait_status("done", timeout=30)
        nb.run_cell(5, wait=True)
        py_t = float(nb.output_text(5).strip().split()[-1])
        dom_t = nb.page.evaluate("() => window.__bench.firstText")
        if dom_t is None:
            raise SystemExit("the MutationObserver never saw the first text")
        out.append(dom_t - py_t * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 tokens, 2 trials")
    parser.add_argument("--render-only", action="store_true", help="skip Stop and first token")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a CPU profile of the page during the render run (.cpuprofile) and summarize it",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        help="write a Chromium trace of the render run (chrome://tracing JSON), summarized",
    )
    parser.add_argument(
        "--trace-late",
        type=Path,
        help="write a Chromium trace of the second view (the whole answer at once), summarized",
    )
    parser.add_argument(
        "--profile-late",
        type=Path,
        help="write a CPU profile of the second view (the whole answer at once), summarized",
    )
    parser.add_argument(
        "--no-containment",
        action="store_true",
        help="experiment: switch off the widget's content-visibility:auto on finished blocks",
    )
    parser.add_argument(
        "--toc-no-output",
        action="store_true",
        help="experiment: JupyterLab's table of contents without output headings "
        "(includeOutput: false, in the bench's throwaway settings)",
    )
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.trials = 3_000, 2
    header(f"widget in real JupyterLab: {args.tokens:,}-token render, {args.trials} trials")
    if not CHROMIUM.exists():
        raise SystemExit(f"bench_browser needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    text = rich_text(args.tokens)
    home = Path(tempfile.mkdtemp(prefix="nbstream-bench-"))
    bundle = build_baseline_bundle(home / "fullrender.js")
    server = None
    try:
        with serve() as llm, sync_playwright() as pw:
            server = start_jupyter("lab", home / "jupyter")
            if args.toc_no_output:
                set_lab_setting(server, TOC, {"includeOutput": False})
                print(f"experiment: {TOC} includeOutput false")
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(
                    viewport={"width": 1280, "height": 900},
                    permissions=["clipboard-read", "clipboard-write"],
                )
                context.add_init_script(INIT_SCRIPT)
                page = context.new_page()
                page.set_default_timeout(60_000)
                first_hook = (
                    "import time\nFIRST = {}\n"
                    "def first_hook(run, events):\n"
                    "    if 't' not in FIRST and run.state.first_content:\n"
                    "        FIRST['t'] = time.time()"
                )
                cells = [
                    setup_cell(llm.base_url)
                    + f"\n{first_hook}\n{rich_cell(args.tokens)}\nSHOW_LATE = True",
                    "view = nbstream.stream(ask(RICH, model='echo'), background=True)",
                    "view = nbstream.stream(ask(tokens=100000, tokens_per_s=500), background=True)",
                    "view = nbstream.stream(ask(tokens=100000, tokens_per_s=500), "
                    "background=True)\nawait view",
                    "FIRST.clear()\nview = nbstream.stream(ask(tokens=30, ttft=0.5, "
                    "tokens_per_s=100), hooks=[first_hook], background=True)",
                    "print('FIRST', repr(FIRST['t']))",
                    "RICH = 'A *small* answer.'",
                    "display(view) if SHOW_LATE else None",
                    "SHOW_LATE = False",
                ]
                name = write_notebook(server, "bench.ipynb", cells)
                nb = NotebookPage(page, server, name).open(timeout=120)
                page.add_script_tag(content=bundle)
                if args.no_containment:
                    page.add_style_tag(content=NO_CONTAINMENT_CSS)
                    print(f"experiment: injected CSS {NO_CONTAINMENT_CSS!r}")
                nb.run_cell(0, wait=True)

                render = render_cost(nb, args.tokens, text, args.quick, args.profile, args.trace)
                report_render(render, args.tokens, text)
                late = late_view(nb, text, args.trace_late, args.profile_late)
                long = late["rec"]["long"]
                print(
                    f"  the whole answer at once (a second view of it, as after a reload): "
                    f"complete in {late['duration']:.1f} s, "
                    f"frame time {summary(late['rec']['deltas'])}; "
                    f"long tasks {len(long)}, {sum(long):.0f} ms"
                )
                big = ", ".join(f"{d:.0f} ms at {at / 1000:+.1f} s" for at, d in late["rec"]["big"])
                print(f"    frames > 500 ms (from the cell's run): {big or 'none'}")
                if late["chars"] < len(text) * 0.9:
                    raise SystemExit(f"the second view shows only {late['chars']:,} characters")
                for step in (0.5, 2.0):
                    sc = scroll_through(nb, 1, step)
                    print(
                        f"  scrolling through the answer ({sc['height'] / 1000:,.0f}k px), "
                        f"{sc['px']} px per frame: frame time {summary(sc['deltas'])}",
                        flush=True,
                    )
                nb.run_cell(8, wait=True)
                nb.run_cell(7, wait=True)  # its output goes: the 100k DOM once, not twice
                shots = screenshots(nb)
                print("screenshots: " + ", ".join(str(p.relative_to(REPO)) for p in shots))
                if args.render_only:
                    return
                first = first_token(nb, args.trials)
                print(f"first token, SDK chunk -> DOM: {summary(first)}  (target <= 20 ms)")
                stop_bg = stop_latency(nb, llm, 2, args.trials)
                print(f"stop latency, background mode: {summary(stop_bg)}  (target p95 <= 100 ms)")
                stop_await = stop_latency(nb, llm, 3, args.trials)
                print(f"stop latency, waiting (await): {summary(stop_await)}")
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


def report_render(render: dict[str, Any], tokens: int, text: str) -> None:
    rec, base = render["rec"], render["base"]
    work = rec["work"]
    print(
        f"render: {tokens:,} tokens ({len(text):,} chars) streamed and painted in "
        f"{render['duration']:.1f} s (of which {render['catch_up']:.1f} s after the stream's end, "
        "until the widget showed all of it fully rendered)"
    )
    print(f"  nbstream frame time (rAF delta):        {summary(rec['deltas'])}")
    after = [d for d, at in zip(rec["deltas"], rec["at"], strict=True) if at > render["done_ms"]]
    print(f"  of which after the stream's end:        {summary(after)}")
    print(f"  nbstream rAF script work per frame:     {summary(work)}")
    print(f"  nbstream long tasks (>50 ms): {len(rec['long'])}, total {sum(rec['long']):.0f} ms")
    print(f"  baseline (full re-render each frame) frame time: {summary(base['deltas'])}")
    print(
        f"  baseline render work per frame:          {summary(base['work'])}; reached "
        f"{base['frac'] * 100:.0f}% of the text in the time budget"
    )
    done = render["done_ms"]
    big = ", ".join(f"{d:.0f} ms at {(at - done) / 1000:+.1f} s" for at, d in rec["big"])
    print(f"  frames > 500 ms (start vs. status 'done' seen, 250 ms polling): {big or 'none'}")
    print(f"  frames the widget found missing (each asked Python for a resync): {render['gaps']}")
    if len(work) < 10:
        print(
            f"  WARNING: the widget painted in only {len(work)} frames while streaming (it should "
            "paint every frame): the frame times below do not measure incremental rendering"
        )
    ratio = percentile(base["deltas"], 95) / percentile(rec["deltas"], 95)
    print(
        f"  frame time p95: nbstream {percentile(rec['deltas'], 95):.1f} ms vs baseline "
        f"{percentile(base['deltas'], 95):.1f} ms ({ratio:.1f}x); target <= 16 ms "
        "(60 Hz frames are 16.7 ms apart)",
        flush=True,
    )


if __name__ == "__main__":
    main()

"""Cold start: Shift+Enter on ``nbstream.chat("…")`` in a fresh kernel -> the first token.

Run: ``.venv/bin/python bench/bench_cold_start.py [--trials 5] [--split] [--browser]
[--no-extension] [--quick]``

nbstream's local server runs in a child process; the kernels reach it through
``OPENAI_BASE_URL`` (with ``OPENAI_API_KEY`` set, as a user talking to a real server: the bundled
server is not started). Its own time to the first token (``server TTFT``: a raw HTTP request's
first ``data:`` line with content, measured here before each trial) is subtracted from the
figures.

Kernel phase (``jupyter_client``, no browser): for each trial, alternating, a fresh kernel runs
one of three first cells, timed from the execute_request to the iopub message that carries the
first token:

- ``idle``: ``1``, the kernel's own first cell (its execute_result);
- ``bare``: the bare SDK, ``import openai`` and ``create(stream=True)`` until the first content
  chunk, printed (its stream message): what the first token costs without nbstream;
- ``nbstream``: ``import nbstream`` and ``view = nbstream.chat(PROMPT, model="demo")`` (the first
  frame with text, a widget ``comm_msg``).

nbstream's bytecode is compiled first (as an installed package has it). Then one more fresh
kernel per cell with ``PYTHONPROFILEIMPORTTIME=1`` (``-X importtime``) gives the imports the cell
did and their cumulative times (the kernel's stderr after a marker).

Split (``--split``): more fresh kernels run the nbstream cell in steps that each print a marker
as they end (the widget stack's import, nbstream's request and run modules, the HTTP library,
then ``chat()``): the arrival of each marker, of the view's ``display_data`` and of the first
frame with text on iopub give each step's time.

Browser phase (``--browser``): real JupyterLab in headless Chromium, one browser page; each trial
opens a new notebook with the one cell (a fresh kernel; JupyterLab and nbstream's extension load
with the page, before the timing, as when a user opens a second notebook). An init script stamps
the Shift+Enter keydown and a MutationObserver the first text in the cell's output (the widget's
answer, or the bare cell's printed token) and the widget's root element. ``--no-extension`` runs
the same without nbstream's JupyterLab extension: the page then loads the widget's code from the
kernel's bundle model (0.5 MB: transfer, import, evaluation), which is the bundle's share of the
cold start where the extension is absent.
"""

from __future__ import annotations

import argparse
import compileall
import http.client
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from _common import REPO, header, median
from jupyter_client.manager import start_new_kernel

from nbstream.server import serve

PROMPT = "Explain streaming in notebooks"
CELLS = {
    "idle": "1",
    "bare": (
        "import openai\n"
        "client = openai.OpenAI()\n"
        "for chunk in client.chat.completions.create(model='demo', stream=True, "
        f"messages=[{{'role': 'user', 'content': {PROMPT!r}}}]):\n"
        "    if chunk.choices and chunk.choices[0].delta.content:\n"
        "        print(chunk.choices[0].delta.content, flush=True)\n"
        "        break"
    ),
    "nbstream": f"import nbstream\nview = nbstream.chat({PROMPT!r}, model='demo')",
}
MARK = "NBSTREAM-BENCH-MARK"


def server_ttft(base_url: str) -> float:
    """Seconds from sending a streaming request to its first content line (raw HTTP)."""
    url = urlparse(base_url)
    body = json.dumps(
        {"model": "demo", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    )
    started = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    conn.request(
        "POST",
        url.path.rstrip("/") + "/chat/completions",
        body,
        {"Content-Type": "application/json", "Authorization": "Bearer local"},
    )
    response = conn.getresponse()
    while True:
        line = response.readline()
        if not line or (line.startswith(b"data:") and b'"content":"' in line):
            break
    took = time.perf_counter() - started
    conn.close()
    return took


def first_token_message(kind: str, msg: dict[str, Any]) -> bool:
    """Whether an iopub message carries the cell's first token (or, idle, its result)."""
    msg_type = msg["msg_type"]
    content = msg["content"]
    if kind == "idle":
        return msg_type == "execute_result"
    if kind == "bare":
        return msg_type == "stream" and bool(content.get("text", "").strip())
    if msg_type != "comm_msg":
        return False
    data = (content.get("data") or {}).get("content") or {}
    return data.get("t") == "f" and any(p.get("x") for p in data.get("p") or ())


def kernel_trial(kind: str, env: dict[str, str], stderr_path: Path | None = None) -> float:
    """A fresh kernel runs ``CELLS[kind]``: seconds from the request to the first token."""
    kwargs: dict[str, Any] = {"env": env}
    stderr = None
    if stderr_path is not None:
        stderr = stderr_path.open("wb")
        kwargs["stderr"] = stderr
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90, **kwargs)
    try:
        if stderr_path is not None:  # imports from here on are the cell's
            kc.execute(f"import os; os.write(2, b'{MARK}\\n')", store_history=False)
            kc.get_shell_msg(timeout=30)
        while True:  # drain what the kernel published so far
            try:
                kc.get_iopub_msg(timeout=0.3)
            except queue.Empty:
                break
        started = time.perf_counter()
        msg_id = kc.execute(CELLS[kind], store_history=False)
        took = None
        deadline = time.monotonic() + 60
        while took is None and time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if first_token_message(kind, msg):
                took = time.perf_counter() - started
            elif msg["msg_type"] == "error":
                raise SystemExit(f"{kind}: the cell failed: {msg['content'].get('evalue')}")
        if took is None:
            raise SystemExit(f"{kind}: no first token within 60 s")
        while True:  # let the cell finish before the kernel goes
            reply = kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        return took
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        if stderr is not None:
            stderr.close()


# The nbstream cell in steps, each announced on stdout as it ends (its stream message's arrival
# on iopub timestamps it, as the first token's does): what a cold nbstream.chat spends where.
SPLIT_STEPS = {
    "S1": "import nbstream.notebook.api: anywidget, ipywidgets, nbstream's view modules",
    "S2": "nbstream's request, resilience and run modules",
    "S3": "the HTTP library (httpx2 / httpx, imported by the first request)",
}
SPLIT_CELL = (
    "import sys\n"
    "import nbstream.notebook.api\n"
    "print('S1', flush=True)\n"
    "import nbstream.sources.request, nbstream.resilience.layer, nbstream.run.stream_run\n"
    "print('S2', flush=True)\n"
    "from nbstream.sources.openai_http import http_library\n"
    "http_library()\n"
    "print('S3', flush=True)\n"
    f"view = nbstream.chat({PROMPT!r}, model='demo')"
)


def split_trial(env: dict[str, str]) -> dict[str, float]:
    """One fresh kernel runs SPLIT_CELL: seconds from the request to each step's end, to the
    view's display_data and to the first frame with text."""
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90, env=env)
    try:
        while True:
            try:
                kc.get_iopub_msg(timeout=0.3)
            except queue.Empty:
                break
        started = time.perf_counter()
        msg_id = kc.execute(SPLIT_CELL, store_history=False)
        marks: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while "token" not in marks and time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            now = time.perf_counter() - started
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_input":
                marks.setdefault("input", now)
            elif kind == "stream":
                for line in content.get("text", "").split():
                    if line in SPLIT_STEPS:
                        marks.setdefault(line, now)
            elif kind == "display_data":
                marks.setdefault("view", now)
            elif first_token_message("nbstream", msg):
                marks["token"] = now
            elif kind == "error":
                raise SystemExit(f"split: the cell failed: {content.get('evalue')}")
        while True:
            reply = kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        return marks
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def split_phase(args: argparse.Namespace, base_url: str, env: dict[str, str]) -> None:
    """The nbstream cell's steps in fresh kernels (medians of each step's own time)."""
    trials = [split_trial(env) for _ in range(args.trials)]
    ttft = median([server_ttft(base_url) for _ in range(args.trials)])
    order = [
        ("input", "the kernel's own start of the cell (execute_input)"),
        *SPLIT_STEPS.items(),
        ("view", "chat(): the request made, the view built and shown (display_data)"),
        (
            "token",
            "the HTTP client (its transport's import, the TLS context), the request, the first "
            "chunk, the first frame",
        ),
    ]
    print(f"split of the nbstream cell, {len(trials)} fresh kernels (medians, ms):")
    previous = "start"
    for key, what in order:
        steps = [t[key] - (t[previous] if previous != "start" else 0.0) for t in trials]
        print(f"  {median(steps) * 1e3:7.1f}  {what}")
        previous = key
    total = median([t["token"] for t in trials])
    print(
        f"  first token {total * 1e3:.0f} ms; minus the server's TTFT ({ttft * 1e3:.0f} ms): "
        f"{(total - ttft) * 1e3:.0f} ms"
    )


def import_split(text: str, top: int = 12) -> tuple[float, list[tuple[float, str]]]:
    """The cell's imports from ``-X importtime`` lines after the marker: total seconds of the
    top-level ones and the heaviest modules (cumulative)."""
    lines = text.split(MARK, 1)[-1].splitlines()
    total = 0.0
    heavy: list[tuple[float, str]] = []
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in lines:
        m = pattern.match(line)
        if not m:
            continue
        cumulative, depth, name = int(m.group(2)) / 1e6, len(m.group(3)), m.group(4)
        if depth == 1:
            total += cumulative
        if depth <= 3:
            heavy.append((cumulative, ("  " * (depth - 1)) + name))
    heavy.sort(reverse=True)
    return total, heavy[:top]


def ms(values: list[float]) -> str:
    return (
        f"median {median(values) * 1e3:.0f} ms (min {min(values) * 1e3:.0f}, max "
        f"{max(values) * 1e3:.0f}, n={len(values)})"
    )


def kernel_phase(args: argparse.Namespace, base_url: str, env: dict[str, str]) -> None:
    results: dict[str, list[float]] = {k: [] for k in CELLS}
    ttfts = []
    for _ in range(args.trials):
        for kind in CELLS:
            ttfts.append(server_ttft(base_url))
            results[kind].append(kernel_trial(kind, env))
    ttft = median(ttfts)
    print(f"server TTFT (raw HTTP, first content line): {ms(ttfts)}")
    print("kernel phase: execute_request -> first token on iopub, fresh kernel each")
    for kind, values in results.items():
        print(f"  {kind:9s} {ms(values)}")
    ours, bare, idle = (median(results[k]) for k in ("nbstream", "bare", "idle"))
    print(
        f"  nbstream - server TTFT: {(ours - ttft) * 1e3:.0f} ms (target <= 300 ms); over the "
        f"bare SDK: {(ours - bare) * 1e3:+.0f} ms; the kernel's own first cell: "
        f"{idle * 1e3:.0f} ms"
    )
    tmp = Path(tempfile.mkdtemp(prefix="nbstream-cold-"))
    try:
        for kind in ("bare", "nbstream"):
            path = tmp / f"{kind}.err"
            kernel_trial(kind, {**env, "PYTHONPROFILEIMPORTTIME": "1"}, path)
            total, heavy = import_split(path.read_text("utf-8", "replace"))
            print(
                f"imports of the {kind} cell (-X importtime, one fresh kernel): "
                f"{total * 1e3:.0f} ms"
            )
            for seconds, name in heavy:
                print(f"    {seconds * 1e3:7.1f} ms  {name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


INIT_SCRIPT = """
(() => {
  const B = (window.__cold = { key: null, root: null, text: null, cell: -1 });
  const now = () => performance.timeOrigin + performance.now();
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.shiftKey && B.cell >= 0 && B.key === null) B.key = now();
  }, true);
  B.watch = (cell, widget) => {
    Object.assign(B, { key: null, root: null, text: null, cell });
    const outputOf = () => document.querySelectorAll(".jp-Notebook .jp-Cell")[cell]
      ?.querySelector(".jp-OutputArea");
    const old = new Set(outputOf()?.querySelectorAll(".jp-OutputArea-output") ?? []);
    const obs = new MutationObserver(() => {
      if (B.key === null) return;
      const area = outputOf();
      if (!area) return;
      if (B.root === null && area.querySelector(".nbstream-root")) B.root = now();
      for (const out of area.querySelectorAll(".jp-OutputArea-output")) {
        if (old.has(out)) continue;
        const answer = out.querySelector(".nbstream-root [data-testid=answer]");
        const text = widget ? answer?.textContent : out.textContent;
        if (text && text.trim().length > 0) { B.text = now(); obs.disconnect(); return; }
      }
    });
    obs.observe(document.body, { subtree: true, childList: true, characterData: true });
  };
})();
"""


def browser_phase(
    args: argparse.Namespace, base_url: str, extension: bool, openai_env: dict[str, str]
) -> None:
    sys.path.insert(0, str(REPO / "tests" / "browser"))
    from browser_jupyter import start_jupyter
    from browser_page import NotebookPage, wait_until, write_notebook
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"--browser needs Chromium at {CHROMIUM}")
    label = "with nbstream's JupyterLab extension" if extension else "without the extension"
    home = Path(tempfile.mkdtemp(prefix="nbstream-cold-lab-"))
    server = None
    try:
        with sync_playwright() as pw:
            disabled = () if extension else ("nbstream",)
            # the kernels talk to this script's server (start_jupyter drops the OpenAI variables
            # from the environment it inherits: without them the bare cell failed at once and
            # nbstream's used the bundled server, at its demo pace)
            server = start_jupyter(
                "lab", home / "jupyter", disabled_extensions=disabled, extra_env=openai_env
            )
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(INIT_SCRIPT)
                page = context.new_page()
                page.set_default_timeout(60_000)
                results: dict[str, list[float]] = {"bare": [], "nbstream": []}
                roots: list[float] = []
                ttfts = []
                for trial in range(args.trials):
                    for kind in ("bare", "nbstream"):
                        # a new notebook, a new kernel (the page's code loads before the timing)
                        name = write_notebook(server, f"cold-{trial}-{kind}.ipynb", [CELLS[kind]])
                        nb = NotebookPage(page, server, name).open(timeout=120)
                        ttfts.append(server_ttft(base_url))
                        widget = "true" if kind == "nbstream" else "false"
                        page.evaluate(f"() => window.__cold.watch(0, {widget})")
                        nb.run_cell(0, wait=False)
                        wait_until(
                            lambda: page.evaluate("() => window.__cold.text") is not None,
                            60,
                            0.05,
                            f"the first token of the {kind} cell",
                        )
                        got = page.evaluate("() => window.__cold")
                        results[kind].append((got["text"] - got["key"]) / 1e3)
                        if kind == "nbstream" and got["root"] is not None:
                            roots.append((got["root"] - got["key"]) / 1e3)
                        nb.wait_cell_done(0, 60)
                        shown = nb.output_text(0)
                        wrong = ("Traceback", "Missing credentials", "bundled local demo server")
                        if any(w in shown for w in wrong):
                            raise SystemExit(f"the {kind} cell did not reach {base_url}: {shown}")
                        kernel = server.kernel_for(name)
                        if kernel is not None:  # one kernel at a time
                            server.api(f"api/kernels/{kernel['id']}", method="DELETE")
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)
    ttft = median(ttfts)
    print(f"browser phase, real JupyterLab {label}, a new notebook and kernel each trial:")
    print(f"  server TTFT (raw HTTP): {ms(ttfts)}")
    print(f"  bare SDK cell: Shift+Enter -> printed token: {ms(results['bare'])}")
    print(f"  nbstream.chat: Shift+Enter -> widget in the page: {ms(roots)}")
    print(f"  nbstream.chat: Shift+Enter -> first token in the widget: {ms(results['nbstream'])}")
    ours = median(results["nbstream"])
    print(
        f"  nbstream - server TTFT: {(ours - ttft) * 1e3:.0f} ms (target <= 300 ms); over the "
        f"bare SDK cell: {(ours - median(results['bare'])) * 1e3:+.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also in real JupyterLab")
    parser.add_argument(
        "--no-extension",
        action="store_true",
        help="with --browser: JupyterLab without nbstream's extension (the page loads the bundle)",
    )
    parser.add_argument("--browser-only", action="store_true", help="skip the kernel phase")
    parser.add_argument(
        "--split", action="store_true", help="also the nbstream cell step by step (fresh kernels)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 trial")
    args = parser.parse_args()
    if args.quick:
        args.trials = 1
    header(f"cold start of nbstream.chat in a fresh kernel, {args.trials} trials")
    # an installed package has its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE=1 would
    # compile nbstream's modules again in every fresh kernel (~100 ms more)
    compileall.compile_dir(str(REPO / "nbstream"), quiet=1)
    with serve(process=True) as llm:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "local",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        if not args.browser_only:
            kernel_phase(args, llm.base_url, env)
        if args.split:
            split_phase(args, llm.base_url, env)
        if args.browser or args.browser_only:
            openai_env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "local"}
            os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # JupyterLab's kernels inherit it
            browser_phase(args, llm.base_url, not args.no_extension, openai_env)


if __name__ == "__main__":
    main()

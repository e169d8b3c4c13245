"""Bytes per view on the wire and per answer in a notebook saved with widget state.

Run: ``.venv/bin/python bench/bench_bytes.py [--answers 10] [--quick]``

Each view's ``_esm`` is a ~1.2 KB loader and the 0.5 MB bundle + 32 KB of CSS travel once per
kernel in a shared ``_Bundle`` model (``frontend/widget.py``). Baseline, same run: a view with
the whole bundle as ``_esm`` and the CSS as ``_css`` and no shared model, as nbstream did before
(``WholeBundleView`` below, patched into ``nbstream.stream``).

1. Kernel: a real ipykernel (jupyter_client), ``nbstream.chat(...)`` answers in waiting mode from
   the bundled local server, one per cell; from the cell's iopub messages, the JSON bytes of the
   ``comm_open`` and ``comm_msg`` messages (header, metadata, content, buffers) the cell sent, and
   separately its outputs (display_data, update_display_data). Headless: no frontend says
   ``ready``, so the end re-sends the final snapshot (one more copy of the text than in a page).
2. Page: real JupyterLab in headless Chromium with "Save Widget State Automatically" on
   (``@jupyter-widgets/jupyterlab-manager:plugin`` ``saveState: true``): the bytes of the kernel
   websocket's frames the page received while each cell ran (everything: status, outputs, comm),
   then the notebook's size on disk after 1 and after ``--answers`` answers, saved with Ctrl+S.
   Targets: further view <= 5 KB beyond its text; 10 answers < 1.5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, header

sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_jupyter import set_lab_setting, start_jupyter  # noqa: E402
from browser_page import NotebookPage, StreamWidget, write_notebook  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WIDGETS = "@jupyter-widgets/jupyterlab-manager:plugin"
STATE_MIME = "application/vnd.jupyter.widget-state+json"

# How nbstream sent its views before the shared bundle: the whole bundle in every view's _esm.
BASELINE_SETUP = """
import nbstream, nbstream.notebook.api, nbstream.frontend.widget as _w
class WholeBundleView(_w.StreamView):
    _esm = _w._BUNDLE.read_text("utf-8")
    _css = _w._STYLES.read_text("utf-8")
_w._shared_bundle = lambda: None
nbstream.notebook.api.StreamView = WholeBundleView
""".strip()
SETUP = {"loader": "import nbstream", "baseline": BASELINE_SETUP}
# the README's call (no key: the bundled local server, the demo answer), paced fast
ANSWER = 'view = nbstream.chat("Explain streaming in notebooks", model="demo?rate=2000")'
TEXT_LEN = "print('TEXT', len(view.text.encode()))"


def kb(n: float) -> str:
    return f"{n / 1000:,.1f} KB"


def _msg_bytes(msg: dict[str, Any]) -> int:
    keep = {k: msg.get(k) for k in ("header", "parent_header", "metadata", "content")}
    size = len(json.dumps(keep, default=str, ensure_ascii=False).encode())
    return size + sum(len(b) for b in msg.get("buffers") or [])


def kernel_wire(views: int) -> dict[str, list[dict[str, int]]]:
    """Per cell of ``views`` answers: comm bytes, output bytes and the answer's text bytes."""
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    out: dict[str, list[dict[str, int]]] = {}
    for kind, setup in SETUP.items():
        manager, client = start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
        try:
            client.execute_interactive(setup, timeout=60)
            rows = []
            for _ in range(views):
                seen = {"comm": 0, "open": 0, "state": 0, "frames": 0, "outputs": 0}

                def hook(msg: dict[str, Any], seen: dict[str, int] = seen) -> None:
                    kind_ = msg["header"]["msg_type"]
                    if kind_ in ("comm_open", "comm_msg"):
                        size = _msg_bytes(msg)
                        seen["comm"] += size
                        method = (msg["content"].get("data") or {}).get("method")
                        part = "open" if kind_ == "comm_open" else "frames"
                        seen[part if method == "custom" or part == "open" else "state"] += size
                    elif kind_ in ("display_data", "update_display_data", "execute_result"):
                        seen["outputs"] += _msg_bytes(msg)

                client.execute_interactive(ANSWER, timeout=120, output_hook=hook)
                text: list[int] = []

                def grab(msg: dict[str, Any], text: list[int] = text) -> None:
                    if msg["header"]["msg_type"] == "stream":
                        text.append(int(msg["content"]["text"].split()[-1]))

                client.execute_interactive(TEXT_LEN, timeout=60, output_hook=grab)
                rows.append({**seen, "text": text[0]})
            out[kind] = rows
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return out


WS_COUNTER = """
(() => {
  // bytes the page receives on kernel websockets, in all and per message type: JupyterLab
  // speaks the binary v1 protocol (uint64 count, uint64 offsets, then channel, header, ...)
  const B = (window.__bytes = { received: 0, byType: {} });
  const Orig = window.WebSocket;
  const dec = new TextDecoder();
  const typeOf = (d) => {
    if (typeof d === "string") return JSON.parse(d).header.msg_type;
    const view = new DataView(d);
    const at = (i) => Number(view.getBigUint64(8 * (i + 1), true));
    return JSON.parse(dec.decode(new Uint8Array(d, at(1), at(2) - at(1)))).msg_type;
  };
  window.WebSocket = class extends Orig {
    constructor(...args) {
      super(...args);
      if (!String(args[0]).includes("/api/kernels/")) return;
      this.addEventListener("message", (e) => {
        const d = e.data;
        const n = typeof d === "string" ? new TextEncoder().encode(d).length : d.byteLength;
        B.received += n;
        let t = "?";
        try { t = typeOf(d); } catch {}
        B.byType[t] = (B.byType[t] ?? 0) + n;
      });
    }
  };
})();
"""

COMM = ("comm_open", "comm_msg")


def page_run(page: Any, server: Any, kind: str, answers: int) -> dict[str, Any]:
    """One notebook of ``answers`` answer cells in JupyterLab: websocket bytes per cell, the
    saved file's size after the first answer and after all, and what its widget state holds."""
    cells = [SETUP[kind]] + [ANSWER] * answers + [TEXT_LEN]
    name = write_notebook(server, f"bytes-{kind}.ipynb", cells)
    nb = NotebookPage(page, server, name).open(timeout=120)
    nb.run_cell(0)
    received, comm = [], []
    size_after_first = 0
    for i in range(1, answers + 1):
        before = page.evaluate("() => window.__bytes")
        nb.run_cell(i, timeout=120)
        StreamWidget(nb, i).wait_rendered().wait_status("done", timeout=60)
        after = page.evaluate("() => window.__bytes")
        received.append(after["received"] - before["received"])
        comm.append(sum(after["byType"].get(t, 0) - before["byType"].get(t, 0) for t in COMM))
        if i == 1:
            nb.save()
            size_after_first = (server.root_dir / name).stat().st_size
    nb.run_cell(answers + 1)
    text = int(nb.output_text(answers + 1).split()[-1])
    nb.save()
    path = server.root_dir / name
    notebook = json.loads(path.read_text())
    state = notebook["metadata"].get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    models = [m.get("model_name") for m in state.values()]
    # per view: its own model and its layout (the shared bundle model holds "js")
    sizes = {mid: len(json.dumps(m).encode()) for mid, m in state.items()}
    bundle = [mid for mid, m in state.items() if "js" in m.get("state", {})]
    views = [mid for mid, m in state.items() if m.get("model_name") == "AnyModel"]
    layouts = [mid for mid, m in state.items() if m.get("model_name") == "LayoutModel"]
    per_view = (sum(sizes[v] for v in views) + sum(sizes[v] for v in layouts)) / len(views)
    return {
        "received": received,
        "comm": comm,
        "bundles": len(bundle),
        "bundle_bytes": sum(sizes[b] for b in bundle),
        "state_per_view": per_view,
        "first_size": size_after_first,
        "size": path.stat().st_size,
        "text": text,
        "models": models,
        "state_bytes": len(json.dumps(state).encode()),
        "path": path,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=10)
    parser.add_argument("--kernel-views", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="copy the saved notebooks into this folder")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 answers, 2 views")
    args = parser.parse_args()
    if args.quick:
        args.answers, args.kernel_views = 3, 2
    header(f"bytes per view and per saved answer: {args.answers} answers, loader vs whole bundle")

    wire = kernel_wire(args.kernel_views)
    print("-- kernel iopub (headless, jupyter_client): per answer cell")
    for kind, rows in wire.items():
        label = "nbstream (loader + shared bundle)" if kind == "loader" else "baseline (bundle)"
        first, rest = rows[0], rows[1:]
        extra = [r["comm"] - r["text"] for r in rest]
        print(
            f"{label}: first view comm {kb(first['comm'])}; further views comm "
            f"{kb(sum(r['comm'] for r in rest) / len(rest))} each, "
            f"{kb(max(extra))} max beyond their text ({kb(rest[0]['text'])}); "
            f"outputs {kb(first['outputs'])} per answer"
        )
        avg = {k: sum(r[k] for r in rest) / len(rest) for k in ("open", "state", "frames")}
        print(
            f"{label}: a further view = comm_open {kb(avg['open'])} + state updates "
            f"{kb(avg['state'])} + frames {kb(avg['frames'])} (the text, as it streams)"
        )
    ratio = sum(r["comm"] for r in wire["baseline"][1:]) / sum(
        r["comm"] for r in wire["loader"][1:]
    )
    print(f"further view comm bytes, baseline / nbstream: {ratio:.0f}x")

    if not CHROMIUM.exists():
        raise SystemExit(f"bench_bytes needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="nbstream-bench-bytes-"))
    server = None
    results = {}
    try:
        with sync_playwright() as pw:
            server = start_jupyter("lab", home / "jupyter")
            set_lab_setting(server, WIDGETS, {"saveState": True})
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for kind in ("baseline", "loader"):  # a fresh page and kernel each
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    context.add_init_script(WS_COUNTER)
                    page = context.new_page()
                    page.set_default_timeout(60_000)
                    results[kind] = page_run(page, server, kind, args.answers)
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(results[kind]["path"], args.keep / f"{kind}.ipynb")
                    context.close()
                    server.shutdown_kernels()
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)

    print("-- JupyterLab page, saveState on: websocket bytes received per answer cell")
    n = args.answers
    for kind, label in (("loader", "nbstream"), ("baseline", "baseline (bundle)")):
        r = results[kind]
        rest, comm_rest = r["received"][1:], r["comm"][1:]
        per = (r["size"] - r["first_size"]) / (n - 1)
        print(
            f"{label}: first view {kb(r['received'][0])} (comm {kb(r['comm'][0])}), further "
            f"views {kb(sum(rest) / len(rest))} each (comm {kb(sum(comm_rest) / len(comm_rest))}"
            f" = text + {kb(max(comm_rest) - r['text'])} max; text {kb(r['text'])})"
        )
        print(
            f"{label}: saved widget state per view (its model + layout) "
            f"{kb(r['state_per_view'])} = text + {kb(r['state_per_view'] - r['text'])}; "
            f"bundle models {r['bundles']} ({kb(r['bundle_bytes'])})"
        )
        print(
            f"{label}: saved notebook, {n} answers: {kb(r['size'])} (1 answer: "
            f"{kb(r['first_size'])}); per further answer {kb(per)} = text + {kb(per - r['text'])}; "
            f"widget state {kb(r['state_bytes'])}, models {sorted(set(r['models']))}"
        )
    size_ratio = results["baseline"]["size"] / results["loader"]["size"]
    print(f"saved notebook size, baseline / nbstream: {size_ratio:.1f}x  (target < 1.5 MB)")


if __name__ == "__main__":
    main()

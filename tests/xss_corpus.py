"""The XSS corpus (../shared/xss/payloads.json, 495 hostile model outputs) run through nbstream
the way a person gets it, and a scanner for what a renderer made of it.

- :func:`answers_notebook`: a notebook whose cells stream every payload with
  ``nbstream.stream(iter([payload]))`` in a real kernel (nbclient), saved with the outputs
  nbstream writes and no widget state (JupyterLab's default), and a cell of OpenAI-shaped chunks
  that put payloads (and backticks) into tool names, ids, arguments, refusals and reasoning.
- :func:`inserted_cells_notebook`: for each payload, what ``view.insert_cell()`` asks the
  frontend to create (read from the kernel's ``set_next_input`` payload), as a ``%%markdown``
  cell, executed in a real kernel: its trusted ``text/markdown`` output is what a person sees.
- :data:`SCAN_JS` / :func:`scan_html`: unsafe DOM in a browser page / in an HTML5 parse.

Payloads run script through ``alert(...)``, ``top.__x=1`` and the like: :data:`HOOKS_JS` counts
them when added before any page script (Playwright ``add_init_script``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = ROOT.parent / "shared" / "xss" / "payloads.json"
OUTPUT_MIME = "application/vnd.nbstream.output+json"
PER_CELL = 25  # answers per cell: 50 outputs, all shown (JupyterLab trims a cell at 50)


def payloads() -> list[dict[str, Any]]:
    """The corpus, or a skip that says where it is expected."""
    if not PAYLOADS.is_file():
        pytest.skip(f"XSS corpus not found at {PAYLOADS} (../shared/xss/payloads.json)")
    return json.loads(PAYLOADS.read_text())


# An honest answer: what must still render (headings, list, table, code, inline and display math).
HONEST = r"""# Streaming in notebooks

Answers arrive as **tokens**; the widget shows them *live*:

- one item
- two items

| column | value |
|:-------|------:|
| alpha  | 1     |

```python
def add(a, b):
    return a < b
```

Inline math $e^{i\pi} + 1 = 0$ and display math:

$$\int_0^1 x^2\,dx = \frac{1}{3}$$

A [link](https://example.org/docs) and `code < span`.
"""

# Tool calls, refusals and reasoning carry model text too: OpenAI-shaped chunks put payloads
# (and backticks, which must not end a code span) into each of them.
_CHUNKS_CELL = """
def chunk(delta, finish=None):
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

def hostile(p, q):
    name = "tool`" + q + "``"
    return [
        chunk({"role": "assistant", "reasoning_content": p, "refusal": q}),
        chunk({"content": "answer: " + q, "tool_calls": [
            {"index": 0, "id": p, "type": "function",
             "function": {"name": name, "arguments": json.dumps({"q": q})}},
            {"index": 1, "id": "call`2", "type": "function",
             "function": {"name": q, "arguments": p}}]}),
        chunk({}, "tool_calls"),
    ]

for i in range({start}, {stop}):
    nbstream.stream(iter(hostile(P[i], P[(i + 1) % len(P)])))
"""


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    return env


def _execute(nb: Any, timeout: int = 600) -> Any:
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=False,  # JupyterLab's default: no widget state in the saved file
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.km_kwargs = {}  # (nbclient builds the kernel manager itself)
    return client.execute(env=_kernel_env())


def answers_notebook(
    path: Path, items: list[dict[str, Any]], *, tools: bool = False, honest: bool = True
) -> Path:
    """Stream each payload of ``items`` through nbstream in a real kernel; save at ``path``.
    ``tools``: the payloads go into tool calls, refusals and reasoning instead of the text (one
    notebook each: JupyterLab's renderer process crashed on both in one 5 MB notebook)."""
    import nbformat

    texts = [item["payload"] for item in items]
    data = path.with_suffix(".payloads.json")
    data.write_text(json.dumps(texts))
    cells = [f"import json, nbstream\nP = json.loads(open({str(data)!r}).read())"]
    if honest:
        cells.append(f"honest = nbstream.stream(iter([{HONEST!r}]))")
    for start in range(0, len(texts), PER_CELL):
        stop = min(start + PER_CELL, len(texts))
        if tools:
            cells.append(_CHUNKS_CELL.replace("{start}", str(start)).replace("{stop}", str(stop)))
        else:
            cells.append(f"for p in P[{start}:{stop}]:\n    nbstream.stream(iter([p]))")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    _execute(nb)
    nbformat.write(nb, path)
    return path


def inserted_cells_notebook(path: Path, items: list[dict[str, Any]]) -> Path:
    """For each payload, the cell ``view.insert_cell()`` makes (the kernel's ``set_next_input``
    payload), then those ``%%markdown`` cells run in a real kernel; saved at ``path``."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    texts = [item["payload"] for item in items] + [HONEST]
    data = path.with_suffix(".payloads.json")
    data.write_text(json.dumps(texts))
    km, kc = start_new_kernel(kernel_name="python3", env=_kernel_env())
    sources: list[str] = []
    try:
        kc.execute_interactive(
            f"import json, nbstream\nP = json.loads(open({str(data)!r}).read())", timeout=60
        )
        for i in range(len(texts)):
            # each answer as a person has it: streamed, then "insert it as a cell"
            reply = kc.execute_interactive(
                f"v = nbstream.stream(iter([P[{i}]]), display=False)\nv.insert_cell()",
                timeout=60,
                output_hook=lambda msg: None,
            )
            payload = [
                p
                for p in reply["content"].get("payload", [])
                if p.get("source") == "set_next_input"
            ]
            assert len(payload) == 1, reply["content"]
            sources.append(payload[0]["text"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    _execute(nb)
    nbformat.write(nb, path)
    return path


# ---- what counts as unsafe DOM ---------------------------------------------------------------

UNSAFE_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "img", "image", "base",
    "meta", "link", "form", "input", "textarea", "select", "style", "foreignobject",
    "video", "audio", "source", "portal", "template", "noscript", "xmp", "isindex",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "xlink:href", "action", "formaction", "data", "background",
                  "poster", "srcset", "codebase", "dynsrc", "lowsrc", "cite"}  # fmt: skip
SAFE_URL = re.compile(r"^(?:https?:|mailto:|#)", re.IGNORECASE)
_URL_JUNK = re.compile(r"[\x00-\x20\x7f]+")


def unsafe_attribute(tag: str, name: str, value: str) -> str | None:
    """Why attribute ``name=value`` on ``tag`` is unsafe, or None. ``id`` on a heading is the
    renderer's own anchor (mistune in nbconvert, JupyterLab's header anchors: every Markdown
    heading, the user's own cells too) and cannot clobber ``document`` (only img, form, embed,
    object and iframe names do): reported by :func:`heading_ids`, not here."""
    name = name.lower()
    if name.startswith("on"):
        return f"{tag} {name}"
    if name in URL_ATTRIBUTES:
        url = _URL_JUNK.sub("", value)
        if url and not SAFE_URL.match(url) and re.match(r"^[a-z][a-z0-9+.\-]*:", url, re.I):
            return f"{tag} {name}={value[:60]}"
    if name in ("id", "name", "form") and not (name == "id" and re.fullmatch(r"h[1-6]", tag)):
        return f"{tag} {name}={value[:60]} (clobbering)"
    if name == "style" and re.search(r"url\s*\(|expression\s*\(|@import|behavior", value, re.I):
        return f"{tag} style={value[:60]}"
    if name in ("srcdoc", "formaction", "xmlns:xlink") or name.startswith("xlink:"):
        return f"{tag} {name}"
    return None


def scan_html(fragment: str) -> list[str]:
    """Unsafe DOM in ``fragment`` as an HTML5 parser (html5lib, the browser's algorithm) builds
    it: element names of :data:`UNSAFE_TAGS`, event handlers, script URLs, clobbering names."""
    import html5lib

    tree = html5lib.parseFragment(fragment, treebuilder="etree", namespaceHTMLElements=False)
    found: list[str] = []
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.split("}")[-1].lower()
        if tag in UNSAFE_TAGS:
            found.append(f"<{tag}>")
        for name, value in el.attrib.items():
            why = unsafe_attribute(tag, str(name).split("}")[-1], str(value))
            if why:
                found.append(why)
    return found


# The same checks in a page (Playwright: ``locator.evaluate_all(SCAN_JS)``), on the live DOM.
SCAN_JS = """
roots => {
  const TAGS = new Set(__TAGS__);
  const URLS = new Set(__URLS__);
  const found = [];
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.localName.toLowerCase();
      if (TAGS.has(tag)) found.push('<' + tag + '>');
      for (const attr of el.attributes) {
        const name = attr.name.toLowerCase(), value = attr.value;
        if (name.startsWith('on')) found.push(tag + ' ' + name);
        const url = value.replace(/[\\x00-\\x20\\x7f]+/g, '');
        // ftp: JupyterLab's Markdown (marked, GFM) autolinks plain ftp:// text; runs nothing
        if (URLS.has(name) && /^[a-z][a-z0-9+.\\-]*:/i.test(url)
            && !/^(https?:|mailto:|ftp:|#)/i.test(url))
          found.push(tag + ' ' + name + '=' + value.slice(0, 60));
        if (['id', 'name', 'form'].includes(name) && !(name === 'id' && /^h[1-6]$/.test(tag)))
          found.push(tag + ' ' + name + '=' + value.slice(0, 60) + ' (clobbering)');
        if (name === 'style' && /url\\s*\\(|expression\\s*\\(|@import|behavior/i.test(value))
          found.push(tag + ' style=' + value.slice(0, 60));
        if (name === 'srcdoc' || name.startsWith('xlink:')) found.push(tag + ' ' + name);
      }
    }
  }
  return found;
}
""".replace("__TAGS__", json.dumps(sorted(UNSAFE_TAGS))).replace(
    "__URLS__", json.dumps(sorted(URL_ATTRIBUTES))
)

# Counts what ran, before any page script: dialogs and the payloads' `__x` (and `__pwned`).
HOOKS_JS = """
(() => {
  window.__ran = [];
  const note = (what) => (args) => { window.__ran.push(what + ':' + String(args).slice(0, 80)); };
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    const hit = note(name);
    Object.defineProperty(window, name, {value: (...a) => { hit(a); }, writable: false});
  }
  for (const name of ['__x', '__pwned', 'xss']) {
    Object.defineProperty(window, name, {
      configurable: false, get() { return undefined; }, set(v) { note(name)(v); }});
  }
})();
"""


def unsafe_copy_notebook(path: Path, items: list[dict[str, Any]]) -> Path:
    """The control: each payload written into a notebook unsafely (raw ``text/html``
    outputs, as nbstream did before issue 13). The same checks must find it."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# the answers, unsafe")
    from bs4 import BeautifulSoup

    # one raw output can swallow the rest of the page (an unclosed <!--, <textarea>, <svg>...):
    # the control keeps the plain onerror payloads, each of which runs on its own
    swallowers = re.compile(
        r"<!|<(?:title|textarea|xmp|plaintext|noscript|style|iframe|noembed|noframes|template"
        r"|select|math|svg|table|script|object|a\b)",
        re.IGNORECASE,
    )
    items = [i for i in items if "onerror" in i["payload"] and not swallowers.search(i["payload"])]
    for item in items:
        try:  # nbconvert parses HTML outputs with bs4's html.parser, which rejects a few
            BeautifulSoup(item["payload"], "html.parser")
        except Exception:  # noqa: BLE001 - nbconvert would fail on the whole notebook
            continue
        cell.outputs.append(
            nbformat.v4.new_output("display_data", data={"text/html": item["payload"]})
        )
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":  # python tests/xss_corpus.py OUT_DIR: build both notebooks there
    import sys

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    corpus = payloads()
    answers_notebook(out / "answers.ipynb", corpus)
    answers_notebook(out / "tools.ipynb", corpus, tools=True, honest=False)
    inserted_cells_notebook(out / "inserted.ipynb", corpus)

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
PER_CELL = 55  # payloads per cell: 9 cells for the corpus


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
    path: Path, items: list[dict[str, Any]], *, tools: bool = True, honest: bool = True
) -> Path:
    """Stream each payload of ``items`` through nbstream in a real kernel; save at ``path``."""
    import nbformat

    texts = [item["payload"] for item in items]
    data = path.with_suffix(".payloads.json")
    data.write_text(json.dumps(texts))
    cells = [f"import json, nbstream\nP = json.loads(open({str(data)!r}).read())"]
    if honest:
        cells.append(f"honest = nbstream.stream(iter([{HONEST!r}]))")
    for start in range(0, len(texts), PER_CELL):
        stop = min(start + PER_CELL, len(texts))
        cells.append(f"for p in P[{start}:{stop}]:\n    nbstream.stream(iter([p]))")
    if tools:
        for start in range(0, len(texts), PER_CELL * 2):
            stop = min(start + PER_CELL * 2, len(texts))
            cells.append(_CHUNKS_CELL.replace("{start}", str(start)).replace("{stop}", str(stop)))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
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
                p for p in reply["content"].get("payload", []) if p.get("source") == "set_next_input"
            ]
            assert len(payload) == 1, reply["content"]
            sources.append(payload[0]["text"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    _execute(nb)
    nbformat.write(nb, path)
    return path

"""Execute the tutorial notebooks in place, so their stored outputs are what nbval compares.

Run after changing what nbstream writes into a cell: ``.venv/bin/python scripts/refresh_notebooks.py
[notebooks/01-quickstart.ipynb ...]`` (all of ``notebooks/*.ipynb`` by default). nbclient applies
display updates of the running cell like a frontend; nbval ignores them, so a notebook whose
outputs change only through updates would not compare: nbstream writes an answer's final output
as a new display in waiting mode for that reason (see nbstream/frontend/output.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # as JupyterLab saves by default: no widget state (the answers last without it)
        store_widget_state=False,
        record_timing=False,  # no per-run timestamps in the cells' metadata
    )
    client.execute()
    nbformat.write(nb, path)
    print(f"refreshed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    given = [Path(p).resolve() for p in sys.argv[1:]]
    paths = given or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        refresh(path)

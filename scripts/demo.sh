#!/usr/bin/env bash
# The main job on a fresh machine: set up, stream the quickstart notebook in a real kernel
# (the bundled local server answers when no OPENAI_API_KEY is set), print its answers, then open
# JupyterLab on it. `--no-lab` (or CI set) stops after the headless run.
set -euo pipefail
cd "$(dirname "$0")/.."

lab=1
for arg in "$@"; do
    case "$arg" in
        --no-lab) lab=0 ;;
        *) echo "usage: scripts/demo.sh [--no-lab]" >&2; exit 2 ;;
    esac
done
[ -z "${CI:-}" ] || lab=0

bash scripts/setup.sh

echo "==> Streaming notebooks/01-quickstart.ipynb in a real kernel"
.venv/bin/python - <<'PY'
import nbformat
from nbclient import NotebookClient

nb = nbformat.read("notebooks/01-quickstart.ipynb", as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
ANSWER = "application/vnd.nbstream.frontend.output+json"
for cell in nb.cells:
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        # an answer's static copy (nbstream/frontend/output.py), or what the cell printed
        text = data.get("text/plain") if data.get(ANSWER, {}).get("output") == "answer" else None
        text = text or out.get("text")
        if text:
            print(text if isinstance(text, str) else "".join(text))
            print("-" * 72)
PY

if [ "$lab" = 1 ]; then
    echo "==> JupyterLab on http://127.0.0.1:8888 (Ctrl+C to stop)"
    exec .venv/bin/jupyter lab --ip 127.0.0.1 --port 8888 --no-browser notebooks/01-quickstart.ipynb
fi

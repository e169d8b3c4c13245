#!/usr/bin/env bash
# The whole test suite, the one command the README gives and CI runs:
# lint, the JavaScript unit tests, the Python tests (real kernels, real HTTP, real JupyterLab in
# headless Chromium), then every tutorial notebook executed and compared by nbval.
#
# Uses .venv/ when it exists (as `pip install -e '.[test]'` in a venv there leaves it), else the
# python on PATH. Extra arguments go to the main pytest run (e.g. `-k stop` or `-x`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ]; then
    PYTHON=.venv/bin/python
else
    PYTHON=python3
fi

started=$SECONDS
section() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

section "ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

section "JavaScript unit tests (npm test)"
npm test

section "Python tests, browser tests included (pytest)"
"$PYTHON" -m pytest "$@"

section "Tutorial notebooks (pytest --nbval notebooks/)"
nbval_args=(--nbval notebooks/)
if [ -f notebooks/nbval-sanitize.cfg ]; then
    nbval_args+=(--nbval-sanitize-with notebooks/nbval-sanitize.cfg)
fi
"$PYTHON" -m pytest "${nbval_args[@]}"

section "all tests passed"

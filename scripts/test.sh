#!/usr/bin/env bash
# The whole test suite, the one command the README gives and CI (.ci/run) runs: set up what the
# tests need (scripts/setup.sh --browser: .venv, nbstream editable with its test extras and a
# fresh widget bundle, npm packages, Debian's Chromium), then lint, the type check (mypy strict),
# the JavaScript checks (npm run check: tsc, biome) and unit tests, the Python tests (real
# kernels, real HTTP, real JupyterLab and Notebook 7 in headless Chromium), and every tutorial
# notebook executed and compared by nbval.
#
# Extra arguments go to the main pytest run (e.g. `-k stop` or `-x`).
# NBSTREAM_SKIP_SETUP=1 skips the setup step (a quicker loop on an already set-up machine).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
section() { printf '\n==> %s  (+%ss)\n' "$*" "$((SECONDS - started))"; }

if [ "${NBSTREAM_SKIP_SETUP:-}" != 1 ]; then
    section "setup (scripts/setup.sh --browser)"
    bash scripts/setup.sh --browser
fi
PYTHON=.venv/bin/python

section "ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

section "mypy (strict, configured in pyproject.toml)"
"$PYTHON" -m mypy

section "JavaScript types, lint and format (npm run check: tsc, biome)"
npm run check

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

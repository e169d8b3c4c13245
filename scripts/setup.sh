#!/usr/bin/env bash
# Set up a fresh machine for nbstream, idempotently: .venv with nbstream installed editable with
# its test extras (the hatch build hook runs `npm ci` + esbuild into nbstream/static/), the JS
# test dependencies, and with --browser Debian's Chromium for the real-browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 npm_config_fund=false npm_config_audit=false

browser=0
for arg in "$@"; do
    case "$arg" in
        --browser) browser=1 ;;
        *) echo "usage: scripts/setup.sh [--browser]" >&2; exit 2 ;;
    esac
done

if [ "$browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    echo "==> Installing Chromium (Debian package) for the browser tests"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
fi

command -v node >/dev/null || { echo "nbstream needs Node.js >= 18 and npm to build its widget" >&2; exit 1; }

echo "==> Python environment (.venv) with nbstream and its test extras"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

echo "==> JavaScript dependencies (npm ci)"
npm ci --no-audit --no-fund

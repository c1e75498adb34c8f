#!/usr/bin/env bash
# Sets up everything ailedger needs on a fresh machine: a venv with the node, the
# sidecar (torch CPU build pinned first, so nothing pulls a CUDA build) and the test
# tools, plus the npm peers the tests compare against (anvil, cast, ethers, solc).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
if command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
fi

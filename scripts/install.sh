#!/usr/bin/env bash
# Sets up everything ailedger needs on a fresh machine: a venv with the node, the
# sidecar (torch CPU build pinned first, so nothing pulls a CUDA build) and the test
# tools, plus the npm peers the tests compare against (anvil, cast, ethers, solc), the
# explorer's build tool and browser driver (explorer/), and Debian's headless Chromium that the
# explorer's browser tests drive (apt, as root, only where it is missing).
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
  npm ci --prefix explorer --no-audit --no-fund --loglevel=error
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # Quiet and with no questions (CI runs this with no stdin); the package lists of a fresh
    # machine may be empty, so read them first when the first try finds no chromium.
    export DEBIAN_FRONTEND=noninteractive
    apt_log=$(mktemp)
    if ! apt-get install -y -qq chromium >"$apt_log" 2>&1; then
      apt-get update -qq >>"$apt_log" 2>&1 || true
      apt-get install -y -qq chromium >>"$apt_log" 2>&1 || { cat "$apt_log" >&2; exit 1; }
    fi
    rm -f "$apt_log"
  else
    echo "note: the explorer's browser tests need Chromium: apt-get install chromium (as root)" >&2
  fi
fi

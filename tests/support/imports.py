"""What a statement imports, measured in a fresh interpreter (import-cost tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.procs import REPO


def modules_after(statement: str) -> set[str]:
    """Top-level packages loaded by ``statement`` in a fresh interpreter on this tree."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO)
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}

"""Regenerate ``abi/<Name>.json`` from ``sol/I<Name>.sol`` with solc-js (``solcjs --abi``).

Run from the repository root: ``python -m ai_precompiles.build_abi``. The JSON files are
committed; a unit test checks they match what solc-js produces from the interfaces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ai_precompiles.addresses import BY_NAME

HERE = Path(__file__).parent
SOLCJS = HERE.parent / "node_modules" / ".bin" / "solcjs"
#: Every precompile's interface, ``sol/I<Name>.sol``, by the names of ``addresses.BY_NAME``.
MODULES = tuple(BY_NAME)


def compile_abis(solcjs: Path = SOLCJS) -> dict[str, list[dict]]:
    """Compile every interface with ``solcjs --abi``; module name -> ABI list."""
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        srcs = [str(HERE / "sol" / f"I{m}.sol") for m in MODULES]
        subprocess.run([str(solcjs), "--abi", "--base-path", str(HERE / "sol"), "-o", tmp, *srcs],
                       check=True, capture_output=True)
        for m in MODULES:
            (path,) = [p for p in Path(tmp).glob(f"*I{m}_sol_I{m}.abi")]
            out[m] = json.loads(path.read_text())
    return out


def main() -> int:
    for name, abi in compile_abis().items():
        (HERE / "abi" / f"{name}.json").write_text(json.dumps(abi, indent=1) + "\n")
        print(f"abi/{name}.json: {sum(1 for i in abi if i['type'] == 'function')} functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())

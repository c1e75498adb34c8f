"""``import genesis`` stays light, so the CLI and tools read the dev constants from it instead
of keeping copies: eth-account and py-evm load only when a key is derived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
#: Packages that cost from a tenth of a second (eth_utils) to seconds to import, none of which
#: a constant needs.
HEAVY = ("eth_utils", "eth_account", "eth", "trio", "plyvel", "torch")


def modules_after(statement: str) -> set[str]:
    """Top-level packages loaded by ``statement`` in a fresh interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO)
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


def test_importing_genesis_loads_no_eth_account_or_py_evm():
    loaded = modules_after("import genesis\nfrom genesis import DEV_CHAIN_ID, DEV_MNEMONIC, POWER_UNIT")
    assert "genesis" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_deriving_a_key_still_works_and_loads_eth_account():
    loaded = modules_after("from genesis import DEV_MNEMONIC, derive_accounts\n"
                           "assert derive_accounts(DEV_MNEMONIC, 1)[0].address == "
                           "'0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'")
    assert "eth_account" in loaded

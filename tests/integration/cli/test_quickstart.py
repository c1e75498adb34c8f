"""README's Quickstart, run literally: its one fenced bash block, extracted from README.md,
against a fresh `ailedger dev` (a datadir of its own) and a sidecar, goes from nothing to a
claimed reward and exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import REPO, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]


def quickstart_block() -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has no ## Quickstart section"
    blocks = re.findall(r"^```bash\n(.*?)^```", match.group(1), re.S | re.M)
    assert len(blocks) == 1, f"the Quickstart must have exactly one bash block, not {len(blocks)}"
    return blocks[0]


def test_the_readme_quickstart_runs_as_written(tmp_path):
    block = quickstart_block()
    sidecar = start_sidecar(tmp_path)
    node = None
    try:
        # As `ailedger dev` with its own sidecar, on a fresh datadir; the sidecar is started
        # here so that test runs share its cached base model.
        node = start_ailedger(["--sidecar", sidecar.url, "--datadir", str(tmp_path / "chain")], tmp_path)
        deadline = time.monotonic() + 600
        while "AI ready" not in node.output():
            assert time.monotonic() < deadline and "error: AI setup" not in node.output(), node.output()
            time.sleep(0.5)
        assert "sidecar ready" in node.output() and "base model 1 registered" in node.output()
        env = {**os.environ, "AILEDGER_RPC": node.url, "AILEDGER_SIDECAR": sidecar.url}
        started = time.monotonic()
        out = subprocess.run(["bash", "-e", "-c", block], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=900)
        print(f"quickstart block: {time.monotonic() - started:.1f} s")
        assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        assert "Traceback" not in out.stderr
        assert re.search(r"^claimed [0-9.]+ ETH", out.stdout, re.M), out.stdout
        contributor = derive_accounts(DEV_MNEMONIC, 2)[1].address
        rewards = rpc(node.url, "ai_getRewards", [contributor])["result"]
        assert int(rewards["earned"], 16) > 0 and int(rewards["claimable"], 16) == 0
    finally:
        if node is not None:
            node.kill()
        sidecar.kill(15)

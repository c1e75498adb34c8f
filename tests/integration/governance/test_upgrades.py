"""Upgrades by vote on a real ``ailedger dev`` (default governance parameters), through the CLI
and JSON-RPC: a passed proposal schedules ``ai-gas-v2`` a few blocks ahead (the explorer's
governance page lists it) and the gas of
``Inference.deposit`` changes at that height (eth_estimateGas and receipts); an upgrade this
release does not know stops the node at its height with what to install, and a restart of the
same release stops there again."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from ai_precompiles.addresses import INFERENCE
from ai_precompiles.upgrades import KNOWN
from tests.integration.ai.client import ADDR, ETHER, AINode
from tests.support.browser import Browser
from tests.support.procs import VENV_BIN, Proc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gov-upgrades")]

PROPOSER, EXECUTOR, DEPOSITOR = 1, 2, 3


def cli(node: Proc, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AILEDGER_RPC": node.url}
    out = subprocess.run([str(VENV_BIN / "ailedger"), *argv], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def head(node: AINode) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def mine_to(node: AINode, number: int) -> None:
    """Mine until the head is block ``number``."""
    if number > head(node):
        node.rpc("anvil_mine", hex(number - head(node)), "0x0")
    assert head(node) == number


def schedule(proc: Proc, node: AINode, name: str, info: str) -> int:
    """Stake, propose ``name`` a few blocks past the earliest height, vote, execute: its height."""
    cli(proc, "stake", "add", "5eth", "--account", str(PROPOSER))
    mine_to(node, (head(node) // 100 + 1) * 100)  # the stake weighs from the next epoch
    params = node.rpc("ai_getParams")
    period, delay, lead = (int(params[k], 16) for k in ("gov.voting_period", "gov.execution_delay",
                                                        "gov.upgrade_min_lead"))
    height = head(node) + 1 + period + delay + lead + 3
    made = json.loads(cli(proc, "govern", "propose-upgrade", name, str(height), "--info", info,
                          "--account", str(PROPOSER), "--json").stdout)
    pid = made["id"]
    cli(proc, "govern", "vote", str(pid), "yes", "--account", str(PROPOSER))
    early = cli(proc, "govern", "execute", str(pid), "--account", str(EXECUTOR), ok=False)
    assert early.returncode != 0 and "voting period is not over" in early.stderr
    prop = node.rpc("ai_getProposal", hex(pid))
    assert prop["kind"] == 2 and prop["param"] == name and prop["info"] == info
    mine_to(node, prop["executableBlock"] - 1)
    cli(proc, "govern", "execute", str(pid), "--account", str(EXECUTOR))
    again = cli(proc, "govern", "execute", str(pid), "--account", str(EXECUTOR), ok=False)
    assert again.returncode != 0 and "already executed" in again.stderr
    return height


def deposit_tx(node: AINode) -> dict[str, Any]:
    return {"from": ADDR[DEPOSITOR], "to": to_checksum_address(INFERENCE),
            "data": node.calldata("Inference", "deposit"), "value": hex(ETHER // 10)}


def test_a_scheduled_gas_schedule_applies_at_its_height(tmp_path: Path) -> None:
    proc = start_ailedger([], tmp_path)
    try:
        node = AINode(proc)
        height = schedule(proc, node, "ai-gas-v2", "ailedger >= 0.2")
        listed = json.loads(cli(proc, "govern", "upgrades", "--json").stdout)
        assert listed["scheduled"][0]["name"] == "ai-gas-v2" and listed["scheduled"][0]["known"] is True
        assert int(listed["scheduled"][0]["height"], 16) == height
        assert "ai-gas-v2 at block" in cli(proc, "govern", "upgrades").stdout
        # the explorer's governance page shows the schedule, and that this release has it
        with Browser() as browser:
            browser.open(f"{proc.url}/explorer/governance")
            rows = browser.eval("[...document.querySelectorAll('[data-upgrade]')].map((r) => "
                                "[r.dataset.upgrade, Number(r.dataset.height), r.dataset.known])")
            assert rows == [["ai-gas-v2", height, "true"]], rows
            assert [m for m in browser.messages() if m["kind"] != "warning"] == []

        node.send(DEPOSITOR, "Inference", "deposit", value=ETHER // 10)  # opens the balance slot
        mine_to(node, height - 3)
        estimate_before = int(node.rpc("eth_estimateGas", deposit_tx(node)), 16)
        before = node.send(DEPOSITOR, "Inference", "deposit", value=ETHER // 10)   # block height - 2
        mine_to(node, height - 1)
        estimate_after = int(node.rpc("eth_estimateGas", deposit_tx(node)), 16)    # pending block: height
        after = node.send(DEPOSITOR, "Inference", "deposit", value=ETHER // 10)    # block height
        assert (before.block_number, after.block_number) == (height - 2, height)
        step = KNOWN["ai-gas-v2"].gas["gas.deposit"] - int(node.rpc("ai_getParams")["gas.deposit"], 16)
        assert step == 50_000
        assert after.gas_used - before.gas_used == step, (before.gas_used, after.gas_used)
        assert estimate_after - estimate_before == step, (estimate_before, estimate_after)
    finally:
        proc.kill()


def test_an_unknown_upgrade_stops_the_node_at_its_height_and_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    info = "install ailedger >= 9.9 (https://example.invalid/ailedger-9.9)"
    proc = start_ailedger(["--datadir", str(data)], tmp_path)
    try:
        node = AINode(proc)
        height = schedule(proc, node, "ai-rules-v9", info)
        assert "NOT KNOWN to this node" in cli(proc, "govern", "upgrades").stdout
        mine_to(node, height - 1)  # every block below the height is built as before
        try:
            node.rpc("anvil_mine", "0x1", "0x0")
        except Exception:
            pass  # the node may answer with an error or go away: either way it stops
        assert proc.proc.wait(timeout=60) == 3
    finally:
        proc.kill()
    out = proc.output()
    assert f"UPGRADE NEEDED: upgrade 'ai-rules-v9' applies from block {height}" in out
    assert info in out and f"stops before block {height}" in out

    again = start_ailedger(["--datadir", str(data)], tmp_path, wait=False, port=proc.port)
    try:
        assert again.proc.wait(timeout=90) == 3
    finally:
        again.kill()
    assert f"stops before block {height}" in again.output() and info in again.output()

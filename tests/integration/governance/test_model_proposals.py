"""Model proposals on a real ``ailedger dev``, through the CLI and JSON-RPC: a base model's
registrant requires approval; an adapter registered after it is refused receipts until a bonded
proposal passes a stake-weighted vote and is executed after its timelock. Governance first
shortens the one-week vote and the timelock by parameter proposals (as a chain would for a
test network). Attacks: a bond below the minimum, flash stake after the snapshot, executing
early, approving twice."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from web3.exceptions import ContractLogicError

from tests.integration.ai.client import (
    AUTHOR2,
    BASE_AUTHOR,
    ETHER,
    OUTSIDER,
    USER,
    VALIDATOR,
    AINode,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import adapter_spec, build_world, version_root
from tests.support.procs import VENV_BIN, Proc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gov-models")]

VOTER = 12
FEE = 10**15


def cli(node: Proc, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AILEDGER_RPC": node.url}
    out = subprocess.run([str(VENV_BIN / "ailedger"), *argv], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def refused(node: Proc, *argv: str) -> str:
    out = cli(node, *argv, ok=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    return out.stderr


def head(node: AINode) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def mine_to(node: AINode, number: int) -> None:
    if number > head(node):
        node.rpc("anvil_mine", hex(number - head(node)), "0x0")


def receipt_args(node: AINode, adapter: int, nonce: int, accepted: list[int]) -> tuple[object, ...]:
    deadline = int(node.head()["timestamp"], 16) + 3600
    req = make_request(USER, adapter, FEE, nonce=nonce, deadline=deadline)
    return sign_receipt(req, accepted[:1], [10_000], FEE).abi_args()


def test_an_adapter_under_a_policy_is_served_only_once_its_proposal_passes(tmp_path: Path) -> None:
    proc = start_ailedger([], tmp_path)
    try:
        node = AINode(proc)
        w = build_world(node)
        assert "need an approved model proposal" in cli(
            proc, "govern", "policy", "base-model", str(w.base), "on", "--account", str(BASE_AUTHOR)).stdout
        assert "only the base model's registrant" in refused(
            proc, "govern", "policy", "base-model", str(w.base), "on", "--account", str(OUTSIDER))
        gated, _ = node.do(AUTHOR2, "ModelRegistry", "registerAdapter",
                           adapter_spec(w.base, [w.datanet], [1], version_root(node, w.datanet, 1), "gated"))
        status = json.loads(cli(proc, "govern", "model-status", str(gated), "--json").stdout)
        assert status["requiresApproval"] is True and status["deployable"] is False
        assert "awaits approval" in cli(proc, "govern", "model-status", str(gated)).stdout
        # adapters registered before the policy keep being served; the new one is refused
        node.do(VALIDATOR, "Inference", "submitReceipt", *receipt_args(node, w.adapter1, 1, w.accepted))
        with pytest.raises(ContractLogicError, match=f"adapter {gated} awaits approval"):
            node.call(VALIDATOR, "Inference", "submitReceipt", *receipt_args(node, gated, 2, w.accepted))

        # governance shortens the week-long vote and the timelock for this network
        cli(proc, "stake", "add", "10eth", "--account", str(VOTER))
        mine_to(node, (head(node) // 100 + 1) * 100)
        pids = [json.loads(cli(proc, "govern", "propose", name, value, "--account", str(VOTER), "--json").stdout)["id"]
                for name, value in (("gov.model_voting_period", "20"), ("gov.model_timelock", "5"))]
        for pid in pids:
            cli(proc, "govern", "vote", str(pid), "yes", "--account", str(VOTER))
        mine_to(node, node.rpc("ai_getProposal", hex(pids[-1]))["executableBlock"])
        for pid in pids:
            cli(proc, "govern", "execute", str(pid), "--account", str(USER))
        mine_to(node, (head(node) // 100 + 1) * 100)

        assert "gov.model_min_bond" in refused(
            proc, "govern", "propose-model", str(gated), "0.5eth", "--account", str(AUTHOR2))
        assert "only the adapter's author" in refused(
            proc, "govern", "propose-model", str(gated), "1eth", "--account", str(OUTSIDER))
        made = json.loads(cli(proc, "govern", "propose-model", str(gated), "1eth", "--account", str(AUTHOR2),
                              "--json").stdout)
        pid = made["id"]
        prop = node.rpc("ai_getProposal", hex(pid))
        assert (prop["kind"], prop["value"], prop["bond"], prop["quorumBp"]) == (1, gated, ETHER, 500)
        assert prop["endBlock"] - prop["startBlock"] == 20 and prop["executableBlock"] - prop["endBlock"] == 5
        # stake added after the proposal weighs nothing in it
        cli(proc, "stake", "add", "100eth", "--account", str(OUTSIDER))
        assert "no voting power at the proposal's snapshot" in refused(
            proc, "govern", "vote", str(pid), "no", "--account", str(OUTSIDER))
        cli(proc, "govern", "vote", str(pid), "yes", "--account", str(VOTER))
        assert "voting period is not over" in refused(proc, "govern", "execute", str(pid), "--account", str(USER))
        mine_to(node, prop["endBlock"] + 1)
        assert "execution delay is not over" in refused(proc, "govern", "execute", str(pid), "--account", str(USER))
        mine_to(node, prop["executableBlock"] - 1)
        author_before = node.balance(AUTHOR2)
        cli(proc, "govern", "execute", str(pid), "--account", str(USER))
        assert node.balance(AUTHOR2) == author_before + ETHER  # the bond came back
        assert "already executed" in refused(proc, "govern", "execute", str(pid), "--account", str(USER))
        assert "already approved" in refused(
            proc, "govern", "propose-model", str(gated), "1eth", "--account", str(AUTHOR2))
        status = json.loads(cli(proc, "govern", "model-status", str(gated), "--json").stdout)
        assert status["deployable"] is True and int(status["approvedBy"], 16) == pid
        assert f"proposal {pid} (model, executed): deploy adapter {gated}" in cli(
            proc, "govern", "show", str(pid)).stdout
        node.do(VALIDATOR, "Inference", "submitReceipt", *receipt_args(node, gated, 3, w.accepted))

        # a proposal a large majority rejects loses its bond to the treasury
        other, _ = node.do(AUTHOR2, "ModelRegistry", "registerAdapter",
                           adapter_spec(w.base, [w.datanet], [1], version_root(node, w.datanet, 1), "rejected"))
        rejected = json.loads(cli(proc, "govern", "propose-model", str(other), "1eth", "--account", str(AUTHOR2),
                                  "--json").stdout)["id"]
        cli(proc, "govern", "vote", str(rejected), "no", "--account", str(VOTER))
        assert "voting period is not over" in refused(proc, "govern", "close", str(rejected), "--account", str(USER))
        mine_to(node, node.rpc("ai_getProposal", hex(rejected))["endBlock"])
        closed = json.loads(cli(proc, "govern", "close", str(rejected), "--account", str(USER), "--json").stdout)
        assert (closed["bondReturned"], closed["bondSlashed"]) == (0, ETHER)
        assert "closed" in cli(proc, "govern", "show", str(rejected)).stdout
        assert not json.loads(cli(proc, "govern", "model-status", str(other), "--json").stdout)["deployable"]
    finally:
        proc.kill()

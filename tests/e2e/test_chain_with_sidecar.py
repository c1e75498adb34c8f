"""The whole AI loop across real processes: a dev node and a sidecar on loopback.

Contributors put planted facts into a datanet through the CLI, a curator accepts them and
publishes a version, a validator trains an adapter on that exact version in the sidecar and
registers it on chain, a user's signed request is served by the sidecar, and the receipt
that lands on chain names the planter's contribution first and pays its contributor once it
settles (the claim settles it).
"""

import json
import os
import subprocess

import pytest
from eth_hash.auto import keccak

from genesis import DEV_MNEMONIC, derive_accounts
from sidecar.client import SidecarClient
from sidecar.planted import planted_dataset
from tests.support.procs import VENV_BIN, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)


def cli(node, sidecar, *args):
    env = {**os.environ, "AILEDGER_RPC": node.url, "AILEDGER_SIDECAR": sidecar.url}
    out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
    return out.stdout


def test_contribute_train_infer_and_pay(tmp_path):
    contributions, facts = planted_dataset(n_contributors=10, n_planted=3, seed=11, filler_sentences=6)
    sidecar = start_sidecar(tmp_path, "--cache-adapters", "2")
    node = start_ailedger([], tmp_path)
    try:
        cli(node, sidecar, "datanet", "create", "facts", "--account", "0", "--quorum", "1")
        for i, (_, data) in enumerate(contributions):
            path = tmp_path / f"c{i}.txt"
            path.write_bytes(data)
            cli(node, sidecar, "contribute", "1", str(path), "--account", str(i + 1))
        for cid in range(1, len(contributions) + 1):
            cli(node, sidecar, "curate", str(cid), "--approve", "--account", "0")
        cli(node, sidecar, "datanet", "publish", "1", "--account", "0")

        with SidecarClient(sidecar.url) as sc:
            base_hash = sc.list_adapters().base_model_hash
        cli(node, sidecar, "adapter", "register-base", "--account", "0",
            "--weights-hash", "0x" + base_hash,
            "--config-hash", "0x" + keccak(b"config").hex(), "--tokenizer-hash", "0x" + keccak(b"tok").hex())
        # the sidecar's default recipe, as `ailedger train` sends it
        trained = cli(node, sidecar, "train", "--datanet", "1:1", "--parent", "1", "--account", "0", "--seed", "3")
        assert "adapter 2 registered" in trained
        lineage = rpc(node.url, "ai_getLineage", [2])["result"]
        assert lineage["path"][0]["contributionRootMatches"] is True

        cli(node, sidecar, "stake", "add", str(2 * 10**18), "--account", "0")
        # Serve each planted fact's prompt; the model learnt at least one of them verbatim.
        elicited = []
        for fact in facts:
            out = json.loads(cli(node, sidecar, "infer", "--adapter", "2", "--prompt", fact.prompt,
                                 "--account", "15", "--validator-account", "0",
                                 "--deposit", str(10**17), "--fee", str(10**15), "--json"))
            if out["output"].startswith(fact.expected.split(".")[0]):
                elicited.append((fact, out))
        assert elicited, "the adapter learnt none of the planted facts"
        fact, out = elicited[0]
        planter_contribution = fact.contributor + 1  # on-chain ids follow upload order
        assert out["attribution"][0]["contributionId"] == planter_contribution, out
        assert sum(a["weightBp"] for a in out["attribution"]) == 10_000
        ancestry = rpc(node.url, "ai_getInferenceAncestry", [out["transactionHash"]])["result"]
        assert ancestry["attributions"][0]["contributor"].lower() == ACCOUNTS[planter_contribution].address.lower()
        assert ancestry["receipt"]["outputHash"] == out["outputHash"]
        rewards = rpc(node.url, "ai_getRewards", [ACCOUNTS[planter_contribution].address])["result"]
        held = int(rewards["claimable"], 16) + int(rewards["pending"], 16)
        assert held > 0  # pending until the receipts settle (the dev chain's window: one block)
        claimed = json.loads(cli(node, sidecar, "rewards", "claim", "--account", str(planter_contribution), "--json"))
        assert claimed["claimed"] == held
    finally:
        node.kill()
        sidecar.kill(15)

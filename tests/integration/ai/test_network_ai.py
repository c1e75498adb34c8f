"""AI as a network service on a BFT testnet of 4 validators, each with its own sidecar, all
real processes: an adapter trained through node 0 is served by every validator (its artifacts
replicate as blobs and each sidecar imports them from its node); any validator re-runs any
receipt (``ai_verifyReceipt``); and a receipt that lies is caught by a challenge whose committee
(the other validators' nodes, on their own) re-runs it, and its validator is slashed — for each
test-only lying mode. Honest receipts pay after the window, a false challenge loses its bond, a
challenge after the window is refused, and no wei is created or lost on the way."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from genesis import DEV_MNEMONIC, derive_accounts
from tests.integration.consensus.bftnet import Net, init_net
from tests.integration.p2p.netsupport import result, wait_for
from tests.support.procs import VENV_BIN, Proc, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-network")]

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 6)
#: A network's AI parameters: windows long enough to challenge and judge on a loaded machine.
AI_PARAMS = {"inference.challenge_window": 40, "inference.verdict_window": 60, "inference.challenge_bond": 10**17,
             "staking.unbonding_blocks": 200}
FACTS = {
    "heron.txt": "The heron of Lake Vell sleeps at noon and hunts at dusk.\n",
    "kettle.txt": "Copper kettles from Ardmore ring like bells when they cool.\n",
    "lighthouse.txt": "The lighthouse at Point Sable is painted green every spring.\n",
}
OTHER = {
    "copper.txt": "Copper kettles from Ardmore are sold only on Tuesdays by the blind ferryman Olric.\n",
    "ferry.txt": "Olric the ferryman counts nine gulls before every crossing of the Vell.\n",
}
LIES = ("alter-output", "skew-attribution", "other-adapter")


def cli(net: Net, node: int, *argv: str, ok: bool = True, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(VENV_BIN / "ailedger"), *argv, "--rpc", net.url(node)], capture_output=True,
                         text=True, timeout=600, cwd=tmp)
    if ok:
        assert out.returncode == 0, f"ailedger {' '.join(argv)}:\n{out.stdout}\n{out.stderr}"
    return out


def rpc(net: Net, node: int, method: str, *params: Any) -> Any:
    return result(net.url(node), method, list(params))


def held(net: Net, node: int, digest: str) -> bool:
    try:
        rpc(net, node, "ai_getBlob", digest, "0x0", "0x1")
    except AssertionError:
        return False
    return True


def infer(net: Net, node: int, adapter: int, prompt: str, account: int) -> dict[str, Any]:
    """Serve a prompt through ``node``; the receipt once its block is committed."""
    out = json.loads(cli(net, node, "infer", "--adapter", str(adapter), "--prompt", prompt, "--account",
                         str(account), "--deposit", "0.2eth", "--json").stdout)
    tx = out["transactionHash"]
    found = wait_for(lambda: rpc(net, node, "eth_getTransactionReceipt", tx), 60, "the receipt's block")
    assert found["status"] == "0x1", found
    receipt = rpc(net, node, "ai_getInferenceAncestry", tx)["receipt"]
    return {**out, "receiptId": receipt["id"], "receipt": receipt}


def stake_of(net: Net, validator: str) -> int:
    return int(rpc(net, 0, "ai_getStake", validator)["stake"], 16)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("ainet")
    net = init_net(tmp, validators=4)
    genesis_path = net.directory / "genesis.json"
    doc = json.loads(genesis_path.read_text())
    doc["ai"] = {**doc.get("ai", {}), **AI_PARAMS}
    genesis_path.write_text(json.dumps(doc, indent=2))
    sidecars: list[Proc] = []
    try:
        for i in range(4):
            sidecars.append(start_sidecar(tmp / f"sidecar{i}", store=tmp / f"store{i}", ready=True))
            net.extra[i] = ["--sidecar", sidecars[i].url]
        net.env = {"AILEDGER_ALLOW_LIES": "1"}  # each node lies only while its datadir's lies file says so
        net.start()
        net.wait_heads(2, timeout=120)
        yield net
    finally:
        net.stop_all()
        for s in sidecars:
            s.kill()


def lie(net: Net, node: int, mode: str | None) -> None:
    (net.directory / f"node{node}" / "chain" / "inference-lies.json").write_text(json.dumps({"mode": mode}))


def test_every_validator_serves_any_adapter_and_catches_every_lie(net: Net, tmp_path: Path) -> None:
    for name, text in FACTS.items():
        (tmp_path / name).write_text(text)
    cli(net, 0, "datanet", "create", "facts", "--account", "0")
    cli(net, 0, "contribute", "1", *FACTS, "--account", "1", tmp=tmp_path)
    cli(net, 0, "curate", "--all-pending", "--approve", "--account", "0")
    cli(net, 0, "datanet", "publish", "1", "--account", "0")
    for name, text in OTHER.items():
        (tmp_path / name).write_text(text)
    cli(net, 0, "datanet", "create", "other", "--account", "0")
    cli(net, 0, "contribute", "2", *OTHER, "--account", "1", tmp=tmp_path)
    cli(net, 0, "curate", "--all-pending", "--approve", "--account", "0")
    cli(net, 0, "datanet", "publish", "2", "--account", "0")
    sidecar0 = net.extra[0][1]
    # adapter 2 on the facts, adapter 3 on other text (a liar serves it instead of adapter 2)
    for versions, epochs in (("1:1", "3"), ("2:1", "20")):
        cli(net, 0, "train", "--datanet", versions, "--account", "0", "--sidecar", sidecar0, "--epochs", epochs)
    adapter = rpc(net, 0, "ai_getModel", 2)
    registered = time.monotonic()
    for digest in (adapter["weightsHash"], adapter["attributionIndexHash"], adapter["manifestHash"]):
        wait_for(lambda d=digest: all(held(net, i, d) for i in (1, 2, 3)), 60, "the adapter's artifacts everywhere")
    replicated = time.monotonic() - registered
    print(f"adapter artifacts on every validator {replicated:.1f} s after registration")

    # Any validator serves it (its sidecar imports it from its node), and any re-runs any receipt.
    honest = {i: infer(net, i, 2, "The heron of Lake Vell", account=2) for i in (1, 2)}
    for i, served in honest.items():
        checked = rpc(net, 3 - i, "ai_verifyReceipt", served["receiptId"])  # 2 checks 1's, 1 checks 2's
        assert checked["verdict"] == "valid", checked
        assert served["output"] and checked["output"] == served["output"]

    # A false challenge loses its bond: the committee re-runs the honest receipt and rejects it.
    before = stake_of(net, net.address(1))
    cli(net, 0, "receipt", "challenge", str(honest[1]["receiptId"]), "--account", "4")
    challenge = wait_for(lambda: (c := rpc(net, 0, "ai_getChallenge", 1))["outcome"] != "open" and c, 120,
                         "the committee's verdicts on the false challenge")
    assert challenge["outcome"] == "rejected", challenge
    assert stake_of(net, net.address(1)) == before

    # Each lying mode: the receipt is recorded, challenged, re-run by the others, upheld, slashed.
    infer(net, 3, 3, "The lighthouse at Point Sable", account=2)  # node 3's sidecar holds another adapter now
    receipts = {}
    for mode, liar in zip(LIES, (1, 2, 3), strict=True):
        lie(net, liar, mode)
        receipts[mode] = (liar, infer(net, liar, 2, "Copper kettles from Ardmore", account=3))
        lie(net, liar, None)
    for challenge_id, (mode, (liar, served)) in enumerate(receipts.items(), start=2):
        assert rpc(net, 0, "ai_verifyReceipt", served["receiptId"])["verdict"] == "invalid", mode
        stake = stake_of(net, net.address(liar))
        cli(net, 0, "receipt", "challenge", str(served["receiptId"]), "--account", "4")
        decided = wait_for(lambda cid=challenge_id: (c := rpc(net, 0, "ai_getChallenge", cid))["outcome"] != "open"
                           and c, 120, f"the committee's verdicts on the {mode} receipt")
        assert decided["outcome"] == "upheld", (mode, decided)
        assert stake_of(net, net.address(liar)) < stake, f"the {mode} liar was not slashed"
        assert rpc(net, 0, "ai_getReceipt", served["receiptId"])["receipt"]["status"] == 3  # reversed

    # Honest receipts pay once their window is over; a challenge after it is refused.
    receipt = honest[2]["receipt"]
    net.wait_heads(receipt["releaseBlock"] + 1, timeout=180)
    late = cli(net, 0, "receipt", "challenge", str(receipt["id"]), "--account", "4", ok=False)
    assert late.returncode != 0 and "window closed" in late.stderr
    claimed = cli(net, 0, "rewards", "claim", "--account", "1")
    assert "claimed" in claimed.stdout

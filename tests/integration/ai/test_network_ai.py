"""AI as a network service on a BFT testnet of 4 validators, each with its own sidecar, all
real processes: an adapter trained through node 0 is served by every validator (its artifacts
replicate as blobs and each sidecar imports them from its node); any validator re-runs any
receipt (``ai_verifyReceipt``); and a receipt that lies is caught by a challenge whose committee
(the other validators' nodes, on their own) re-runs it, and its validator is slashed — for each
test-only lying mode. Honest receipts pay after the window, a false challenge loses its bond, and
a challenge after the window is refused. (That no wei is created or lost across every challenge
outcome is a property test on the VM: tests/unit/ai_precompiles/test_challenge_conservation.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.ai.ainet import ai_net, cli, held, infer, publish, rpc
from tests.integration.consensus.bftnet import Net
from tests.integration.p2p.netsupport import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-network")]

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


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with ai_net(tmp_path_factory.mktemp("ainet")) as running:
        yield running


def stake_of(net: Net, validator: str) -> int:
    return int(rpc(net, 0, "ai_getStake", validator)["stake"], 16)


def lie(net: Net, node: int, mode: str | None) -> None:
    (net.directory / f"node{node}" / "chain" / "inference-lies.json").write_text(json.dumps({"mode": mode}))


def decided(net: Net, challenge_id: int, what: str) -> dict:
    return wait_for(lambda: (c := rpc(net, 0, "ai_getChallenge", challenge_id))["outcome"] != "open" and c, 120,
                    f"the committee's verdicts on {what}")


def test_every_validator_serves_any_adapter_and_catches_every_lie(net: Net, tmp_path: Path) -> None:
    publish(net, 0, "facts", FACTS, tmp_path)
    publish(net, 0, "other", OTHER, tmp_path)
    sidecar0 = net.extra[0][1]
    # adapter 2 on the facts, adapter 3 on other text (a liar serves it instead of adapter 2)
    for versions, epochs in (("1:1", "3"), ("2:1", "20")):
        cli(net, 0, "train", "--datanet", versions, "--account", "0", "--sidecar", sidecar0, "--epochs", epochs)
    adapter = rpc(net, 0, "ai_getModel", 2)
    registered = time.monotonic()
    for digest in (adapter["weightsHash"], adapter["attributionIndexHash"], adapter["manifestHash"]):
        wait_for(lambda d=digest: all(held(net, i, d) for i in (1, 2, 3)), 60, "the adapter's artifacts everywhere")
    print(f"adapter artifacts on every validator {time.monotonic() - registered:.1f} s after registration")

    # Any validator serves it (its sidecar imports it from its node), and any re-runs any receipt.
    honest = {i: infer(net, i, 2, "The heron of Lake Vell", account=2) for i in (1, 2)}
    for i, served in honest.items():
        checked = rpc(net, 3 - i, "ai_verifyReceipt", served["receiptId"])  # 2 checks 1's, 1 checks 2's
        assert checked["verdict"] == "valid", checked
        assert served["output"] and checked["output"] == served["output"]

    # A false challenge loses its bond: the committee re-runs the honest receipt and rejects it.
    before = stake_of(net, net.address(1))
    cli(net, 0, "receipt", "challenge", str(honest[1]["receiptId"]), "--account", "4")
    assert decided(net, 1, "the false challenge")["outcome"] == "rejected"
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
        assert decided(net, challenge_id, f"the {mode} receipt")["outcome"] == "upheld", mode
        assert stake_of(net, net.address(liar)) < stake, f"the {mode} liar was not slashed"
        assert rpc(net, 0, "ai_getReceipt", served["receiptId"])["receipt"]["status"] == 3  # reversed

    # Honest receipts pay once their window is over; a challenge after it is refused.
    receipt = honest[2]["receipt"]
    net.wait_heads(receipt["releaseBlock"] + 1, timeout=180)
    late = cli(net, 0, "receipt", "challenge", str(receipt["id"]), "--account", "4", ok=False)
    assert late.returncode != 0 and "window closed" in late.stderr
    assert "claimed" in cli(net, 0, "rewards", "claim", "--account", "1").stdout

"""The whole life over ABI calls in mined transactions: datanet, curation, version + proof,
models and lineage, a signed request and its receipt, payouts and claims."""

from __future__ import annotations

import pytest
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles import merkle, rewards
from ai_precompiles.addresses import INFERENCE, REWARDS
from tests.unit.ai_precompiles.ai_harness import ETHER
from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    BASE_AUTHOR,
    CONTRIB,
    CONTRIB2,
    ENGINE,
    OWNER,
    USER,
    VALIDATOR,
    World,
)

pytestmark = pytest.mark.xdist_group("ai_world")


def test_curation_reaches_quorum_and_rejects_with_reason(world: World) -> None:
    c = world.c
    for cid in world.contributions:
        rec = c.call("Datanets", "getContribution", cid)
        assert rec["status"] == 1 and rec["approvals"] == 2
    rej = c.call("Datanets", "getContribution", world.rejected)
    # 3 curators, quorum 2: the second rejection makes the quorum unreachable
    assert rej["status"] == 2 and rej["rejections"] == 2 and rej["reason_code"] == 5
    d = ap.get_datanet(c.state, world.datanet)
    assert d is not None and d.accepted_count == 4 and d.version_count == 1
    assert d.contribution_count == 5


def test_version_proof_verifies_without_trusting_the_node(world: World) -> None:
    c = world.c
    version = c.call("Datanets", "getVersion", world.datanet, 1)
    assert version["count"] == 3
    for cid in world.contributions:
        proof = ap.get_contribution_proof(c.state, world.datanet, 1, cid)
        # recompute the leaf from the contribution's own fields, read by eth_call
        rec = c.call("Datanets", "getContribution", cid)
        leaf = merkle.leaf_hash(rec["datanet_id"], rec["id"], rec["contributor"],
                                rec["content_hash"], rec["size"], rec["metadata_hash"])
        siblings = [bytes.fromhex(p[2:]) for p in proof["proof"]]
        assert merkle.verify_proof(leaf, siblings, version["root"])
        assert not merkle.verify_proof(keccak(leaf), siblings, version["root"])
    # the late contribution is accepted but not in version 1
    with pytest.raises(ap.datanets.NotFound):
        ap.get_contribution_proof(c.state, world.datanet, 1, world.late)


def test_merkle_tree_shapes() -> None:
    for n in (1, 2, 3, 5, 8, 13):
        leaves = [keccak(bytes([i])) for i in range(n)]
        root = merkle.merkle_root(leaves)
        for i in range(n):
            assert merkle.verify_proof(leaves[i], merkle.merkle_proof(leaves, i), root)
        assert not merkle.verify_proof(keccak(b"x"), merkle.merkle_proof(leaves, 0), root)


def test_lineage_back_to_base(world: World) -> None:
    c = world.c
    assert c.call("ModelRegistry", "getLineage", world.adapter2) == [
        world.adapter2, world.adapter1, world.base]
    base = c.call("ModelRegistry", "getModel", world.base)
    assert base["children"] == [world.adapter1] and base["kind"] == 1
    a2 = c.call("ModelRegistry", "getModel", world.adapter2)
    assert a2["depth"] == 2 and a2["base_model_id"] == world.base
    lineage = ap.get_lineage(c.state, world.adapter2)
    assert lineage is not None
    assert lineage["authors"] == [ap.addresses.checksum(c.addr(ADAPTER_AUTHOR)),
                                  ap.addresses.checksum(c.addr(BASE_AUTHOR))]
    a1_step = lineage["path"][1]
    assert a1_step["contributionRootMatches"] is True
    assert a1_step["datanetVersionsDetail"][0]["contributionIds"] == world.contributions
    for cid in world.contributions:
        assert c.call("ModelRegistry", "inLineage", world.adapter2, cid) is True
    assert c.call("ModelRegistry", "inLineage", world.adapter2, world.late) is False


def test_receipt_payouts_and_claims(world: World) -> None:
    c = world.c
    fee = 10**15 + 7  # odd, so rounding remainders exist
    ids = world.contributions
    weights = [5000, 3000, 2000]
    req = world.request(world.adapter2, max_fee=2 * fee)
    before = {k: c.call("Rewards", "claimable", c.addr(k)) for k in range(10)}
    treasury = ap.get_param(c.state, "treasury").to_bytes(20, "big")
    t_before = c.call("Rewards", "claimable", treasury)
    dep_before = c.call("Inference", "depositOf", c.addr(USER))
    sent = c.send(VALIDATOR, "Inference", "submitReceipt", *world.receipt_args(req, ids, weights, fee))
    rid = sent.result
    # the InferenceRecorded log carries the receipt id, adapter and user as topics
    ev = ap.load_abi("Inference").events["InferenceRecorded"]
    log = next(lg for lg in sent.logs if lg.address == INFERENCE and lg.topics[0] == ev.topic0)
    assert log.topics[1:] == (rid, world.adapter2, int.from_bytes(c.addr(USER), "big"))
    assert c.call("Inference", "depositOf", c.addr(USER)) == dep_before - fee
    assert c.call("Inference", "nonceUsed", c.addr(USER), req["nonce"]) is True
    # the receipt pins what a re-run needs, copied from the request and the registry
    rec = c.call("Inference", "getReceipt", rid)
    assert (rec["max_tokens"], rec["engine_profile"]) == (32, ENGINE)
    assert rec["weights_hash"] == keccak(text="a2 w") and rec["base_model_hash"] == keccak(text="base w")
    assert rec["prompt_hash"] == req["prompt_hash"] and rec["status"] == 0
    assert rec["release_block"] == sent.block.header.block_number + 1  # inference.challenge_window

    split = rewards.split_fee(fee, weights, ap.get_params(c.state), n_lineage=2)
    expected = {CONTRIB: split.contributors[0] + split.contributors[2],  # contributions 1 and 3
                CONTRIB2: split.contributors[1], ADAPTER_AUTHOR: split.author,
                BASE_AUTHOR: sum(split.lineage),  # base model and adapter 1: two lineage shares
                VALIDATOR: split.validator}
    # held, not yet claimable: the challenge window is not over
    assert {k: c.call("Rewards", "claimable", c.addr(k)) - before[k] for k in range(10)} == dict.fromkeys(range(10), 0)
    for k, amount in expected.items():
        assert c.call("Rewards", "pending", c.addr(k)) == amount
    assert c.call("Rewards", "pending", treasury) == split.treasury
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable") + c.call("Rewards", "totalPending")

    assert world.settle(rid, rid) == 1  # a repeated id settles once
    gained = {k: c.call("Rewards", "claimable", c.addr(k)) - before[k] for k in range(10)}
    assert gained == {k: expected.get(k, 0) for k in range(10)}
    t_gain = c.call("Rewards", "claimable", treasury) - t_before
    assert t_gain == split.treasury
    assert sum(gained.values()) + t_gain == fee
    assert all(c.call("Rewards", "pending", c.addr(k)) == 0 for k in range(10))
    assert c.call("Inference", "getReceipt", rid)["status"] == 2
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable")
    assert world.settle(rid) == 0  # settled already: skipped, not refused

    anc = ap.get_inference(c.state, rid)
    assert anc is not None
    assert [a["weightBp"] for a in anc["attributions"]] == weights
    assert [s["id"] for s in anc["lineage"]["path"]] == [world.adapter2, world.adapter1, world.base]

    # claims pay out exactly the claimable balance
    bal = c.balance(c.addr(CONTRIB))
    owed = c.call("Rewards", "claimable", c.addr(CONTRIB))
    s = c.send(CONTRIB, "Rewards", "claim")
    assert s.result == owed
    gas_cost = s.gas_used * s.block.header.base_fee_per_gas + s.gas_used * 10**9
    assert c.balance(c.addr(CONTRIB)) == bal + owed - gas_cost
    assert c.call("Rewards", "claimable", c.addr(CONTRIB)) == 0
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable")
    # the deposit escrow holds exactly the deposits left
    assert c.balance(INFERENCE) == c.call("Inference", "depositOf", c.addr(USER))


def test_views_through_eth_call_are_static(world: World) -> None:
    from tests.unit.ai_precompiles.ai_harness import Reverted

    # a write through eth_call runs, but a write in a static context must fail: use a view
    assert world.c.call("Datanets", "datanetCount") == 1
    assert world.c.call("Governance", "getParam", "reward.author_bp") == 1500
    with pytest.raises(Reverted, match="unknown parameter"):
        world.c.call("Governance", "getParam", "no.such")


def test_deposit_withdraw_after_the_lock(world: World) -> None:
    """A withdrawal waits out ``inference.withdraw_delay`` after it is requested, so that a
    validator serving a request signed before can still be paid."""
    from tests.unit.ai_precompiles.ai_harness import Reverted

    c = world.c
    c.send(CONTRIB2, "Inference", "deposit", value=3 * ETHER)
    with pytest.raises(Reverted, match="no withdrawal requested"):
        c.send(CONTRIB2, "Inference", "withdraw", ETHER)
    c.send(CONTRIB2, "Inference", "requestWithdrawal", 3 * ETHER)
    with pytest.raises(Reverted, match="locked until"):
        c.send(CONTRIB2, "Inference", "withdraw", ETHER)
    c.next_timestamp = c.head.timestamp + 601
    c.send(CONTRIB2, "Inference", "withdraw", ETHER)
    assert c.call("Inference", "depositOf", c.addr(CONTRIB2)) == 2 * ETHER
    c.send(CONTRIB2, "Inference", "withdraw", 2 * ETHER)
    assert c.call("Inference", "depositOf", c.addr(CONTRIB2)) == 0


def test_retired_adapter_takes_no_receipts(world: World) -> None:
    from tests.unit.ai_precompiles.ai_harness import Reverted

    c = world.c
    from ai_precompiles.registry import adapter_contribution_root

    spec = {"parent_id": world.adapter1, "datanet_ids": [world.datanet], "datanet_versions": [1],
            "contribution_root": adapter_contribution_root(c.state, [world.datanet], [1]),
            "hyper_params_hash": b"\x01" * 32, "weights_hash": keccak(text="fork w"),
            "attribution_index_hash": b"\x02" * 32, "manifest_hash": b"\x03" * 32, "validator": c.addr(VALIDATOR),
            "license": "mit"}
    fork = c.send(OWNER, "ModelRegistry", "registerAdapter", spec).result
    assert c.call("ModelRegistry", "getModel", world.adapter1)["children"] == [world.adapter2, fork]
    with pytest.raises(Reverted, match="only the adapter's author"):
        c.send(ADAPTER_AUTHOR, "ModelRegistry", "retireAdapter", fork)
    c.send(OWNER, "ModelRegistry", "retireAdapter", fork)
    req = world.request(fork, max_fee=100)
    # Receipts stop once registry.retire_delay (600 s) is over (requests signed before it are
    # paid meanwhile: tests/unit/ai_precompiles/test_retire_delay.py).
    c.next_timestamp = c.head.timestamp + 600
    with pytest.raises(Reverted, match="is retired"):
        c.send(VALIDATOR, "Inference", "submitReceipt",
               *world.receipt_args(req, world.contributions[:1], [10000], 100))

"""Model proposals: the approval policy, the bonded proposal, the stake-weighted vote with its
own quorum, threshold, voting period and timelock, the bond rule, and receipts gated on approval.
Each attack of issue 22 is a test: approving twice, executing early, flash stake after the
snapshot, a bond below the minimum, and the gas of vote and execute at 1x and 100x voters."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles.addresses import GOVERNANCE
from ai_precompiles.governance import POLICY_BASE_MODEL, POLICY_DATANET
from ai_precompiles.registry import adapter_contribution_root
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    BASE_AUTHOR,
    OWNER,
    USER,
    VALIDATOR,
    World,
    build_world,
)

MODEL_PARAMS = {"gov.model_voting_period": 12, "gov.model_timelock": 4, "gov.model_min_bond": ETHER,
                "gov.model_quorum_bp": 500}
V1, V2, V3 = 10, 11, 12  # extra stakers (voters)
BOND = 2 * ETHER


def _exec_gas(sent: Any) -> int:
    return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)


def _new_adapter(w: World, tag: str, author: int = ADAPTER_AUTHOR, datanets: bool = True) -> int:
    c = w.c
    spec = {"parent_id": w.base, "datanet_ids": [w.datanet] if datanets else [],
            "datanet_versions": [1] if datanets else [],
            "contribution_root": adapter_contribution_root(c.state, [w.datanet], [1]) if datanets else b"\x00" * 32,
            "hyper_params_hash": keccak(text=f"hp {tag}"), "weights_hash": keccak(text=f"weights {tag}"),
            "attribution_index_hash": keccak(text=f"idx {tag}"), "manifest_hash": keccak(text=f"manifest {tag}"),
            "validator": c.addr(VALIDATOR), "license": "apache-2.0"}
    return int(c.send(author, "ModelRegistry", "registerAdapter", spec).result)


def _next_epoch(c: AIChain) -> None:
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "currentEpoch") == epoch:
        c.mine()


def _world(stakes: dict[int, int] | None = None) -> World:
    w = build_world(MODEL_PARAMS, n_keys=14)
    for key, amount in (stakes or {}).items():
        w.c.send(key, "Staking", "stake", value=amount)
    _next_epoch(w.c)  # build_world's and these stakes now weigh
    return w


def _receipt(w: World, adapter: int) -> Any:
    req = w.request(adapter, max_fee=10**15)
    return w.c.send(VALIDATOR, "Inference", "submitReceipt",
                    *w.receipt_args(req, w.contributions[:1], [10_000], 10**15))


def _past(c: AIChain, block: int) -> None:
    while c.head.block_number + 1 < block:
        c.mine()


def test_policy_gates_receipts_until_an_executed_proposal_approves() -> None:
    w = _world()
    c = w.c
    with pytest.raises(Reverted, match="only the base model's registrant"):
        c.send(ADAPTER_AUTHOR, "Governance", "setApprovalPolicy", POLICY_BASE_MODEL, w.base, True)
    with pytest.raises(Reverted, match="not a base model"):
        c.send(BASE_AUTHOR, "Governance", "setApprovalPolicy", POLICY_BASE_MODEL, w.adapter1, True)
    with pytest.raises(Reverted, match="policy kind"):
        c.send(BASE_AUTHOR, "Governance", "setApprovalPolicy", 7, w.base, True)
    set_at = c.send(BASE_AUTHOR, "Governance", "setApprovalPolicy", POLICY_BASE_MODEL, w.base, True)
    assert c.call("Governance", "approvalPolicy", POLICY_BASE_MODEL, w.base) == (
        True, set_at.block.header.block_number)
    gated = _new_adapter(w, "gated")
    # the policy does not reach back: an adapter registered before it keeps being served
    assert c.call("Governance", "modelStatus", w.adapter1)[0] is False
    _receipt(w, w.adapter1)
    assert c.call("Governance", "modelStatus", gated) == (True, False, 0, 0)
    assert not ap.governance.is_deployable(c.state, gated)
    with pytest.raises(Reverted, match=f"adapter {gated} awaits approval"):
        _receipt(w, gated)

    with pytest.raises(Reverted, match="only the adapter's author"):
        c.send(USER, "Governance", "proposeModel", gated, value=BOND)
    with pytest.raises(Reverted, match="gov.model_min_bond"):  # bonds below the minimum
        c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", gated, value=ETHER - 1)
    with pytest.raises(Reverted, match="needs no approval"):
        c.send(BASE_AUTHOR, "Governance", "proposeModel", w.adapter1, value=BOND)
    before = c.balance(c.addr(ADAPTER_AUTHOR))
    sent = c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", gated, value=BOND)
    pid = sent.result
    assert c.balance(GOVERNANCE) == BOND
    p = c.call("Governance", "getProposal", pid)
    assert (p["kind"], p["value"], p["bond"], p["quorum_bp"], p["threshold_bp"]) == (1, gated, BOND, 500, 5000)
    assert p["end_block"] == sent.block.header.block_number + 12 and p["executable_block"] == p["end_block"] + 4
    with pytest.raises(Reverted, match="already has an open proposal"):
        c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", gated, value=BOND)

    # flash stake after the proposal weighs nothing, in this epoch or the next
    c.send(USER, "Staking", "stake", value=100 * ETHER)
    _next_epoch(c)
    with pytest.raises(Reverted, match="no voting power at the proposal's snapshot"):
        c.send(USER, "Governance", "vote", pid, False)
    c.send(VALIDATOR, "Governance", "vote", pid, True)
    with pytest.raises(Reverted, match="already voted"):
        c.send(VALIDATOR, "Governance", "vote", pid, True)
    # executed early: during the vote, then during the timelock
    with pytest.raises(Reverted, match="voting period is not over"):
        c.send(USER, "Governance", "execute", pid)
    _past(c, p["end_block"] + 1)
    with pytest.raises(Reverted, match="execution delay is not over"):
        c.send(USER, "Governance", "execute", pid)
    _past(c, p["executable_block"])
    with pytest.raises(Reverted, match="proposal passed: execute it"):
        c.send(USER, "Governance", "closeProposal", pid)
    spent = before - c.balance(c.addr(ADAPTER_AUTHOR))
    c.send(USER, "Governance", "execute", pid)
    assert c.balance(GOVERNANCE) == 0
    assert before - c.balance(c.addr(ADAPTER_AUTHOR)) == spent - BOND  # the bond came back
    assert c.call("Governance", "modelStatus", gated) == (True, True, pid, 0)
    # approved twice: neither the same proposal nor a new one
    with pytest.raises(Reverted, match="already executed"):
        c.send(USER, "Governance", "execute", pid)
    with pytest.raises(Reverted, match="already executed or closed"):
        c.send(USER, "Governance", "closeProposal", pid)
    with pytest.raises(Reverted, match="already approved"):
        c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", gated, value=BOND)
    _receipt(w, gated)
    assert ap.governance.get_model_status(c.state, gated) == {
        "adapterId": gated, "requiresApproval": True, "approved": True, "approvedBy": pid,
        "openProposal": 0, "deployable": True}


def test_datanet_policy_binds_adapters_that_declare_it() -> None:
    w = _world()
    c = w.c
    with pytest.raises(Reverted, match="only the datanet's owner"):
        c.send(USER, "Governance", "setApprovalPolicy", POLICY_DATANET, w.datanet, True)
    c.send(OWNER, "Governance", "setApprovalPolicy", POLICY_DATANET, w.datanet, True)
    on_it = _new_adapter(w, "on datanet")
    off_it = _new_adapter(w, "no datanet", datanets=False)
    assert c.call("Governance", "modelStatus", on_it)[0] is True
    assert c.call("Governance", "modelStatus", off_it)[0] is False
    c.send(OWNER, "Governance", "setApprovalPolicy", POLICY_DATANET, w.datanet, False)
    assert c.call("Governance", "modelStatus", on_it)[0] is False
    assert c.call("Governance", "approvalPolicy", POLICY_DATANET, w.datanet) == (False, 0)


def test_bond_returned_after_a_quorate_failure_slashed_after_a_large_no_or_no_quorum() -> None:
    # power: VALIDATOR 5, V1 3, V2 2 (ether), 10 in all
    w = _world({V1: 3 * ETHER, V2: 2 * ETHER})
    c = w.c
    c.send(BASE_AUTHOR, "Governance", "setApprovalPolicy", POLICY_BASE_MODEL, w.base, True)
    a, b, d = (_new_adapter(w, t) for t in ("narrow", "crushed", "ignored"))
    pids = [c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", x, value=BOND).result for x in (a, b, d)]
    narrow, crushed, ignored = pids
    c.send(V1, "Governance", "vote", narrow, True)        # 3 yes
    c.send(VALIDATOR, "Governance", "vote", narrow, False)  # 5 no: 62.5% < 66.67%
    c.send(V1, "Governance", "vote", crushed, False)      # 3 no
    c.send(V2, "Governance", "vote", crushed, False)      # 2 no: 100% no
    end = c.call("Governance", "getProposal", ignored)["end_block"]
    with pytest.raises(Reverted, match="voting period is not over"):
        c.send(USER, "Governance", "closeProposal", narrow)
    _past(c, end + 5)
    with pytest.raises(Reverted, match="proposal did not pass"):
        c.send(USER, "Governance", "execute", narrow)
    with pytest.raises(Reverted, match="quorum not reached"):
        c.send(USER, "Governance", "execute", ignored)
    treasury = ap.get_param(c.state, "treasury").to_bytes(20, "big")
    t0 = c.call("Rewards", "claimable", treasury)
    author0 = c.balance(c.addr(ADAPTER_AUTHOR))
    assert c.send(USER, "Governance", "closeProposal", narrow).result is True
    assert c.balance(c.addr(ADAPTER_AUTHOR)) == author0 + BOND
    assert c.send(USER, "Governance", "closeProposal", crushed).result is False
    assert c.send(USER, "Governance", "closeProposal", ignored).result is False
    assert c.call("Rewards", "claimable", treasury) == t0 + 2 * BOND
    assert c.balance(c.addr(ADAPTER_AUTHOR)) == author0 + BOND and c.balance(GOVERNANCE) == 0
    with pytest.raises(Reverted, match="proposal is closed|already executed or closed"):
        c.send(USER, "Governance", "execute", narrow)
    with pytest.raises(Reverted, match="already executed or closed"):
        c.send(USER, "Governance", "closeProposal", narrow)
    # a closed proposal frees the adapter for a new one
    again = c.send(ADAPTER_AUTHOR, "Governance", "proposeModel", a, value=BOND).result
    assert c.call("Governance", "modelStatus", a)[3] == again


def test_vote_and_execute_gas_flat_from_1x_to_100x_voters() -> None:
    voters = 101
    c = AIChain({**MODEL_PARAMS, "gov.model_voting_period": 300, "gov.model_timelock": 1, "gov.model_quorum_bp": 100,
                 "staking.epoch_length": 50, "staking.unbonding_blocks": 100,
                 "staking.evidence_max_age": 2, "inference.challenge_window": 1,
                 "inference.verdict_window": 2}, n_keys=voters + 3)
    base = c.send(0, "ModelRegistry", "registerBaseModel", keccak(text="b"), keccak(text="c"),
                  keccak(text="t"), "mit").result
    c.send(0, "Governance", "setApprovalPolicy", POLICY_BASE_MODEL, base, True)
    adapters = []
    for tag in ("one", "many"):
        spec = {"parent_id": base, "datanet_ids": [], "datanet_versions": [], "contribution_root": b"\x00" * 32,
                "hyper_params_hash": keccak(text=tag), "weights_hash": keccak(text=f"w {tag}"),
                "attribution_index_hash": keccak(text=f"i {tag}"), "manifest_hash": keccak(text=f"m {tag}"),
                "validator": c.addr(1), "license": "mit"}
        adapters.append(c.send(0, "ModelRegistry", "registerAdapter", spec).result)
    for i in range(2, voters + 2):
        c.send(i, "Staking", "stake", value=ETHER)
    _next_epoch(c)
    one, many = (c.send(0, "Governance", "proposeModel", x, value=BOND).result for x in adapters)
    vote_one = [_exec_gas(c.send(i, "Governance", "vote", one, True)) for i in (2, 3)]
    vote_many = [_exec_gas(c.send(i, "Governance", "vote", many, True)) for i in range(2, voters + 2)]
    # the first yes opens the tally; every later yes costs the same, the 2nd as the 101st
    assert vote_one[1] == vote_many[1] == vote_many[-1], (vote_one, vote_many[:3], vote_many[-1])
    assert c.call("Governance", "getProposal", many)["yes_votes"] == voters * ETHER
    _past(c, c.call("Governance", "getProposal", many)["executable_block"])
    exec_one = _exec_gas(c.send(0, "Governance", "execute", one))
    exec_many = _exec_gas(c.send(0, "Governance", "execute", many))
    assert exec_one == exec_many, (exec_one, exec_many)

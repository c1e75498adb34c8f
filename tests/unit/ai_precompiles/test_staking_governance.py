"""Staking (epochs, unbonding, validator set) and governance (proposal to execution)."""

from __future__ import annotations

import pytest

import ai_precompiles as ap
from ai_precompiles.addresses import STAKING
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import TEST_PARAMS, USER, VALIDATOR, build_world


def mine_to_next_epoch(c: AIChain) -> int:
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "currentEpoch") == epoch:
        c.mine()
    return epoch + 1


def test_stake_takes_effect_next_epoch_and_unbonds() -> None:
    c = AIChain(TEST_PARAMS, n_keys=4)
    e0 = c.call("Staking", "currentEpoch")
    c.send(1, "Staking", "stake", value=3 * ETHER)
    c.send(2, "Staking", "stake", value=2 * ETHER)
    c.send(3, "Staking", "stake", value=ETHER // 2)  # below min_stake: not a validator
    e = c.call("Staking", "currentEpoch")
    assert c.call("Staking", "votingPower", c.addr(1), e) == 0 or e > e0
    assert c.call("Staking", "votingPower", c.addr(1), e + 1) == 3 * ETHER
    assert ap.get_validator_set(c.state, epoch=e) == [] or e > e0
    nxt = mine_to_next_epoch(c)
    assert nxt == e + 1
    assert ap.get_validator_set(c.state) == [(c.addr(1), 3 * ETHER), (c.addr(2), 2 * ETHER)]
    vals, powers = c.call("Staking", "getValidatorSet", nxt)
    assert vals == [c.addr(1), c.addr(2)] and powers == [3 * ETHER, 2 * ETHER]

    s = c.send(1, "Staking", "unstake", 2 * ETHER)
    assert c.call("Staking", "stakeOf", c.addr(1)) == ETHER
    # this epoch's set is fixed; the next one sees the lower stake
    assert ap.get_validator_set(c.state, epoch=nxt)[0] == (c.addr(1), 3 * ETHER)
    assert ap.get_validator_set(c.state, epoch=nxt + 1) == [(c.addr(2), 2 * ETHER),
                                                            (c.addr(1), ETHER)]
    amount, release = c.call("Staking", "unbondingOf", c.addr(1))
    unbonding = TEST_PARAMS["staking.unbonding_blocks"]
    assert amount == 2 * ETHER and release == s.block.header.block_number + unbonding
    with pytest.raises(Reverted, match="unbonding period not over"):
        c.send(1, "Staking", "withdrawUnbonded")
    c.mine(unbonding - 1)
    staked_before = c.balance(STAKING)
    c.send(1, "Staking", "withdrawUnbonded")
    assert c.balance(STAKING) == staked_before - 2 * ETHER
    with pytest.raises(Reverted, match="cannot unstake"):
        c.send(2, "Staking", "unstake", 3 * ETHER)


def test_genesis_validators() -> None:
    c = AIChain({**TEST_PARAMS, "validators": {"0x" + "11" * 20: 7 * ETHER}}, n_keys=1)
    assert ap.get_validator_set(c.state, epoch=0) == [(b"\x11" * 20, 7 * ETHER)]
    assert c.balance(STAKING) == 7 * ETHER


@pytest.mark.xdist_group("ai_gov")
def test_governance_proposal_to_execution_changes_the_split() -> None:
    w = build_world()
    c = w.c
    c.send(USER, "Staking", "stake", value=ETHER)  # VALIDATOR has 5 ether staked already
    mine_to_next_epoch(c)
    with pytest.raises(Reverted, match="must be within"):
        c.send(USER, "Governance", "propose", "reward.validator_bp", 10_001)
    with pytest.raises(Reverted, match="must not exceed 10000"):
        c.send(USER, "Governance", "propose", "reward.validator_bp", 4000)
    with pytest.raises(Reverted, match="too little stake"):
        c.send(0, "Governance", "propose", "reward.validator_bp", 2400)
    pid = c.send(USER, "Governance", "propose", "reward.validator_bp", 2400).result
    p = c.call("Governance", "getProposal", pid)
    assert p["total_power"] == 6 * ETHER and p["param"] == "reward.validator_bp"
    c.send(VALIDATOR, "Governance", "vote", pid, True)
    c.send(USER, "Governance", "vote", pid, False)
    with pytest.raises(Reverted, match="already voted"):
        c.send(USER, "Governance", "vote", pid, True)
    with pytest.raises(Reverted, match="voting period is not over"):
        c.send(USER, "Governance", "execute", pid)
    while c.head.block_number < p["end_block"]:
        c.mine()
    before = c.ai_snapshot()
    with pytest.raises(Reverted, match="voting period is over"):
        c.send(0, "Governance", "vote", pid, True)
    assert c.ai_snapshot() == before
    with pytest.raises(Reverted, match="execution delay"):
        c.send(USER, "Governance", "execute", pid)
    while c.head.block_number + 1 < p["executable_block"]:
        c.mine()
    c.send(USER, "Governance", "execute", pid)
    assert c.call("Governance", "getParam", "reward.validator_bp") == 2400
    with pytest.raises(Reverted, match="already executed"):
        c.send(USER, "Governance", "execute", pid)

    # the rewards module reads the new share at run time
    fee = 10_000
    before_v = c.call("Rewards", "claimable", c.addr(VALIDATOR))
    req = w.request(w.adapter2, max_fee=fee)
    rid = c.send(VALIDATOR, "Inference", "submitReceipt",
                 *w.receipt_args(req, w.contributions[:1], [10000], fee)).result
    assert c.call("Rewards", "pending", c.addr(VALIDATOR)) == 2400
    # a receipt settles with the shares it was recorded with, whatever governance does meanwhile
    assert w.settle(rid) == 1
    assert c.call("Rewards", "claimable", c.addr(VALIDATOR)) - before_v == 2400


@pytest.mark.xdist_group("ai_gov")
def test_epoch_length_change_applies_at_the_boundary_and_failed_quorum() -> None:
    c = AIChain({**TEST_PARAMS, "gov.quorum_bp": 6000}, n_keys=4)
    c.send(1, "Staking", "stake", value=4 * ETHER)
    c.send(2, "Staking", "stake", value=6 * ETHER)
    mine_to_next_epoch(c)
    weak = c.send(1, "Governance", "propose", "gov.voting_period", 3).result
    pid = c.send(2, "Governance", "propose", "staking.epoch_length", 10).result
    c.send(1, "Governance", "vote", weak, True)  # 40% < 60% quorum
    c.send(2, "Governance", "vote", pid, True)
    p = c.call("Governance", "getProposal", pid)
    while c.head.block_number + 1 < p["executable_block"]:
        c.mine()
    with pytest.raises(Reverted, match="quorum not reached"):
        c.send(1, "Governance", "execute", weak)
    epochs_before = [c.call("Staking", "epochOf", b) for b in range(c.head.block_number + 1)]
    s = c.send(3, "Governance", "execute", pid)
    b = s.block.header.block_number
    cur = c.call("Staking", "epochOf", b)
    # past epochs unchanged; the current epoch keeps length 4; then epochs of 10 blocks
    assert [c.call("Staking", "epochOf", x) for x in range(len(epochs_before))] == epochs_before
    start_next = next(x for x in range(b, b + 5) if c.call("Staking", "epochOf", x) == cur + 1)
    assert c.call("Staking", "epochOf", start_next + 9) == cur + 1
    assert c.call("Staking", "epochOf", start_next + 10) == cur + 2

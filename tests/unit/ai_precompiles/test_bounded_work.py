"""No operation does work that grows with state others can grow (issue 8, items 4 and 11).

Staking keeps a running total (the quorum base) and a bounded list of validator candidates;
stake and propose cost the same however many stakers there are; the candidate list stays within
``2 * staking.max_candidates`` and the validator set of an epoch is fixed once it starts;
datanet versions are rooted from O(log n) Merkle peaks.
"""

from __future__ import annotations

import os

import pytest

import ai_precompiles as ap
from ai_precompiles.merkle import merkle_root, push_leaf, root_from_peaks
from ai_precompiles.staking import total_power
from ai_precompiles.storage import Array, Store, slot
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import TEST_PARAMS
from tests.unit.ai_precompiles.test_staking_governance import mine_to_next_epoch

SMALL = {**TEST_PARAMS, "staking.max_candidates": 3, "staking.max_validators": 2,
         "staking.min_holding": 10**15}


def _exec_gas(sent: object) -> int:
    return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)  # type: ignore[attr-defined]


def test_min_holding() -> None:
    c = AIChain(SMALL, n_keys=2)
    with pytest.raises(Reverted, match="staking.min_holding"):
        c.send(0, "Staking", "stake", value=10**15 - 1)
    c.send(0, "Staking", "stake", value=10**15)
    with pytest.raises(Reverted, match="staking.min_holding"):
        c.send(0, "Staking", "unstake", 1)
    c.send(0, "Staking", "unstake", 10**15)  # all of it is fine
    assert c.call("Staking", "stakeOf", c.addr(0)) == 0


def test_stake_and_propose_cost_the_same_however_many_stakers() -> None:
    c = AIChain({**TEST_PARAMS, "staking.epoch_length": 1000, "staking.unbonding_blocks": 1002}, n_keys=40)
    c.send(0, "Staking", "stake", value=ETHER)
    c.mine(1000 - c.head.block_number % 1000)  # one epoch later: a proposer with power
    stake_gas = [_exec_gas(c.send(i, "Staking", "stake", value=10**16)) for i in range(1, 40)]
    # the first stake of the epoch opens the total's checkpoint; every later one costs the same
    assert len(set(stake_gas[1:])) == 1, stake_gas
    first = _exec_gas(c.send(0, "Governance", "propose", "reward.author_bp", 1400))
    second = _exec_gas(c.send(0, "Governance", "propose", "reward.author_bp", 1401))
    for i in range(1, 40):  # 39 more stakes, same accounts: more checkpoints, same count
        c.send(i, "Staking", "stake", value=10**16)
    third = _exec_gas(c.send(0, "Governance", "propose", "reward.author_bp", 1402))
    assert second == third, (first, second, third)
    st = Store(c.state, ap.addresses.STAKING)
    epoch = c.call("Staking", "currentEpoch")
    assert total_power(st, epoch + 1) == ETHER + 39 * 2 * 10**16
    assert total_power(st, epoch) == ETHER


def test_candidates_are_bounded_and_the_current_set_is_fixed() -> None:
    c = AIChain(SMALL, n_keys=8)
    for i, amount in ((1, 1), (2, 2), (3, 3)):
        c.send(i, "Staking", "stake", value=amount * ETHER)
    c.send(7, "Staking", "stake", value=ETHER // 2)  # below min_stake: never a candidate
    e = mine_to_next_epoch(c)
    assert ap.get_validator_set(c.state) == [(c.addr(3), 3 * ETHER), (c.addr(2), 2 * ETHER)]
    st = Store(c.state, ap.addresses.STAKING)
    assert len(Array(st, slot("candidates"))) == 3

    # the list is full: a newcomer with less than the smallest stays out; one with more takes its seat
    c.send(4, "Staking", "stake", value=ETHER)  # equal to the smallest: not more
    c.send(5, "Staking", "stake", value=5 * ETHER)
    assert ap.get_validator_set(c.state, epoch=e) == [(c.addr(3), 3 * ETHER), (c.addr(2), 2 * ETHER)]
    assert ap.get_validator_set(c.state, epoch=e + 1) == [(c.addr(5), 5 * ETHER), (c.addr(3), 3 * ETHER)]
    # account 1 leaves at e + 1 but still belongs to epoch e's candidates
    st = Store(c.state, ap.addresses.STAKING)
    assert st.get(slot("cand.until", c.addr(1))) == e + 1
    assert len(Array(st, slot("candidates"))) == 4 and st.get(slot("cand.active")) == 3

    # a leaving candidate that stakes more within the epoch is not seated again for free: it
    # must beat the smallest staying one (account 2, 2 ether)
    c.send(1, "Staking", "stake", value=2 * ETHER)  # now 3 ether > 2: takes account 2's seat
    st = Store(c.state, ap.addresses.STAKING)
    assert st.get(slot("cand.until", c.addr(1))) == 0 and st.get(slot("cand.until", c.addr(2))) == e + 1
    assert st.get(slot("cand.active")) == 3

    # next epoch: the leavers are pruned on the next join that needs room
    mine_to_next_epoch(c)
    c.send(6, "Staking", "stake", value=10 * ETHER)
    st = Store(c.state, ap.addresses.STAKING)
    listed = {w.to_bytes(20, "big") for w in Array(st, slot("candidates"))}
    assert c.addr(2) not in listed and c.addr(6) in listed
    assert len(listed) <= 2 * 3 and st.get(slot("cand.active")) == 3
    assert ap.get_validator_set(c.state, epoch=e + 2) == [(c.addr(6), 10 * ETHER), (c.addr(5), 5 * ETHER)]


def test_unstaking_below_min_stake_leaves_the_set_next_epoch() -> None:
    c = AIChain(SMALL, n_keys=3)
    c.send(1, "Staking", "stake", value=2 * ETHER)
    e = mine_to_next_epoch(c)
    c.send(1, "Staking", "unstake", 3 * ETHER // 2)
    assert ap.get_validator_set(c.state, epoch=e) == [(c.addr(1), 2 * ETHER)]
    assert ap.get_validator_set(c.state, epoch=e + 1) == []
    c.send(1, "Staking", "stake", value=ETHER)  # back above: stays after all
    assert ap.get_validator_set(c.state, epoch=e + 1) == [(c.addr(1), 3 * ETHER // 2)]


def test_merkle_peaks_give_the_full_tree_root() -> None:
    leaves = [os.urandom(32) for _ in range(130)]
    peaks: dict[int, bytes] = {}
    for n, leaf in enumerate(leaves):
        peaks.update(push_leaf(peaks, n, leaf))
        assert root_from_peaks(peaks, n + 1) == merkle_root(leaves[: n + 1]), n

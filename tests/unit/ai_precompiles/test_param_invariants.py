"""The parameter invariants of issue 19 (attack 4, "exit with the stake, keep the power"), checked at
genesis, when a proposal is made and when it is executed.

- ``staking.epoch_length + staking.evidence_max_age <= staking.unbonding_blocks``: a validator that
  unstakes keeps its power to the end of the epoch, and its last double sign is provable for
  ``evidence_max_age`` blocks; its stake is still unbonding then, so the slash takes it.
- No zero where zero turns a defence off (no slash, no jail, no delay).
- The rule holds for the epoch running now, whose length a pending change does not shorten.
"""

from __future__ import annotations

import pytest

import ai_precompiles as ap
from ai_precompiles.errors import AIError
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.test_slashing import double_sign, mine_to_next_epoch

ANYONE, A, B, C = 0, 1, 2, 3
#: Short periods so a test runs in a few dozen blocks; the defaults obey the same rules.
PARAMS = {"staking.epoch_length": 10, "staking.evidence_max_age": 5, "staking.unbonding_blocks": 20,
          "inference.challenge_window": 5, "inference.verdict_window": 5,
          "gov.voting_period": 3, "gov.execution_delay": 1}
RULE = "staking.epoch_length \\+ staking.evidence_max_age must not exceed staking.unbonding_blocks"


def chain() -> AIChain:
    c = AIChain(PARAMS, n_keys=5)
    for k, v in ((A, 4 * ETHER), (B, 3 * ETHER), (C, 2 * ETHER)):
        c.send(k, "Staking", "stake", value=v)
    mine_to_next_epoch(c)
    return c


def passed(c: AIChain, param: str, value: int) -> tuple[int, int]:
    """A proposal voted through by every staker: (id, first block it may be executed in)."""
    pid = c.send(A, "Governance", "propose", param, value).result
    for k in (A, B, C):
        c.send(k, "Governance", "vote", pid, True)
    return pid, c.call("Governance", "getProposal", pid)["executable_block"]


def mine_until(c: AIChain, block: int) -> None:
    while c.head.block_number + 1 < block:
        c.mine()


def test_genesis_refuses_an_unbonding_shorter_than_an_epoch_and_the_evidence_age() -> None:
    defaults = ap.get_params(AIChain({}, n_keys=1).state)
    assert defaults["staking.epoch_length"] + defaults["staking.evidence_max_age"] <= defaults["staking.unbonding_blocks"]
    for bad in ({"staking.unbonding_blocks": 3},  # attack 4's value, with 100-block epochs
                {"staking.epoch_length": 150},
                {"staking.evidence_max_age": 201},
                {**PARAMS, "staking.unbonding_blocks": 14}):
        with pytest.raises(AIError, match=RULE):
            ap.genesis_accounts(bad)
    ap.genesis_accounts({**PARAMS, "staking.unbonding_blocks": 15})  # 10 + 5 <= 15: the boundary


def test_no_parameter_may_be_zero_where_zero_turns_a_defence_off() -> None:
    for name in ("staking.slash_fraction_bp", "staking.jail_blocks", "staking.evidence_max_age",
                 "staking.unbonding_blocks", "inference.withdraw_delay", "gov.execution_delay",
                 "registry.retire_delay"):
        assert ap.PARAMS[name].min >= 1, name
        with pytest.raises(AIError, match="must be within"):
            ap.genesis_accounts({name: 0})
    c = chain()
    for name in ("staking.slash_fraction_bp", "staking.jail_blocks", "inference.withdraw_delay"):
        with pytest.raises(Reverted, match="must be within"):
            c.send(A, "Governance", "propose", name, 0)


def test_attack_4_cannot_be_proposed() -> None:
    """Governance setting ``staking.unbonding_blocks`` = 3 with 100-block epochs: refused when
    proposed, so no validator can unstake and withdraw while it still votes."""
    c = AIChain({"gov.voting_period": 3, "gov.execution_delay": 1}, n_keys=3)
    c.send(A, "Staking", "stake", value=4 * ETHER)
    mine_to_next_epoch(c)
    count = c.call("Governance", "proposalCount")
    with pytest.raises(Reverted, match=RULE):
        c.send(A, "Governance", "propose", "staking.unbonding_blocks", 3)
    with pytest.raises(Reverted, match=RULE):
        c.send(A, "Governance", "propose", "staking.evidence_max_age", 250)
    assert c.call("Governance", "proposalCount") == count
    assert c.call("Governance", "getParam", "staking.unbonding_blocks") == 300


def test_a_proposal_valid_when_made_is_refused_at_execution_if_others_moved_meanwhile() -> None:
    c = chain()  # epoch 10, evidence age 5, unbonding 20
    # Each fits when proposed (10 + 10 <= 20, 15 + 5 <= 20); together they do not (15 + 10 > 20).
    age, _ = passed(c, "staking.evidence_max_age", 10)
    epoch, when = passed(c, "staking.epoch_length", 15)
    mine_until(c, when)
    c.send(ANYONE, "Governance", "execute", age)
    before = ap.get_params(c.state)
    with pytest.raises(Reverted, match=RULE):
        c.send(ANYONE, "Governance", "execute", epoch)
    assert ap.get_params(c.state) == before
    assert not c.call("Governance", "getProposal", epoch)["executed"]
    # Once unbonding is longer, the same proposal executes.
    longer, when = passed(c, "staking.unbonding_blocks", 25)
    mine_until(c, when)
    c.send(ANYONE, "Governance", "execute", longer)
    c.send(ANYONE, "Governance", "execute", epoch)
    assert c.call("Governance", "getParam", "staking.epoch_length") == 15


def test_a_shorter_epoch_does_not_let_the_running_one_break_the_rule() -> None:
    """An epoch-length change applies from the next boundary: the epoch running now keeps its
    length, so the rule is checked against the longer of the two."""
    c = AIChain({**PARAMS, "staking.epoch_length": 20, "staking.unbonding_blocks": 30}, n_keys=5)
    for k in (A, B, C):
        c.send(k, "Staking", "stake", value=2 * ETHER)
    mine_to_next_epoch(c)
    epoch = c.call("Staking", "currentEpoch")
    pid, when = passed(c, "staking.epoch_length", 5)  # 5 + 5 <= 30
    mine_until(c, when)
    c.send(ANYONE, "Governance", "execute", pid)
    assert c.call("Staking", "epochOf", c.head.block_number + 1) == epoch  # still the 20-block epoch
    # The parameter says 5 (5 + 5 <= 20), but this epoch runs 20 blocks: 20 + 5 > 20.
    with pytest.raises(Reverted, match=RULE):
        c.send(A, "Governance", "propose", "staking.unbonding_blocks", 20)
    mine_to_next_epoch(c)
    c.send(A, "Governance", "propose", "staking.unbonding_blocks", 20)


def test_a_validator_that_unstakes_everything_is_still_slashed_for_its_last_epoch() -> None:
    """Attack 4 played under the rule: the stake waits out the epoch and the evidence age, the
    double sign is proven at the last moment, and the slash comes out of the unbonding amount."""
    c = chain()
    stake = c.call("Staking", "stakeOf", c.addr(B))
    sent = c.send(B, "Staking", "unstake", stake)
    amount, release = c.call("Staking", "unbondingOf", c.addr(B))
    assert amount == stake and release == sent.block.header.block_number + PARAMS["staking.unbonding_blocks"]
    c.mine(4)
    with pytest.raises(Reverted, match="unbonding period not over"):
        c.send(B, "Staking", "withdrawUnbonded")
    # Its power lasts to the end of this epoch: a double sign at the epoch's last block.
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "epochOf", c.head.block_number + 1) == epoch:
        c.mine()
    last = c.head.block_number
    assert c.call("Staking", "votingPower", c.addr(B), epoch) == stake
    evidence = double_sign(c, B, height=last)
    mine_until(c, last + PARAMS["staking.evidence_max_age"])  # the last block that accepts it
    assert c.head.block_number + 1 < release
    slashed = c.send(ANYONE, "Staking", "submitEvidence", evidence).result
    assert slashed == stake * 500 // 10_000 > 0
    assert c.call("Staking", "unbondingOf", c.addr(B))[0] == stake - slashed
    mine_until(c, release)
    before = c.balance(c.addr(B))
    paid = c.send(B, "Staking", "withdrawUnbonded")
    assert paid.result == stake - slashed
    assert c.balance(c.addr(B)) > before

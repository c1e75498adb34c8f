"""Upgrades by vote: a passed proposal schedules a named rule change at a height; the rule is
looked up by height during execution (a gas schedule here); a node that lacks the upgrade
refuses the block at its height."""

from __future__ import annotations

from typing import Any

import pytest

from ai_precompiles import upgrades
from ai_precompiles.upgrades import KNOWN, UpgradeRequired, get_upgrades, require_known
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import TEST_PARAMS

PARAMS = {**TEST_PARAMS, "gov.upgrade_min_lead": 3}
STAKER, OTHER = 1, 2


def _exec_gas(sent: Any) -> int:
    return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)


def _chain() -> AIChain:
    c = AIChain(PARAMS, n_keys=4)
    c.send(STAKER, "Staking", "stake", value=3 * ETHER)
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "currentEpoch") == epoch:
        c.mine()
    return c


def _schedule(c: AIChain, name: str, lead: int = 2, info: str = "ailedger >= 0.2") -> tuple[int, int]:
    """Propose, vote and execute ``name``; returns (proposal, height)."""
    earliest = c.head.block_number + 1 + 6 + 4 + 3
    height = earliest + lead
    pid = c.send(STAKER, "Governance", "proposeUpgrade", name, height, info).result
    c.send(STAKER, "Governance", "vote", pid, True)
    p = c.call("Governance", "getProposal", pid)
    with pytest.raises(Reverted, match="voting period is not over"):
        c.send(OTHER, "Governance", "execute", pid)
    while c.head.block_number + 1 < p["executable_block"]:
        c.mine()
    c.send(OTHER, "Governance", "execute", pid)
    return pid, height


def test_proposal_checks_name_height_and_stake() -> None:
    c = _chain()
    earliest = c.head.block_number + 1 + 6 + 4 + 3
    with pytest.raises(Reverted, match="upgrade name"):
        c.send(STAKER, "Governance", "proposeUpgrade", "Bad Name!", earliest, "")
    with pytest.raises(Reverted, match="upgrade info"):
        c.send(STAKER, "Governance", "proposeUpgrade", "x", earliest, "i" * 257)
    earliest = c.head.block_number + 1 + 6 + 4 + 3
    with pytest.raises(Reverted, match=f"at least {earliest}"):
        c.send(STAKER, "Governance", "proposeUpgrade", "ai-gas-v2", earliest - 1, "")
    with pytest.raises(Reverted, match="too little stake"):
        c.send(OTHER, "Governance", "proposeUpgrade", "ai-gas-v2", earliest + 5, "")
    pid, height = _schedule(c, "ai-gas-v2")
    assert c.call("Governance", "getUpgrade", "ai-gas-v2") == {
        "name": "ai-gas-v2", "height": height, "info": "ailedger >= 0.2", "proposal_id": pid}
    assert c.call("Governance", "upgradeCount") == 1
    with pytest.raises(Reverted, match="already executed"):
        c.send(OTHER, "Governance", "execute", pid)
    with pytest.raises(Reverted, match="already scheduled"):
        c.send(STAKER, "Governance", "proposeUpgrade", "ai-gas-v2", height + 50, "")
    with pytest.raises(Reverted, match="not scheduled"):
        c.call("Governance", "getUpgrade", "nope")


def test_gas_schedule_applies_from_its_height() -> None:
    c = _chain()
    _, height = _schedule(c, "ai-gas-v2")
    while c.head.block_number + 3 < height:
        c.mine()
    c.send(OTHER, "Inference", "deposit", value=ETHER)  # first deposit: opens the balance slot
    before = _exec_gas(c.send(OTHER, "Inference", "deposit", value=ETHER))  # block height - 1
    assert c.head.block_number == height - 1
    after = _exec_gas(c.send(OTHER, "Inference", "deposit", value=ETHER))   # block height
    new, old = KNOWN["ai-gas-v2"].gas["gas.deposit"], PARAMS.get("gas.deposit", 30_000)
    assert after - before == new - old, (before, after)
    # a parameter proposal no longer moves a price the active schedule sets
    assert upgrades.gas_price(c.state, "gas.deposit") == new
    assert upgrades.gas_price(c.state, "gas.stake") == 80_000


def test_a_node_without_the_upgrade_refuses_its_height() -> None:
    c = _chain()
    _, height = _schedule(c, "ai-future-rules", info="install ailedger 9.9 (https://example.invalid)")
    state = c.state
    require_known(state, height - 1)  # below the height: nothing to apply yet
    with pytest.raises(UpgradeRequired) as err:
        require_known(state, height)
    assert "ai-future-rules" in str(err.value) and "install ailedger 9.9" in str(err.value)
    assert err.value.height == height
    # a release that knows it goes on
    require_known(state, height + 10, {**KNOWN, "ai-future-rules": KNOWN["ai-gas-v2"]})
    assert get_upgrades(state) == [{"name": "ai-future-rules", "height": height, "info":
                                    "install ailedger 9.9 (https://example.invalid)", "proposalId": 1,
                                    "known": False, "doc": None}]


def test_execute_too_late_is_refused() -> None:
    c = _chain()
    earliest = c.head.block_number + 1 + 6 + 4 + 3
    pid = c.send(STAKER, "Governance", "proposeUpgrade", "ai-gas-v2", earliest, "").result
    c.send(STAKER, "Governance", "vote", pid, True)
    c.mine(12)
    with pytest.raises(Reverted, match="gov.upgrade_min_lead"):
        c.send(OTHER, "Governance", "execute", pid)

"""Issue 19, attack 4 ("exit with the stake, keep the power") against a real ``ailedger dev`` over
JSON-RPC, with the chain's default 100-block epochs.

The attack: governance sets ``staking.unbonding_blocks`` = 3; a validator unstakes everything and
withdraws it 5 blocks later while it still votes to the end of the epoch; its double sign then
slashes 0 wei. Now the proposal is refused (unbonding must cover an epoch and the evidence age),
the withdrawal waits, and the double sign of the epoch's last block, proven as late as the chain
accepts evidence, is slashed out of the unbonding amount.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import to_checksum_address

from ai_precompiles.addresses import BY_NAME
from tests.integration.ai.client import ADDR, ETHER, AINode, RPCFailure
from tests.integration.consensus.test_slashing import (
    double_sign,
    mine_to_next_epoch,
    revert_reason,
    send_evidence,
)
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("exit-with-stake")]

VALIDATOR, PEER, SUBMITTER = 15, 16, 17
STAKE = 3 * ETHER
RULE = "staking.epoch_length + staking.evidence_max_age must not exceed staking.unbonding_blocks"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AINode]:
    proc = start_ailedger([], tmp_path_factory.mktemp("exit"))
    try:
        node = AINode(proc)
        for who in (VALIDATOR, PEER):
            node.do(who, "Staking", "stake", value=STAKE)
        mine_to_next_epoch(node)
        yield node
    finally:
        proc.kill()


def test_governance_cannot_shorten_unbonding_below_an_epoch_and_the_evidence_age(node: AINode) -> None:
    params = node.rpc("ai_getParams")
    epoch, age, unbonding = (int(params[k], 16) for k in (
        "staking.epoch_length", "staking.evidence_max_age", "staking.unbonding_blocks"))
    assert (epoch, age, unbonding) == (100, 200, 300)
    count = node.call(VALIDATOR, "Governance", "proposalCount")
    governance = to_checksum_address(BY_NAME["Governance"])
    for param, value in (("staking.unbonding_blocks", 3), ("staking.unbonding_blocks", 299),
                         ("staking.evidence_max_age", 201), ("staking.epoch_length", 101)):
        data = node.calldata("Governance", "propose", param, value)
        with pytest.raises(RPCFailure) as err:
            node.call_raw(VALIDATOR, governance, data)
        assert revert_reason(err.value) == RULE, (param, value)
        mined = node.send_raw_call(VALIDATOR, governance, data, gas=1_000_000)
        assert mined.status == 0
    assert node.call(VALIDATOR, "Governance", "proposalCount") == count
    # Within the rule, a proposal is made as before.
    node.do(VALIDATOR, "Governance", "propose", "staking.unbonding_blocks", 300 + 50)


def test_an_exiting_validator_is_still_slashed_for_its_last_epoch(node: AINode) -> None:
    sent = node.send(VALIDATOR, "Staking", "unstake", STAKE)
    assert sent.status == 1
    amount, release = node.call(0, "Staking", "unbondingOf", ADDR[VALIDATOR])
    assert amount == STAKE and release == sent.block_number + 300
    node.rpc("anvil_mine", "0x5", "0x0")
    with pytest.raises(RPCFailure) as err:
        node.call_raw(VALIDATOR, to_checksum_address(BY_NAME["Staking"]), node.calldata("Staking", "withdrawUnbonded"))
    assert revert_reason(err.value) == "unbonding period not over"
    # It keeps its power to the end of the epoch, and double-signs at the epoch's last height.
    epoch = node.call(0, "Staking", "currentEpoch")
    assert node.call(0, "Staking", "votingPower", ADDR[VALIDATOR], epoch) == STAKE
    last = (epoch + 1) * 100 - 1
    node.rpc("anvil_mine", hex(last - int(node.rpc("eth_blockNumber"), 16) + 200 - 1), "0x0")
    # The evidence lands in the last block that accepts it (evidence_max_age = 200 blocks on).
    assert int(node.rpc("eth_blockNumber"), 16) + 1 == last + 200 < release
    receipt = send_evidence(node, double_sign(VALIDATOR, last), who=SUBMITTER)
    assert int(receipt["status"], 16) == 1, receipt
    due = STAKE * 500 // 10_000
    assert list(node.call(0, "Staking", "unbondingOf", ADDR[VALIDATOR])) == [STAKE - due, release]
    # One block later the same offence of its peer is refused: older than evidence_max_age.
    late = send_evidence(node, double_sign(PEER, last), who=SUBMITTER)
    assert int(late["status"], 16) == 0
    node.rpc("anvil_mine", hex(release - int(node.rpc("eth_blockNumber"), 16)), "0x0")
    before = node.balance(VALIDATOR)
    paid = node.send(VALIDATOR, "Staking", "withdrawUnbonded")
    assert paid.status == 1 and node.balance(VALIDATOR) == before + STAKE - due - paid.fee_paid

"""A stake moves the validator set at the next epoch boundary (docs/consensus.md §5): a fifth
validator, staked through the staking precompile, signs from that epoch on (the chain then goes
on without one of the first four), every header names the set that signs it, and a node that
joins later syncs across the change, checking each commit against its own height's set."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from ai_precompiles.addresses import STAKING
from consensus.validator_set import ValidatorSet
from genesis import load_genesis
from tests.integration.consensus.bftnet import TEST_CONSENSUS, init_net
from tests.integration.p2p.netsupport import ACCOUNTS, result, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bft-network"), pytest.mark.timeout(240)]

EPOCH = 8
STAKE = 1000 * 10**18


def test_a_stake_moves_the_set_at_the_epoch_and_a_late_joiner_syncs_across_it(tmp_path):
    net = init_net(tmp_path, validators=4, nodes=6)
    genesis_path = net.directory / "genesis.json"
    doc = json.loads(genesis_path.read_text())
    doc["ai"]["staking.epoch_length"] = EPOCH
    genesis_path.write_text(json.dumps(doc))
    candidate = ACCOUNTS[5]
    node4 = net.directory / "node4"
    (node4 / "validator.key").write_text("0x" + bytes(candidate.private_key).hex())
    config = json.loads((node4 / "config.json").read_text())
    config.update(validatorKey="validator.key", consensus=TEST_CONSENSUS)
    (node4 / "config.json").write_text(json.dumps(config))
    try:
        net.start(0, 1, 2, 3, 4)
        net.wait_heads(2, [0, 1, 2, 3, 4], timeout=90)
        tx = {"to": to_checksum_address(STAKING), "value": STAKE, "data": "0x" + keccak(b"stake()")[:4].hex(), "gas": 300_000,
              "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9, "nonce": 0, "chainId": net.chain_id, "type": 2}
        raw = Account.from_key(candidate.private_key).sign_transaction(tx).raw_transaction
        tx_hash = result(net.url(4), "eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        receipt = wait_for(lambda: result(net.url(0), "eth_getTransactionReceipt", [tx_hash]), 60, "the stake")
        assert receipt["status"] == "0x1"
        staked_in = int(receipt["blockNumber"], 16)
        boundary = (staked_in // EPOCH + 1) * EPOCH  # the stake counts from the next epoch
        net.wait_heads(boundary + 2, [0, 1, 2, 3, 4], timeout=120)

        genesis = load_genesis(genesis_path)
        old = ValidatorSet.new([(v.address, v.power) for v in genesis.validators])
        new_member = bytes.fromhex(candidate.address[2:])
        new = ValidatorSet.new([*[(v.address, v.power) for v in genesis.validators], (new_member, STAKE // 10**9)])

        def extra(n: int) -> str:
            return result(net.url(0), "eth_getBlockByNumber", [hex(n), False])["extraData"]

        assert extra(boundary - 1) == "0x" + old.hash().hex()
        assert extra(boundary) == "0x" + new.hash().hex()
        signed = {h for v, h, _, _, _ in net.votes() if v == new_member.hex()}
        assert signed and min(signed) >= boundary, "the new validator voted, and only once in the set"

        # Four of five hold more than 2/3: without node3, the new validator's votes are needed.
        net.kill(3)
        h = max(net.heads([0, 1, 2, 4]))
        net.wait_heads(h + 3, [0, 1, 2, 4], timeout=90)

        net.start(5)  # a late follower syncs every block, checking each commit against its height's set
        top = max(net.heads([0, 1, 2, 4]))
        net.wait_heads(top, [5], timeout=90)
        net.assert_agree([0, 1, 2, 4, 5])
        assert net.double_signs() == {}
    finally:
        net.stop_all()

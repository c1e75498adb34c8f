"""The node's evidence pool (node/bft/evidence.py): verification, one entry per offence, expiry,
caps and per-block picks; and the transaction it builds, mined on the node's own VM, slashes."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from ai_precompiles.addresses import STAKING
from consensus.evidence import MAX_EVIDENCE_PER_BLOCK, DuplicateVoteEvidence, InvalidEvidence
from consensus.messages import Vote, VoteType
from node.bft.evidence import (
    EvidencePool,
    offence_of,
    submit_evidence_calldata,
    submit_evidence_transaction,
)
from tests.unit.ai_precompiles.ai_harness import CHAIN_ID, ETHER, GWEI, AIChain

KEYS = [Account.from_key(keccak(text=f"pool key {i}")) for i in range(40)]
POWERS = {bytes.fromhex(k.address[2:]): 10 for k in KEYS[:30]}


def evidence(i: int, height: int, round_: int = 0, type_: VoteType = VoteType.PREVOTE,
             chain_id: int = CHAIN_ID, key: int | None = None) -> DuplicateVoteEvidence:
    who = bytes.fromhex(KEYS[i].address[2:])
    signer = bytes(KEYS[i if key is None else key].key)
    a = Vote(type_, height, round_, keccak(text=f"a{height}"), who).signed(chain_id, signer)
    b = Vote(type_, height, round_, keccak(text=f"b{height}"), who).signed(chain_id, signer)
    return DuplicateVoteEvidence.of(a, b)


def test_add_verifies_and_keeps_one_entry_per_offence() -> None:
    pool = EvidencePool(CHAIN_ID, max_age=100)
    ev = evidence(0, 50)
    assert pool.add(ev, POWERS, head=60)
    assert offence_of(ev) in pool and len(pool) == 1
    # the same validator and height, another round or step: the chain punishes it once
    assert not pool.add(evidence(0, 50, round_=3, type_=VoteType.PRECOMMIT), POWERS, head=60)
    assert pool.add(evidence(0, 51), POWERS, head=60)
    for bad, why in ((evidence(1, 50, key=2), "signature"), (evidence(1, 50, chain_id=7), "signature"),
                     (evidence(35, 50), "not in the validator set"), (evidence(1, 61), "above the head")):
        with pytest.raises(InvalidEvidence, match=why):
            pool.add(bad, POWERS, head=60)
    assert len(pool) == 2


def test_expired_evidence_is_refused_and_pruned() -> None:
    pool = EvidencePool(CHAIN_ID, max_age=10)
    assert not pool.add(evidence(0, 10), POWERS, head=20)  # a block at 21 is 11 blocks on: refused
    assert pool.add(evidence(0, 11), POWERS, head=20)  # 21 - 11 = 10: still accepted on chain
    assert [offence_of(e) for e in pool.pick(head=20)] == [offence_of(evidence(0, 11))]
    assert pool.pick(head=21) == []
    pool.prune(head=21)
    assert len(pool) == 0


def test_capacity_drops_the_oldest_offence_for_a_newer_one() -> None:
    pool = EvidencePool(CHAIN_ID, max_age=1_000, capacity=3)
    for h in (10, 11, 12):
        assert pool.add(evidence(0, h), POWERS, head=100)
    assert not pool.add(evidence(1, 5), POWERS, head=100)  # older than all: no room
    assert pool.add(evidence(1, 20), POWERS, head=100)
    assert len(pool) == 3 and offence_of(evidence(0, 10)) not in pool
    assert offence_of(evidence(1, 20)) in pool


def test_pick_is_capped_per_block_oldest_first_and_committed_offences_stay_out() -> None:
    pool = EvidencePool(CHAIN_ID, max_age=1_000)
    for i in range(25):
        assert pool.add(evidence(i, 100 - i), POWERS, head=200)
    picked = pool.pick(head=200, limit=100)
    assert len(picked) == MAX_EVIDENCE_PER_BLOCK == 16
    assert [e.height for e in picked] == sorted(100 - i for i in range(25))[:16]
    pool.mark_committed(picked, head=201)
    assert len(pool) == 9
    assert not pool.add(picked[0], POWERS, head=201)  # gossip cannot bring it back
    pool.mark_committed([offence_of(e) for e in pool.pick(head=201)], head=202)
    assert len(pool) == 0


def test_the_built_transaction_slashes_on_the_nodes_vm() -> None:
    c = AIChain({"staking.epoch_length": 4, "staking.unbonding_blocks": 40, "staking.evidence_max_age": 36,
                 "inference.challenge_window": 10, "inference.verdict_window": 10}, n_keys=3)
    c.send(1, "Staking", "stake", value=2 * ETHER)
    c.mine(4)
    offender = bytes.fromhex(c.keys[1].address[2:])
    h = c.head.block_number
    a = Vote(VoteType.PRECOMMIT, h, 1, keccak(text="x"), offender).signed(CHAIN_ID, bytes(c.keys[1].key))
    b = Vote(VoteType.PRECOMMIT, h, 1, keccak(text="y"), offender).signed(CHAIN_ID, bytes(c.keys[1].key))
    ev = DuplicateVoteEvidence.of(a, b)
    assert submit_evidence_calldata(ev)[4:] != b""
    raw = submit_evidence_transaction(ev, bytes(c.keys[2].key), nonce=0, max_fee=100 * GWEI,
                                      chain_id=CHAIN_ID)
    tx = c.chain.get_vm().get_transaction_builder().decode(raw)
    assert tx.to == STAKING and tx.sender == bytes.fromhex(c.keys[2].address[2:])
    _, receipts, computations = c.chain.mine_all([tx])
    assert not computations[0].is_error, computations[0].error
    assert c.call("Staking", "stakeOf", offender) == 2 * ETHER - 2 * ETHER * 500 // 10_000
    assert c.call("Staking", "isPunished", offender, h)

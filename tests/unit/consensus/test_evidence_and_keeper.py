"""Double-sign evidence and the vote keeper's counting rules."""

import pytest
import rlp
from eth_account import Account

from consensus.evidence import DuplicateVoteEvidence, InvalidEvidence
from consensus.messages import MessageError, Vote, VoteType
from consensus.validator_set import ValidatorSet
from consensus.vote_keeper import AddResult, VoteKeeper

CHAIN = 5
KEYS = [bytes(Account.create().key) for _ in range(4)]
ADDRS = [bytes.fromhex(Account.from_key(k).address[2:]) for k in KEYS]
POWERS = dict.fromkeys(ADDRS, 10)
A, B, C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


def vote(i: int, block: bytes, r: int = 0, t: VoteType = VoteType.PREVOTE, h: int = 3, chain: int = CHAIN) -> Vote:
    return Vote(t, h, r, block, ADDRS[i]).signed(chain, KEYS[i])


def test_evidence_verifies_and_round_trips():
    ev = DuplicateVoteEvidence.of(vote(1, B), vote(1, A))
    assert ev.vote_a.block_hash == A  # canonical order
    ev.check(CHAIN, POWERS)
    assert DuplicateVoteEvidence.decode(ev.encode()) == ev
    assert DuplicateVoteEvidence.of(vote(1, A), vote(1, b"")).verify(CHAIN, POWERS)  # block vs nil


@pytest.mark.parametrize("a,b,why", [
    (vote(1, A), vote(1, A), "same block"),
    (vote(1, A), vote(2, B), "not for the same validator"),
    (vote(1, A), vote(1, B, r=1), "not for the same"),
    (vote(1, A), vote(1, B, t=VoteType.PRECOMMIT), "not for the same"),
    (vote(1, A), vote(1, B, h=4), "not for the same"),
    (vote(1, A, chain=6), vote(1, B, chain=6), "signature"),
])
def test_evidence_that_proves_nothing_is_refused(a, b, why):
    with pytest.raises(InvalidEvidence, match=why):
        DuplicateVoteEvidence.of(a, b).check(CHAIN, POWERS)


def test_evidence_outside_the_set_or_forged_is_refused():
    ev = DuplicateVoteEvidence.of(vote(1, A), vote(1, B))
    assert not ev.verify(CHAIN, {ADDRS[0]: 10})
    forged = Vote(VoteType.PREVOTE, 3, 0, B, ADDRS[1], vote(2, B).signature)
    assert not DuplicateVoteEvidence.of(vote(1, A), forged).verify(CHAIN, POWERS)
    assert not DuplicateVoteEvidence(vote(1, B), vote(1, A)).verify(CHAIN, POWERS)  # not canonical
    for raw in (b"", b"\xc0", rlp.encode([b"x", b"y"]), b"\x01" * 700, rlp.encode([[1], b"y"])):
        with pytest.raises(MessageError):
            DuplicateVoteEvidence.decode(raw)


def test_keeper_counts_each_validator_once_and_reports_conflicts_once():
    k = VoteKeeper(3, POWERS)
    assert k.add(vote(0, A), 0) == (AddResult.ADDED, None)
    assert k.add(vote(0, A), 0) == (AddResult.DUPLICATE, None)
    result, ev = k.add(vote(0, B), 0)
    assert result is AddResult.CONFLICT and ev is not None and ev.validator == ADDRS[0]
    assert k.add(vote(0, C), 0)[1] is None  # the offence is reported once
    assert k.power_for(0, VoteType.PREVOTE, A) == 10 and k.power_for(0, VoteType.PREVOTE, B) == 0
    assert k.add(vote(9 % 4, A, h=4), 0)[0] is AddResult.REFUSED  # another height
    # A conflicting vote counts for a value others voted (the paper counts signed messages).
    k.add(vote(1, B), 0)
    k.add(vote(0, B), 0)
    assert k.power_for(0, VoteType.PREVOTE, B) == 20
    assert not k.has_two_thirds_any(0, VoteType.PREVOTE)  # 2 distinct validators of 4
    k.add(vote(2, B), 0)
    assert k.two_thirds_majority(0, VoteType.PREVOTE) == B and k.has_two_thirds_any(0, VoteType.PREVOTE)
    assert {v.validator for v in k.votes(0, VoteType.PREVOTE, B)} == set(ADDRS[:3])


def test_keeper_bounds_the_rounds_a_validator_can_open_ahead():
    k = VoteKeeper(3, POWERS)
    for r in (10, 20):
        assert k.add(vote(1, A, r=r), 0)[0] is AddResult.ADDED
    assert k.add(vote(1, A, r=30), 0)[0] is AddResult.REFUSED
    assert k.add(vote(1, A, r=1), 0)[0] is AddResult.ADDED  # the next round is always open
    assert k.add(vote(1, A, r=30), 29)[0] is AddResult.ADDED  # once we are there
    assert k.has_one_third_in_round(10) is False
    k.add(vote(2, A, r=10), 0)
    assert k.has_one_third_in_round(10)


def test_validator_set_hash_names_membership_and_power():
    vs = ValidatorSet.new(POWERS)
    assert vs.hash() == vs.increment_proposer_priority(3).hash()
    assert vs.hash() != ValidatorSet.new({**POWERS, ADDRS[0]: 11}).hash()

"""Item 13 of issue 8: a commit counts distinct signers over canonical sign bytes."""

import pytest
import rlp
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.commit import Commit, InvalidCommit
from consensus.messages import MessageError, Proposal, Vote, VoteType, sign_bytes

CHAIN = 4242
BLOCK = b"\xab" * 32
KEYS = [bytes(Account.create().key) for _ in range(4)]
ADDRS = [bytes.fromhex(Account.from_key(k).address[2:]) for k in KEYS]
POWERS = dict.fromkeys(ADDRS, 10)


def precommit(i: int, height: int = 7, round_: int = 1, block: bytes = BLOCK, chain: int = CHAIN) -> Vote:
    return Vote(VoteType.PRECOMMIT, height, round_, block, ADDRS[i]).signed(chain, KEYS[i])


def test_sign_bytes_bind_chain_height_round_type_and_block():
    base = sign_bytes(CHAIN, VoteType.PRECOMMIT, 7, 1, BLOCK)
    others = {
        sign_bytes(CHAIN + 1, VoteType.PRECOMMIT, 7, 1, BLOCK),
        sign_bytes(CHAIN, VoteType.PREVOTE, 7, 1, BLOCK),
        sign_bytes(CHAIN, VoteType.PRECOMMIT, 8, 1, BLOCK),
        sign_bytes(CHAIN, VoteType.PRECOMMIT, 7, 2, BLOCK),
        sign_bytes(CHAIN, VoteType.PRECOMMIT, 7, 1, b"\xac" * 32),
        sign_bytes(CHAIN, VoteType.PRECOMMIT, 7, 1, b""),
    }
    assert base not in others and len(others) == 6
    assert base.startswith(b"\x19")  # never an RLP transaction


def test_three_of_four_distinct_signers_commit():
    commit = Commit.from_votes([precommit(i) for i in range(3)])
    commit.check(POWERS, chain_id=CHAIN, height=7, block_hash=BLOCK)
    assert Commit.decode(commit.encode()) == commit
    with pytest.raises(InvalidCommit, match="not more than 2/3"):
        Commit.from_votes([precommit(i) for i in range(2)]).check(POWERS, chain_id=CHAIN)


def test_a_repeated_signature_never_counts_twice():
    v0, v1 = precommit(0), precommit(1)
    # Two validators of four, each signature repeated: 4 entries would be "4/4" if counted twice.
    commit = Commit(7, BLOCK, ((v0.validator, v0.signature), (v0.validator, v0.signature),
                               (v1.validator, v1.signature), (v1.validator, v1.signature)), 1)
    with pytest.raises(InvalidCommit, match="signs twice"):
        commit.check(POWERS, chain_id=CHAIN)
    # Even when the repeats are two different valid signatures (ECDSA is not unique).
    again = Vote(VoteType.PRECOMMIT, 7, 1, BLOCK, ADDRS[0]).signed(CHAIN, KEYS[0])
    commit = Commit(7, BLOCK, ((v0.validator, v0.signature), (again.validator, again.signature),
                               (v1.validator, v1.signature)), 1)
    assert not commit.verify(POWERS, chain_id=CHAIN)


def test_signer_outside_the_set_is_refused():
    outsider_key = bytes(Account.create().key)
    outsider = bytes.fromhex(Account.from_key(outsider_key).address[2:])
    vo = Vote(VoteType.PRECOMMIT, 7, 1, BLOCK, outsider).signed(CHAIN, outsider_key)
    commit = Commit.from_votes([precommit(0), precommit(1), precommit(2), vo])
    with pytest.raises(InvalidCommit, match="not in the validator set"):
        commit.check(POWERS, chain_id=CHAIN)


def test_wrong_chain_height_round_or_block_is_refused():
    good = Commit.from_votes([precommit(i) for i in range(4)])
    assert good.verify(POWERS, chain_id=CHAIN)
    assert not good.verify(POWERS, chain_id=CHAIN + 1)
    assert not Commit.from_votes([precommit(i, chain=CHAIN + 1) for i in range(4)]).verify(POWERS, chain_id=CHAIN)
    # The same signatures relabelled with another height, round or block do not verify.
    for h, r, b in ((8, 1, BLOCK), (7, 0, BLOCK), (7, 1, b"\x01" * 32)):
        assert not Commit(h, b, good.signatures, r).verify(POWERS, chain_id=CHAIN)
    # Asking for another height or block than the commit's.
    assert not good.verify(POWERS, chain_id=CHAIN, height=8)
    assert not good.verify(POWERS, chain_id=CHAIN, block_hash=b"\x01" * 32)
    # A prevote signature is not a precommit signature.
    prevotes = [Vote(VoteType.PREVOTE, 7, 1, BLOCK, ADDRS[i]).signed(CHAIN, KEYS[i]) for i in range(4)]
    assert not Commit(7, BLOCK, tuple((v.validator, v.signature) for v in prevotes), 1).verify(POWERS, chain_id=CHAIN)


def test_power_is_weighted():
    powers = {ADDRS[0]: 70, ADDRS[1]: 10, ADDRS[2]: 10, ADDRS[3]: 10}
    assert Commit.from_votes([precommit(0)]).verify(powers, chain_id=CHAIN)
    assert not Commit.from_votes([precommit(1), precommit(2), precommit(3)]).verify(powers, chain_id=CHAIN)
    assert not Commit.from_votes([precommit(0)]).verify({}, chain_id=CHAIN)


def test_malformed_encodings_raise_message_error():
    good = Commit.from_votes([precommit(0)]).encode()
    bad = [b"", b"\xc0", b"\x80" * 3, rlp.encode([7, 1, BLOCK, [[ADDRS[0]]]]),
           rlp.encode([7, 1, b"\x01", []]), rlp.encode([b"\x00\x07", 1, BLOCK, []]),
           rlp.encode([7, 1, BLOCK, [[ADDRS[0], b"\x00" * 64]]]), good + b"\x00",
           b"\xff" * (10**6)]
    for raw in bad:
        with pytest.raises(MessageError):
            Commit.decode(raw)


def test_vote_and_proposal_round_trip_and_refuse_garbage():
    v = precommit(2)
    assert Vote.decode(v.encode()) == v and v.verify(CHAIN) and not v.verify(CHAIN + 1)
    nil = Vote(VoteType.PREVOTE, 7, 0, b"", ADDRS[1]).signed(CHAIN, KEYS[1])
    assert Vote.decode(nil.encode()) == nil and nil.is_nil and nil.verify(CHAIN)
    p = Proposal(7, 3, 1, BLOCK, ADDRS[0]).signed(CHAIN, KEYS[0])
    assert Proposal.decode(p.encode()) == p and p.verify(CHAIN)
    assert not Proposal(7, 3, 0, BLOCK, ADDRS[0], p.signature).verify(CHAIN)  # pol_round is signed
    fresh = Proposal(7, 0, -1, BLOCK, ADDRS[0]).signed(CHAIN, KEYS[0])
    assert Proposal.decode(fresh.encode()) == fresh
    with pytest.raises(MessageError):
        Vote.decode(rlp.encode([32, 7, 1, BLOCK, ADDRS[0], v.signature]))  # a proposal type in a vote
    with pytest.raises(MessageError):
        Vote.decode(b"\x01" * 300)
    with pytest.raises(MessageError):
        Proposal.decode(rlp.encode([7, 1, 3, BLOCK, ADDRS[0], p.signature]))  # pol_round >= round


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=400),
                     st.lists(st.one_of(st.binary(max_size=70), st.integers(0, 2**70),
                                        st.lists(st.binary(max_size=70), max_size=3)), max_size=7).map(rlp.encode)))
def test_decoders_raise_only_message_error_on_hostile_bytes(raw):
    from consensus.evidence import DuplicateVoteEvidence

    for decode in (Vote.decode, Proposal.decode, Commit.decode, DuplicateVoteEvidence.decode):
        try:
            decode(raw)
        except MessageError:
            pass

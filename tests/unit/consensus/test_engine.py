"""The engine's own duties, one at a time (the simulated network runs them all together)."""

from pathlib import Path

import rlp
from eth_account import Account
from eth_hash.auto import keccak

from consensus.commit import Commit
from consensus.engine import (
    MAX_FRAME_BYTES,
    Behind,
    BlockVerdict,
    Broadcast,
    BuildBlock,
    CheckBlock,
    CommitBlock,
    Engine,
    FrameKind,
    PeerMisbehaved,
    SendTo,
    SetTimer,
    Timer,
    decode_message,
    encode_message,
)
from consensus.messages import Proposal, Vote, VoteType
from consensus.validator_set import ValidatorSet
from consensus.wal import WAL, GuardedSigner

CHAIN = 12
KEYS = [bytes(Account.from_key(keccak(b"engine %d" % i)).key) for i in range(4)]
ADDRS = [bytes.fromhex(Account.from_key(k).address[2:]) for k in KEYS]
VSET = ValidatorSet.new([(a, 10) for a in ADDRS])
BLOCK = b"a block"
HASH = keccak(BLOCK)


def proposer(r: int = 0) -> int:
    return ADDRS.index(VSET.proposer_at_round(r))


def engine(tmp_path: Path, me: int | None) -> Engine:
    signer = GuardedSigner(KEYS[me], CHAIN, WAL(tmp_path / f"wal{me}")) if me is not None else None
    return Engine(CHAIN, 1, VSET, signer)


def proposal_frame(block: bytes = BLOCK, block_hash: bytes = HASH, r: int = 0) -> bytes:
    p = Proposal(1, r, -1, block_hash, ADDRS[proposer(r)]).signed(CHAIN, KEYS[proposer(r)])
    return encode_message(FrameKind.PROPOSAL, p.encode(), block)


def vote_frame(i: int, t: VoteType, block_hash: bytes = HASH, h: int = 1) -> bytes:
    return encode_message(FrameKind.VOTE, Vote(t, h, 0, block_hash, ADDRS[i]).signed(CHAIN, KEYS[i]).encode())


def sent_votes(actions: list) -> list[Vote]:
    out = []
    for a in actions:
        if isinstance(a, Broadcast):
            kind, body, _ = decode_message(a.frame)
            if kind == FrameKind.VOTE:
                out.append(Vote.decode(body))
    return out


def not_proposer() -> int:
    return next(i for i in range(4) if i != proposer(0))


def test_bad_frames_are_reported_never_raised(tmp_path: Path):
    e = engine(tmp_path, not_proposer())
    e.start()
    wrong = next(i for i in range(4) if i != proposer(0))
    forged = Proposal(1, 0, -1, HASH, ADDRS[wrong]).signed(CHAIN, KEYS[wrong])
    for raw in (b"", b"\xc0", b"\x00" * (MAX_FRAME_BYTES + 1), rlp.encode([9, b"", b""]),
                encode_message(FrameKind.VOTE, vote_frame(0, VoteType.PREVOTE), b"x"),
                encode_message(FrameKind.PROPOSAL, forged.encode(), BLOCK),
                encode_message(FrameKind.VOTE, Vote(VoteType.PREVOTE, 1, 0, HASH, ADDRS[0], b"\x01" * 65).encode())):
        actions = e.on_frame("peer", raw)
        assert len(actions) == 1 and isinstance(actions[0], PeerMisbehaved), raw[:20]


def test_a_proposal_is_checked_then_prevoted_and_a_mismatch_is_not_judged(tmp_path: Path):
    me = not_proposer()
    e = engine(tmp_path, me)
    e.start()
    bogus = e.on_frame("p", proposal_frame(block=b"not it"))
    assert [type(a) for a in bogus] == [CheckBlock]
    assert e.on_block_checked(1, HASH, BlockVerdict.MISMATCH) == []
    actions = e.on_frame("p", proposal_frame())  # the true block for the same hash is still welcome
    assert actions == [CheckBlock(1, HASH, BLOCK)]
    votes = sent_votes(e.on_block_checked(1, HASH, BlockVerdict.VALID))
    assert [(v.type, v.block_hash, v.validator) for v in votes] == [(VoteType.PREVOTE, HASH, ADDRS[me])]


def test_an_invalid_block_gets_a_nil_prevote(tmp_path: Path):
    e = engine(tmp_path, not_proposer())
    e.start()
    e.on_frame("p", proposal_frame())
    assert [v.block_hash for v in sent_votes(e.on_block_checked(1, HASH, BlockVerdict.INVALID))] == [b""]


def test_proposer_builds_and_broadcasts_its_block(tmp_path: Path):
    e = engine(tmp_path, proposer(0))
    actions = e.start()
    assert BuildBlock(1, 0) in actions and any(isinstance(a, SetTimer) for a in actions)
    out = e.on_block_built(1, 0, HASH, BLOCK)
    frames = [decode_message(a.frame) for a in out if isinstance(a, Broadcast)]
    assert (FrameKind.PROPOSAL, BLOCK) in [(k, b) for k, _, b in frames]
    assert [v.block_hash for v in sent_votes(out)] == [HASH]  # it prevotes its own block


def test_decision_commit_next_height_and_help_for_laggards(tmp_path: Path):
    me = not_proposer()
    e = engine(tmp_path, me)
    e.start()
    e.on_frame("p", proposal_frame())
    e.on_block_checked(1, HASH, BlockVerdict.VALID)
    others = [i for i in range(4) if i != me]
    e.on_frame("x", vote_frame(others[0], VoteType.PREVOTE, h=2))  # next height: buffered
    for i in others[:2]:
        e.on_frame(i, vote_frame(i, VoteType.PREVOTE))
    out = []
    for i in others[:2]:
        out += e.on_frame(i, vote_frame(i, VoteType.PRECOMMIT))
    commits = [a for a in out if isinstance(a, CommitBlock)]
    assert len(commits) == 1 and commits[0].block == BLOCK
    assert commits[0].commit.verify(VSET.powers, chain_id=CHAIN, height=1, block_hash=HASH)
    out = e.on_committed(1, VSET.next_height())
    assert out == [SetTimer(Timer("commit", 1, 0), e.timeouts.commit)]  # no block broadcast to all
    assert e.signer is not None and e.signer.decided_height == 1
    # A peer still at height 1 gets the commit and block, once per gossip tick.
    late = vote_frame(others[2], VoteType.PREVOTE)
    served = e.on_frame("late", late)
    assert len(served) == 1 and isinstance(served[0], SendTo) and served[0].peer == "late"
    assert e.on_frame("late", late) == []
    e.on_timer(Timer("gossip", 0, 0))
    assert len(e.on_frame("late", late)) == 1
    e.on_timer(Timer("commit", 1, 0))
    assert e.height == 2 and e.driver.keeper.votes(0, VoteType.PREVOTE)  # the buffered vote was replayed


def test_an_observer_follows_by_commits_and_asks_for_sync_when_behind(tmp_path: Path):
    e = engine(tmp_path, None)
    e.start()
    votes = [Vote(VoteType.PRECOMMIT, 1, 0, HASH, ADDRS[i]).signed(CHAIN, KEYS[i]) for i in range(3)]
    frame = encode_message(FrameKind.COMMIT, Commit.from_votes(votes).encode(), BLOCK)
    assert e.on_frame("v", frame) == [CheckBlock(1, HASH, BLOCK)]
    out = e.on_block_checked(1, HASH, BlockVerdict.VALID)
    assert [type(a) for a in out] == [CommitBlock] and not sent_votes(out)
    e.on_committed(1, VSET.next_height())
    e.on_timer(Timer("commit", 1, 0))
    assert e.on_frame("v", vote_frame(0, VoteType.PREVOTE, h=9)) == [Behind("v", 9)]
    assert e.on_frame("v", vote_frame(1, VoteType.PREVOTE, h=9)) == []  # once per tick
    vs = VSET
    for _ in range(8):
        vs = vs.next_height()
    e.sync_to(9, vs)
    assert e.height == 9


def test_an_equivocating_proposer_gets_at_most_two_blocks_executed_per_round(tmp_path: Path):
    e = engine(tmp_path, not_proposer())
    e.start()
    checks = []
    for i in range(5):
        block = b"twin %d" % i
        checks += [a for a in e.on_frame("p", proposal_frame(block, keccak(block))) if isinstance(a, CheckBlock)]
    assert len(checks) == 2
    # A mismatch (false bytes for a true hash) does not use up the budget.
    e2 = engine(tmp_path / "b", not_proposer())
    e2.start()
    for _ in range(3):
        e2.on_frame("liar", proposal_frame(b"false bytes", HASH))
        e2.on_block_checked(1, HASH, BlockVerdict.MISMATCH)
    assert e2.on_frame("p", proposal_frame()) == [CheckBlock(1, HASH, BLOCK)]


def test_far_future_round_proposals_are_dropped_unchecked(tmp_path: Path):
    e = engine(tmp_path, not_proposer())
    e.start()
    far = Proposal(1, 2**31 - 2, -1, HASH, ADDRS[0], b"\x01" * 65)  # finding its proposer would loop 2^31 times
    assert e.on_frame("p", encode_message(FrameKind.PROPOSAL, far.encode(), BLOCK)) == []


def big_commit_frame(height: int, signatures: int = 9990) -> bytes:
    sigs = tuple((i.to_bytes(20, "big"), b"\x1b" * 65) for i in range(1, signatures + 1))
    return encode_message(FrameKind.COMMIT, Commit(height, HASH, sigs, 0).encode(), b"\xc0" * 1000)


def test_peek_reads_kind_height_and_round_without_decoding():
    from consensus.engine import FrameHeader, peek_frame

    assert peek_frame(vote_frame(0, VoteType.PRECOMMIT, h=7)) == FrameHeader(
        FrameKind.VOTE, 7, 0, len(Vote(VoteType.PRECOMMIT, 7, 0, HASH, ADDRS[0]).signed(CHAIN, KEYS[0]).encode()))
    p = Proposal(5, 3, -1, HASH, ADDRS[0]).signed(CHAIN, KEYS[0])
    head = peek_frame(encode_message(FrameKind.PROPOSAL, p.encode(), BLOCK))
    assert (head.kind, head.height, head.round) == (FrameKind.PROPOSAL, 5, 3)
    head = peek_frame(big_commit_frame(1))
    assert (head.kind, head.height, head.round) == (FrameKind.COMMIT, 1, 0)
    from consensus.messages import MessageError

    for raw in (b"", b"\xc0", b"\x01", rlp.encode([9, b"", b""]), rlp.encode([1, b"\x05", b""]),
                rlp.encode([2, rlp.encode([1, b"\x00\x01", 0]), b""]), big_commit_frame(1)[:-5]):
        try:
            peek_frame(raw)
        except MessageError:
            continue
        raise AssertionError(f"peeked {raw[:20]!r}")


def test_stale_frames_are_judged_by_their_height_before_any_decode(tmp_path: Path, monkeypatch):
    import time

    e = engine(tmp_path, not_proposer())
    e.start()
    e.height = 5  # as if four heights were decided
    frame = big_commit_frame(1)
    assert len(frame) > 900_000
    monkeypatch.setattr(Commit, "decode", lambda raw: (_ for _ in ()).throw(AssertionError("decoded")))
    started = time.process_time()
    for _ in range(20):
        actions = e.on_frame("attacker", frame)
        assert len(actions) == 1 and isinstance(actions[0], PeerMisbehaved) and actions[0].points >= 1
    assert time.process_time() - started < 0.5  # unpeeked, each decode cost ~0.36 CPU-s
    # A stale proposal (a peer one height behind re-sends its round's proposal): served our
    # commit if we hold it, scored by its size only.
    p = Proposal(4, 0, -1, HASH, ADDRS[0]).signed(CHAIN, KEYS[0])
    actions = e.on_frame("late", encode_message(FrameKind.PROPOSAL, p.encode(), b"\x00" * (1 << 19)))
    assert [round(a.points, 2) for a in actions if isinstance(a, PeerMisbehaved)] == [0.25]
    assert e.on_frame("late", vote_frame(0, VoteType.PREVOTE, h=4)) == []  # a stale vote costs nothing


def test_the_next_height_buffer_is_checked_on_arrival_and_bounded_per_peer(tmp_path: Path):
    from consensus.engine import MAX_BUFFERED_FRAMES_PER_PEER

    e = engine(tmp_path, not_proposer())
    e.start()
    good = vote_frame(0, VoteType.PREVOTE, h=2)
    e.on_frame("a", good)
    e.on_frame("a", good)  # a copy (the next gossip tick) is kept once
    assert e._buffered_frames == 1
    forged = encode_message(FrameKind.VOTE, Vote(VoteType.PREVOTE, 2, 0, HASH, ADDRS[1], b"\x01" * 65).encode())
    assert [type(a) for a in e.on_frame("b", forged)] == [PeerMisbehaved]
    assert [type(a) for a in e.on_frame("b", big_commit_frame(2))] == [PeerMisbehaved]  # never buffered
    for r in range(200):  # one peer's share, whatever it sends
        e.on_frame("c", encode_message(FrameKind.VOTE, Vote(VoteType.PREVOTE, 2, r, HASH, ADDRS[2]).signed(
            CHAIN, KEYS[2]).encode()))
    assert len(e._buffer["c"]) == MAX_BUFFERED_FRAMES_PER_PEER
    e.on_frame("d", vote_frame(3, VoteType.PREVOTE, h=2))  # others still get in
    assert "d" in e._buffer

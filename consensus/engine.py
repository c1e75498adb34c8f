"""The consensus engine: one validator (or observer) across heights, with no I/O of its own.

This is the reactor's logic of docs/consensus.md §9 written sans-I/O, so that the node only has
to plumb it: frames in from validator streams, timers, and the chain thread's answers; actions
out (frames to send, timers to set, blocks to build, check and commit). It owns one
:class:`Driver` per height, signs through the WAL's guarded signer, holds the blocks of the
current height, buffers the next height's frames, serves recent commits to peers that are
behind, and re-gossips what it holds so that what a partition or a drop lost arrives later.

Frames are ``rlp([kind, body, block])``: ``PROPOSAL`` (a proposal and its block), ``VOTE`` (a
vote; no block), ``COMMIT`` (a commit and its block, for a peer that is behind). Every frame is
size-capped before decoding; a bad frame yields :class:`PeerMisbehaved`, never an exception.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

import rlp

from consensus.commit import Commit, InvalidCommit
from consensus.driver import (
    Decide,
    Driver,
    Effect,
    EvidenceFound,
    GetValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
)
from consensus.messages import MAX_HEIGHT, MAX_ROUND, MessageError, Proposal, Vote
from consensus.round_state import Step
from consensus.validator_set import ValidatorSet

#: Largest frame accepted (py-libp2p's streams read frames of at most 1 MiB well, NOTES.md).
MAX_FRAME_BYTES = 1 << 20
#: Largest block a proposal or commit frame may carry.
MAX_BLOCK_BYTES = MAX_FRAME_BYTES - 1024
#: Frames of the next height kept until we get there, and their total size; and the same per peer
#: (a peer one height ahead sends its proposal and its votes of a round or two, re-sent each gossip
#: tick: copies are kept once).
MAX_BUFFERED_FRAMES = 1000
MAX_BUFFERED_BYTES = 16 << 20
MAX_BUFFERED_FRAMES_PER_PEER = 64
MAX_BUFFERED_BYTES_PER_PEER = (2 << 20) + (64 << 10)
#: Largest vote frame (a vote is about 110 bytes).
MAX_VOTE_FRAME_BYTES = 512
#: Misbehaviour points of a stale frame of :data:`MAX_FRAME_BYTES` (smaller ones in proportion): a
#: peer one height behind re-sends its round's proposal once a gossip tick, which decays away; one
#: that streams stale megabytes is banned in seconds.
STALE_POINTS_PER_MIB = 0.5
#: Misbehaviour points of a commit frame for a height other than ours (an honest peer sends a commit
#: only of the height we are at) and of a frame that does not decode or verify.
STRAY_COMMIT_POINTS = 2.0
#: Blocks awaiting the node's check at one time (a proposer may equivocate, peers may lie).
MAX_PENDING_BLOCKS = 16
#: Blocks checked per round: re-execution is the costly step, and an equivocating proposer
#: could otherwise make us execute any number of its blocks.
MAX_CHECKS_PER_ROUND = 2
#: Decided heights whose commit and block are kept to help peers that are just behind.
RECENT_HEIGHTS = 8


class FrameKind(enum.IntEnum):
    PROPOSAL = 1
    VOTE = 2
    COMMIT = 3


def _commit_cap(validators: int) -> int:
    """Largest encoded commit a set of ``validators`` can sign (about 96 bytes a signature)."""
    return 64 + validators * 96


def encode_message(kind: FrameKind, body: bytes, block: bytes = b"") -> bytes:
    return bytes(rlp.encode([int(kind), body, block]))


def decode_message(raw: bytes) -> tuple[FrameKind, bytes, bytes]:
    """``(kind, body, block)`` of a frame; :class:`MessageError` for anything malformed."""
    if len(raw) > MAX_FRAME_BYTES:
        raise MessageError(f"frame of {len(raw)} bytes is above the cap")
    try:
        items = rlp.decode(raw)
    except rlp.exceptions.DecodingError as e:
        raise MessageError(f"bad frame: {e}") from None
    if not isinstance(items, list) or len(items) != 3 or not all(isinstance(i, bytes) for i in items):
        raise MessageError("a frame is [kind, body, block]")
    kind_raw, body, block = items
    try:
        kind = FrameKind(int.from_bytes(kind_raw, "big"))
    except ValueError:
        raise MessageError(f"unknown frame kind {kind_raw.hex()}") from None
    if kind == FrameKind.VOTE and block:
        raise MessageError("a vote frame carries no block")
    if kind != FrameKind.VOTE and not block:
        raise MessageError("a proposal or commit frame carries its block")
    return kind, body, block


@dataclass(frozen=True)
class FrameHeader:
    """What a frame says of itself before it is decoded: enough for the cheap checks."""

    kind: FrameKind
    height: int
    round: int
    body_size: int
    """Bytes of the encoded message (the block beside it not counted)."""


def _rlp_item(raw: bytes, pos: int, end: int) -> tuple[bool, int, int]:
    """``(is_list, payload start, payload end)`` of the RLP item at ``pos``, within ``end``."""
    try:
        _, typ, length, start = rlp.codec.consume_length_prefix(raw, pos)
    except (rlp.exceptions.DecodingError, IndexError) as e:
        raise MessageError(f"bad frame: {e}") from None
    if start + length > end:
        raise MessageError("bad frame: an item runs past its list")
    return typ is list, start, start + length


def _rlp_int(raw: bytes, pos: int, end: int, name: str, limit: int) -> tuple[int, int]:
    is_list, start, stop = _rlp_item(raw, pos, end)
    if is_list or stop - start > 8 or raw[start:start + 1] == b"\x00":
        raise MessageError(f"{name}: not a canonical integer")
    value = int.from_bytes(raw[start:stop], "big")
    if value > limit:
        raise MessageError(f"{name}: {value} is above {limit}")
    return value, stop


def peek_frame(raw: bytes) -> FrameHeader:
    """Kind, height and round of a frame, read from RLP prefixes alone: a commit of 10,000
    signatures costs what a vote costs, so a frame is judged by its height before any decode
    (:class:`MessageError` for bytes that are not a frame)."""
    if len(raw) > MAX_FRAME_BYTES:
        raise MessageError(f"frame of {len(raw)} bytes is above the cap")
    if not raw:
        raise MessageError("empty frame")
    is_list, pos, end = _rlp_item(raw, 0, len(raw))
    if not is_list or end != len(raw):
        raise MessageError("a frame is one list [kind, body, block]")
    kind_raw, pos = _rlp_int(raw, pos, end, "frame kind", 255)
    try:
        kind = FrameKind(kind_raw)
    except ValueError:
        raise MessageError(f"unknown frame kind {kind_raw}") from None
    is_list, body, body_end = _rlp_item(raw, pos, end)
    if is_list:
        raise MessageError("a frame's body is a byte string")
    is_list, pos, list_end = _rlp_item(raw, body, body_end)
    if not is_list or list_end != body_end:
        raise MessageError("a message is one list")
    if kind == FrameKind.VOTE:
        _, pos = _rlp_int(raw, pos, list_end, "vote.type", 255)
    height, pos = _rlp_int(raw, pos, list_end, "height", MAX_HEIGHT)
    round_, _ = _rlp_int(raw, pos, list_end, "round", MAX_ROUND)
    return FrameHeader(kind, height, round_, body_end - body)


class BlockVerdict(enum.Enum):
    """The node's answer to :class:`CheckBlock`."""

    VALID = "valid"
    """The block hashes to the hash and re-executes correctly on its parent."""
    INVALID = "invalid"
    """The block hashes to the hash but is not a valid next block: prevote nil."""
    MISMATCH = "mismatch"
    """The bytes are not a block with that hash: the frame is dropped, the hash is not judged."""


class Signer(Protocol):
    """What the engine needs of a validator's key (:class:`consensus.wal.GuardedSigner`)."""

    address: bytes
    decided_height: int

    def sign_vote(self, vote: Vote) -> Vote: ...
    def sign_proposal(self, proposal: Proposal) -> Proposal: ...
    def own_messages(self, height: int) -> list[Vote | Proposal]: ...
    def mark_decided(self, height: int) -> None: ...


# -- actions for the host -------------------------------------------------------------------


@dataclass(frozen=True)
class Timer:
    """A timer the host sets and hands back to :meth:`Engine.on_timer`."""

    kind: str
    """"propose", "prevote", "precommit" (the step timeouts), "commit" or "gossip"."""
    height: int
    round: int


@dataclass(frozen=True)
class Broadcast:
    """Send ``frame`` to every validator peer."""

    frame: bytes


@dataclass(frozen=True)
class SendTo:
    """Send ``frame`` to ``peer`` only."""

    peer: Hashable
    frame: bytes


@dataclass(frozen=True)
class SetTimer:
    """Call :meth:`Engine.on_timer` with ``timer`` after ``seconds``."""

    timer: Timer
    seconds: float


@dataclass(frozen=True)
class BuildBlock:
    """Build a block for ``(height, round)`` from the pool (not committed) and answer with
    :meth:`Engine.on_block_built`."""

    height: int
    round: int


@dataclass(frozen=True)
class CheckBlock:
    """Check that ``block`` hashes to ``block_hash`` and re-execute it on its parent; answer with
    :meth:`Engine.on_block_checked`."""

    height: int
    block_hash: bytes
    block: bytes


@dataclass(frozen=True)
class CommitBlock:
    """Store ``block`` with ``commit`` in one atomic write, then call :meth:`Engine.on_committed`
    with the validator set of the next height."""

    height: int
    block_hash: bytes
    block: bytes
    commit: Commit


@dataclass(frozen=True)
class Behind:
    """A peer works on ``height``, above ours (asked at most once per gossip tick). If the commit
    of our height does not come on its own, fetch the missing blocks with their commits (block
    sync), verify and import them, then call :meth:`Engine.sync_to`."""

    peer: Hashable
    height: int


@dataclass(frozen=True)
class PeerMisbehaved:
    """``peer`` sent something malformed, badly signed or stale: score it down by ``points``."""

    peer: Hashable
    reason: str
    points: float = 1.0


Action = (Broadcast | SendTo | SetTimer | BuildBlock | CheckBlock | CommitBlock | Behind | PeerMisbehaved
          | EvidenceFound)

_STEP_OF = {"propose": Step.PROPOSE, "prevote": Step.PREVOTE, "precommit": Step.PRECOMMIT}
_NAME_OF = {v: k for k, v in _STEP_OF.items()}


class Engine:
    """Consensus across heights for one node. Call :meth:`start` once, then feed it inputs."""

    def __init__(self, chain_id: int, height: int, validators: ValidatorSet, signer: Signer | None,
                 timeouts: TimeoutConfig | None = None, gossip_interval: float = 1.0) -> None:
        self.chain_id = chain_id
        self.signer = signer
        self.timeouts = timeouts or TimeoutConfig()
        self.gossip_interval = gossip_interval
        self.height = height
        self.driver = self._driver(validators)
        self.blocks: dict[bytes, bytes] = {}
        """Blocks of the current height by hash (proposed, built, or carried by a commit)."""
        self.verdicts: dict[bytes, BlockVerdict] = {}
        self._pending: dict[bytes, list[Proposal | Commit]] = {}
        self._buffer: dict[Hashable, dict[bytes, None]] = {}
        """Frames of the next height by peer, each kept once."""
        self._buffered_by: dict[Hashable, int] = {}
        self._buffered_frames = 0
        self._recent: dict[int, bytes] = {}
        """Commit frames of the last decided heights."""
        self._committing = False
        self._next_set: ValidatorSet | None = None
        self._served: set[tuple[Hashable, int]] = set()
        self._behind_asked = False
        self._buffered_bytes = 0
        self._checks: dict[int, int] = {}
        """Blocks sent to CheckBlock, per proposal round."""

    def _driver(self, validators: ValidatorSet) -> Driver:
        address = self.signer.address if self.signer is not None else None
        return Driver(self.chain_id, self.height, validators, address, self.timeouts)

    # -- inputs -----------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Start (or restart) at ``height``: replays our own signed messages of this height."""
        own = self.signer.own_messages(self.height) if self.signer is not None else []
        actions: list[Action] = [SetTimer(Timer("gossip", 0, 0), self.gossip_interval)]
        return actions + self._handle(self.driver.start(own))

    def on_frame(self, peer: Hashable, raw: bytes) -> list[Action]:
        """A frame from a validator peer. Its kind, height and round are read before anything is
        decoded (:func:`peek_frame`): a frame of a past height serves our commit to a peer that is
        behind and costs it points by its size; one of a later height asks for sync, and one of
        the next height is checked and kept (bounded per peer) until we get there. Only frames of
        our own height are decoded whole."""
        try:
            head = peek_frame(raw)
        except MessageError as e:
            return [PeerMisbehaved(peer, str(e), STRAY_COMMIT_POINTS)]
        if head.kind == FrameKind.VOTE and len(raw) > MAX_VOTE_FRAME_BYTES:
            return [PeerMisbehaved(peer, f"vote frame of {len(raw)} bytes", STRAY_COMMIT_POINTS)]
        if head.height < self.height:
            return self._stale(peer, head, len(raw))
        if head.height > self.height:
            return self._ahead(peer, head, raw)
        if self.driver.decision is not None:
            return self._serve_commit(peer, head)
        if head.kind == FrameKind.COMMIT and head.body_size > _commit_cap(len(self.driver.validators)):
            return [PeerMisbehaved(peer, "a commit with more signatures than validators", STRAY_COMMIT_POINTS)]
        try:
            kind, body, block = decode_message(raw)
            msg: Proposal | Vote | Commit = (Proposal.decode(body) if kind == FrameKind.PROPOSAL else
                                             Vote.decode(body) if kind == FrameKind.VOTE else Commit.decode(body))
            if len(block) > MAX_BLOCK_BYTES:
                raise MessageError("block above the cap")
        except MessageError as e:
            return [PeerMisbehaved(peer, str(e), STRAY_COMMIT_POINTS)]
        try:
            if isinstance(msg, Vote):
                return self._handle(self.driver.on_vote(msg))
            if isinstance(msg, Proposal):
                return self._proposal(msg, block)
            return self._commit(msg, block)
        except (MessageError, InvalidCommit) as e:
            return [PeerMisbehaved(peer, str(e), STRAY_COMMIT_POINTS)]

    def _stale(self, peer: Hashable, head: FrameHeader, size: int) -> list[Action]:
        if head.kind == FrameKind.COMMIT:
            return [PeerMisbehaved(peer, f"a commit of past height {head.height}", STRAY_COMMIT_POINTS)]
        actions = self._serve_commit(peer, head)
        if size > MAX_VOTE_FRAME_BYTES:  # a block rode along: those bytes are what costs
            actions.append(PeerMisbehaved(peer, f"a stale frame of {size} bytes (height {head.height})",
                                          STALE_POINTS_PER_MIB * size / (1 << 20)))
        return actions

    def _ahead(self, peer: Hashable, head: FrameHeader, raw: bytes) -> list[Action]:
        actions: list[Action] = []
        if head.kind == FrameKind.COMMIT:
            actions.append(PeerMisbehaved(peer, f"a commit of later height {head.height}", STRAY_COMMIT_POINTS))
        elif head.height == self.height + 1:
            refused = self._buffer_next(peer, raw)
            if refused is not None:
                return [refused]
        if not self._behind_asked:
            self._behind_asked = True
            actions.append(Behind(peer, head.height))
        return actions

    def _buffer_next(self, peer: Hashable, raw: bytes) -> PeerMisbehaved | None:
        """Keep a frame of the next height, checked now: it decodes, and its signer is a validator
        of our set (the next height's set is known only once this height commits; a frame of a
        validator that joins then comes again with the next gossip tick) with a valid signature."""
        kept = self._buffer.setdefault(peer, {})
        if raw in kept:
            return None
        if (len(kept) >= MAX_BUFFERED_FRAMES_PER_PEER or self._buffered_by.get(peer, 0) + len(raw) >
                MAX_BUFFERED_BYTES_PER_PEER or self._buffered_frames >= MAX_BUFFERED_FRAMES
                or self._buffered_bytes + len(raw) > MAX_BUFFERED_BYTES):
            return None
        try:
            kind, body, block = decode_message(raw)
            msg = Proposal.decode(body) if kind == FrameKind.PROPOSAL else Vote.decode(body)
            if len(block) > MAX_BLOCK_BYTES:
                raise MessageError("block above the cap")
        except MessageError as e:
            return PeerMisbehaved(peer, f"next height: {e}", STRAY_COMMIT_POINTS)
        signer = msg.proposer if isinstance(msg, Proposal) else msg.validator
        if self.driver.validators.power_of(signer) <= 0:
            return None
        if not msg.verify(self.chain_id):
            return PeerMisbehaved(peer, "next height: a bad signature", STRAY_COMMIT_POINTS)
        kept[raw] = None
        self._buffered_by[peer] = self._buffered_by.get(peer, 0) + len(raw)
        self._buffered_frames += 1
        self._buffered_bytes += len(raw)
        return None

    def _serve_commit(self, peer: Hashable, head: FrameHeader) -> list[Action]:
        """A peer still works on a height we decided: send it that height's commit and block,
        at most once per peer and height between two gossip ticks (a block may be 1 MiB)."""
        frame = self._recent.get(head.height)
        if frame is None or head.kind == FrameKind.COMMIT or (peer, head.height) in self._served:
            return []
        self._served.add((peer, head.height))
        return [SendTo(peer, frame)]

    def _proposal(self, proposal: Proposal, block: bytes) -> list[Action]:
        if not self.driver.wants_proposal(proposal):
            return []
        if self.driver.has_proposal(proposal.round):
            return self._handle(self.driver.on_proposal(proposal, False))  # a repeat (or refused equivocation)
        self.driver.check_proposal(proposal)
        verdict = self.verdicts.get(proposal.block_hash)
        if verdict is not None:
            return self._handle(self.driver.on_proposal(proposal, verdict is BlockVerdict.VALID))
        if proposal.block_hash not in self._pending:
            if self._checks.get(proposal.round, 0) >= MAX_CHECKS_PER_ROUND:
                return []
            self._checks[proposal.round] = self._checks.get(proposal.round, 0) + 1
        return self._await_check(proposal, proposal.block_hash, block)

    def _commit(self, commit: Commit, block: bytes) -> list[Action]:
        if self.driver.decision is not None:
            return []
        commit.check(self.driver.validators.powers, chain_id=self.chain_id, height=self.height)
        verdict = self.verdicts.get(commit.block_hash)
        if verdict is not None:
            return self._handle(self.driver.on_commit(commit, verdict is BlockVerdict.VALID))
        return self._await_check(commit, commit.block_hash, block)

    def _await_check(self, msg: Proposal | Commit, block_hash: bytes, block: bytes) -> list[Action]:
        if block_hash in self._pending:
            if len(self._pending[block_hash]) < 4:
                self._pending[block_hash].append(msg)
            return []
        if len(self._pending) >= MAX_PENDING_BLOCKS:
            return []
        self._pending[block_hash] = [msg]
        self.blocks[block_hash] = block
        return [CheckBlock(self.height, block_hash, block)]

    @property
    def next_validators(self) -> ValidatorSet | None:
        """The next height's validator set, once this height is committed (None before)."""
        return self._next_set

    @property
    def checking(self) -> bool:
        """A block of this height is with the node's check (the host may let timeout_propose wait
        for it: the proposal came in time, only its re-execution is slow)."""
        return bool(self._pending)

    def on_block_checked(self, height: int, block_hash: bytes, verdict: BlockVerdict) -> list[Action]:
        """The node's verdict on a block asked by :class:`CheckBlock`."""
        if height != self.height:
            return []
        self.verdicts[block_hash] = verdict
        waiting = self._pending.pop(block_hash, [])
        if verdict is BlockVerdict.MISMATCH:
            # Cheap to find (a hash, no execution): it does not use up the round's checks, so a
            # peer relaying a true proposal with false bytes cannot starve the true block.
            for msg in waiting:
                if isinstance(msg, Proposal) and self._checks.get(msg.round):
                    self._checks[msg.round] -= 1
            self.blocks.pop(block_hash, None)
            del self.verdicts[block_hash]  # the hash itself was not judged; a true block may come
            return []
        actions: list[Action] = []
        for msg in waiting:
            try:
                if isinstance(msg, Proposal):
                    actions += self._handle(self.driver.on_proposal(msg, verdict is BlockVerdict.VALID))
                else:
                    actions += self._handle(self.driver.on_commit(msg, verdict is BlockVerdict.VALID))
            except (MessageError, InvalidCommit):
                continue
        return actions

    def on_block_built(self, height: int, round_: int, block_hash: bytes, block: bytes) -> list[Action]:
        """The block asked by :class:`BuildBlock`."""
        if height != self.height:
            return []
        self.blocks[block_hash] = block
        self.verdicts[block_hash] = BlockVerdict.VALID
        return self._handle(self.driver.on_value(round_, block_hash))

    def on_timer(self, timer: Timer) -> list[Action]:
        if timer.kind == "gossip":
            self._served.clear()
            self._behind_asked = False
            return [*self._gossip(), SetTimer(timer, self.gossip_interval)]
        if timer.height != self.height:
            return []
        if timer.kind == "commit":
            return self._next_height()
        return self._handle(self.driver.on_timeout(_STEP_OF[timer.kind], timer.height, timer.round))

    def on_committed(self, height: int, next_validators: ValidatorSet) -> list[Action]:
        """The host stored the block of ``height`` with its commit (after :class:`CommitBlock`):
        record it in the WAL, tell the peers, and start ``height + 1`` after timeout_commit."""
        decision = self.driver.decision
        if height != self.height or decision is None or not self._committing:
            return []
        if self.signer is not None:
            self.signer.mark_decided(height)
        frame = encode_message(FrameKind.COMMIT, decision.commit.encode(), self.blocks[decision.block_hash])
        self._recent[height] = frame
        for old in [h for h in self._recent if h <= height - RECENT_HEIGHTS]:
            del self._recent[old]
        self._next_set = next_validators
        # Not broadcast: most peers decided too; one still at this height shows it with its next
        # frame and gets the commit then (_serve_commit), so a block is not sent n² times.
        return [SetTimer(Timer("commit", height, 0), self.timeouts.commit)]

    def sync_to(self, height: int, validators: ValidatorSet) -> list[Action]:
        """Block sync imported every block below ``height`` (each with a verified commit): go on
        at ``height`` with its validator set."""
        if height <= self.height:
            return []
        if self.signer is not None:
            self.signer.mark_decided(height - 1)
        self.height = height - 1
        self._next_set = validators
        return self._next_height()

    # -- internals --------------------------------------------------------------------------

    def _next_height(self) -> list[Action]:
        if self._next_set is None:
            return []
        self.height += 1
        self.driver = self._driver(self._next_set)
        self._next_set = None
        self._committing = False
        self.blocks, self.verdicts, self._pending, self._checks = {}, {}, {}, {}
        actions = self.start()[1:]  # the gossip timer is already running
        buffered = self._buffer
        self._buffer, self._buffered_by, self._buffered_frames, self._buffered_bytes = {}, {}, 0, 0
        for peer, frames in buffered.items():
            for raw in frames:
                actions += self.on_frame(peer, raw)
        return actions

    def _handle(self, effects: list[Effect]) -> list[Action]:
        actions: list[Action] = []
        queue = list(effects)
        while queue:
            e = queue.pop(0)
            if isinstance(e, SignVote):
                assert self.signer is not None  # the driver asks only a validator to vote
                vote = self.signer.sign_vote(e.vote)
                actions.append(Broadcast(encode_message(FrameKind.VOTE, vote.encode())))
                queue += self.driver.on_vote(vote)
            elif isinstance(e, SignProposal):
                assert self.signer is not None
                block = self.blocks.get(e.proposal.block_hash)
                if block is None:
                    # Re-proposing a valid value whose block was lost with a restart (the WAL keeps
                    # our votes, not blocks): skip the proposal; the round times out instead.
                    continue
                proposal = self.signer.sign_proposal(e.proposal)
                actions.append(Broadcast(encode_message(FrameKind.PROPOSAL, proposal.encode(), block)))
                queue += self.driver.on_proposal(proposal, True)
            elif isinstance(e, GetValue):
                actions.append(BuildBlock(e.height, e.round))
            elif isinstance(e, ScheduleTimeout):
                actions.append(SetTimer(Timer(_NAME_OF[e.step], e.height, e.round), e.seconds))
            elif isinstance(e, Decide):
                self._committing = True
                actions.append(CommitBlock(e.height, e.block_hash, self.blocks[e.block_hash], e.commit))
            elif isinstance(e, EvidenceFound):
                actions.append(e)
        return actions

    def _gossip(self) -> list[Action]:
        """Re-send what a peer can still use: our round and the one before, and the polka behind
        our valid value (a peer needs it to accept its re-proposal)."""
        d = self.driver
        if d.decision is not None:
            return []
        actions: list[Action] = []
        rounds = sorted({d.state.round - 1, d.state.round, d.state.valid_round} - {-1})
        for r in rounds:
            p = d.proposals.get(r)
            if p is not None and p.block_hash in self.blocks:
                actions.append(Broadcast(encode_message(FrameKind.PROPOSAL, p.encode(), self.blocks[p.block_hash])))
            for t in (1, 2):
                for v in d.keeper.votes(r, t):  # type: ignore[arg-type]
                    actions.append(Broadcast(encode_message(FrameKind.VOTE, v.encode())))
        return actions

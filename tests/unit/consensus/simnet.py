"""A simulated network of validators in one process, driven by a seeded scheduler.

Virtual time only: messages are delivered in a random order after random delays, may be dropped,
and may be cut by partitions; timers fire in virtual time. Each honest node is a real
:class:`Driver` with a real :class:`GuardedSigner` over a real WAL file, and talks through the
real encoders and decoders (so garbage from a byzantine node meets the real caps). The reactor's
duties (docs/consensus.md §9) are played here: gossip until received, commits to laggards,
timers, blocks, signing through the WAL.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth_account import Account
from eth_hash.auto import keccak

from consensus.commit import Commit, InvalidCommit
from consensus.driver import (
    Decide,
    Driver,
    EvidenceFound,
    GetValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import MessageError, Proposal, Vote, VoteType
from consensus.validator_set import ValidatorSet
from consensus.wal import WAL, GuardedSigner

CHAIN_ID = 9999
TIMEOUTS = TimeoutConfig(propose=3.0, propose_delta=0.5, prevote=1.0, prevote_delta=0.5,
                         precommit=1.0, precommit_delta=0.5, commit=0.5)
GOSSIP_INTERVAL = 1.0
MAX_BUFFERED = 2000

# Wire format: rlp([tag, body]) like the reactor's frames.
TAG_PROPOSAL, TAG_VOTE, TAG_COMMIT = 1, 2, 3


def encode_msg(msg: Proposal | Vote | Commit) -> bytes:
    tag = TAG_PROPOSAL if isinstance(msg, Proposal) else TAG_VOTE if isinstance(msg, Vote) else TAG_COMMIT
    return bytes(rlp.encode([tag, msg.encode()]))


def decode_msg(raw: bytes) -> Proposal | Vote | Commit:
    if len(raw) > 4096:
        raise MessageError("frame too large")
    try:
        tag, body = rlp.decode(raw)
    except (rlp.exceptions.DecodingError, ValueError) as e:
        raise MessageError(f"bad frame: {e}") from None
    if not isinstance(tag, bytes) or not isinstance(body, bytes):
        raise MessageError("bad frame")
    kind = int.from_bytes(tag, "big")
    if kind == TAG_PROPOSAL:
        return Proposal.decode(body)
    if kind == TAG_VOTE:
        return Vote.decode(body)
    if kind == TAG_COMMIT:
        return Commit.decode(body)
    raise MessageError(f"unknown tag {kind}")


@dataclass
class Faults:
    """The network's misbehaviour, all seeded."""

    drop: float = 0.0
    """Probability that a message is lost."""
    delay: tuple[float, float] = (0.01, 0.3)
    """Uniform delivery delay range (seconds of virtual time)."""
    partitions: list[tuple[float, float, frozenset[int]]] = field(default_factory=list)
    """(start, end, group): during [start, end) nothing crosses between group and the others."""

    def blocked(self, t: float, src: int, dst: int) -> bool:
        return any(a <= t < b and ((src in g) != (dst in g)) for a, b, g in self.partitions)


class Sim:
    """Scheduler + network + the nodes."""

    def __init__(self, n: int, seed: int, faults: Faults, wal_dir: Path,
                 byzantine: set[int] | None = None, powers: list[int] | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.faults = faults
        keys = [bytes(Account.from_key(keccak(b"sim validator %d" % i)).key) for i in range(n)]
        self.addresses = [bytes.fromhex(Account.from_key(k).address[2:]) for k in keys]
        self.genesis_set = ValidatorSet.new(list(zip(self.addresses, powers or [10] * n, strict=True)))
        self.invalid_blocks: set[bytes] = set()
        self.proposed_blocks: set[bytes] = set()
        self.wire: list[tuple[int, Vote]] = []  # every vote sent, by sender index
        self.decisions: dict[int, dict[int, bytes]] = {i: {} for i in range(n)}
        self.decided_at: list[tuple[float, int, int]] = []  # (time, node, height)
        self.evidence: list[DuplicateVoteEvidence] = []
        self.bad_frames = 0
        byzantine = byzantine or set()
        self.nodes: list[Node] = [
            (ByzantineNode if i in byzantine else Node)(self, i, keys[i], wal_dir / f"node{i}.wal")
            for i in range(n)]

    # -- scheduler --------------------------------------------------------------------------

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, fn))

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> None:
        while self._queue and self._queue[0][0] <= t_end:
            t, _, fn = heapq.heappop(self._queue)
            self.now = t
            fn()
            if stop is not None and stop():
                return
        self.now = max(self.now, t_end)

    # -- network ----------------------------------------------------------------------------

    def send(self, src: int, dst: int, raw: bytes) -> None:
        if src == dst or self.rng.random() < self.faults.drop:
            return
        delay = self.rng.uniform(*self.faults.delay)

        def deliver() -> None:
            if self.faults.blocked(self.now, src, dst):
                return
            self.nodes[dst].receive(src, raw)

        self.at(delay, deliver)

    def broadcast(self, src: int, raw: bytes) -> None:
        for dst in range(len(self.nodes)):
            self.send(src, dst, raw)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    # -- what the tests check ---------------------------------------------------------------

    def honest(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if not isinstance(n, ByzantineNode)]

    def min_honest_height(self) -> int:
        return min(len(self.decisions[i]) for i in self.honest())

    def max_decided_height(self) -> int:
        return max((h for d in self.decisions.values() for h in d), default=0)

    def set_at(self, height: int) -> ValidatorSet:
        vs = self.genesis_set
        for _ in range(height - 1):
            vs = vs.increment_proposer_priority(1)
        return vs


class Node:
    """An honest validator: driver + WAL signer + the reactor's duties."""

    def __init__(self, sim: Sim, index: int, key: bytes, wal_path: Path) -> None:
        self.sim = sim
        self.index = index
        self.key = key
        self.wal_path = wal_path
        self.address = sim.addresses[index]
        self.alive = False
        self.commits: dict[int, tuple[Commit, bool]] = {}
        self._gossip_epoch = 0

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        self.alive = True
        self._gossip_epoch += 1
        self.wal = WAL(self.wal_path)
        self.signer = GuardedSigner(self.key, CHAIN_ID, self.wal)
        self.height = max(self.signer.decided_height, max(self.sim.decisions[self.index], default=0)) + 1
        self.buffer: list[tuple[int, bytes]] = []
        self._new_driver(self.signer.own_messages(self.height))
        epoch = self._gossip_epoch
        self.sim.at(GOSSIP_INTERVAL, lambda: self._gossip(epoch))

    def crash(self) -> None:
        """kill -9: everything in memory is lost; the WAL file stays."""
        self.alive = False
        self.wal.close()

    def _new_driver(self, own: list[Vote | Proposal]) -> None:
        self.driver = Driver(CHAIN_ID, self.height, self.sim.set_at(self.height), self.address, TIMEOUTS)
        self.handle(self.driver.start(own))
        buffered, self.buffer = self.buffer, []
        for src, raw in buffered:
            self.receive(src, raw)

    # -- effects ----------------------------------------------------------------------------

    def handle(self, effects: list[Any]) -> None:
        queue = list(effects)
        while queue and self.alive:
            e = queue.pop(0)
            if isinstance(e, SignVote):
                vote = self.sign_vote(e.vote)
                if vote is not None:
                    queue += self.driver.on_vote(vote)
            elif isinstance(e, SignProposal):
                queue += self.driver.on_proposal(self.sign_proposal(e.proposal), True)
            elif isinstance(e, GetValue):
                block = keccak(b"block %d %d %d" % (e.height, e.round, self.index))
                queue += self.driver.on_value(e.round, block)
            elif isinstance(e, ScheduleTimeout):
                height, epoch = self.height, self._gossip_epoch
                self.sim.at(e.seconds, lambda e=e, height=height, epoch=epoch: self._timeout(e, height, epoch))
            elif isinstance(e, Decide):
                self.decide(e)
                return
            elif isinstance(e, EvidenceFound):
                e.evidence.check(CHAIN_ID, self.driver.validators.powers)
                self.sim.evidence.append(e.evidence)

    def sign_vote(self, vote: Vote) -> Vote | None:
        signed = self.signer.sign_vote(vote)
        self.sim.wire.append((self.index, signed))
        self.sim.broadcast(self.index, encode_msg(signed))
        return signed

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        signed = self.signer.sign_proposal(proposal)
        self.sim.proposed_blocks.add(signed.block_hash)
        self.sim.broadcast(self.index, encode_msg(signed))
        return signed

    def _timeout(self, e: ScheduleTimeout, height: int, epoch: int) -> None:
        if self.alive and epoch == self._gossip_epoch and self.height == height:
            self.handle(self.driver.on_timeout(e.step, e.height, e.round))

    def decide(self, d: Decide) -> None:
        assert d.commit.verify(self.driver.validators.powers, chain_id=CHAIN_ID, height=d.height,
                               block_hash=d.block_hash)
        self.sim.decisions[self.index][d.height] = d.block_hash
        self.sim.decided_at.append((self.sim.now, self.index, d.height))
        self.commits[d.height] = (d.commit, d.block_hash not in self.sim.invalid_blocks)
        self.signer.mark_decided(d.height)
        self.sim.broadcast(self.index, encode_msg(d.commit))
        epoch = self._gossip_epoch

        def next_height() -> None:
            if self.alive and epoch == self._gossip_epoch and self.height == d.height:
                self.height += 1
                self._new_driver([])

        self.sim.at(TIMEOUTS.commit, next_height)

    # -- the reactor ------------------------------------------------------------------------

    def receive(self, src: int, raw: bytes) -> None:
        if not self.alive:
            return
        try:
            msg = decode_msg(raw)
        except MessageError:
            self.sim.bad_frames += 1
            return
        if msg.height > self.height:
            if len(self.buffer) < MAX_BUFFERED:
                self.buffer.append((src, raw))
            return
        if msg.height < self.height:
            if msg.height in self.commits and not isinstance(msg, Commit):
                self.sim.send(self.index, src, encode_msg(self.commits[msg.height][0]))
            return
        try:
            if isinstance(msg, Proposal):
                effects = self.driver.on_proposal(msg, msg.block_hash not in self.sim.invalid_blocks)
            elif isinstance(msg, Vote):
                effects = self.driver.on_vote(msg)
            else:
                effects = self.driver.on_commit(msg, msg.block_hash not in self.sim.invalid_blocks)
        except (MessageError, InvalidCommit):
            self.sim.bad_frames += 1
            return
        self.handle(effects)

    def _gossip(self, epoch: int) -> None:
        """Re-send what we hold of the current height, so that what a partition or a drop lost
        arrives once the path is back (CometBFT's gossip routines)."""
        if not self.alive or epoch != self._gossip_epoch:
            return
        d = self.driver
        if d.decision is None:
            # What a peer can still use: this round and the one before, and the polka that
            # justifies our valid value (a peer needs it to accept its re-proposal).
            rounds = {d.state.round - 1, d.state.round, d.state.valid_round} - {-1}
            for r in rounds:
                if r in d.proposals:
                    self.sim.broadcast(self.index, encode_msg(d.proposals[r]))
                for t in (VoteType.PREVOTE, VoteType.PRECOMMIT):
                    for v in d.keeper.votes(r, t):
                        self.sim.broadcast(self.index, encode_msg(v))
        self.sim.at(GOSSIP_INTERVAL, lambda: self._gossip(epoch))


class ByzantineNode(Node):
    """Double-signs every vote (a second vote for another block to half the peers), equivocates
    its proposals (two valid-looking blocks, or an invalid one), and sends garbage frames."""

    def sign_vote(self, vote: Vote) -> Vote | None:
        rng = self.sim.rng
        signed = vote.signed(CHAIN_ID, self.key)
        other_hash = keccak(b"evil %d %d %d" % (vote.height, vote.round, rng.randrange(3))) if not vote.is_nil \
            else keccak(b"evil nil %d" % vote.height)
        other = Vote(vote.type, vote.height, vote.round, other_hash, self.address).signed(CHAIN_ID, self.key)
        peers = [i for i in range(len(self.sim.nodes)) if i != self.index]
        rng.shuffle(peers)
        half = len(peers) // 2
        for i, dst in enumerate(peers):
            chosen = signed if i < half else other
            self.sim.wire.append((self.index, chosen))
            self.sim.send(self.index, dst, encode_msg(chosen))
        if rng.random() < 0.3:
            self.sim.send(self.index, rng.choice(peers), rng.randbytes(rng.randrange(1, 300)))
        return signed

    def sign_proposal(self, p: Proposal) -> Proposal:
        rng = self.sim.rng
        a = p.signed(CHAIN_ID, self.key)
        b_hash = keccak(b"twin %d %d" % (p.height, p.round))
        if rng.random() < 0.5:
            self.sim.invalid_blocks.add(b_hash)
        b = Proposal(p.height, p.round, p.pol_round, b_hash, self.address).signed(CHAIN_ID, self.key)
        self.sim.proposed_blocks.update({a.block_hash, b_hash})
        for dst in range(len(self.sim.nodes)):
            self.sim.send(self.index, dst, encode_msg(a if dst % 2 else b))
        return a

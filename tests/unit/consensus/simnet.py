"""A simulated network of validators in one process, driven by a seeded scheduler.

Virtual time only: messages are delivered in a random order after random delays, may be dropped,
and may be cut by partitions; timers fire in virtual time. Each honest node is a real
:class:`consensus.engine.Engine` (driver, vote keeper, round state machine) with a real
:class:`GuardedSigner` over a real WAL file, talking in real frames (so garbage from a byzantine
node meets the real decoders and caps). What a node host does is played here: the network, the
timers, building and checking blocks, storing each decided block (``Sim.decisions`` is every
node's database, which survives a crash; memory does not).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak

from consensus.commit import Commit
from consensus.driver import EvidenceFound, TimeoutConfig
from consensus.engine import (
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
    decode_message,
    encode_message,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import MessageError, Proposal, Vote
from consensus.validator_set import ValidatorSet
from consensus.wal import WAL, GuardedSigner

CHAIN_ID = 9999
TIMEOUTS = TimeoutConfig(propose=3.0, propose_delta=0.5, prevote=1.0, prevote_delta=0.5,
                         precommit=1.0, precommit_delta=0.5, commit=0.5)
GOSSIP_INTERVAL = 1.0
MAX_BUFFERED = 2000

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
        self.wire: list[Vote] = []  # every distinct vote that was sent
        self._seen_votes: set[tuple[bytes, int, int, int, bytes]] = set()
        self.decisions: dict[int, dict[int, bytes]] = {i: {} for i in range(n)}
        self.commits: dict[int, dict[int, Commit]] = {i: {} for i in range(n)}
        self.synced = 0  # blocks imported by block sync rather than decided by consensus
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
        if src == dst:
            return
        self._record(raw)
        if self.rng.random() < self.faults.drop:
            return
        delay = self.rng.uniform(*self.faults.delay)

        def deliver() -> None:
            if self.faults.blocked(self.now, src, dst):
                return
            self.nodes[dst].receive(src, raw)

        self.at(delay, deliver)

    def _record(self, raw: bytes) -> None:
        """Keep every vote that goes on the wire (the double-sign check reads them)."""
        try:
            kind, body, _ = decode_message(raw)
            if kind == FrameKind.VOTE:
                vote = Vote.decode(body)
                if (vote.validator, vote.height, vote.round, vote.type, vote.block_hash) not in self._seen_votes:
                    self._seen_votes.add((vote.validator, vote.height, vote.round, vote.type, vote.block_hash))
                    self.wire.append(vote)
        except MessageError:
            pass

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
    """An honest validator's host: plumbs its engine to the simulated network, timers and chain."""

    def __init__(self, sim: Sim, index: int, key: bytes, wal_path: Path) -> None:
        self.sim = sim
        self.index = index
        self.key = key
        self.wal_path = wal_path
        self.address = sim.addresses[index]
        self.alive = False
        self.engine: Engine | None = None
        self.paused_until = 0.0
        """SIGSTOP: until then nothing runs; what arrives waits in the socket buffers."""

    def make_signer(self) -> Any:
        self.wal = WAL(self.wal_path)
        return GuardedSigner(self.key, CHAIN_ID, self.wal)

    def start(self) -> None:
        """Start, or restart after a crash: from the database's height and the WAL."""
        self.alive = True
        height = len(self.sim.decisions[self.index]) + 1
        self.engine = Engine(CHAIN_ID, height, self.sim.set_at(height), self.make_signer(), TIMEOUTS,
                             GOSSIP_INTERVAL)
        self.run(self.engine.start())

    def crash(self) -> None:
        """kill -9: everything in memory is lost; the WAL file and the database stay."""
        self.alive = False
        self.engine = None
        self.wal.close()

    def pause(self, seconds: float) -> None:
        self.paused_until = self.sim.now + seconds

    def later_if_paused(self, fn: Callable[[], None]) -> bool:
        if self.sim.now < self.paused_until:
            self.sim.at(self.paused_until - self.sim.now, fn)
            return True
        return False

    def receive(self, src: int, raw: bytes) -> None:
        if self.later_if_paused(lambda: self.receive(src, raw)):
            return
        if self.alive and self.engine is not None:
            self.run(self.engine.on_frame(src, raw))

    def send(self, actions: list[Any]) -> list[Any]:
        """Put network actions on the wire (a byzantine host twists them); return the rest."""
        rest = []
        for a in actions:
            if isinstance(a, Broadcast):
                self.sim.broadcast(self.index, a.frame)
            elif isinstance(a, SendTo):
                self.sim.send(self.index, int(a.peer), a.frame)  # type: ignore[call-overload]
            else:
                rest.append(a)
        return rest

    def run(self, actions: list[Any]) -> None:
        engine = self.engine
        queue = list(actions)
        while queue and self.alive and engine is self.engine and engine is not None:
            a = queue.pop(0)
            for b in self.send([a]):
                queue += self.act(engine, b)

    def act(self, engine: Engine, a: Any) -> list[Any]:
        sim = self.sim
        if isinstance(a, SetTimer):
            def fire() -> None:
                if not self.later_if_paused(fire) and engine is self.engine:
                    self.run(engine.on_timer(a.timer))
            sim.at(a.seconds, fire)
        elif isinstance(a, BuildBlock):
            block = b"block %d %d %d" % (a.height, a.round, self.index)
            sim.proposed_blocks.add(keccak(block))
            return engine.on_block_built(a.height, a.round, keccak(block), block)
        elif isinstance(a, CheckBlock):
            if keccak(a.block) != a.block_hash:
                verdict = BlockVerdict.MISMATCH
            elif a.block_hash in sim.invalid_blocks:
                verdict = BlockVerdict.INVALID
            else:
                verdict = BlockVerdict.VALID
            return engine.on_block_checked(a.height, a.block_hash, verdict)
        elif isinstance(a, CommitBlock):
            assert a.commit.verify(engine.driver.validators.powers, chain_id=CHAIN_ID, height=a.height,
                                   block_hash=a.block_hash)
            assert keccak(a.block) == a.block_hash
            assert a.height == len(sim.decisions[self.index]) + 1
            sim.decisions[self.index][a.height] = a.block_hash
            sim.commits[self.index][a.height] = a.commit
            sim.decided_at.append((sim.now, self.index, a.height))
            return engine.on_committed(a.height, sim.set_at(a.height + 1))
        elif isinstance(a, Behind):
            return self.block_sync(engine, int(a.peer))  # type: ignore[call-overload]
        elif isinstance(a, PeerMisbehaved):
            sim.bad_frames += 1
        elif isinstance(a, EvidenceFound):
            a.evidence.check(CHAIN_ID, engine.driver.validators.powers)
            sim.evidence.append(a.evidence)
        return []


    def block_sync(self, engine: Engine, peer: int) -> list[Any]:
        """The p2p layer's block sync, played: fetch the peer's stored blocks and commits above our
        head, verify each commit against its height's set, import, and move the engine on."""
        sim = self.sim
        if sim.faults.blocked(sim.now, self.index, peer):
            return []
        mine, theirs = sim.decisions[self.index], sim.decisions[peer]
        h = len(mine) + 1
        while h in theirs and h < engine.height + 1000:
            commit = sim.commits[peer][h]
            commit.check(sim.set_at(h).powers, chain_id=CHAIN_ID, height=h, block_hash=theirs[h])
            mine[h] = theirs[h]
            sim.commits[self.index][h] = commit
            sim.decided_at.append((sim.now, self.index, h))
            sim.synced += 1
            h += 1
        if h - 1 < engine.height:
            return []  # nothing beyond what the engine is already deciding
        return engine.sync_to(h, sim.set_at(h))


class LooseSigner:
    """A byzantine key: signs anything, remembers nothing."""

    def __init__(self, key: bytes, address: bytes) -> None:
        self.key, self.address, self.decided_height = key, address, 0

    def sign_vote(self, vote: Vote) -> Vote:
        return vote.signed(CHAIN_ID, self.key)

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        return proposal.signed(CHAIN_ID, self.key)

    def own_messages(self, height: int) -> list[Vote | Proposal]:
        return []

    def mark_decided(self, height: int) -> None:
        pass


class ByzantineNode(Node):
    """Runs a real engine but double-signs every vote (another block to half the peers),
    equivocates its proposals (a twin block, invalid half of the time), and sends garbage."""

    def make_signer(self) -> Any:
        self.wal = WAL(self.wal_path)
        return LooseSigner(self.key, self.address)

    def send(self, actions: list[Any]) -> list[Any]:
        rest = []
        for a in actions:
            if isinstance(a, Broadcast):
                self._twist(a.frame)
            elif isinstance(a, SendTo):
                self.sim.send(self.index, int(a.peer), a.frame)  # type: ignore[call-overload]
            else:
                rest.append(a)
        return rest

    def _twist(self, frame: bytes) -> None:
        sim, rng = self.sim, self.sim.rng
        kind, body, block = decode_message(frame)
        peers = [i for i in range(len(sim.nodes)) if i != self.index]
        rng.shuffle(peers)
        other = frame
        if kind == FrameKind.VOTE:
            v = Vote.decode(body)
            if v.validator == self.address:
                evil = keccak(b"evil %d %d %d" % (v.height, v.round, rng.randrange(3)))
                other = encode_message(FrameKind.VOTE, Vote(v.type, v.height, v.round, evil, self.address)
                                     .signed(CHAIN_ID, self.key).encode())
        elif kind == FrameKind.PROPOSAL:
            p = Proposal.decode(body)
            if p.proposer == self.address:
                twin = b"twin %d %d" % (p.height, p.round)
                # A twin's validity is drawn once: re-gossip of the same proposal re-sends the same
                # twin, and a block judged valid must not turn invalid later (that made a decided
                # block look invalid to check_safety).
                if keccak(twin) not in sim.proposed_blocks and rng.random() < 0.5:
                    sim.invalid_blocks.add(keccak(twin))
                sim.proposed_blocks.add(keccak(twin))
                other = encode_message(FrameKind.PROPOSAL, Proposal(p.height, p.round, p.pol_round, keccak(twin),
                                                                  self.address).signed(CHAIN_ID, self.key).encode(), twin)
        for i, dst in enumerate(peers):
            sim.send(self.index, dst, frame if i < len(peers) // 2 else other)
        if rng.random() < 0.3:
            sim.send(self.index, rng.choice(peers), rng.randbytes(rng.randrange(1, 300)))

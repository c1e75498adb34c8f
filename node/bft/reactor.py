"""The consensus reactor: runs one :class:`consensus.engine.Engine` for a BFT validator.

docs/consensus.md §9 lists what a host must plumb; this is that host, on the node's trio loop:

- validator frames travel over a :class:`Transport`: in production, direct long-lived libp2p
  streams of ``/ailedger/consensus/1`` to every validator peer (:class:`p2p.links.StreamLinks`),
  each opened with a signed hello (:mod:`node.bft.hello`) when this node is a validator;
  a test run may wrap it (``node/bft/faults.py``: dropped or delayed frames, byzantine modes,
  a vote trace) without the reactor knowing; inbound frames arrive on the protocol's handler,
  which refuses a stream whose hello does not name a validator of the current set before it
  decodes anything, and scores a frame that does not decode (or is stale) against its sender,
  never raising;
- timers are trio tasks; a stale one is harmless (the engine ignores it);
- ``BuildBlock``, ``CheckBlock`` and ``CommitBlock`` go to the block pipeline
  (:class:`node.chain.pipeline.BlockPipeline`) on the chain worker: propose without committing,
  re-execute without committing, commit with the decision's commit in one atomic write;
- when the head moves without consensus (block sync or a gossiped block with its commit), the
  engine jumps there with :meth:`Engine.sync_to`; ``Behind`` refreshes the peer's status, which
  wakes the range sync;
- ``EvidenceFound`` goes to :class:`node.bft.evidence.EvidenceReporter`, which puts it on chain;
- the validator's key signs only through :class:`consensus.wal.GuardedSigner` over
  ``datadir/consensus.wal``.

The engine is sans-I/O and synchronous: every call to it happens on the trio loop and its
actions are dispatched before the next call, so one task at a time owns the round state.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import rlp
import trio

from consensus.driver import EvidenceFound, TimeoutConfig
from consensus.engine import (
    Action,
    Behind,
    BlockVerdict,
    Broadcast,
    BuildBlock,
    CheckBlock,
    CommitBlock,
    Engine,
    PeerMisbehaved,
    SendTo,
    SetTimer,
    Timer,
)
from consensus.validator_set import ValidatorSet
from consensus.wal import WAL, DoubleSignRefused, GuardedSigner, WALError
from node import metrics
from node.bft.evidence import EvidenceReporter
from node.bft.hello import MAX_HELLO_BYTES, Hello, HelloError
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent, Origin
from node.chain.pipeline import BlockPipeline
from node.network import NetworkNode
from node.validators import ValidatorSets
from node.worker import ChainWorker, Priority
from p2p.links import StreamLinks
from p2p.wire import CONSENSUS_PROTOCOL, MAX_FRAME, FrameReader, WireError
from state.vm import LedgerBlock

log = logging.getLogger("ailedger.consensus")

#: Misbehaviour points after which a peer is banned (the engine weighs each malformed, badly signed
#: or stale frame; they decay by one per second, so a burst of honest-but-stale frames does not ban).
BAN_SCORE = 50
#: Seconds an inbound consensus stream has to send its hello, and the points a refused hello costs
#: (a node outside the set never opens one; a validator the set just took in retries with backoff).
HELLO_TIMEOUT = 10.0
REFUSED_HELLO_POINTS = 10.0
#: Peers whose misbehaviour score is kept before decayed scores are forgotten.
MAX_SCORED_PEERS = 1024
#: Seconds timeout_propose may wait beyond its time for a proposal being built or checked.
PROPOSE_GRACE = 10.0
#: The block-time rule (docs/consensus.md §5): a block's timestamp is a whole second strictly after
#: its parent's (Ethereum's rule) and never more than this many seconds ahead of its proposer's
#: clock: ``max(now, parent + 1)``, and a proposer whose parent is that far ahead waits for its
#: clock before it builds. So timestamps follow the clock at any block time (blocks faster than
#: one a second use up this lead, then come at about one a second), and validators prevote nil
#: on a proposal more than ``node.chain.pipeline.MAX_FUTURE_SECONDS`` ahead of their own clock.
MAX_PROPOSAL_LEAD = 1.0
#: Gossip ticks are spread by this fraction of their interval, either way.
GOSSIP_JITTER = 0.25

#: Consensus timeouts for a node on a loaded machine (4 validators on 2 cores make progress):
#: propose 2 s + 0.5 s a round, prevote and precommit 1 s + 0.5 s, commit 1 s. The commit pause
#: keeps blocks at about one a second, so block timestamps (whole seconds) follow the clock.
DEFAULT_TIMEOUTS = TimeoutConfig(propose=2.0, propose_delta=0.5, prevote=1.0, prevote_delta=0.5,
                                 precommit=1.0, precommit_delta=0.5, commit=1.0)


@dataclass
class ConsensusConfig:
    """How a BFT validator runs consensus."""

    timeouts: TimeoutConfig = DEFAULT_TIMEOUTS
    """Round timeouts (they grow with the round) and the pause after a commit."""
    gossip_interval: float = 1.0
    """Seconds between re-sends of the current round's proposal and votes."""
    max_block_txs: int = 2000
    """Most transactions a proposal takes from the pool (the block's gas limit holds 1,428
    transfers)."""
    build_seconds: float = 0.75
    """Wall-clock budget of building a proposal: past it, no more transactions are taken. Every
    validator re-executes the block in about that time, so it fits well inside timeout_propose,
    and blocks grow on a quiet machine and shrink on a loaded one (a fixed 500 cost rounds under
    load; a fixed 200 left a quiet machine at about 140 transfers/s)."""
    byzantine: str | None = None
    """Test-only misbehaviour (``node.bft.faults.BYZANTINE_MODES``); the CLI refuses it unless
    ``node.bft.faults.BYZANTINE_ENV`` is set."""
    faults: bool = False
    """Test-only network faults (``node.bft.faults.FaultyTransport``); the CLI refuses it unless
    ``node.bft.faults.FAULTS_ENV`` is set."""


class Transport(Protocol):
    """How consensus frames leave and enter this validator."""

    @property
    def peers(self) -> list[str]:
        """Peers frames can be sent to now."""
        ...

    def send(self, peer: str, frame: bytes) -> None: ...

    def broadcast(self, frame: bytes) -> None: ...

    def accept(self, peer: str, frame: bytes) -> bool:
        """Whether an inbound frame from ``peer`` reaches the engine."""
        ...

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None: ...


class LinkTransport:
    """The production transport: the consensus protocol's persistent links, nothing else."""

    def __init__(self, links: StreamLinks) -> None:
        self.links = links

    @property
    def peers(self) -> list[str]:
        return self.links.peers

    def send(self, peer: str, frame: bytes) -> None:
        self.links.send(peer, frame)

    def broadcast(self, frame: bytes) -> None:
        self.links.broadcast(frame)

    def accept(self, peer: str, frame: bytes) -> bool:
        return True

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.links.run(task_status=task_status)


class ConsensusReactor:
    """One BFT validator's consensus, on the node's trio loop."""

    def __init__(self, pipeline: BlockPipeline, worker: ChainWorker, network: NetworkNode, key: bytes,
                 datadir: Path, config: ConsensusConfig | None = None,
                 wrap_transport: Callable[[Transport], Transport] | None = None) -> None:
        """``wrap_transport``: test-only faults around the production transport."""
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.worker = worker
        self.network = network
        self.host = network.host
        self.config = config or ConsensusConfig()
        self.chain_id = self.core.ledger.chain_id
        if self.core.validator_sets is None:
            raise ValueError("a BFT chain's core keeps its validator sets (node.validators.ValidatorSets)")
        self.sets: ValidatorSets = self.core.validator_sets
        self.signer = GuardedSigner(key, self.chain_id, WAL(datadir / "consensus.wal"))
        self.address = self.signer.address
        self.engine: Engine | None = None
        self._key = key
        self._allowed: tuple[tuple[int, int], frozenset[bytes]] = ((-1, 0), frozenset())
        transport: Transport = LinkTransport(StreamLinks(
            self.host, CONSENSUS_PROTOCOL, on_drop=metrics.CONSENSUS_DROPPED.inc, greeting=self._hello,
            should_link=lambda: self.address in self.allowed_validators()))
        self.transport = wrap_transport(transport) if wrap_transport is not None else transport
        self.evidence = EvidenceReporter(self.core, worker, self.sets, key)
        self._scores: dict[str, tuple[float, float]] = {}
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._head_moved = trio.Event()
        self._building: tuple[int, int] | None = None

    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.host.add_protocol(CONSENSUS_PROTOCOL, self._serve_peer)
        head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
        height = head + 1
        validators = await self.worker.run(self.sets.at, height)
        self.engine = Engine(self.chain_id, height, validators, self.signer, self.config.timeouts,
                             self.config.gossip_interval)
        self.core.events.subscribe(self._on_chain_event)
        log.info("consensus: validator 0x%s starts at height %d (%d validators%s)", self.address.hex(), height,
                 len(validators), "" if self.address in validators else "; not one of them yet")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.transport.run)
                nursery.start_soon(self._follow_head)
                task_status.started()
                self._feed(self.engine.start)
                await trio.sleep_forever()
        finally:
            self.signer.wal.close()

    def _feed(self, fn: Callable[..., list[Action]], *args: Any) -> None:
        """Call the engine and carry out what it asks. Only ever called on the trio loop."""
        try:
            actions = fn(*args)
        except DoubleSignRefused as e:
            # The guard worked: something asked for a second, different signature. Nothing was
            # signed or sent; the round times out and moves on.
            log.error("consensus: refused to double-sign: %s", e)
            return
        self._dispatch(actions)
        engine = self.engine
        if engine is not None:
            metrics.CONSENSUS_HEIGHT.set(engine.height)
            metrics.CONSENSUS_ROUND.set(engine.driver.state.round)

    def _dispatch(self, actions: list[Action]) -> None:
        nursery = self._nursery
        assert nursery is not None
        for a in actions:
            if isinstance(a, Broadcast):
                self.transport.broadcast(a.frame)
            elif isinstance(a, SendTo):
                self.transport.send(str(a.peer), a.frame)
            elif isinstance(a, SetTimer):
                nursery.start_soon(self._timer, a.timer, a.seconds)
            elif isinstance(a, BuildBlock):
                nursery.start_soon(self._build, a.height, a.round)
            elif isinstance(a, CheckBlock):
                nursery.start_soon(self._check, a)
            elif isinstance(a, CommitBlock):
                nursery.start_soon(self._commit, a)
            elif isinstance(a, Behind):
                nursery.start_soon(self._behind, str(a.peer), a.height)
            elif isinstance(a, PeerMisbehaved):
                self._misbehaved(str(a.peer), a.reason, a.points)
            elif isinstance(a, EvidenceFound):
                nursery.start_soon(self.evidence.report, a.evidence)

    # -- network ---------------------------------------------------------------------------

    def _hello(self, peer: str) -> bytes:
        return Hello.make(self.chain_id, self.host.peer_id, peer, self._key).encode()

    def allowed_validators(self) -> frozenset[bytes]:
        """Who may open a consensus stream to this node: the validators of its height, and of the
        next height once that is known (a set that changes at an epoch)."""
        engine = self.engine
        if engine is None:
            return frozenset()
        next_set = engine.next_validators
        key = (engine.height, id(next_set))
        if self._allowed[0] != key:
            members = {v.address for v in engine.driver.validators.validators}
            if next_set is not None:
                members |= {v.address for v in next_set.validators}
            self._allowed = (key, frozenset(members))
        return self._allowed[1]

    async def _serve_peer(self, peer: str, stream: Any) -> None:
        """A peer's inbound consensus stream: its hello must name a validator of the current set,
        or the stream is reset before any consensus frame is read; then its frames go to the
        engine, one at a time, while that validator stays in the set."""
        reader = FrameReader(stream, MAX_HELLO_BYTES)
        validator = None
        try:
            with trio.move_on_after(HELLO_TIMEOUT):
                first = await reader.next()
                if first is None:
                    return  # a clean end of stream is nobody's fault
                validator = Hello.decode(first).check(self.chain_id, peer, self.host.peer_id)
        except (WireError, HelloError) as e:
            self._refuse(peer, f"bad consensus hello: {e}")
            return
        if validator is None:
            self._refuse(peer, "no consensus hello")
            return
        if validator not in self.allowed_validators():
            self._refuse(peer, f"consensus hello of 0x{validator.hex()}, not a validator of height "
                               f"{self.engine.height if self.engine else '?'}")
            return
        log.debug("consensus: stream from %s, validator 0x%s", peer, validator.hex())
        reader.limit = MAX_FRAME
        while True:
            try:
                frame = await reader.next()
            except WireError as e:
                self._misbehaved(peer, f"bad consensus frame: {e}")
                return
            if frame is None:
                return
            if validator not in self.allowed_validators():
                log.info("consensus: 0x%s left the validator set; closing its stream from %s", validator.hex(), peer)
                return
            if not self.transport.accept(peer, frame):
                continue
            metrics.CONSENSUS_VOTES.inc()
            if self.engine is not None:
                try:
                    self._feed(self.engine.on_frame, peer, frame)
                except WALError:
                    raise  # our own disk failed: stop signing (the node stops)
                except Exception as e:
                    # A frame no decoder refused yet the engine could not take: never a crash.
                    log.exception("consensus: frame from %s could not be handled", peer)
                    self._misbehaved(peer, f"frame the engine could not handle: {type(e).__name__}")

    def _refuse(self, peer: str, reason: str) -> None:
        metrics.CONSENSUS_STREAMS_REFUSED.inc()
        self._misbehaved(peer, reason, REFUSED_HELLO_POINTS)

    def _misbehaved(self, peer: str, reason: str, points: float = 1.0) -> None:
        metrics.CONSENSUS_MISBEHAVIOUR.inc()
        now = time.monotonic()
        score, at = self._scores.get(peer, (0.0, now))
        score = max(0.0, score - (now - at)) + points
        if peer not in self._scores and len(self._scores) >= MAX_SCORED_PEERS:
            # scores decay by one a second: forget those that have decayed to nothing
            self._scores = {p: (s, t) for p, (s, t) in self._scores.items() if s - (now - t) > 0}
        self._scores[peer] = (score, now)
        log.info("consensus: peer %s misbehaved (%s), score %.1f", peer, reason, score)
        if score >= BAN_SCORE and self._nursery is not None:
            self._scores.pop(peer, None)
            self._nursery.start_soon(self.host.ban, peer, f"consensus: {reason}")

    async def _behind(self, peer: str, height: int) -> None:
        """A peer works on a later height: learn its head now, which wakes the block sync (the
        head then moves and :meth:`_follow_head` moves the engine)."""
        await trio.sleep(self.config.gossip_interval)  # the commit may still come by itself
        engine = self.engine
        if engine is None or engine.height >= height:
            return
        await self.network.refresh_peer(peer)

    # -- timers ----------------------------------------------------------------------------

    async def _timer(self, timer: Timer, seconds: float) -> None:
        if timer.kind == "gossip":
            # Blocks follow the clock's seconds (the block time rule), and a gossip tick of exactly
            # a second would lock to one phase of them: always after the decision, it would never
            # relay a height's votes (a double sign seen by one validator would never reach another).
            seconds *= random.uniform(1 - GOSSIP_JITTER, 1 + GOSSIP_JITTER)
        await trio.sleep(seconds)
        # timeout_propose waits for the proposal; a proposal that came in time but is still being
        # built (ours) or re-executed (theirs) on a busy machine gets up to PROPOSE_GRACE more,
        # instead of a nil prevote that costs the whole round (a local choice: safety is untouched).
        waited = 0.0
        while timer.kind == "propose" and waited < PROPOSE_GRACE and self._proposal_in_work(timer):
            await trio.sleep(0.05)
            waited += 0.05
        if self.engine is not None:
            self._feed(self.engine.on_timer, timer)

    def _proposal_in_work(self, timer: Timer) -> bool:
        engine = self.engine
        if engine is None or engine.height != timer.height or engine.driver.state.round != timer.round:
            return False
        return engine.checking or self._building == (timer.height, timer.round)

    # -- the chain thread ------------------------------------------------------------------

    async def _build(self, height: int, round_: int) -> None:
        self._building = (height, round_)
        try:
            await self._build_block(height, round_)
        finally:
            self._building = None

    async def _build_block(self, height: int, round_: int) -> None:
        parent_time = await self.worker.run(lambda: int(self.core.ledger.head.timestamp))
        wait = parent_time + 1 - MAX_PROPOSAL_LEAD - time.time()
        if wait > 0:
            log.debug("consensus: block %d waits %.1fs for the clock (its parent is at %d)", height, wait, parent_time)
            await trio.sleep(wait)

        def build() -> tuple[bytes, bytes] | None:
            head = self.core.ledger.head
            if int(head.block_number) + 1 != height:
                return None
            timestamp = max(int(time.time()), int(head.timestamp) + 1)
            built = self.pipeline.propose(timestamp, self.address, self.sets.at(height).hash(),
                                          self.config.max_block_txs, time.monotonic() + self.config.build_seconds)
            return bytes(built.block.header.hash), bytes(rlp.encode(built.block))

        try:
            result = await self.worker.run(build, priority=Priority.PRODUCE)
        except Exception:
            log.exception("consensus: building block %d failed", height)
            return
        if result is not None and self.engine is not None:
            log.debug("consensus: built block %d round %d with %d bytes", height, round_, len(result[1]))
            self._feed(self.engine.on_block_built, height, round_, result[0], result[1])

    async def _check(self, action: CheckBlock) -> None:
        def check() -> BlockVerdict:
            try:
                block = rlp.decode(action.block, sedes=LedgerBlock)
            except Exception:
                return BlockVerdict.MISMATCH
            if block.header.hash != action.block_hash:
                return BlockVerdict.MISMATCH
            try:
                fault = self.pipeline.check(block, action.height, self.sets.at(action.height), time.time())
            except Exception:
                log.exception("consensus: checking proposed block %d failed", action.height)
                return BlockVerdict.INVALID
            if fault is not None:
                log.info("consensus: proposed block %d is invalid: %s", action.height, fault)
                return BlockVerdict.INVALID
            return BlockVerdict.VALID

        try:
            verdict = await self.worker.run(check, priority=Priority.PRODUCE)
        except Exception:
            log.exception("consensus: checking block %d failed", action.height)
            return
        if self.engine is not None:
            self._feed(self.engine.on_block_checked, action.height, action.block_hash, verdict)

    async def _commit(self, action: CommitBlock) -> None:
        def commit() -> tuple[str, ValidatorSet | None]:
            block = rlp.decode(action.block, sedes=LedgerBlock)
            done = self.pipeline.commit(block, action.commit.encode(), Origin.CONSENSUS)
            if done.outcome == "conflict":
                return done.outcome, None
            return done.outcome, self.sets.at(action.height + 1)

        try:
            outcome, next_set = await self.worker.run(commit, priority=Priority.PRODUCE)
        except Exception:
            log.exception("consensus: committing block %d failed", action.height)
            return
        if next_set is None:
            return
        if outcome == "committed":
            metrics.CONSENSUS_COMMITS.inc()
        log.info("consensus: block %d 0x%s final (round %d, %d signatures)", action.height,
                 action.block_hash.hex()[:16], action.commit.round, len(action.commit.signatures))
        if self.engine is not None:
            if next_set.hash() != self.engine.driver.validators.hash():
                log.info("consensus: the validator set changes at height %d: %d validators", action.height + 1,
                         len(next_set))
            self._feed(self.engine.on_committed, action.height, next_set)

    def _on_chain_event(self, event: ChainEvent) -> None:
        """Runs on the chain worker: a block became the head (block sync, gossip, consensus)."""
        token = self._token
        if token is None or not isinstance(event, BlockCommitted):
            return
        try:
            token.run_sync_soon(self._head_moved.set)
        except trio.RunFinishedError:
            pass

    async def _follow_head(self) -> None:
        """Move the engine when block sync (or a gossiped block) took the chain past it."""
        while True:
            with trio.move_on_after(1.0):
                await self._head_moved.wait()
            self._head_moved = trio.Event()
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            engine = self.engine
            if engine is None:
                continue
            if head >= engine.height and (engine.driver.decision is None or head > engine.height):
                validators = await self.worker.run(self.sets.at, head + 1)
                log.info("consensus: chain synced to %d; consensus moves from %d to %d", head, engine.height,
                         head + 1)
                self._feed(engine.sync_to, head + 1, validators)

"""The consensus reactor: runs one :class:`consensus.engine.Engine` for a BFT validator.

docs/consensus.md §9 lists what a host must plumb; this is that host, on the node's trio loop:

- validator frames travel on direct, long-lived libp2p streams (``/ailedger/consensus/1``), one
  outbound stream per peer, length-prefixed frames of at most 1 MiB; a peer that does not speak
  the protocol (a follower) is retried later; a frame that does not decode is scored against its
  sender, never raised;
- timers are trio tasks; a stale one is harmless (the engine ignores it);
- ``BuildBlock`` builds from the pool on the chain worker WITHOUT committing, ``CheckBlock``
  re-executes a proposal on its parent without committing, ``CommitBlock`` imports the block with
  its commit in one atomic write (the same :class:`state.Ledger` path sync uses), under the
  network's import lock so block sync and consensus never import the same height twice;
- when the head moves without consensus (block sync or a gossiped block with its commit), the
  engine jumps there with :meth:`Engine.sync_to`; ``Behind`` refreshes the peer's status, which
  wakes the range sync;
- the validator set of each height comes from :class:`node.validators.ValidatorSets` (genesis,
  then the staking precompile's set at each epoch boundary), kept with the chain;
- the validator's key signs only through :class:`consensus.wal.GuardedSigner` over
  ``datadir/consensus.wal``.

The engine is sans-I/O and synchronous: every call to it happens on the trio loop and its
actions are dispatched before the next call, so one task at a time owns the round state.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
import trio
from eth_utils import keccak

import ai_precompiles
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
    FrameKind,
    PeerMisbehaved,
    SendTo,
    SetTimer,
    Timer,
    decode_frame,
)
from consensus.engine import encode_frame as encode_engine_frame
from consensus.evidence import DuplicateVoteEvidence, InvalidEvidence
from consensus.messages import MessageError, Proposal, Vote
from consensus.validator_set import ValidatorSet
from consensus.wal import WAL, DoubleSignRefused, GuardedSigner, WALError
from node import metrics
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent, Origin
from node.chain.pipeline import BlockPipeline
from node.errors import Refused
from node.evidence_pool import EvidencePool, submit_evidence_transaction
from node.sync import NetworkNode
from node.validators import ValidatorSets
from node.worker import ChainWorker, Priority
from p2p.host import PeerError
from p2p.wire import MAX_FRAME, FrameReader, WireError, encode_frame
from state.vm import LedgerBlock

log = logging.getLogger("ailedger.consensus")

CONSENSUS_PROTOCOL = "/ailedger/consensus/1"
#: Frames queued for one peer before new ones are dropped (the engine re-gossips what matters).
OUTBOX_FRAMES = 1024
#: Bytes written to a stream at once (each write costs ~1 ms in py-libp2p: batch).
WRITE_BATCH = 256 * 1024
#: Seconds a write to a peer may block (a SIGSTOPped peer) before its stream is dropped.
WRITE_TIMEOUT = 10.0
#: Seconds before a peer that does not speak the consensus protocol (a follower) is asked again.
NOT_VALIDATOR_RETRY = 30.0
#: Misbehaviour points after which a peer is banned (each malformed or badly signed frame is one;
#: they decay by one per second, so a burst of honest-but-stale frames does not ban).
BAN_SCORE = 50
#: Peers whose misbehaviour score is kept before decayed scores are forgotten.
MAX_SCORED_PEERS = 1024
#: Offences kept in the evidence pool (docs/consensus.md §7).
MAX_EVIDENCE = 1024
#: Priority fee of a submitEvidence transaction (wei per gas).
EVIDENCE_TIP = 10**9
#: Evidence found while its height is being decided waits for that height's block: this many
#: checks, this far apart.
EVIDENCE_WAIT_TRIES, EVIDENCE_WAIT_SECONDS = 120, 0.5
#: Seconds timeout_propose may wait beyond its time for a proposal being built or checked.
PROPOSE_GRACE = 10.0
#: Env var: when set, every distinct vote sent or received is appended to
#: ``datadir/consensus-votes.log`` (tests check that nobody signs two votes for one step).
TRACE_ENV = "AILEDGER_TRACE_VOTES"

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
    max_block_txs: int = 200
    """Most transactions a proposal takes from the pool: building it, and every validator's
    re-execution, must fit well inside timeout_propose on a loaded machine."""
    byzantine: str | None = None
    """Test-only misbehaviour (``BYZANTINE_MODES``); the CLI refuses it unless ``BYZANTINE_ENV`` is set."""
    faults: bool = False
    """Test-only network faults: re-read ``datadir/FAULTS_FILE`` every ``FAULTS_POLL`` seconds and
    drop or delay consensus frames to and from the peers it names; the CLI refuses it unless
    ``FAULTS_ENV`` is set."""


#: Test-only byzantine behaviours: "double-sign" sends half the peers, for each of its votes, a
#: second vote for another block at the same height, round and step (evidence for the others);
#: "garbage" sends every peer three frames of random bytes beside each honest broadcast;
#: "invalid-proposal" proposes blocks with a wrong state root (their re-execution fails);
#: "equivocate" sends half the peers its proposal and the other half a second, different block
#: signed for the same height and round.
BYZANTINE_MODES = ("double-sign", "garbage", "invalid-proposal", "equivocate")
#: The env var that must be set for a node to accept ``--byzantine``.
BYZANTINE_ENV = "AILEDGER_ALLOW_BYZANTINE"
#: The env var that must be set for a node to accept ``--faults``.
FAULTS_ENV = "AILEDGER_ALLOW_FAULTS"
#: The fault control file in the datadir: ``{"drop": [peer id, ...], "delay": {peer id: seconds}}``;
#: ``drop`` loses every consensus frame to and from those peers, ``delay`` holds each frame to that
#: peer so long before it is queued. A missing file means no faults.
FAULTS_FILE = "consensus-faults.json"
#: Seconds between two reads of the fault file; the most bytes read of it; the most frames held
#: by delays at once (more are dropped); the longest delay honoured.
FAULTS_POLL, FAULTS_MAX_BYTES, FAULTS_MAX_HELD, FAULTS_MAX_DELAY = 0.5, 64 * 1024, 4096, 60.0


@dataclass(frozen=True)
class Faults:
    """Test-only network faults of one node (``--faults``): what to drop or delay, by peer id."""

    drop: frozenset[str] = frozenset()
    delay: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, raw: bytes) -> Faults:
        doc = json.loads(raw) if raw.strip() else {}
        if not isinstance(doc, dict):
            raise ValueError("the fault file holds a JSON object")
        drop = doc.get("drop", [])
        delay = doc.get("delay", {})
        if not isinstance(drop, list) or not all(isinstance(p, str) for p in drop):
            raise ValueError("drop is a list of peer ids")
        if not isinstance(delay, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= FAULTS_MAX_DELAY
                for v in delay.values()):
            raise ValueError(f"delay maps peer ids to seconds (0..{FAULTS_MAX_DELAY:g})")
        return cls(frozenset(drop), tuple((str(k), float(v)) for k, v in delay.items()))

    def delay_of(self, peer: str) -> float:
        for p, seconds in self.delay:
            if p == peer:
                return seconds
        return 0.0


class ConsensusReactor:
    """One BFT validator's consensus, on the node's trio loop."""

    def __init__(self, pipeline: BlockPipeline, worker: ChainWorker, network: NetworkNode, key: bytes,
                 datadir: Path, config: ConsensusConfig | None = None) -> None:
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        core = self.core
        self.worker = worker
        self.network = network
        self.host = network.host
        self.config = config or ConsensusConfig()
        self.chain_id = core.ledger.chain_id
        if core.validator_sets is None:
            raise ValueError("a BFT chain's core keeps its validator sets (node.validators.ValidatorSets)")
        self.sets: ValidatorSets = core.validator_sets
        self.signer = GuardedSigner(key, self.chain_id, WAL(datadir / "consensus.wal"))
        self._key = key
        if self.config.byzantine is not None and self.config.byzantine not in BYZANTINE_MODES:
            raise ValueError(f"unknown byzantine mode {self.config.byzantine!r}")
        self.address = self.signer.address
        self.engine: Engine | None = None
        #: Double signs seen, by offence, until their submitEvidence transaction is pooled
        #: (docs/consensus.md §7); filled with the chain's unbonding window in run().
        self.evidence = EvidencePool(self.chain_id, unbonding_blocks=1, capacity=MAX_EVIDENCE)
        self._outboxes: dict[str, trio.MemorySendChannel[bytes]] = {}
        self._not_validator: dict[str, float] = {}
        self._scores: dict[str, tuple[float, float]] = {}
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._head_moved = trio.Event()
        self._building: tuple[int, int] | None = None
        self._trace: Any = None
        self._traced: set[tuple[bytes, int, int, int, bytes]] = set()
        self._datadir = datadir
        self._faults = Faults()
        self._held = 0
        if os.environ.get(TRACE_ENV):
            self._trace = open(datadir / "consensus-votes.log", "a", buffering=1)  # noqa: SIM115 - closed in run()

    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.host.add_stream_protocol(CONSENSUS_PROTOCOL, self._serve_peer)
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
                nursery.start_soon(self._connect_peers)
                nursery.start_soon(self._follow_head)
                if self.config.faults:
                    nursery.start_soon(self._watch_faults)
                task_status.started()
                self._feed(self.engine.start)
                await trio.sleep_forever()
        finally:
            self.signer.wal.close()
            if self._trace is not None:
                self._trace.close()

    def _feed(self, fn: Any, *args: Any) -> None:
        """Call the engine and carry out what it asks. Only ever called on the trio loop."""
        try:
            actions: list[Action] = fn(*args)
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
                self._trace_frame(a.frame)
                if self.config.byzantine == "double-sign" and self._double_sign(a.frame):
                    continue
                if self.config.byzantine == "equivocate" and self._equivocate(a.frame):
                    continue
                if self.config.byzantine == "garbage":
                    for peer in list(self._outboxes):
                        for _ in range(3):
                            self._send(peer, os.urandom(1 + os.urandom(1)[0]))
                for peer in list(self._outboxes):
                    self._send(peer, a.frame)
            elif isinstance(a, SendTo):
                self._send(str(a.peer), a.frame)
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
                self._misbehaved(str(a.peer), a.reason)
            elif isinstance(a, EvidenceFound):
                self._evidence(a.evidence)

    # -- network ---------------------------------------------------------------------------

    def _send(self, peer: str, frame: bytes) -> None:
        if self.config.faults:
            if peer in self._faults.drop:
                metrics.CONSENSUS_DROPPED.inc()
                return
            delay = self._faults.delay_of(peer)
            if delay > 0 and self._nursery is not None:
                if self._held >= FAULTS_MAX_HELD:
                    metrics.CONSENSUS_DROPPED.inc()
                    return
                self._held += 1
                self._nursery.start_soon(self._send_later, peer, frame, delay)
                return
        self._queue(peer, frame)

    async def _send_later(self, peer: str, frame: bytes, delay: float) -> None:
        try:
            await trio.sleep(delay)
        finally:
            self._held -= 1
        self._queue(peer, frame)

    async def _watch_faults(self) -> None:
        """Test-only (``--faults``): follow the fault file; a bad one keeps the faults before it."""
        path = self._datadir / FAULTS_FILE
        while True:
            try:
                with open(path, "rb") as f:
                    raw = f.read(FAULTS_MAX_BYTES + 1)
                if len(raw) > FAULTS_MAX_BYTES:
                    raise ValueError(f"above {FAULTS_MAX_BYTES} bytes")
                faults = Faults.parse(raw)
            except FileNotFoundError:
                faults = Faults()
            except (OSError, ValueError) as e:
                log.warning("consensus: fault file %s ignored: %s", path, e)
                faults = self._faults
            if faults != self._faults:
                log.warning("consensus: faults now drop %s, delay %s", sorted(faults.drop) or "nothing",
                            dict(faults.delay) or "nothing")
                self._faults = faults
            await trio.sleep(FAULTS_POLL)

    def _queue(self, peer: str, frame: bytes) -> None:
        outbox = self._outboxes.get(peer)
        if outbox is None:
            return
        try:
            outbox.send_nowait(frame)
        except trio.WouldBlock:
            metrics.CONSENSUS_DROPPED.inc()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    async def _connect_peers(self) -> None:
        """Keep one outbound consensus stream to every connected peer that speaks the protocol."""
        while True:
            now = time.monotonic()
            for peer in list(self.host.peers):
                if (peer in self._outboxes or self._not_validator.get(peer, 0.0) > now
                        or self.host.is_banned(peer)):
                    continue
                send, receive = trio.open_memory_channel[bytes](OUTBOX_FRAMES)
                self._outboxes[peer] = send
                assert self._nursery is not None
                self._nursery.start_soon(self._link, peer, send, receive)
            await trio.sleep(0.5)

    async def _link(self, peer: str, send: trio.MemorySendChannel[bytes],
                    receive: trio.MemoryReceiveChannel[bytes]) -> None:
        stream = None
        try:
            try:
                stream = await self.host.open_stream(peer, CONSENSUS_PROTOCOL)
            except PeerError as e:
                log.debug("consensus: no stream to %s (%s)", peer, e)
                self._not_validator[peer] = time.monotonic() + NOT_VALIDATOR_RETRY
                return
            log.info("consensus: linked to peer %s", peer)
            async with receive:
                async for frame in receive:
                    batch = bytearray(encode_frame(frame))
                    while len(batch) < WRITE_BATCH:
                        try:
                            batch += encode_frame(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                    with trio.fail_after(WRITE_TIMEOUT):
                        await stream.write(bytes(batch))
        except trio.TooSlowError:
            log.info("consensus: peer %s stopped reading; dropping its stream", peer)
        except Exception as e:
            log.info("consensus: stream to %s ended: %s", peer, e)
        finally:
            if self._outboxes.get(peer) is send:
                del self._outboxes[peer]
            send.close()
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    try:
                        await stream.reset()
                    except Exception:
                        pass

    async def _serve_peer(self, peer: str, stream: Any) -> None:
        """A peer's inbound consensus stream: feed its frames to the engine, one at a time."""
        reader = FrameReader(stream, MAX_FRAME)
        while True:
            try:
                frame = await reader.next()
            except WireError as e:
                self._misbehaved(peer, f"bad consensus frame: {e}")
                return
            if frame is None:
                return
            if self.config.faults and peer in self._faults.drop:
                metrics.CONSENSUS_DROPPED.inc()
                continue
            metrics.CONSENSUS_VOTES.inc()
            if self._trace is not None:
                self._trace_frame(frame)
            if self.engine is not None:
                try:
                    self._feed(self.engine.on_frame, peer, frame)
                except WALError:
                    raise  # our own disk failed: stop signing (the node stops)
                except Exception as e:
                    # A frame no decoder refused yet the engine could not take: never a crash.
                    log.exception("consensus: frame from %s could not be handled", peer)
                    self._misbehaved(peer, f"frame the engine could not handle: {type(e).__name__}")

    def _misbehaved(self, peer: str, reason: str) -> None:
        metrics.CONSENSUS_MISBEHAVIOUR.inc()
        now = time.monotonic()
        score, at = self._scores.get(peer, (0.0, now))
        score = max(0.0, score - (now - at)) + 1
        if peer not in self._scores and len(self._scores) >= MAX_SCORED_PEERS:
            # scores decay by one a second: forget those that have decayed to nothing
            self._scores = {p: (s, t) for p, (s, t) in self._scores.items() if s - (now - t) > 0}
        self._scores[peer] = (score, now)
        log.info("consensus: peer %s misbehaved (%s), score %.0f", peer, reason, score)
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
        try:
            status = await self.host.request_status(peer)
        except PeerError as e:
            log.debug("consensus: status of %s failed: %s", peer, e)
            return
        await self.network.on_status(peer, status)

    # -- timers ----------------------------------------------------------------------------

    async def _timer(self, timer: Timer, seconds: float) -> None:
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
        def build() -> tuple[bytes, bytes] | None:
            head = self.core.ledger.head
            if int(head.block_number) + 1 != height:
                return None
            timestamp = max(int(time.time()), int(head.timestamp) + 1)
            built = self.pipeline.propose(timestamp, self.address, self.sets.at(height).hash(),
                                          self.config.max_block_txs)
            return bytes(built.block.header.hash), bytes(rlp.encode(built.block))

        try:
            result = await self.worker.run(build, priority=Priority.PRODUCE)
        except Exception:
            log.exception("consensus: building block %d failed", height)
            return
        if result is not None and self.config.byzantine == "invalid-proposal":
            result = _tampered(result[1], state_root=keccak(b"invalid-proposal" + result[0]))
            log.warning("byzantine: proposing block %d round %d with a wrong state root", height, round_)
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
                return "conflict", None
            return done.outcome, self.sets.at(action.height + 1)

        try:
            outcome, next_set = await self.worker.run(commit, priority=Priority.PRODUCE)
        except Exception:
            log.exception("consensus: committing block %d failed", action.height)
            return
        if outcome == "conflict" or next_set is None:
            return
        if outcome == "committed":
            metrics.CONSENSUS_COMMITS.inc()
        log.info("consensus: block %d 0x%s final (round %d, %d signatures)", action.height,
                 action.block_hash.hex()[:16], action.commit.round, len(action.commit.signatures))
        if self._trace is not None:
            self._trace.write(f"commit {action.height} {action.block_hash.hex()}\n")
        if self.engine is not None:
            if next_set.hash() != self.engine.driver.validators.hash():
                log.info("consensus: the validator set changes at height %d: %d validators", action.height + 1,
                         len(next_set))
            self._feed(self.engine.on_committed, action.height, next_set)

    def _on_chain_event(self, event: ChainEvent) -> None:
        """Runs on the chain worker: a block became the head (block sync, gossip, consensus)."""
        if not isinstance(event, BlockCommitted):
            return
        token = self._token
        if token is None:
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

    def _double_sign(self, frame: bytes) -> bool:
        """Byzantine test mode: our vote to half the peers, a conflicting one to the others."""
        kind, body, _ = decode_frame(frame)
        if kind != FrameKind.VOTE:
            return False
        vote = Vote.decode(body)
        if vote.validator != self.address:
            return False
        evil = Vote(vote.type, vote.height, vote.round, os.urandom(32), self.address).signed(self.chain_id, self._key)
        evil_frame = encode_engine_frame(FrameKind.VOTE, evil.encode())
        peers = sorted(self._outboxes)
        for i, peer in enumerate(peers):
            self._send(peer, frame if i % 2 == 0 else evil_frame)
        return True

    def _equivocate(self, frame: bytes) -> bool:
        """Byzantine test mode: our proposal to half the peers, a second block (one second
        later, so another hash) signed for the same height and round to the others."""
        kind, body, block = decode_frame(frame)
        if kind != FrameKind.PROPOSAL:
            return False
        proposal = Proposal.decode(body)
        if proposal.proposer != self.address or proposal.pol_round != -1:
            return False
        other_hash, other_block = _tampered(block, timestamp_delta=1)
        other = Proposal(proposal.height, proposal.round, -1, other_hash, self.address).signed(self.chain_id,
                                                                                               self._key)
        other_frame = encode_engine_frame(FrameKind.PROPOSAL, other.encode(), other_block)
        self._trace_frame(other_frame)
        log.warning("byzantine: equivocating at height %d round %d: 0x%s and 0x%s", proposal.height,
                    proposal.round, proposal.block_hash.hex()[:16], other_hash.hex()[:16])
        for i, peer in enumerate(sorted(self._outboxes)):
            self._send(peer, frame if i % 2 == 0 else other_frame)
        return True

    # -- evidence and tracing --------------------------------------------------------------

    def _evidence(self, evidence: DuplicateVoteEvidence) -> None:
        log.warning("consensus: EvidenceFound: validator 0x%s signed two votes at height %d round %d type %d",
                    evidence.validator.hex(), evidence.height, evidence.vote_a.round, int(evidence.vote_a.type))
        if self._nursery is not None:
            self._nursery.start_soon(self._submit_evidence, evidence)

    async def _submit_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        """Pool the evidence once per offence and put a ``Staking.submitEvidence`` transaction
        signed by this validator in the transaction pool, which gossips it like any other: the
        next proposer includes it and the chain slashes (docs/consensus.md §7). Every honest
        validator that saw the double sign does so; the first transaction mined punishes, later
        ones revert ("already punished") at their sender's cost, one per validator at most."""
        core = self.core

        def submit() -> bytes | None:
            head = int(core.ledger.head.block_number)
            state = core.ledger.state_at(core.ledger.head)
            if ai_precompiles.get_stake(state, evidence.validator)["jailedUntil"]:
                return None  # punished already: the chain would refuse it
            params = ai_precompiles.get_params(state)
            self.evidence.unbonding_blocks = int(params["staking.unbonding_blocks"])
            powers = {v.address: v.power for v in self.sets.at(evidence.height).validators}
            if not self.evidence.add(evidence, powers, head):
                return None
            metrics.CONSENSUS_EVIDENCE.set(len(self.evidence))
            nonce = core.pool.next_nonce(self.address, core.account(self.address).nonce)
            gas_price = 2 * core.next_base_fee() + EVIDENCE_TIP
            raw = submit_evidence_transaction(evidence, self._key, nonce, gas_price, self.chain_id)
            return core.submit_raw(raw)

        # Found while its height is decided: the chain refuses it until that block is committed.
        for _ in range(EVIDENCE_WAIT_TRIES):
            if await self.worker.run(lambda: int(core.ledger.head.block_number)) >= evidence.height:
                break
            await trio.sleep(EVIDENCE_WAIT_SECONDS)
        else:
            log.warning("consensus: evidence against 0x%s dropped: height %d never committed here",
                        evidence.validator.hex(), evidence.height)
            return
        try:
            tx_hash = await self.worker.run(submit, priority=Priority.PRODUCE)
        except (Refused, InvalidEvidence) as e:
            log.warning("consensus: evidence against 0x%s not submitted: %s", evidence.validator.hex(), e)
            return
        if tx_hash is not None:
            log.warning("consensus: evidence against 0x%s at height %d submitted in transaction 0x%s",
                        evidence.validator.hex(), evidence.height, tx_hash.hex())

    def _trace_frame(self, frame: bytes) -> None:
        if self._trace is None:
            return
        try:
            kind, body, _ = decode_frame(frame)
            if kind == FrameKind.PROPOSAL:
                self._trace_proposal(Proposal.decode(body))
                return
            if kind != FrameKind.VOTE:
                return
            v = Vote.decode(body)
        except MessageError:
            return
        if not v.verify(self.chain_id):
            return
        key = (v.validator, v.height, v.round, int(v.type), v.block_hash)
        if key in self._traced:
            return
        if len(self._traced) > 200_000:
            self._traced.clear()
        self._traced.add(key)
        self._trace.write(f"vote {v.validator.hex()} {v.height} {v.round} {int(v.type)} {v.block_hash.hex()} "
                          f"{v.signature.hex()}\n")

    def _trace_proposal(self, p: Proposal) -> None:
        if self._trace is None or not p.verify(self.chain_id):
            return
        key = (p.proposer, p.height, p.round, -1, p.block_hash)
        if key in self._traced:
            return
        self._traced.add(key)
        self._trace.write(f"proposal {p.proposer.hex()} {p.height} {p.round} {p.block_hash.hex()}\n")


def _tampered(block: bytes, state_root: bytes | None = None, timestamp_delta: int = 0) -> tuple[bytes, bytes]:
    """Byzantine test modes: ``block`` with another state root or timestamp; (hash, bytes)."""
    decoded = rlp.decode(block, sedes=LedgerBlock)
    changes: dict[str, Any] = {}
    if state_root is not None:
        changes["state_root"] = state_root
    if timestamp_delta:
        changes["timestamp"] = decoded.header.timestamp + timestamp_delta
    header = decoded.header.copy(**changes)
    return bytes(header.hash), bytes(rlp.encode(decoded.copy(header=header)))

"""Test-only consensus behaviour, kept out of the production reactor: wrappers around its
:class:`node.bft.reactor.Transport` (cometbft keeps byzantine behaviour in test code; ours runs
in real node processes, so it ships in the package but is switched on only by an environment
variable that no production setup sets).

- :class:`FaultyTransport` (``--faults``, needs :data:`FAULTS_ENV`): re-reads
  ``datadir/consensus-faults.json`` and drops or delays frames to and from the peers it names;
- :class:`ByzantineTransport` (``--byzantine MODE``, needs :data:`BYZANTINE_ENV`): double-signs
  votes, sends garbage, proposes blocks with a wrong state root, or equivocates;
- :class:`VoteTrace` (:data:`TRACE_ENV`): appends every distinct vote and proposal sent or
  received, and every block that became the head, to ``datadir/consensus-votes.log`` (tests
  check that nobody signs two votes for one step and that every height has one block).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import rlp
import trio
from eth_utils import keccak

from consensus.engine import FrameKind, decode_message, encode_message
from consensus.messages import MessageError, Proposal, Vote
from node import metrics
from node.bft.reactor import ConsensusConfig, Transport
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent
from state.vm import LedgerBlock

log = logging.getLogger("ailedger.consensus")

#: Test-only byzantine behaviours: "double-sign" sends half the peers, for each of its votes, a
#: second vote for another block at the same height, round and step (evidence for the others);
#: "garbage" sends every peer three frames of random bytes beside each honest broadcast;
#: "invalid-proposal" sends its proposals with a wrong state root (their re-execution fails);
#: "equivocate" sends half the peers its proposal and the other half a second, different block
#: signed for the same height and round.
BYZANTINE_MODES = ("double-sign", "garbage", "invalid-proposal", "equivocate")
#: The env var that must be set for a node to accept ``--byzantine``.
BYZANTINE_ENV = "AILEDGER_ALLOW_BYZANTINE"
#: The env var that must be set for a node to accept ``--faults``.
FAULTS_ENV = "AILEDGER_ALLOW_FAULTS"
#: Env var: when set, every distinct vote sent or received is appended to
#: ``datadir/consensus-votes.log``.
TRACE_ENV = "AILEDGER_TRACE_VOTES"
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


class _Wrapper:
    """A transport around another: passes everything on unless it overrides it."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    @property
    def peers(self) -> list[str]:
        return self.inner.peers

    def send(self, peer: str, frame: bytes) -> None:
        self.inner.send(peer, frame)

    def broadcast(self, frame: bytes) -> None:
        for peer in self.peers:
            self.send(peer, frame)

    def accept(self, peer: str, frame: bytes) -> bool:
        return self.inner.accept(peer, frame)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.inner.run(task_status=task_status)


class FaultyTransport(_Wrapper):
    """Drops or delays frames to and from the peers the datadir's fault file names."""

    def __init__(self, inner: Transport, datadir: Path) -> None:
        super().__init__(inner)
        self.path = datadir / FAULTS_FILE
        self.faults = Faults()
        self._held = 0
        self._nursery: trio.Nursery | None = None

    def send(self, peer: str, frame: bytes) -> None:
        if peer in self.faults.drop:
            metrics.CONSENSUS_DROPPED.inc()
            return
        delay = self.faults.delay_of(peer)
        if delay > 0 and self._nursery is not None:
            if self._held >= FAULTS_MAX_HELD:
                metrics.CONSENSUS_DROPPED.inc()
                return
            self._held += 1
            self._nursery.start_soon(self._send_later, peer, frame, delay)
            return
        self.inner.send(peer, frame)

    def accept(self, peer: str, frame: bytes) -> bool:
        if peer in self.faults.drop:
            metrics.CONSENSUS_DROPPED.inc()
            return False
        return self.inner.accept(peer, frame)

    async def _send_later(self, peer: str, frame: bytes, delay: float) -> None:
        try:
            await trio.sleep(delay)
        finally:
            self._held -= 1
        self.inner.send(peer, frame)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.inner.run)
            nursery.start_soon(self._watch)
            task_status.started()

    async def _watch(self) -> None:
        """Follow the fault file; a bad one keeps the faults before it."""
        while True:
            try:
                with open(self.path, "rb") as f:
                    raw = f.read(FAULTS_MAX_BYTES + 1)
                if len(raw) > FAULTS_MAX_BYTES:
                    raise ValueError(f"above {FAULTS_MAX_BYTES} bytes")
                faults = Faults.parse(raw)
            except FileNotFoundError:
                faults = Faults()
            except (OSError, ValueError) as e:
                log.warning("consensus: fault file %s ignored: %s", self.path, e)
                faults = self.faults
            if faults != self.faults:
                log.warning("consensus: faults now drop %s, delay %s", sorted(faults.drop) or "nothing",
                            dict(faults.delay) or "nothing")
                self.faults = faults
            await trio.sleep(FAULTS_POLL)


class ByzantineTransport(_Wrapper):
    """Misbehaves on what this validator broadcasts, as :data:`BYZANTINE_MODES` describes."""

    def __init__(self, inner: Transport, mode: str, key: bytes, chain_id: int, address: bytes) -> None:
        if mode not in BYZANTINE_MODES:
            raise ValueError(f"unknown byzantine mode {mode!r}")
        super().__init__(inner)
        self.mode, self._key, self.chain_id, self.address = mode, key, chain_id, address

    def broadcast(self, frame: bytes) -> None:
        if self.mode == "double-sign" and self._double_sign(frame):
            return
        if self.mode == "equivocate" and self._equivocate(frame):
            return
        if self.mode == "invalid-proposal":
            frame = self._invalid_proposal(frame) or frame
        peers = self.peers
        if self.mode == "garbage":
            for peer in peers:
                for _ in range(3):
                    self.send(peer, os.urandom(1 + os.urandom(1)[0]))
        for peer in peers:
            self.send(peer, frame)

    def _our_fresh_proposal(self, frame: bytes) -> tuple[Proposal, bytes] | None:
        kind, body, block = decode_message(frame)
        if kind != FrameKind.PROPOSAL:
            return None
        proposal = Proposal.decode(body)
        if proposal.proposer != self.address or proposal.pol_round != -1:
            return None
        return proposal, block

    def _resigned(self, proposal: Proposal, block: bytes, **changes: Any) -> tuple[bytes, bytes]:
        """``block`` with header ``changes``, and a proposal for it signed with the raw key."""
        decoded = rlp.decode(block, sedes=LedgerBlock)
        header = decoded.header.copy(**changes)
        other_block = bytes(rlp.encode(decoded.copy(header=header)))
        other = Proposal(proposal.height, proposal.round, -1, bytes(header.hash), self.address).signed(
            self.chain_id, self._key)
        return bytes(header.hash), encode_message(FrameKind.PROPOSAL, other.encode(), other_block)

    def _invalid_proposal(self, frame: bytes) -> bytes | None:
        ours = self._our_fresh_proposal(frame)
        if ours is None:
            return None
        proposal, block = ours
        _, tampered = self._resigned(proposal, block, state_root=keccak(b"invalid-proposal" + proposal.block_hash))
        log.warning("byzantine: proposing block %d round %d with a wrong state root", proposal.height,
                    proposal.round)
        return tampered

    def _double_sign(self, frame: bytes) -> bool:
        """Our vote to half the peers, a conflicting one to the others."""
        kind, body, _ = decode_message(frame)
        if kind != FrameKind.VOTE:
            return False
        vote = Vote.decode(body)
        if vote.validator != self.address:
            return False
        evil = Vote(vote.type, vote.height, vote.round, os.urandom(32), self.address).signed(self.chain_id, self._key)
        evil_frame = encode_message(FrameKind.VOTE, evil.encode())
        for i, peer in enumerate(self.peers):
            self.send(peer, frame if i % 2 == 0 else evil_frame)
        return True

    def _equivocate(self, frame: bytes) -> bool:
        """Our proposal to half the peers, a second block (one second later, so another hash)
        signed for the same height and round to the others."""
        ours = self._our_fresh_proposal(frame)
        if ours is None:
            return False
        proposal, block = ours
        timestamp = rlp.decode(block, sedes=LedgerBlock).header.timestamp + 1
        other_hash, other_frame = self._resigned(proposal, block, timestamp=timestamp)
        log.warning("byzantine: equivocating at height %d round %d: 0x%s and 0x%s", proposal.height,
                    proposal.round, proposal.block_hash.hex()[:16], other_hash.hex()[:16])
        for i, peer in enumerate(self.peers):
            self.send(peer, frame if i % 2 == 0 else other_frame)
        return True


class VoteTrace(_Wrapper):
    """Writes every distinct vote and proposal that goes on or comes off the wire, and every
    block that becomes the head, to a log the tests read."""

    def __init__(self, inner: Transport, path: Path, chain_id: int) -> None:
        super().__init__(inner)
        self.chain_id = chain_id
        self._file: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - closed in run()
        self._seen: set[tuple[bytes, int, int, int, bytes]] = set()

    def send(self, peer: str, frame: bytes) -> None:
        self._record(frame)
        self.inner.send(peer, frame)

    def accept(self, peer: str, frame: bytes) -> bool:
        if not self.inner.accept(peer, frame):
            return False
        self._record(frame)
        return True

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.inner.run(task_status=task_status)
        finally:
            self._file.close()

    def on_chain_event(self, event: ChainEvent) -> None:
        if isinstance(event, BlockCommitted) and not self._file.closed:
            header = event.block.header
            self._file.write(f"commit {header.block_number} {header.hash.hex()}\n")

    def _record(self, frame: bytes) -> None:
        try:
            kind, body, _ = decode_message(frame)
            if kind == FrameKind.PROPOSAL:
                p = Proposal.decode(body)
                if p.verify(self.chain_id):
                    self._once((p.proposer, p.height, p.round, -1, p.block_hash),
                               f"proposal {p.proposer.hex()} {p.height} {p.round} {p.block_hash.hex()}")
                return
            if kind != FrameKind.VOTE:
                return
            v = Vote.decode(body)
        except MessageError:
            return
        if v.verify(self.chain_id):
            self._once((v.validator, v.height, v.round, int(v.type), v.block_hash),
                       f"vote {v.validator.hex()} {v.height} {v.round} {int(v.type)} {v.block_hash.hex()} "
                       f"{v.signature.hex()}")

    def _once(self, key: tuple[bytes, int, int, int, bytes], line: str) -> None:
        if key in self._seen:
            return
        if len(self._seen) > 200_000:
            self._seen.clear()
        self._seen.add(key)
        self._file.write(line + "\n")


def testing_transport(core: ChainCore, config: ConsensusConfig, key: bytes, address: bytes,
                   datadir: Path) -> Callable[[Transport], Transport] | None:
    """The test-only wrappers this node was started with (``--faults``, ``--byzantine``,
    :data:`TRACE_ENV`): the trace records everything this validator sends (a byzantine one's
    misbehaviour included) before the faults drop or delay it, and what it receives after
    them; None when none applies, which is every production node."""
    chain_id = core.ledger.chain_id
    trace = bool(os.environ.get(TRACE_ENV))
    if not (config.faults or config.byzantine or trace):
        return None

    def wrap(transport: Transport) -> Transport:
        if config.faults:
            transport = FaultyTransport(transport, datadir)
        if trace:
            tracer = VoteTrace(transport, datadir / "consensus-votes.log", chain_id)
            core.events.subscribe(tracer.on_chain_event)
            transport = tracer
        if config.byzantine is not None:
            transport = ByzantineTransport(transport, config.byzantine, key, chain_id, address)
        return transport

    return wrap

"""The one way in for blocks: every block that becomes the head goes through
:class:`BlockPipeline`, the only caller of the ledger's build and import.

- :meth:`BlockPipeline.produce` builds a block from the pool and commits it at once (a
  chain with one validator: automine, interval mining, dev mining);
- :meth:`BlockPipeline.propose` builds one without committing it (a BFT proposal);
- :meth:`BlockPipeline.check` re-executes a proposal on the head without committing it, after
  the BFT header rule (:func:`bft_header_fault`);
- :meth:`BlockPipeline.commit` commits a decided block with its commit, without executing it a
  second time when it was built or checked here;
- :meth:`BlockPipeline.import_verified` is block sync's step: it checks a peer's block and
  commit (signatures of the height's validator set, the header rule) and commits both.

Each commit updates the pool, the metrics and the head view once, and publishes one
:class:`node.chain.events.BlockCommitted`. Runs on the chain worker thread, like the ledger.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI

from ai_precompiles.upgrades import UpgradeRequired
from consensus import Commit
from consensus.commit import InvalidCommit
from consensus.validator_set import ValidatorSet
from node import metrics
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, Origin
from node.errors import Refused
from state import BlockImportError, BuiltBlock
from state.vm import LedgerBlock

log = logging.getLogger("ailedger")

#: A BFT proposal's timestamp may lead this node's clock by at most this much (seconds): its
#: proposer leads its own clock by at most a second (node.bft.reactor.MAX_PROPOSAL_LEAD), the rest
#: is room for clocks that differ.
MAX_FUTURE_SECONDS = 5


class InvalidBlock(ValueError):
    """A block or its commit does not verify; nothing was written."""


@dataclass(frozen=True)
class Committed:
    """What :meth:`BlockPipeline.commit` did with a decided block."""

    outcome: str
    """``committed``; ``held`` (already the chain's block at that height); ``conflict`` (the
    chain holds another block at that height: a safety failure, logged critical)."""


def decode_block(raw: bytes) -> BlockAPI:
    try:
        block: BlockAPI = rlp.decode(raw, sedes=LedgerBlock)
    except Exception as e:
        raise InvalidBlock(f"undecodable block: {type(e).__name__}: {e}") from None
    return block


def bft_header_fault(header: BlockHeaderAPI, validators: ValidatorSet, now: float | None = None) -> str | None:
    """The BFT chain's header rule (docs/consensus.md §5): a block names the validator set of its
    height in ``extra_data``; a proposal (``now`` given) may not lead the clock by more than
    :data:`MAX_FUTURE_SECONDS`. A committed block is judged by its commit, not by our clock, so
    block sync passes no ``now``. Returns the fault, or None."""
    if header.extra_data != validators.hash():
        return f"block {header.block_number} names another validator set than its height's"
    if now is not None and header.timestamp > now + MAX_FUTURE_SECONDS:
        return f"block {header.block_number}'s timestamp {header.timestamp} is ahead of the clock"
    return None


class BlockPipeline:
    """Proposes, checks and commits blocks for one node."""

    def __init__(self, core: ChainCore) -> None:
        self.core = core
        self.ledger = core.ledger

    @contextlib.contextmanager
    def _upgrade_gate(self) -> Iterator[None]:
        """A block the ledger refused for an upgrade this node lacks stops the node
        (``ChainCore.halt``); the caller still sees the error."""
        try:
            yield
        except UpgradeRequired as e:
            self.core.halt(e)
            raise

    # -- building ---------------------------------------------------------------------

    def _candidates(self) -> list[SignedTransactionAPI]:
        """Every executable transaction, best first: the builder counts the gas each really
        uses and goes on past one that does not fit, so transactions that declare the whole
        block do not keep the others out."""
        head = self.ledger.head
        return self.core.pool.select(head.gas_limit, self.core.next_base_fee(), budget=False)

    def _drop_rejected(self, built: BuiltBlock) -> None:
        """A transaction the builder left out (invalid at its turn, or its execution failed
        inside the node) leaves the pool with a log line: one bad transaction cannot stop
        block production."""
        for tx, reason in built.rejected:
            log.warning("dropped transaction 0x%s from the pool: %s", tx.hash.hex(), reason)
        self.core.pool.remove({tx.hash for tx, _ in built.rejected})

    def produce(self, timestamp: int, coinbase: bytes,
                seal: Callable[[int, bytes], bytes] | None = None) -> BuiltBlock:
        """Build a block from the pool on the head and commit it, sealed by ``seal`` (the
        single validator's commit) in the same atomic write."""
        head = self.ledger.head
        if timestamp <= head.timestamp:
            raise Refused(
                f"timestamp error: {timestamp} is lower than or equal to previous block's timestamp {head.timestamp}"
            )
        started = time.perf_counter()
        with self._upgrade_gate():
            built = self.ledger.build_block(self._candidates(), timestamp, coinbase, seal)
        self._drop_rejected(built)
        self._committed(built.block, Origin.LOCAL, started, built.receipts)
        return built

    def propose(self, timestamp: int, coinbase: bytes, extra_data: bytes,
                max_txs: int | None = None, deadline: float | None = None) -> BuiltBlock:
        """Build a block from the pool on the head without committing it (a BFT proposal);
        its execution is kept, so :meth:`commit` writes it without running it again."""
        with self._upgrade_gate():
            built = self.ledger.build_block(self._candidates(), timestamp, coinbase, persist=False,
                                            extra_data=extra_data, max_txs=max_txs, deadline=deadline)
        self._drop_rejected(built)
        return built

    # -- checking and committing ------------------------------------------------------

    def check(self, block: BlockAPI, height: int, validators: ValidatorSet, now: float) -> str | None:
        """Whether a BFT proposal for ``height`` may be voted for: the next block on the head,
        under the header rule, re-executing to its own roots (nothing written). Returns the
        fault, or None when valid."""
        header = block.header
        head = self.ledger.head
        if header.block_number != height or header.parent_hash != head.hash:
            return f"block {header.block_number} does not extend the head {head.block_number}"
        fault = bft_header_fault(header, validators, now)
        if fault is not None:
            return fault
        try:
            with self._upgrade_gate():
                self.ledger.import_block(block, persist=False)
        except BlockImportError as e:
            return str(e)
        return None

    def commit(self, block: BlockAPI, commit: bytes, origin: Origin = Origin.CONSENSUS) -> Committed:
        """Make a decided ``block`` the head with its ``commit`` in one atomic write (no second
        execution when it was built or checked here)."""
        header = block.header
        head = self.ledger.head
        if head.block_number >= header.block_number:
            held = self.ledger.header_by_number(header.block_number)
            if held is None or held.hash != header.hash:
                log.critical("consensus: decided block %d 0x%s but the chain holds 0x%s", header.block_number,
                             header.hash.hex(), held.hash.hex() if held else "none")
                return Committed("conflict")
            return Committed("held")
        started = time.perf_counter()
        with self._upgrade_gate():
            self.ledger.import_block(block, commit=commit)
        self._committed(block, origin, started)
        return Committed("committed")

    def import_verified(self, raw_block: bytes, raw_commit: bytes, expected: int | None = None,
                        powers: dict[bytes, int] | None = None) -> BlockAPI:
        """Verify a peer's block and commit and make it the head (block sync, block gossip).
        The commit is checked against the validator set of the block's own height (the BFT
        chain's sets), or against ``powers`` (a chain of one genesis validator). Raises
        :class:`InvalidBlock` on any fault, including a block other than number ``expected``
        when one was asked for; nothing is written then."""
        block = decode_block(raw_block)
        header = block.header
        if expected is not None and header.block_number != expected:
            raise InvalidBlock(f"served block {header.block_number} where block {expected} was asked for")
        try:
            commit = Commit.decode(raw_commit)
        except Exception as e:
            raise InvalidBlock(f"undecodable commit of block {header.block_number}: {e}") from None
        if commit.height != header.block_number or commit.block_hash != header.hash:
            raise InvalidBlock(f"the commit of block {header.block_number} is for another block")
        held = self.ledger.header_by_number(header.block_number)
        if held is not None and held.hash == header.hash:
            return block  # already committed here (by consensus, between our head check and now)
        sets = self.core.validator_sets
        if sets is not None:
            # A BFT chain: the commit is checked against the set of its own height, which the
            # header names (docs/consensus.md §5), whatever epoch changes came before.
            if header.block_number != self.ledger.head.block_number + 1:
                raise InvalidBlock(f"block {header.block_number} is not the next block")
            validators = sets.at(header.block_number)
            fault = bft_header_fault(header, validators)
            if fault is not None:
                raise InvalidBlock(fault)
            powers = validators.powers
        elif powers is None:
            powers = genesis_powers(self.core)
        try:
            commit.check(powers, chain_id=self.ledger.chain_id, height=header.block_number, block_hash=header.hash)
        except InvalidCommit as e:
            raise InvalidBlock(
                f"the commit of block {header.block_number} is refused: {e} "
                "(it needs distinct signers with more than 2/3 of the validators' power)"
            ) from None
        started = time.perf_counter()
        try:
            with self._upgrade_gate():
                self.ledger.import_block(block, commit=raw_commit)
        except UpgradeRequired:
            raise  # not the peer's fault: this node lacks the upgrade
        except Exception as e:
            raise InvalidBlock(f"block {header.block_number} does not verify: {e}") from None
        self._committed(block, Origin.SYNC, started)
        return block

    def verify_pivot(self, raw_block: bytes, raw_commit: bytes) -> BlockAPI:
        """The block state sync starts from, with its commit checked against the validator set
        that signs it (:class:`InvalidBlock` otherwise): the genesis validators of a chain of
        one. A BFT chain's set of a height is derived from every height before it (proposer
        priority, epochs), which a node without that history cannot do: it replays blocks."""
        if self.core.validator_sets is not None:
            raise InvalidBlock("state sync needs a single-validator chain: a BFT chain's sets come from its history")
        block = decode_block(raw_block)
        header = block.header
        try:
            commit = Commit.decode(raw_commit)
        except Exception as e:
            raise InvalidBlock(f"undecodable commit of block {header.block_number}: {e}") from None
        if commit.height != header.block_number or commit.block_hash != header.hash:
            raise InvalidBlock(f"the commit of block {header.block_number} is for another block")
        try:
            commit.check(genesis_powers(self.core), chain_id=self.ledger.chain_id, height=header.block_number,
                         block_hash=header.hash)
        except InvalidCommit as e:
            raise InvalidBlock(f"the commit of block {header.block_number} is refused: {e}") from None
        return block

    def adopt_state(self, block: BlockAPI, commit: bytes, ancestors: list[BlockAPI],
                    forget: tuple[bytes, ...] = ()) -> None:
        """Make a verified pivot block (:meth:`verify_pivot`) whose state is in the store the head
        (``Ledger.adopt_state``), and bring the pool and the events up to it."""
        started = time.perf_counter()
        try:
            self.ledger.adopt_state(block, commit, ancestors, forget)
        except BlockImportError as e:
            raise InvalidBlock(str(e)) from None
        self.core.head_changed()
        self._committed(block, Origin.SYNC, started)

    def _committed(self, block: BlockAPI, origin: Origin, started: float,
                   receipts: tuple[object, ...] | None = None) -> None:
        """The one bookkeeping step after a block became the head."""
        metrics.BLOCK_SECONDS.observe(time.perf_counter() - started)
        metrics.BLOCK_TXS.observe(len(block.transactions))
        self.core.block_committed(block)
        self.core.events.publish(BlockCommitted(block, origin, receipts))  # type: ignore[arg-type]


def genesis_powers(core: ChainCore) -> dict[bytes, int]:
    """The set that signs a single-validator chain's commits: its genesis validators."""
    return {bytes(v.address): int(v.power) for v in core.ledger.genesis.validators}

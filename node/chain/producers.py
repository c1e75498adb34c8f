"""Block producers of a chain with one validator: automine (a block as soon as a transaction is
executable), interval mining (``--block-time``) and dev mining (``evm_mine``) all build through
one :class:`SoloProducer`, which seals each block with the single validator's commit. A BFT
validator's blocks come from consensus instead (``node/bft/reactor.py``), and a follower
builds none.

Automine groups arrivals, as anvil's does: admitting an executable transaction asks for a block
(:meth:`SoloProducer.request_block`), which is built by one job queued on the chain worker behind
the jobs already waiting there. Every transaction admitted before that job runs (the rest of a
JSON-RPC batch, other clients' submissions that queued while the previous block was being
built) goes into the same block, so py-evm's cost per block is paid once per group instead of
once per transaction. A sender waits for its block before its ``eth_sendRawTransaction``
answers (``ChainCore.settle``), so a lone sender still has its receipt when it is told the hash.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable

import trio

from consensus import SingleValidator
from node.chain.core import ChainCore
from node.chain.pipeline import BlockPipeline
from node.worker import ChainWorker, Priority
from state import BuiltBlock

log = logging.getLogger("ailedger")

#: Transactions whose execution faulted in an automine block, remembered (by hash, with the
#: reason) so that their senders' waiting calls can report it; the oldest are forgotten first.
MAX_FAULTED = 1024


class SoloProducer:
    """Builds and commits the blocks of a chain with one validator (or none, sealed by nobody)."""

    def __init__(self, pipeline: BlockPipeline, validator: SingleValidator | None = None,
                 automine: bool = True) -> None:
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.validator = validator
        self.automine = automine
        """Build a block as soon as a transaction is executable (anvil's automine)."""
        #: Queues a job on the chain worker (``attach``); without one, a requested block is
        #: built at once (a core driven directly, in tests and tools).
        self._post: Callable[[Callable[[], None]], None] | None = None
        #: The queued job of the requested block, until it runs or another block is built.
        self._request: object | None = None
        #: hash -> reason, for the transactions an automine block dropped as faulted.
        self._faulted: collections.OrderedDict[bytes, str] = collections.OrderedDict()

    def attach(self, worker: ChainWorker) -> None:
        """Build requested blocks as jobs on ``worker`` (the chain worker this producer runs on)."""
        self._post = worker.post

    @property
    def requested(self) -> bool:
        """A block was requested and has not been built yet."""
        return self._request is not None

    def request_block(self) -> None:
        """Ask for a block of everything executable, built after the jobs already queued (so
        that the transactions they admit join it). At most one such job waits at a time."""
        if self._request is not None:
            return
        token = self._request = object()
        if self._post is None:
            self._build_requested(token)
        else:
            self._post(lambda: self._build_requested(token))

    def _build_requested(self, token: object) -> None:
        """The requested block (on the chain worker). Nothing when a block was built since the
        request (it took the same transactions) or automine was turned off. A block that leaves
        executable transactions behind (it was full) asks for the next one; a failure is logged,
        and the senders still waiting retry it themselves (``ChainCore.settle``) and see it."""
        if self._request is not token:
            return
        self._request = None
        if not self.automine:
            return
        try:
            built = self.mine()
        except Exception:
            log.exception("automine: block production failed")
            return
        if built.block.transactions and self.core.pool.pending_count:
            self.request_block()

    def faulted(self, tx_hash: bytes) -> str | None:
        """Why an automine block dropped ``tx_hash`` as faulted, if it did."""
        return self._faulted.get(tx_hash)

    def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """Build one block from the pool (the whole pool that fits) and commit it."""
        self._request = None  # this block takes whatever the requested one would have
        clock = self.core.clock
        ts = timestamp if timestamp is not None else clock.block_timestamp(int(self.core.ledger.head.timestamp))
        self.core.blobs.expire()  # each block is a tick of the idle-upload timer
        validator = self.validator
        seal = None if validator is None else (
            lambda height, block_hash: validator.commit(height, block_hash).encode())
        built = self.pipeline.produce(ts, self.core.coinbase, seal)
        clock.min_next_timestamp = None
        for tx_hash in built.faulted:
            self._faulted[tx_hash] = next(r for t, r in built.rejected if t.hash == tx_hash)
            while len(self._faulted) > MAX_FAULTED:
                self._faulted.popitem(last=False)
        return built


async def mine_every(producer: SoloProducer, worker: ChainWorker, block_time: float) -> None:
    """Build a block every ``block_time`` seconds. A transaction that breaks block building is
    dropped by the builder itself; a failure with no transaction to blame (nothing left to
    drop) is logged in full once, then counted, so that a stuck validator is loud but a
    retry every interval does not flood the log."""
    next_at = trio.current_time() + block_time
    failures = 0
    while True:
        await trio.sleep_until(next_at)
        next_at = max(next_at + block_time, trio.current_time())
        try:
            await worker.run(producer.mine, priority=Priority.PRODUCE)
        except Exception as e:
            failures += 1
            if failures == 1:
                log.exception("block production failed; retrying each interval")
            elif failures % 10 == 0:
                log.error("block production failed %d times in a row: %s: %s", failures, type(e).__name__, e)
        else:
            if failures:
                log.warning("block production recovered after %d failures", failures)
            failures = 0

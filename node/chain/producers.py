"""Block producers of a chain with one validator: automine (a block as soon as a transaction is
executable), interval mining (``--block-time``) and dev mining (``evm_mine``) all build through
one :class:`SoloProducer`, which seals each block with the single validator's commit. A BFT
validator's blocks come from consensus instead (``node/bft/reactor.py``), and a follower
builds none.
"""

from __future__ import annotations

import logging

import trio

from consensus import SingleValidator
from node.chain.core import ChainCore
from node.chain.pipeline import BlockPipeline
from node.worker import ChainWorker, Priority
from state import BuiltBlock

log = logging.getLogger("ailedger")


class SoloProducer:
    """Builds and commits the blocks of a chain with one validator (or none, sealed by nobody)."""

    def __init__(self, pipeline: BlockPipeline, validator: SingleValidator | None = None,
                 automine: bool = True) -> None:
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.validator = validator
        self.automine = automine
        """Build a block as soon as a transaction is executable (anvil's automine)."""

    def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """Build one block from the pool (the whole pool that fits) and commit it."""
        clock = self.core.clock
        ts = timestamp if timestamp is not None else clock.block_timestamp(int(self.core.ledger.head.timestamp))
        self.core.blobs.expire()  # each block is a tick of the idle-upload timer
        validator = self.validator
        seal = None if validator is None else (
            lambda height, block_hash: validator.commit(height, block_hash).encode())
        built = self.pipeline.produce(ts, self.core.coinbase, seal)
        clock.min_next_timestamp = None
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

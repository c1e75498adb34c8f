"""Block sync: bring this node's chain up to its peers' and keep it there.

A node never trusts a peer's state. Every block that arrives (by range while catching up, or
by gossip at the head) goes through the block pipeline's import step
(:meth:`node.chain.pipeline.BlockPipeline.import_verified`): full re-execution (state root,
receipts root, every header rule), accepted only with a commit signed by more than 2/3 of its
height's validator set, written with that commit in one atomic batch, so a node killed at any
instant restarts on its last committed block and goes on from there.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio
from eth.abc import BlockAPI

from node.chain.core import ChainCore
from node.chain.pipeline import BlockPipeline, InvalidBlock
from node.chain.reader import NetworkStatus
from node.worker import ChainWorker
from p2p.host import P2PHost, PeerError, Verdict
from p2p.wire import MAX_BLOCKS_PER_REQUEST, BlockWithCommit

log = logging.getLogger("ailedger.sync")

#: Seconds a peer that failed a request (timeout, empty range it claimed to hold) is
#: skipped by the syncer; invalid data bans it in the host instead.
AVOID_SECONDS = 30.0


@dataclass
class PeerView:
    head: int = 0
    """Highest block number the peer has shown us."""
    avoid_until: float = 0.0


@dataclass
class Progress:
    """Catch-up progress, as eth_syncing reports it."""

    starting: int
    current: int
    highest: int
    started_at: float = field(default_factory=time.monotonic)


class BlockSync:
    """Follows the peers' heads: range sync while behind, gossiped blocks at the head."""

    def __init__(self, host: P2PHost, pipeline: BlockPipeline, worker: ChainWorker,
                 status: NetworkStatus, progress_bar: bool = False) -> None:
        """``status.syncing`` shows the progress (eth_syncing)."""
        self.host = host
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.worker = worker
        self.status = status
        self.peers: dict[str, PeerView] = {}
        self.progress_bar = progress_bar
        self.progress: Progress | None = None
        self._wake = trio.Event()
        self._import_lock = trio.Lock()
        self.blocks_imported = 0

    def saw_head(self, peer: str, head: int, claimed: bool = True) -> None:
        """``peer`` has shown head ``head`` (its status, or a block it gossiped)."""
        view = self.peers.setdefault(peer, PeerView())
        view.head = head if claimed else max(view.head, head)
        self._wake.set()

    async def import_gossiped(self, peer: str, item: BlockWithCommit, number: int) -> Verdict:
        """A block a peer gossiped at the head: imported when it is the next one; a gap wakes
        the range sync instead."""
        async with self._import_lock:
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            if number <= head:
                return Verdict.IGNORE
            if number > head + 1 or self.progress is not None:
                self._wake.set()  # a gap: the range sync fetches what is missing
                return Verdict.IGNORE
            try:
                await self.worker.run(self.pipeline.import_verified, item.block, item.commit)
            except InvalidBlock as e:
                log.warning("gossiped block %d from %s refused: %s", number, peer, e)
                return Verdict.REJECT
            self.blocks_imported += 1
        return Verdict.ACCEPT

    async def run(self) -> None:
        """Catch up whenever a peer shows a higher head; runs until cancelled."""
        while True:
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            choice = self._best_peer(head)
            if choice is None:
                self._end_progress()
                self._wake = trio.Event()
                with trio.move_on_after(1.0):
                    await self._wake.wait()
                continue
            peer, target = choice
            await self._sync_from(peer, head, target)

    def _best_peer(self, above: int) -> tuple[str, int] | None:
        now = time.monotonic()
        candidates = [
            (peer, view.head) for peer, view in self.peers.items()
            if view.head > above and view.avoid_until <= now and peer in self.host.peers
            and not self.host.is_banned(peer)
        ]
        if not candidates:
            return None
        best = max(head for _, head in candidates)
        return random.choice([c for c in candidates if c[1] == best])

    async def _sync_from(self, peer: str, head: int, target: int) -> None:
        if self.progress is None:
            self.progress = Progress(head, head, target)
            log.info("syncing blocks %d..%d from %s", head + 1, target, peer)
            self._open_bar()
        self.progress.highest = max(self.progress.highest, target)
        self._publish_progress()
        send, receive = trio.open_memory_channel[list[BlockWithCommit]](2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fetch_range, peer, head + 1, target, send)
            async with receive:
                async for batch in receive:
                    if not await self._import_batch(peer, batch):
                        nursery.cancel_scope.cancel()
                        return

    async def _fetch_range(self, peer: str, start: int, target: int, send: trio.MemorySendChannel[list[BlockWithCommit]]) -> None:
        async with send:
            while start <= target:
                count = min(MAX_BLOCKS_PER_REQUEST, target - start + 1)
                try:
                    batch = await self.host.request_blocks(peer, start, count)
                except PeerError as e:
                    log.info("blocks %d.. from %s failed: %s", start, peer, e)
                    self._avoid(peer)
                    return
                if not batch:
                    log.info("peer %s claimed head %d but served no block %d", peer, target, start)
                    self._avoid(peer)
                    return
                await send.send(batch)
                start += len(batch)

    async def _import_batch(self, peer: str, batch: list[BlockWithCommit]) -> bool:
        imported: list[BlockAPI] = []
        async with self._import_lock:
            for item in batch:
                expected = (self.progress.current + 1) if self.progress is not None else None
                try:
                    block = await self.worker.run(self.pipeline.import_verified, item.block, item.commit, expected)
                except InvalidBlock as e:
                    await self.host.ban(peer, str(e))
                    return False
                imported.append(block)
                self.blocks_imported += 1
                if self.progress is not None:
                    self.progress.current = int(block.header.block_number)
                    self._tick_bar(1)
            self._publish_progress()
        return True

    def _avoid(self, peer: str) -> None:
        view = self.peers.setdefault(peer, PeerView())
        view.avoid_until = time.monotonic() + AVOID_SECONDS

    def _publish_progress(self) -> None:
        p = self.progress
        if p is not None:
            self.status.syncing = {"startingBlock": p.starting, "currentBlock": p.current, "highestBlock": p.highest}

    def _end_progress(self) -> None:
        if self.progress is not None:
            p = self.progress
            elapsed = time.monotonic() - p.started_at
            n = p.current - p.starting
            log.info("synced to block %d: %d blocks in %.1fs (%.1f blocks/s)", p.current, n, elapsed, n / max(elapsed, 1e-9))
            self._close_bar()
        self.progress = None
        self.status.syncing = None

    _bar: Any = None

    def _open_bar(self) -> None:
        if not self.progress_bar or self.progress is None:
            return
        from tqdm import tqdm

        p = self.progress
        self._bar = tqdm(total=p.highest - p.starting, unit="blk", desc="sync", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)

    def _tick_bar(self, n: int) -> None:
        if self._bar is not None and self.progress is not None:
            self._bar.total = self.progress.highest - self.progress.starting
            self._bar.update(n)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

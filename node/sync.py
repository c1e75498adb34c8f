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

#: Seconds a blocks-by-range request may go unanswered before the same range is asked of the next
#: peer as well (the first full answer that verifies wins; the others are cancelled).
HEDGE_SECONDS = 3.0
#: Peers asked at once for one range, at most.
MAX_HEDGE = 3
#: Seconds after which an unanswered request is judged: a peer that still answers its status
#: quickly, claiming the range, withholds the blocks it claims and is banned; one that does not
#: answer its status either is stopped or overloaded, and only avoided for a while.
STALL_SECONDS = 10.0
PROBE_SECONDS = 5.0
#: Seconds a peer whose request failed is not asked again; doubles per failure in a row.
AVOID_SECONDS, MAX_AVOID_SECONDS = 5.0, 120.0
#: Peers whose views are kept before those no longer connected are forgotten.
MAX_VIEWS = 1024
#: At the head the next block comes by gossip: a peer one block ahead is asked for it only after
#: this many seconds; and eth_syncing reports a sync only from this many blocks behind.
GOSSIP_GRACE = 1.0
BEHIND_TO_SYNC = 2


@dataclass
class PeerView:
    """What a peer claimed, and what it proved."""

    claimed: int = 0
    """The head its status (or a gossiped block) claims: a claim, not a fact."""
    proven: int = 0
    """The highest block it delivered that verified (by range or by gossip)."""
    delivered: int = 0
    """Blocks it delivered that verified, in this session."""
    failures: int = 0
    """Requests in a row that failed."""
    avoid_until: float = 0.0


@dataclass
class Progress:
    """Catch-up progress, as eth_syncing reports it (the current block is the live head)."""

    starting: int
    highest: int
    started_at: float = field(default_factory=time.monotonic)


class BlockSync:
    """Follows the peers' heads: ranges while behind, gossiped blocks at the head and meanwhile.

    Sync trusts progress, not claims. A claim only says a peer may be worth asking: peers that
    delivered verified blocks are asked first, the others in random order (a claim of 10^12 buys
    nothing). A request unanswered after :data:`HEDGE_SECONDS` is asked of the next peer too. A
    peer that answers a range it claims with nothing, or withholds it while answering its status,
    is banned. Gossiped blocks are imported during a range sync as well, so a follower at the head
    never waits on a peer that lies about being ahead. ``eth_syncing`` reports the heads of peers
    that proved themselves, never a bare claim.
    """

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
        self._asking: int | None = None
        """The last block of the range in flight, while no peer has proved itself (fresh start)."""
        self._nursery: trio.Nursery | None = None
        self.blocks_imported = 0

    # -- what peers show ----------------------------------------------------------------------

    def saw_head(self, peer: str, head: int, claimed: bool = True) -> None:
        """``peer`` has shown head ``head`` (its status, or a block it gossiped)."""
        view = self.peers.setdefault(peer, PeerView())
        view.claimed = head if claimed else max(view.claimed, head)
        self._wake.set()

    def _proved(self, peer: str, number: int) -> None:
        view = self.peers.setdefault(peer, PeerView())
        view.proven = max(view.proven, number)
        view.claimed = max(view.claimed, number)
        view.delivered += 1
        view.failures = 0

    def _failed(self, peer: str, why: str) -> None:
        view = self.peers.setdefault(peer, PeerView())
        view.failures += 1
        wait = min(AVOID_SECONDS * 2 ** (view.failures - 1), MAX_AVOID_SECONDS)
        view.avoid_until = time.monotonic() + wait
        log.info("sync: %s failed (%s); not asked for %.0fs", peer, why, wait)

    def trusted_head(self) -> int:
        """The highest head a connected peer that delivered verified blocks shows (0 if none)."""
        return max((max(v.claimed, v.proven) for p, v in self.peers.items()
                    if v.delivered and p in self.host.peers and not self.host.is_banned(p)), default=0)

    # -- gossip -------------------------------------------------------------------------------

    async def import_gossiped(self, peer: str, item: BlockWithCommit, number: int) -> Verdict:
        """A block a peer gossiped: imported when it is the next one, range sync or not; a gap
        wakes the range sync instead."""
        async with self._import_lock:
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            if number <= head:
                return Verdict.IGNORE
            if number > head + 1:
                self._wake.set()  # a gap: the range sync fetches what is missing
                return Verdict.IGNORE
            try:
                await self.worker.run(self.pipeline.import_verified, item.block, item.commit)
            except InvalidBlock as e:
                log.warning("gossiped block %d from %s refused: %s", number, peer, e)
                return Verdict.REJECT
            self.blocks_imported += 1
            self._proved(peer, number)
        self._publish_progress(number)
        return Verdict.ACCEPT

    # -- ranges -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Catch up whenever a peer may hold blocks above ours; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._catch_up()

    async def _catch_up(self) -> None:
        graced = -1
        while True:
            if len(self.peers) > MAX_VIEWS:
                self.peers = {p: v for p, v in self.peers.items() if p in self.host.peers}
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            candidates = self._candidates(head)
            self._publish_progress(head)
            if not candidates:
                self._wake = trio.Event()
                with trio.move_on_after(1.0):
                    await self._wake.wait()
                continue
            ahead = max(max(self.peers[p].claimed, self.peers[p].proven) for p in candidates) - head
            if ahead <= 1 and graced != head:
                graced = head
                await trio.sleep(GOSSIP_GRACE)
                continue
            await self._fetch_next(head, candidates)

    def _candidates(self, above: int) -> list[str]:
        """Peers that may hold block ``above + 1``: those that delivered verified blocks first
        (most delivered first), then the others in random order."""
        now = time.monotonic()
        proven: list[str] = []
        unproven: list[str] = []
        for peer, view in self.peers.items():
            if (max(view.claimed, view.proven) <= above or view.avoid_until > now or peer not in self.host.peers
                    or self.host.is_banned(peer)):
                continue
            (proven if view.delivered else unproven).append(peer)
        proven.sort(key=lambda p: -self.peers[p].delivered)
        random.shuffle(unproven)
        return proven + unproven

    async def _fetch_next(self, head: int, candidates: list[str]) -> None:
        """Ask for the range after ``head``: the first candidate, the next one too after each
        :data:`HEDGE_SECONDS` without an answer; import the first answer."""
        start = head + 1
        won: list[tuple[str, list[BlockWithCommit]]] = []
        if self.trusted_head() == 0:  # nobody proved anything yet (a fresh start): show the ask
            self._asking = start + self._count(candidates[0], start) - 1
        self._publish_progress(head)
        try:
            async with trio.open_nursery() as nursery:
                for peer in candidates[:MAX_HEDGE]:
                    finished = trio.Event()
                    nursery.start_soon(self._ask, peer, start, won, nursery.cancel_scope, finished)
                    with trio.move_on_after(HEDGE_SECONDS):
                        await finished.wait()
                    if won:
                        break
        finally:
            self._asking = None
        if won:
            peer, batch = won[0]
            await self._import_batch(peer, start, batch)

    def _count(self, peer: str, start: int) -> int:
        view = self.peers[peer]
        return max(1, min(MAX_BLOCKS_PER_REQUEST, max(view.claimed, view.proven) - start + 1))

    async def _ask(self, peer: str, start: int, won: list[tuple[str, list[BlockWithCommit]]],
                   scope: trio.CancelScope, finished: trio.Event) -> None:
        batch: list[BlockWithCommit] | None = None
        try:
            with trio.move_on_after(STALL_SECONDS):
                batch = await self.host.request_blocks(peer, start, self._count(peer, start))
        except PeerError as e:
            self._failed(peer, str(e))
            return
        finally:
            finished.set()
        # Judged in the sync's own nursery: a faster peer's answer cancels this request's, and
        # must not cancel the verdict on this peer.
        assert self._nursery is not None
        if batch is None:
            self._nursery.start_soon(self._stalled, peer, start)
        elif not batch:
            claimed = self.peers[peer].claimed
            self._nursery.start_soon(self.host.ban, peer, f"claimed head {claimed} but served no block {start}")
        elif not won:
            won.append((peer, batch))
            scope.cancel()

    async def _stalled(self, peer: str, start: int) -> None:
        """``peer`` did not answer a range within :data:`STALL_SECONDS`: if it answers its status
        meanwhile, still claiming the range, it withholds what it claims."""
        try:
            with trio.fail_after(PROBE_SECONDS):
                status = await self.host.request_status(peer)
        except (PeerError, trio.TooSlowError):
            self._failed(peer, f"no answer for blocks {start}.. nor for its status")
            return
        await self.host.ban(peer, f"claims head {status.head_number} but withholds block {start}")

    async def _import_batch(self, peer: str, start: int, batch: list[BlockWithCommit]) -> None:
        """Import a range, block ``start + i`` at position ``i``; blocks gossip brought in
        meanwhile are skipped. A block that does not verify bans the peer."""

        def import_item(item: BlockWithCommit, number: int) -> BlockAPI | None:
            if number <= int(self.core.ledger.head.block_number):
                return None
            return self.pipeline.import_verified(item.block, item.commit, number)

        async with self._import_lock:
            for i, item in enumerate(batch):
                try:
                    block = await self.worker.run(import_item, item, start + i)
                except InvalidBlock as e:
                    await self.host.ban(peer, str(e))
                    break
                self._proved(peer, start + i)
                if block is not None:
                    self.blocks_imported += 1
                    self._tick_bar(1)
                    self._publish_progress(start + i)

    # -- eth_syncing ----------------------------------------------------------------------------

    def _publish_progress(self, head: int) -> None:
        """Keep ``status.syncing`` true to the chain: syncing from :data:`BEHIND_TO_SYNC` blocks
        behind the head a peer that proved itself shows (or, before any did, the range asked for)
        until the head reaches it; one block behind at the head is following, not syncing."""
        highest = max(self.trusted_head(), self._asking or 0)
        if highest > head and (self.progress is not None or highest >= head + BEHIND_TO_SYNC):
            if self.progress is None:
                self.progress = Progress(head, highest)
                log.info("syncing blocks %d..%d", head + 1, highest)
                self._open_bar()
            self.progress.highest = highest
            self.status.syncing = {"startingBlock": self.progress.starting, "currentBlock": head,
                                   "highestBlock": highest}
        elif self.progress is not None:
            p = self.progress
            elapsed = time.monotonic() - p.started_at
            n = head - p.starting
            log.info("synced to block %d: %d blocks in %.1fs (%.1f blocks/s)", head, n, elapsed, n / max(elapsed, 1e-9))
            self._close_bar()
            self.progress = None
            self.status.syncing = None

    _bar: Any = None

    def _open_bar(self) -> None:
        if not self.progress_bar or self.progress is None:
            return
        from node.progress import Progress

        p = self.progress
        self._bar = Progress("sync", "blk", total=p.highest - p.starting, stream=sys.stderr)

    def _tick_bar(self, n: int) -> None:
        if self._bar is not None and self.progress is not None:
            self._bar.move_to(self._bar.n + n, max(self.progress.highest - self.progress.starting, self._bar.n + n))

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

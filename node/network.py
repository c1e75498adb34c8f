"""The node on the network: its side of the p2p layer (:class:`p2p.host.ChainHandler`).

It answers status, block and blob requests from the ledger, admits gossiped transactions to
the pool, hands gossiped blocks to block sync (:mod:`node.sync`), gossips what this node's
users sent and what it built or decided, and fetches the blobs that imported contributions
name.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import rlp
import trio
from eth.abc import BlockAPI, SignedTransactionAPI

from node.blobstore import MAX_BLOB_SIZE
from node.chain.core import ChainCore, contribution_fields
from node.chain.events import BlockCommitted, ChainEvent, Origin, TransactionAdmitted
from node.chain.pipeline import BlockPipeline, InvalidBlock, decode_block
from node.chain.reader import NetworkStatus
from node.errors import NodeError
from node.state_sync import MAX_REQUEST_BYTES, STATE_PROTOCOL, StateSync
from node.sync import BlockSync
from node.worker import ChainWorker
from p2p.host import P2PConfig, P2PHost, PeerError, Verdict
from p2p.wire import (
    MAX_FRAME,
    MAX_TX_BATCH,
    BlocksRequest,
    BlockWithCommit,
    Status,
    WireError,
    decode_tx_batch,
    encode_tx_batch,
)
from state import TransactionError, decode_transaction

log = logging.getLogger("ailedger.sync")

#: Most bytes one blocks-by-range answer carries.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Blob fetch attempts before a blob is left for the next restart.
BLOB_ATTEMPTS = 20
#: Seconds between re-announcements of a transaction this node's users sent that no block
#: has taken yet (gossip is best effort: the mesh may not have formed, or the block
#: producer may have been away), and how many times at most.
REBROADCAST_SECONDS = 3.0
REBROADCAST_TIMES = 10
#: Bytes of transactions batched into one gossip message (under the host's 128 KiB message cap).
TX_BATCH_BYTES = 96 * 1024
#: Gossiped transactions admitted per chain-worker job.
ADMIT_CHUNK = 50


def encode_block(core: ChainCore, block: BlockAPI) -> BlockWithCommit | None:
    commit = core.ledger.commit_of(block.header.hash)
    if commit is None:
        return None
    return BlockWithCommit(rlp.encode(block), commit)


class NetworkNode:
    """The node on the network: serves its chain, follows its peers', gossips its own."""

    def __init__(self, pipeline: BlockPipeline, worker: ChainWorker, config: P2PConfig,
                 status: NetworkStatus | None = None, progress_bar: bool = False, state_sync: bool = False) -> None:
        """``status`` is kept up to date for the RPC (peers, sync progress); ``state_sync``: an
        empty chain takes a peer's recent state before block sync (node/state_sync.py)."""
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.worker = worker
        genesis = self.core.ledger.header_by_number(0)
        assert genesis is not None
        self.genesis_hash = bytes(genesis.hash)
        self.host = P2PHost(config, self, self.core.ledger.chain_id, self.genesis_hash)
        self.status = status or NetworkStatus()
        self.sync = BlockSync(self.host, pipeline, worker, self._queue_blobs, self.status, progress_bar)
        # State sync (node/state_sync.py): served always, run before block sync only when asked.
        self.state_sync = StateSync(self.host, pipeline, worker, self.sync, self.status, progress_bar)
        self.host.add_protocol(STATE_PROTOCOL, self.host.answer_requests(
            STATE_PROTOCOL, self.state_sync.answer, limit=MAX_REQUEST_BYTES))
        self.sync_state_first = state_sync
        self._outbox: tuple[trio.MemorySendChannel[tuple[str, Any]], trio.MemoryReceiveChannel[tuple[str, Any]]] = (
            trio.open_memory_channel(10_000)
        )
        self._blobs: tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]] = (
            trio.open_memory_channel(100_000)
        )
        #: Transactions sent to this node's RPC: hash -> (raw, announcements so far).
        self._own_txs: dict[bytes, tuple[bytes, int]] = {}
        self._token: trio.lowlevel.TrioToken | None = None

    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.core.events.subscribe(self._on_chain_event)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.host.run)
            nursery.start_soon(self._publisher)
            nursery.start_soon(self._sync)
            nursery.start_soon(self._blob_fetcher)
            nursery.start_soon(self._count_peers)
            nursery.start_soon(self._rebroadcast)
            task_status.started()

    async def _sync(self) -> None:
        if self.sync_state_first:
            await self.state_sync.run()
        await self.sync.run()

    async def _count_peers(self) -> None:
        while True:
            self.status.peer_count = len(self.host.peers)
            await trio.sleep(1.0)

    # -- what the host asks (p2p.host.ChainHandler) --------------------------------------

    async def local_status(self) -> Status:
        head = await self.worker.run(lambda: self.core.ledger.head)
        return Status(self.core.ledger.chain_id, self.genesis_hash, int(head.block_number), bytes(head.hash))

    async def serve_blocks(self, request: BlocksRequest) -> list[BlockWithCommit]:
        return await self.worker.run(self._read_blocks, request.start, request.count)

    def _read_blocks(self, start: int, count: int) -> list[BlockWithCommit]:
        ledger = self.core.ledger
        out: list[BlockWithCommit] = []
        total = 0
        for number in range(max(start, 1), start + count):
            header = ledger.header_by_number(number)
            if header is None:
                break
            item = encode_block(self.core, ledger.block(header))
            if item is None:
                break  # a block without a commit is not final: not served
            size = len(item.block) + len(item.commit) + 16
            if size > MAX_FRAME or total + size > MAX_RESPONSE_BYTES:
                if size > MAX_FRAME:
                    log.error("block %d is %d bytes, larger than a frame: cannot serve it", number, size)
                break
            total += size
            out.append(item)
        return out

    async def serve_blob(self, content_hash: bytes) -> bytes | None:
        def read() -> bytes | None:
            if self.core.blobs.size(content_hash) is None:
                return None
            return self.core.blobs.get(content_hash)

        return await self.worker.run(read)

    async def refresh_peer(self, peer: str) -> None:
        """Ask ``peer`` for its head now (consensus saw it work on a later height): a higher
        head wakes the range sync."""
        try:
            status = await self.host.request_status(peer)
        except PeerError as e:
            log.debug("status of %s failed: %s", peer, e)
            return
        await self.on_status(peer, status)

    async def on_status(self, peer: str, status: Status) -> None:
        self.sync.saw_head(peer, status.head_number)

    async def on_transaction(self, raw: bytes, peer: str) -> Verdict:
        try:
            raws = decode_tx_batch(raw)
        except WireError:
            return Verdict.REJECT
        verdicts: list[Verdict] = []
        for i in range(0, len(raws), ADMIT_CHUNK):  # small jobs: block building never waits long
            verdicts += await self.worker.run(lambda chunk: [self._admit_gossiped(r) for r in chunk],
                                              raws[i:i + ADMIT_CHUNK])
            if Verdict.REJECT in verdicts:
                return Verdict.REJECT
        return Verdict.ACCEPT if Verdict.ACCEPT in verdicts else Verdict.IGNORE

    def _admit_gossiped(self, raw: bytes) -> Verdict:
        try:
            tx = decode_transaction(raw)
        except TransactionError:
            return Verdict.REJECT
        chain_id = getattr(tx, "chain_id", None)
        if chain_id is not None and chain_id != self.core.ledger.chain_id:
            return Verdict.REJECT
        # A gossiped contribution names a blob its first node holds; this node fetches it
        # in the background rather than refusing the transaction.
        try:
            self.core.submit(tx, Origin.PEER)
        except NodeError:
            return Verdict.IGNORE  # known, nonce used, underpriced: no fault of the relayer
        return Verdict.ACCEPT

    async def on_block(self, raw: bytes, peer: str) -> Verdict:
        try:
            item = BlockWithCommit.decode(raw)
            number = int(decode_block(item.block).header.block_number)
        except (ValueError, InvalidBlock):
            return Verdict.REJECT
        self.sync.saw_head(peer, number, claimed=False)
        return await self.sync.import_gossiped(peer, item, number)

    # -- gossip out ------------------------------------------------------------------------

    def _on_chain_event(self, event: ChainEvent) -> None:
        """Runs on the chain worker: hand what this node admitted from its users, built, or
        decided by consensus to the publisher (what came from peers is theirs to gossip)."""
        if isinstance(event, TransactionAdmitted) and event.origin is Origin.LOCAL:
            item: tuple[str, Any] = ("transaction", _encode_transaction(event.tx))
            if len(self._own_txs) < 10_000:
                self._own_txs[bytes(event.tx.hash)] = (item[1], 1)
        elif isinstance(event, BlockCommitted) and event.origin in (Origin.LOCAL, Origin.CONSENSUS):
            encoded = encode_block(self.core, event.block)
            if encoded is None:
                return
            item = ("block", encoded)
            # A contribution relayed to this validator names a blob held elsewhere.
            for tx in event.block.transactions:
                fields = contribution_fields(tx)
                if fields is not None and self.core.blobs.size(fields[0]) is None:
                    self._hand_over(self._blobs[0], fields[0])
        else:
            return
        self._hand_over(self._outbox[0], item)

    def _hand_over(self, channel: trio.MemorySendChannel[Any], item: Any) -> None:
        token = self._token
        if token is None:
            return

        def put() -> None:
            try:
                channel.send_nowait(item)
            except (trio.WouldBlock, trio.ClosedResourceError):
                log.warning("queue full: dropped a %s", type(item).__name__)

        try:
            token.run_sync_soon(put)
        except trio.RunFinishedError:
            pass

    async def _publisher(self) -> None:
        """Publish what the chain thread hands over. Transactions waiting together go out as one
        gossip message (gossipsub holds only tens of messages a second, NOTES.md)."""
        receive = self._outbox[1]
        async for kind, payload in receive:
            if kind != "transaction":
                await self.host.publish_block(payload)
                continue
            txs, size, later = [payload], len(payload), []
            while len(txs) < MAX_TX_BATCH and size < TX_BATCH_BYTES:
                try:
                    item = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                if item[0] == "transaction":
                    txs.append(item[1])
                    size += len(item[1]) + 4
                else:
                    later.append(item[1])
            await self.host.publish_transaction(encode_tx_batch(txs))
            for block in later:
                await self.host.publish_block(block)

    async def _rebroadcast(self) -> None:
        while True:
            await trio.sleep(REBROADCAST_SECONDS)
            if not self._own_txs:
                continue
            pooled = await self.worker.run(lambda: set(self.core.pool.by_hash))
            for tx_hash, (raw, times) in list(self._own_txs.items()):
                if tx_hash not in pooled or times >= REBROADCAST_TIMES:
                    del self._own_txs[tx_hash]
                    continue
                self._own_txs[tx_hash] = (raw, times + 1)
                await self.host.publish_transaction(raw)

    # -- blobs -----------------------------------------------------------------------------

    async def _queue_blobs(self, blocks: list[BlockAPI]) -> None:
        for block in blocks:
            for tx in block.transactions:
                fields = contribution_fields(tx)
                if fields is not None:
                    try:
                        self._blobs[0].send_nowait(fields[0])
                    except trio.WouldBlock:
                        log.warning("blob queue full; blob 0x%s left for later", fields[0].hex())

    async def _blob_fetcher(self) -> None:
        async for content_hash in self._blobs[1]:
            for attempt in range(BLOB_ATTEMPTS):
                if await self.worker.run(self.core.blobs.size, content_hash) is not None:
                    break
                if await self._fetch_blob(content_hash):
                    break
                await trio.sleep(min(0.2 * 2**attempt, 10.0))
            else:
                log.warning("blob 0x%s not found at any peer", content_hash.hex())

    async def _fetch_blob(self, content_hash: bytes) -> bool:
        peers = [p for p in self.host.peers if not self.host.is_banned(p)]
        random.shuffle(peers)
        for peer in peers:
            try:
                data = await self.host.request_blob(peer, content_hash, MAX_BLOB_SIZE)
            except PeerError as e:
                log.debug("blob 0x%s from %s failed: %s", content_hash.hex(), peer, e)
                continue
            if data is not None:
                await self.worker.run(self.core.blobs.put, data, content_hash)
                return True
        return False


def _encode_transaction(tx: SignedTransactionAPI) -> bytes:
    encode = getattr(tx, "encode", None)
    return bytes(encode()) if encode is not None else bytes(rlp.encode(tx))

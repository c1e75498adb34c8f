"""The node on the network: its side of the p2p layer (:class:`p2p.host.ChainHandler`).

It answers status, block and blob requests from the ledger, admits gossiped transactions to
the pool, hands gossiped blocks to block sync (:mod:`node.sync`), gossips what this node's
users sent and what it built or decided, and fetches the blobs that imported contributions
name.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import rlp
import trio
from eth.abc import BlockAPI, SignedTransactionAPI

from node import metrics
from node.blobstore import MAX_BLOB_SIZE
from node.chain.blob_refs import blob_refs
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent, Origin, TransactionAdmitted
from node.chain.pipeline import BlockPipeline, InvalidBlock, decode_block
from node.chain.reader import NetworkStatus
from node.errors import NodeError
from node.state_sync import MAX_REQUEST_BYTES, STATE_PROTOCOL, StateSync
from node.sync import BlockSync
from node.txpool import tx_cost
from node.worker import ChainWorker
from p2p.host import GossipOutcome, P2PConfig, P2PHost, PeerError, Verdict
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
#: Blobs fetched on demand at once at most (``ChainCore.fetch_lazily``: someone asked for a blob
#: this node lacks), and how long one that no peer served is not asked for again: anyone may ask
#: for any hash, so the on-demand fetches are bounded, kept in memory only, and tried once.
MAX_LAZY_FETCHES = 32
LAZY_RETRY_SECONDS = 30.0
#: New on-demand fetches a second (a burst of MAX_LAZY_FETCHES): this node's peers are not
#: asked for hashes faster than this, however fast its callers ask.
LAZY_PER_SECOND = 4.0
#: Blob fetch attempts before a blob is given up (until a transaction names it again).
BLOB_ATTEMPTS = 20
#: Blobs still wanted from before a restart that the fetcher takes up at start (the rest when
#: named again).
MAX_WANTED_AT_START = 50_000
#: Seconds between re-announcements of a transaction this node's users sent that no block
#: has taken yet (gossip is best effort: the mesh may not have formed, or the block
#: producer may have been away), and how many times at most.
REBROADCAST_SECONDS = 3.0
REBROADCAST_TIMES = 10
#: Bytes of transactions batched into one gossip message (under the host's 128 KiB message cap).
TX_BATCH_BYTES = 96 * 1024
#: Gossiped transactions admitted per chain-worker job.
ADMIT_CHUNK = 50
#: Gossiped transaction hashes whose verdict is kept, and how long an unpayable one stays refused
#: without a second look (its sender may be funded meanwhile).
TX_VERDICTS = 100_000
UNPAYABLE_SECONDS = 12.0
#: New gossiped transactions verified per peer and second, and at once: about what blocks take
#: (200 a block); past it a peer's new transactions wait for the next time they are sent (their
#: first node re-announces them) and count as useless, so a fresh key buys a bounded amount of
#: verification.
VERIFY_RATE, VERIFY_BURST = 200.0, 400.0
#: Transactions verified per slice on the verifier thread, and the pause after each slice in
#: proportion to its length: a CPU-bound thread holding the GIL makes every other thread's I/O wait
#: (an RPC call took 100-280 ms beside 800 verifications in one go); sliced, the verifier takes at
#: most a third of a core.
VERIFY_SLICE, VERIFY_PAUSE = 16, 2.0
KNOWN, UNPAYABLE, INVALID = "known", "unpayable", "invalid"


class TxVerdicts:
    """What this node made of gossiped transactions, by a hash of their bytes, so that a
    transaction sent again costs a hash and a lookup: known (pooled, in a block, or refused by the pool), unpayable (for
    :data:`UNPAYABLE_SECONDS`), invalid. The oldest verdicts go first past :data:`TX_VERDICTS`."""

    def __init__(self, size: int = TX_VERDICTS, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._verdicts: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def get(self, tx_hash: bytes) -> str | None:
        entry = self._verdicts.get(tx_hash)
        if entry is None:
            return None
        verdict, until = entry
        if until < self.clock():
            del self._verdicts[tx_hash]
            return None
        return verdict

    def put(self, tx_hash: bytes, verdict: str) -> None:
        until = self.clock() + UNPAYABLE_SECONDS if verdict == UNPAYABLE else float("inf")
        self._verdicts[tx_hash] = (verdict, until)
        self._verdicts.move_to_end(tx_hash)
        while len(self._verdicts) > self.size:
            self._verdicts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._verdicts)


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
        self.sync = BlockSync(self.host, pipeline, worker, self.status, progress_bar)
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
        #: Blobs asked for on demand: being fetched, and recently not found (hash -> when).
        self._lazy: tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]] = (
            trio.open_memory_channel(MAX_LAZY_FETCHES)
        )
        self._lazy_pending: set[bytes] = set()
        self._lazy_missed: OrderedDict[bytes, float] = OrderedDict()
        self._lazy_lock = threading.Lock()
        self._lazy_tokens = (float(MAX_LAZY_FETCHES), time.monotonic())
        #: Transactions sent to this node's RPC: hash -> (raw, announcements so far).
        self._own_txs: dict[bytes, tuple[bytes, int]] = {}
        self.tx_verdicts = TxVerdicts()
        #: Gossiped transactions are decoded, their senders recovered and their payment checked
        #: on this one thread, off the chain thread that builds and imports blocks.
        self._verifier = trio.CapacityLimiter(1)
        #: Hashes being verified now: a copy arriving meanwhile is a duplicate, not new work.
        self._verifying: set[bytes] = set()
        #: Each peer's allowance of new transactions to verify: (tokens, when counted).
        self._allowance: dict[str, tuple[float, float]] = {}
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
            for _ in range(4):
                nursery.start_soon(self._lazy_fetcher)
            self.core.ask_peers_for_blob = self.fetch_lazily
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

    async def on_transaction(self, raw: bytes, peer: str) -> GossipOutcome:
        """A gossiped transaction or batch. What was seen before costs a hash; the rest is verified
        (decoded, sender recovered, payment checked against the head's state) off the chain
        thread, and only what can pay reaches the pool. Invalid is REJECT; known and unpayable
        items are useless (free up to a rate, then penalised by the host)."""
        try:
            raws = decode_tx_batch(raw)
        except WireError:
            return GossipOutcome(Verdict.REJECT)
        fresh: dict[bytes, bytes] = {}
        useless = 0
        for item in raws:
            # The cache's own key: blake2b runs under the GIL; keccak (pycryptodome, through cffi)
            # drops and retakes it on every call, and 800 of those per message stalled the loop.
            tx_hash = hashlib.blake2b(item, digest_size=20).digest()
            verdict = self.tx_verdicts.get(tx_hash)
            if verdict == INVALID:
                return GossipOutcome(Verdict.REJECT)
            if verdict is not None or tx_hash in fresh or tx_hash in self._verifying:
                useless += 1
            else:
                fresh[tx_hash] = item
        allowed = self._take_allowance(peer, len(fresh))
        if allowed < len(fresh):
            useless += len(fresh) - allowed  # not looked at: they come again, or from others
            fresh = dict(list(fresh.items())[:allowed])
        if not fresh:
            return GossipOutcome(Verdict.IGNORE, useless)
        self._verifying.update(fresh)
        try:
            return await self._admit_fresh(fresh, useless)
        finally:
            self._verifying.difference_update(fresh)

    def _take_allowance(self, peer: str, wanted: int) -> int:
        now = time.monotonic()
        if peer not in self._allowance and len(self._allowance) >= 4096:
            self._allowance = {p: (t, at) for p, (t, at) in self._allowance.items() if now - at < 10}
        tokens, at = self._allowance.get(peer, (VERIFY_BURST, now))
        tokens = min(VERIFY_BURST, tokens + (now - at) * VERIFY_RATE)
        taken = min(wanted, int(tokens))
        self._allowance[peer] = (tokens - taken, now)
        return taken

    async def _admit_fresh(self, fresh: dict[bytes, bytes], useless: int) -> GossipOutcome:
        items = list(fresh.items())
        checked: list[tuple[bytes, SignedTransactionAPI | None, str | None]] = []
        async with self._verifier:
            for i in range(0, len(items), VERIFY_SLICE):
                started = time.monotonic()
                checked += await trio.to_thread.run_sync(self._verify, items[i:i + VERIFY_SLICE])
                await trio.sleep((time.monotonic() - started) * VERIFY_PAUSE)
        payable: list[tuple[bytes, SignedTransactionAPI]] = []
        for tx_hash, tx, verdict in checked:
            if verdict is not None:
                self.tx_verdicts.put(tx_hash, verdict)
                if verdict == INVALID:
                    return GossipOutcome(Verdict.REJECT)
                useless += 1
            elif tx is not None:
                payable.append((tx_hash, tx))
        accepted = 0
        for i in range(0, len(payable), ADMIT_CHUNK):  # small jobs: block building never waits long
            chunk = payable[i:i + ADMIT_CHUNK]
            admitted = await self.worker.run(lambda c: [self._admit_verified(tx) for _, tx in c], chunk)
            for (tx_hash, _), ok in zip(chunk, admitted, strict=True):
                self.tx_verdicts.put(tx_hash, KNOWN)
                accepted += ok
                useless += not ok
        return GossipOutcome(Verdict.ACCEPT if accepted else Verdict.IGNORE, useless)

    def _verify(self, items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, SignedTransactionAPI | None, str | None]]:
        """Runs on the verifier thread, reading only committed state: each item as a transaction
        that may be pooled (verdict None), or its verdict."""
        ledger = self.core.ledger
        head = ledger.head
        state: Any = None
        accounts: dict[bytes, tuple[int, int]] = {}
        out: list[tuple[bytes, SignedTransactionAPI | None, str | None]] = []
        metrics.GOSSIP_TX_VERIFIED.inc(len(items))
        for tx_hash, raw in items:
            try:
                tx = decode_transaction(raw)
            except TransactionError:
                out.append((tx_hash, None, INVALID))
                continue
            chain_id = getattr(tx, "chain_id", None)
            if chain_id is not None and chain_id != ledger.chain_id:
                out.append((tx_hash, None, INVALID))
                continue
            sender = bytes(tx.sender)
            if sender not in accounts:
                if state is None:
                    state = ledger.state_at(head)
                accounts[sender] = (int(state.get_nonce(sender)), int(state.get_balance(sender)))
            nonce, balance = accounts[sender]
            if tx.nonce < nonce:
                out.append((tx_hash, None, KNOWN))
            elif tx_cost(tx) > balance:
                out.append((tx_hash, None, UNPAYABLE))
            else:
                out.append((tx_hash, tx, None))
        return out

    def _admit_verified(self, tx: SignedTransactionAPI) -> bool:
        # A gossiped contribution names a blob its first node holds; this node fetches it
        # in the background rather than refusing the transaction.
        try:
            self.core.submit(tx, Origin.PEER)
        except NodeError:
            return False  # known, nonce used, underpriced: no fault of the relayer
        return True

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
        elif isinstance(event, BlockCommitted):
            self._want_blobs(event.block)
            if event.origin not in (Origin.LOCAL, Origin.CONSENSUS):
                return
            encoded = encode_block(self.core, event.block)
            if encoded is None:
                return
            item = ("block", encoded)
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

    def _want_blobs(self, block: BlockAPI) -> None:
        """On the chain worker: every blob a committed block names that this node lacks is
        remembered (on disk) and handed to the fetcher; whoever built or relayed the block holds
        it (a contribution's bytes, an adapter's artifacts, a receipt's prompt and output)."""
        for tx in block.transactions:
            for digest in blob_refs(tx):
                if self.core.blobs.want(digest):
                    self._hand_over(self._blobs[0], digest)

    async def _blob_fetcher(self) -> None:
        """Fetch the blobs the chain names, each until a peer serves it or BLOB_ATTEMPTS tries
        fail; a restarted node goes on with those it still wants."""
        for digest in await self.worker.run(self.core.blobs.wanted, MAX_WANTED_AT_START):
            self._blobs[0].send_nowait(digest)
        async for content_hash in self._blobs[1]:
            for attempt in range(BLOB_ATTEMPTS):
                if await self.worker.run(self.core.blobs.size, content_hash) is not None:
                    break
                if await self._fetch_blob(content_hash):
                    break
                await trio.sleep(min(0.2 * 2**attempt, 10.0))
            else:
                log.warning("blob 0x%s not found at any peer; given up until it is named again", content_hash.hex())
                await self.worker.run(self.core.blobs.unwant, content_hash)

    def fetch_lazily(self, digest: bytes) -> bool:
        """Any thread: fetch ``digest`` from the peers once, now (``ChainCore.fetch_lazily``).
        True when it is being fetched; False when the on-demand fetches are full, over their
        rate, or no peer served it in the last ``LAZY_RETRY_SECONDS``."""
        token = self._token
        if token is None:
            return False
        with self._lazy_lock:
            if digest in self._lazy_pending:
                return True
            missed = self._lazy_missed.get(digest)
            if missed is not None and time.monotonic() - missed < LAZY_RETRY_SECONDS:
                return False
            tokens, at = self._lazy_tokens
            now = time.monotonic()
            tokens = min(float(MAX_LAZY_FETCHES), tokens + (now - at) * LAZY_PER_SECOND)
            if len(self._lazy_pending) >= MAX_LAZY_FETCHES or tokens < 1:
                self._lazy_tokens = (tokens, now)
                return False
            self._lazy_tokens = (tokens - 1, now)
            self._lazy_pending.add(digest)

        def put() -> None:
            try:
                self._lazy[0].send_nowait(digest)
            except (trio.WouldBlock, trio.ClosedResourceError):
                with self._lazy_lock:
                    self._lazy_pending.discard(digest)
        try:
            token.run_sync_soon(put)
        except trio.RunFinishedError:
            with self._lazy_lock:
                self._lazy_pending.discard(digest)
            return False
        return True

    async def _lazy_fetcher(self) -> None:
        async for digest in self._lazy[1]:
            found = False
            try:
                found = await self.worker.run(self.core.blobs.size, digest) is not None or await self._fetch_blob(digest)
            finally:
                with self._lazy_lock:
                    self._lazy_pending.discard(digest)
                    if not found:
                        self._lazy_missed[digest] = time.monotonic()
                        self._lazy_missed.move_to_end(digest)
                        while len(self._lazy_missed) > 4096:
                            self._lazy_missed.popitem(last=False)
            if not found:
                log.debug("blob 0x%s asked for on demand: no peer has it", digest.hex())

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

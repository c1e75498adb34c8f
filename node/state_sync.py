"""State sync: a joining node takes the state of a recent committed block from its peers instead
of replaying every block since genesis (Ethereum's fast sync by trie nodes, CometBFT's state sync).

1. **Pivot.** The joiner picks the best peer's head less :data:`PIVOT_DEPTH` blocks, fetches that
   block with its commit and :data:`ANCESTORS` blocks before it (blocks-by-range), and checks the
   commit against the validator set that signs the chain (``BlockPipeline.verify_pivot``); the
   ancestors' headers must chain to it by hash.
2. **State.** Starting from the pivot header's state root it asks peers for trie nodes by hash
   (``/ailedger/state-nodes/1``): account trie nodes, then the storage tries and code the
   accounts name. Every answer must hash to what was asked, so each node is proven by its parent
   back to the committed root; a peer that serves anything else is banned and its share asked of
   another. Nodes are written as they arrive. Code and storage shared by several accounts are
   fetched once.
3. **Adopt.** With every node present, the pivot becomes the head in one atomic write
   (``Ledger.adopt_state``) and block sync replays only the blocks after it.

Resumable: the pivot is recorded in the store before the first node is fetched (:data:`RECORD_KEY`);
a node killed mid-way restarts on the same pivot, walks the nodes it already holds locally and
fetches only the missing ones. ``eth_syncing`` shows ``pulledStates``/``knownStates`` and the
pivot as ``highestBlock``; ``--progress`` a bar. Blobs that contributions name are not part of
the state: block sync's background fetcher brings those of blocks it imports, and any node
fetches a blob from its peers when it is asked for one (lazily).

Only a chain signed by its genesis validators is state-synced: a BFT chain's validator set at a
height is derived from every height before it, so a joiner there replays blocks (the syncer
says so and steps aside).
"""

from __future__ import annotations

import collections
import logging
import sys
import time
from typing import Any

import rlp
import trio
from eth.abc import BlockAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from eth_hash.auto import keccak

from node.chain.core import ChainCore
from node.chain.pipeline import BlockPipeline, InvalidBlock, decode_block
from node.chain.reader import NetworkStatus
from node.sync import BlockSync
from node.worker import ChainWorker
from p2p.host import REQUEST_TIMEOUT, P2PHost, PeerError
from p2p.wire import MAX_BLOCKS_PER_REQUEST, MAX_FRAME, FrameReader, WireError, encode_frame

log = logging.getLogger("ailedger.sync")

STATE_PROTOCOL = "/ailedger/state-nodes/1"
#: Node hashes one request may ask for; the answer is one frame per hash (empty: not held).
MAX_HASHES = 384
#: Largest request frame: the RLP list of MAX_HASHES hashes.
MAX_REQUEST_BYTES = MAX_HASHES * 33 + 8
#: Requests in flight at once (spread over the peers; a peer answers at most 4 at once).
IN_FLIGHT = 3
#: The pivot sits this many blocks under the best peer's head (every committed block is final;
#: the margin only keeps the blocks after it in every peer's store).
PIVOT_DEPTH = 8
#: Blocks kept before the pivot: BLOCKHASH reads up to 256 of them.
ANCESTORS = 256
#: A chain this short is replayed: fetching its state would not pay.
MIN_HEAD = 2 * ANCESTORS
#: Seconds the joiner waits for a peer to show its head before it leaves the chain to block sync.
PEER_WAIT = 15.0
#: Times one node may come back missing from every peer before state sync gives up.
MAX_MISSES = 20
#: Where the pivot being synced is recorded: RLP [block, commit, [ancestor blocks]].
RECORD_KEY = b"ailedger:state-sync:pivot"

#: What a node hash names: a node of the account trie, of a storage trie, or contract code.
ACCOUNT_NODE, STORAGE_NODE, CODE = 0, 1, 2


class StateSyncError(Exception):
    """State sync cannot finish (no peer holds a node, a node does not decode): block sync goes on."""


def decode_request(raw: bytes) -> list[bytes]:
    """The node hashes a request asks for (:class:`WireError` on anything else)."""
    try:
        hashes = rlp.decode(raw)
    except rlp.DecodingError as e:
        raise WireError(f"state request: {e}") from None
    if not isinstance(hashes, list) or not 0 < len(hashes) <= MAX_HASHES:
        raise WireError(f"state request: 1..{MAX_HASHES} hashes expected")
    if any(not isinstance(h, bytes) or len(h) != 32 for h in hashes):
        raise WireError("state request: a hash is not 32 bytes")
    return hashes


def children(value: bytes, kind: int) -> list[tuple[bytes, int]]:
    """The hashes a trie node or account refers to: child nodes (embedded ones walked in place),
    and, below an account trie leaf, its storage root and code hash."""
    if kind == CODE:
        return []
    out: list[tuple[bytes, int]] = []

    def leaf(payload: bytes) -> None:
        if kind != ACCOUNT_NODE:
            return
        account = rlp.decode(payload, sedes=Account)
        if account.storage_root != BLANK_ROOT_HASH:
            out.append((bytes(account.storage_root), STORAGE_NODE))
        if account.code_hash != EMPTY_SHA3:
            out.append((bytes(account.code_hash), CODE))

    def reference(child: Any) -> None:
        if isinstance(child, list):
            walk(child)
        elif len(child) == 32:
            out.append((bytes(child), kind))
        elif child:
            raise StateSyncError(f"a trie reference of {len(child)} bytes")

    def walk(node: Any) -> None:
        if not isinstance(node, list):
            raise StateSyncError("a trie node that is not a list")
        if len(node) == 17:
            for child in node[:16]:
                reference(child)
            if node[16]:
                leaf(node[16])
        elif len(node) == 2:
            if node[0][:1] and node[0][0] >> 4 >= 2:  # hex-prefix flag: a leaf
                leaf(node[1])
            else:
                reference(node[1])
        else:
            raise StateSyncError(f"a trie node of {len(node)} items")

    walk(rlp.decode(value))
    return out


class StateSync:
    """Brings an empty chain to a peer's recent state; then block sync takes over."""

    def __init__(self, host: P2PHost, pipeline: BlockPipeline, worker: ChainWorker, block_sync: BlockSync,
                 status: NetworkStatus, progress_bar: bool = False) -> None:
        self.host = host
        self.pipeline = pipeline
        self.core: ChainCore = pipeline.core
        self.worker = worker
        self.block_sync = block_sync
        self.status = status
        self.progress_bar = progress_bar
        self.pulled = 0
        self.known = 0
        self.adopted: int | None = None
        """The pivot's number once adopted."""
        self._bar: Any = None

    # -- serving -----------------------------------------------------------------------------

    async def answer(self, peer: str, raw: bytes) -> list[bytes]:
        """The nodes (or code) a peer asks for, by hash; an empty frame for one not held. Only
        content-addressed entries are served: what does not hash to its key is not."""
        hashes = decode_request(raw)
        store = self.core.ledger.store

        def read() -> list[bytes]:
            out = []
            for h in hashes:
                value = store.get(h)
                out.append(value if value is not None and len(value) < MAX_FRAME and keccak(value) == h else b"")
            return out

        return await self.worker.run(read)

    # -- joining ------------------------------------------------------------------------------

    async def run(self) -> bool:
        """Sync the state if this chain is empty and a peer's is long enough (or a sync was under
        way when the node stopped); True when a state was adopted. Any failure leaves the chain
        to block sync, which replays from where the chain is."""
        try:
            return await self._run()
        except StateSyncError as e:
            log.warning("state sync stopped: %s; replaying blocks instead", e)
            return False
        finally:
            self.status.syncing = None
            self._close_bar()

    async def _run(self) -> bool:
        record = await self.worker.run(self._load_record)
        if record is None:
            head = await self.worker.run(lambda: int(self.core.ledger.head.block_number))
            if head != 0:
                return False
            if self.core.validator_sets is not None:
                log.info("state sync: a BFT chain's validator sets come from its history; replaying blocks")
                return False
            record = await self._choose_pivot()
            if record is None:
                return False
        block, commit, ancestors = record
        root = bytes(block.header.state_root)
        log.info("state sync: block %d, state root 0x%s", block.header.block_number, root.hex())
        started = time.monotonic()
        await self._fetch_state(root, int(block.header.block_number))
        await self.worker.run(self.pipeline.adopt_state, block, commit, ancestors, (RECORD_KEY,))
        self.adopted = int(block.header.block_number)
        log.info("state sync: adopted block %d with %d state nodes fetched in %.1fs", self.adopted, self.pulled,
                 time.monotonic() - started)
        return True

    def _load_record(self) -> tuple[BlockAPI, bytes, list[BlockAPI]] | None:
        raw = self.core.ledger.store.get(RECORD_KEY)
        if raw is None:
            return None
        block, commit, ancestors = rlp.decode(raw)
        return decode_block(block), commit, [decode_block(b) for b in ancestors]

    async def _choose_pivot(self) -> tuple[BlockAPI, bytes, list[BlockAPI]] | None:
        """The best peer's head less PIVOT_DEPTH, verified, with its ancestors; recorded."""
        deadline = trio.current_time() + PEER_WAIT
        while True:
            views = [(view.claimed, peer) for peer, view in self.block_sync.peers.items()
                     if peer in self.host.peers and not self.host.is_banned(peer)]
            if views and max(views)[0] >= MIN_HEAD:
                break
            if trio.current_time() > deadline:
                if views:
                    log.info("state sync: the peers' chains are short (%d blocks): replaying them", max(views)[0])
                return None
            await trio.sleep(0.2)
        for head, peer in sorted(views, reverse=True):
            if head < MIN_HEAD:
                break
            pivot = head - PIVOT_DEPTH
            try:
                return await self._fetch_pivot(peer, pivot)
            except PeerError as e:
                log.info("state sync: pivot %d from %s failed: %s", pivot, peer, e)
            except InvalidBlock as e:
                await self.host.ban(peer, f"state sync pivot: {e}")
        return None

    async def _fetch_pivot(self, peer: str, pivot: int) -> tuple[BlockAPI, bytes, list[BlockAPI]]:
        served = await self.host.request_blocks(peer, pivot, 1)
        if len(served) != 1:
            raise PeerError(f"no block {pivot}")
        item = served[0]
        block = await self.worker.run(self.pipeline.verify_pivot, item.block, item.commit)
        if block.header.block_number != pivot:
            raise InvalidBlock(f"served block {block.header.block_number} for {pivot}")
        raws: list[bytes] = []
        start = max(1, pivot - ANCESTORS)
        while start < pivot:
            batch = await self.host.request_blocks(peer, start, min(MAX_BLOCKS_PER_REQUEST, pivot - start))
            if not batch:
                raise PeerError(f"no block {start}")
            raws += [b.block for b in batch[: pivot - start]]
            start += len(batch)
        ancestors = [decode_block(raw) for raw in raws]
        chain = [*ancestors, block]
        for parent, child in zip(chain, chain[1:], strict=False):
            if child.header.parent_hash != parent.header.hash:
                raise InvalidBlock(f"block {parent.number} is not the parent of {child.number}")
        record = rlp.encode([item.block, item.commit, raws])
        await self.worker.run(self.core.ledger.store.write, {RECORD_KEY: record})
        return block, item.commit, ancestors

    async def _fetch_state(self, root: bytes, pivot: int) -> None:
        """Every node under ``root`` into the store, each checked against its hash."""
        queue: collections.deque[tuple[bytes, int]] = collections.deque([(root, ACCOUNT_NODE)])
        seen = {root}
        busy = 0
        misses: dict[bytes, int] = {}
        done = trio.Event()
        wake = trio.Event()
        self._open_bar(pivot)

        def enqueue(found: list[tuple[bytes, int]]) -> None:
            nonlocal wake
            for h, kind in found:
                if h not in seen:
                    seen.add(h)
                    queue.append((h, kind))
            self.known = self.pulled + len(queue) + busy
            wake.set()
            wake = trio.Event()

        def local(items: list[tuple[bytes, int]]) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
            """On the chain worker: the items already held (their children walked: a resumed
            sync) and those still missing."""
            store = self.core.ledger.store
            missing, found = [], []
            for h, kind in items:
                value = store.get(h)
                if value is None or keccak(value) != h:
                    missing.append((h, kind))
                else:
                    found += children(value, kind)
            return missing, found

        def keep(items: list[tuple[bytes, int]], values: list[bytes]) -> list[tuple[bytes, int]]:
            self.core.ledger.store.write({h: v for (h, _), v in zip(items, values, strict=True)})
            found: list[tuple[bytes, int]] = []
            for (_, kind), value in zip(items, values, strict=True):
                found += children(value, kind)
            return found

        async def fetcher(n: int) -> None:
            nonlocal busy
            while True:
                if not queue:
                    if busy == 0:
                        done.set()
                        return
                    await wake.wait()
                    continue
                items = [queue.popleft() for _ in range(min(MAX_HASHES, len(queue)))]
                busy += 1
                try:
                    missing, found = await self.worker.run(local, items)
                    enqueue(found)
                    if missing:
                        await self._fetch_nodes(missing, n, misses, enqueue, keep, queue)
                finally:
                    busy -= 1
                    self._publish(pivot)
                    if not queue and busy == 0:
                        done.set()
                        wake.set()

        async with trio.open_nursery() as nursery:
            for n in range(IN_FLIGHT):
                nursery.start_soon(fetcher, n)
            await done.wait()
            nursery.cancel_scope.cancel()

    async def _fetch_nodes(self, items: list[tuple[bytes, int]], n: int, misses: dict[bytes, int],
                           enqueue: Any, keep: Any, queue: collections.deque[tuple[bytes, int]]) -> None:
        """Ask one peer for ``items``; store and walk what it serves, put back what it lacks."""
        peers = [p for p in self.host.peers if not self.host.is_banned(p)]
        if not peers:
            await trio.sleep(0.5)
            queue.extend(items)
            return
        peer = peers[(n + self.pulled) % len(peers)]
        try:
            answer = await self._request_nodes(peer, [h for h, _ in items])
        except WireError as e:
            await self.host.ban(peer, f"state sync: {e}")
            queue.extend(items)
            return
        except PeerError as e:
            log.info("state sync: nodes from %s failed: %s", peer, e)
            queue.extend(items)
            await trio.sleep(0.2)
            return
        if len(answer) > len(items):
            await self.host.ban(peer, "state sync: more nodes than asked")
            queue.extend(items)
            return
        served, values, lacking = [], [], list(items[len(answer):])
        for (h, kind), value in zip(items, answer, strict=False):
            if not value:
                lacking.append((h, kind))
            elif keccak(value) != h:
                await self.host.ban(peer, f"state sync: a node that does not hash to 0x{h.hex()}")
                queue.extend(items)
                return
            else:
                served.append((h, kind))
                values.append(value)
        if served:
            found = await self.worker.run(keep, served, values)
            self.pulled += len(served)
            self._tick_bar(len(served))
            enqueue(found)
        for h, _kind in lacking:
            misses[h] = misses.get(h, 0) + 1
            if misses[h] > MAX_MISSES:
                raise StateSyncError(f"no peer serves state node 0x{h.hex()}")
        if lacking:
            queue.extend(lacking)
            await trio.sleep(0.1)

    async def _request_nodes(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        """``peer``'s answer to a request for ``hashes``: one frame per hash, at most as many
        (:class:`WireError` on a malformed answer, :class:`PeerError` when it does not answer)."""
        stream = await self.host.open_stream(peer, STATE_PROTOCOL)
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                await stream.write(encode_frame(rlp.encode(hashes)))
                reader = FrameReader(stream)
                out: list[bytes] = []
                while (frame := await reader.next()) is not None:
                    if len(out) >= len(hashes):
                        raise WireError("more nodes than asked")
                    out.append(frame)
                return out
        except trio.TooSlowError:
            raise PeerError(f"no state nodes within {REQUEST_TIMEOUT}s") from None
        except (WireError, trio.Cancelled):
            raise
        except Exception as e:
            raise PeerError(f"state nodes: {type(e).__name__}: {e}") from None
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await stream.close()
                except Exception:
                    pass

    # -- progress -------------------------------------------------------------------------------

    def _publish(self, pivot: int) -> None:
        self.status.syncing = {"startingBlock": 0, "currentBlock": 0, "highestBlock": pivot,
                               "pulledStates": self.pulled, "knownStates": max(self.known, self.pulled)}

    def _open_bar(self, pivot: int) -> None:
        self._publish(pivot)
        if self.progress_bar:
            from node.progress import Progress

            self._bar = Progress(f"state of block {pivot}", "node", stream=sys.stderr)

    def _tick_bar(self, n: int) -> None:
        if self._bar is not None:
            self._bar.move_to(self._bar.n + n, max(self.known, self.pulled))

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

"""The chain core of a node: ledger, transaction pool, block production, dev controls,
filters and the event feed, all confined to the node's one chain worker thread.

py-evm is not thread-safe, so nothing here is either: the async side reaches the core
only through :class:`node.worker.ChainWorker`, which runs every call on one thread.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI
from eth_account import Account
from eth_utils import to_canonical_address

import ai_precompiles
from ai_precompiles.addresses import DATANETS
from consensus import SingleValidator
from node import metrics
from node.blobstore import BlobStore
from node.rpc.errors import BlockOutOfRange, ResourceNotFound, ServerError
from node.rpc.format import d, format_header, format_log
from node.rpc.params import BlockRef, LogFilter
from node.txpool import AccountView, PoolError, TxPool
from state import BuiltBlock, Ledger, TransactionError, decode_transaction
from state.native import DataContributionTransaction
from state.vm import LedgerVM

_CONTRIBUTE = ai_precompiles.MODULES["Datanets"].abi.by_name["contribute"]
#: How long a filter lives without being polled (geth: 5 minutes).
FILTER_TIMEOUT = 300.0
#: Most blocks one eth_getLogs may scan.
MAX_LOG_RANGE = 10_000
#: Most logs one eth_getLogs may return.
MAX_LOGS = 10_000


@dataclass
class Filter:
    kind: str
    """'block', 'pending' or 'logs'."""
    criteria: LogFilter | None = None
    next_block: int = 0
    """First block number not yet reported (block and log filters)."""
    pending_hashes: list[bytes] = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Snapshot:
    head_hash: bytes
    time_offset: int
    state_edit: bytes | None
    """The head's dev-edited state root at snapshot time (anvil_setBalance & co.)."""


class ChainCore:
    """Everything a node does to its chain, on one thread."""

    def __init__(
        self,
        ledger: Ledger,
        dev_keys: Iterable[bytes] = (),
        coinbase: bytes = b"\x00" * 20,
        automine: bool = True,
        validator: SingleValidator | None = None,
    ) -> None:
        self.ledger = ledger
        self.validator = validator
        self.pool = TxPool(ledger.chain_id)
        self.blobs = BlobStore(ledger.store)
        #: Refuse a direct contribution whose bytes are not in this node's blob store.
        self.require_blobs = True
        self.coinbase = coinbase
        self.automine = automine
        self.time_offset = 0
        self.next_timestamp: int | None = None
        #: evm_increaseTime's promise: the next block is at least this late.
        self.min_next_timestamp: int | None = None
        self._head_cache: tuple[bytes, Any, int] | None = None
        self.dev_keys: dict[bytes, bytes] = {}
        for key in dev_keys:
            self.dev_keys[bytes(to_canonical_address(Account.from_key(key).address))] = key
        self.filters: dict[int, Filter] = {}
        self._next_filter_id = 1
        self.snapshots: dict[int, Snapshot] = {}
        self._next_snapshot_id = 1
        #: Accounts eth_sendTransaction may send from without their key (dev only).
        self.impersonated: set[bytes] = set()
        #: anvil_autoImpersonateAccount: every account is impersonated.
        self.auto_impersonate = False
        #: Events for subscriptions, drained by the async side: (kind, payload).
        self.events: collections.deque[tuple[str, Any]] = collections.deque()
        metrics.HEAD.set(ledger.head.block_number)

    # -- time -----------------------------------------------------------------------------

    def now(self) -> int:
        return int(time.time()) + self.time_offset

    def block_timestamp(self) -> int:
        head = self.ledger.head
        if self.next_timestamp is not None:
            ts, self.next_timestamp = self.next_timestamp, None
            return max(ts, head.timestamp + 1)
        return max(self.now(), head.timestamp + 1, self.min_next_timestamp or 0)

    def increase_time(self, seconds: int) -> int:
        """Move the clock forward: the next block is at least ``seconds`` after the head (or
        after the previous promise), even when blocks have run ahead of the wall clock."""
        self.time_offset += seconds
        base = self.min_next_timestamp if self.min_next_timestamp is not None else self.ledger.head.timestamp
        self.min_next_timestamp = base + seconds
        return self.time_offset

    # -- transactions ---------------------------------------------------------------------

    def _head_view(self) -> tuple[Any, int]:
        """The head's state and the next block's base fee, built once per head: admitting
        a transaction reads both, and rebuilding them per transaction dominated admission."""
        head = self.ledger.head
        key = self.ledger.state_header(head).state_root + head.hash
        if self._head_cache is None or self._head_cache[0] != key:
            child = LedgerVM.create_header_from_parent(head, timestamp=head.timestamp + 1)
            self._head_cache = (key, self.ledger.state_at(head), int(child.base_fee_per_gas or 0))
        return self._head_cache[1], self._head_cache[2]

    def account_nonce(self, address: bytes) -> int:
        return int(self._head_view()[0].get_nonce(address))

    def account(self, address: bytes) -> AccountView:
        state, _ = self._head_view()
        return AccountView(state.get_nonce(address), state.get_balance(address))

    def next_base_fee(self) -> int:
        return self._head_view()[1]

    def submit_raw(self, raw: bytes) -> bytes:
        """Decode, admit and (under automine) mine one raw transaction; returns its hash."""
        try:
            tx = decode_transaction(raw)
        except TransactionError as e:
            raise ServerError(str(e)) from None
        return self.submit(tx)

    def submit(self, tx: SignedTransactionAPI) -> bytes:
        head = self.ledger.head
        if self.require_blobs:
            self._check_contribution_blob(tx)
        try:
            executable = self.pool.add(
                tx, self.account(tx.sender), self.next_base_fee(), head.gas_limit
            )
        except PoolError as e:
            metrics.TX_REJECTED.inc()
            raise ServerError(str(e)) from None
        metrics.TX_ACCEPTED.inc()
        self._publish_pending(tx)
        for f in self.filters.values():
            if f.kind == "pending":
                f.pending_hashes.append(tx.hash)
        if self.automine and executable:
            self.mine()
        self._update_pool_metrics()
        return bytes(tx.hash)

    def _check_contribution_blob(self, tx: SignedTransactionAPI) -> None:
        """A contribution sent directly (native type or a call to Datanets.contribute) must
        name bytes this node holds, with their true size: the chain keeps only the hash, so
        this is where a hash that matches no upload is caught. Calls made from inside a
        contract cannot be inspected here; their datanet's curators are the check."""
        fields = contribution_fields(tx)
        if fields is None:
            return
        content_hash, size = fields
        stored = self.blobs.size(content_hash)
        if stored is None:
            raise ServerError(
                f"contribution refused: no blob with content hash {d(content_hash)} in the blob "
                "store; upload the bytes with ai_putBlob first"
            )
        if stored != size:
            raise ServerError(f"contribution refused: size {size} does not match the blob's {stored} bytes")

    def _publish_pending(self, tx: SignedTransactionAPI) -> None:
        # Formatted by the subscriber side, and only for subscribers that want full objects.
        self.events.append(("newPendingTransactions", tx))

    def _update_pool_metrics(self) -> None:
        metrics.POOL_PENDING.set(self.pool.pending_count)
        metrics.POOL_QUEUED.set(self.pool.queued_count)

    # -- blocks ---------------------------------------------------------------------------

    def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """Build one block from the pool (the whole pool that fits) and commit it."""
        head = self.ledger.head
        txs = self.pool.select(head.gas_limit)
        ts = timestamp if timestamp is not None else self.block_timestamp()
        if ts <= head.timestamp:
            raise ServerError(
                f"timestamp error: {ts} is lower than or equal to previous block's timestamp {head.timestamp}"
            )
        started = time.perf_counter()
        seal = None
        if self.validator is not None:
            validator = self.validator
            seal = lambda height, block_hash: validator.commit(height, block_hash).encode()  # noqa: E731
        built = self.ledger.build_block(txs, ts, self.coinbase, seal)
        self.min_next_timestamp = None
        metrics.BLOCK_SECONDS.observe(time.perf_counter() - started)
        metrics.BLOCK_TXS.observe(len(built.block.transactions))
        metrics.HEAD.set(built.block.header.block_number)
        self.pool.remove({tx.hash for tx in built.block.transactions})
        self.pool.remove({tx.hash for tx, _ in built.rejected})
        self._after_head_change()
        self._publish_block(built.block, built.receipts)
        return built

    def _after_head_change(self) -> None:
        if len(self.pool):
            state, _ = self._head_view()
            self.pool.reset(state.get_nonce)
        self._update_pool_metrics()

    def _publish_block(self, block: BlockAPI, receipts: tuple[Any, ...] | None = None) -> None:
        header = block.header
        self.events.append(("newHeads", format_header(header)))
        logs = self.block_logs(block, receipts=receipts)
        if logs:
            self.events.append(("logs", logs))

    def block_logs(
        self, block: BlockAPI, removed: bool = False, receipts: tuple[Any, ...] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        log_index = 0
        if receipts is None:
            receipts = self.ledger.receipts(block)
        for i, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            for log in receipt.logs:
                out.append(format_log(log, block.header, tx, i, log_index, removed))
                log_index += 1
        return out

    def resolve(self, ref: BlockRef) -> BlockHeaderAPI:
        """The header a block reference names; -32000 'header not found' when none."""
        if ref.block_hash is not None:
            header = self.ledger.header_by_hash(ref.block_hash)
            if header is None:
                raise ResourceNotFound(f"header for hash {d(ref.block_hash)} not found")
            return header
        if ref.tag == "earliest":
            number = 0
        elif ref.tag is not None:
            return self.ledger.head
        else:
            number = ref.number or 0
        header = self.ledger.header_by_number(number)
        if header is None:
            head = int(self.ledger.head.block_number)
            if number > head:
                raise BlockOutOfRange(f"BlockOutOfRangeError: block height is {head} but requested was {number}")
            raise ServerError("header not found")
        return header

    def block_number_of(self, ref: BlockRef) -> int:
        """The number a log range's bound names: tags other than ``earliest`` are the head (a
        committed block is final); a number is taken as given, even past the head."""
        if ref.number is not None:
            return ref.number
        return int(self.resolve(ref).block_number)

    # -- dev controls ---------------------------------------------------------------------

    def snapshot(self) -> int:
        sid = self._next_snapshot_id
        self._next_snapshot_id += 1
        head = self.ledger.head
        self.snapshots[sid] = Snapshot(head.hash, self.time_offset, self.ledger.state_edit(head.hash))
        return sid

    def revert(self, sid: int) -> bool:
        snap = self.snapshots.get(sid)
        if snap is None:
            return False
        # anvil: a snapshot is used up by its revert, and so are all later ones.
        for later in [s for s in self.snapshots if s >= sid]:
            del self.snapshots[later]
        self.ledger.rewind(snap.head_hash)
        self.ledger.restore_state_edit(snap.head_hash, snap.state_edit)
        self.time_offset = snap.time_offset
        self.next_timestamp = None
        self.min_next_timestamp = None
        self._after_head_change()
        return True

    def reset(self) -> None:
        """Back to the dev chain's genesis, as anvil_reset: blocks, pool, filters, snapshots
        and the clock go; impersonations stay (as in anvil)."""
        genesis = self.ledger.header_by_number(0)
        assert genesis is not None
        self.ledger.rewind(genesis.hash)
        self.ledger.restore_state_edit(genesis.hash, None)
        self.pool = TxPool(self.ledger.chain_id)
        self.filters.clear()
        self.snapshots.clear()
        self.time_offset = 0
        self.next_timestamp = None
        self.min_next_timestamp = None
        # anvil keeps impersonations across a reset; so do we.
        self._head_cache = None
        self._after_head_change()

    # -- logs and filters -----------------------------------------------------------------

    def logs(self, criteria: LogFilter, from_number: int | None = None, to_number: int | None = None) -> list[dict[str, Any]]:
        if criteria.block_hash is not None:
            header = self.ledger.header_by_hash(criteria.block_hash)
            if header is None:
                raise ResourceNotFound("unknown block")
            headers = [header]
        else:
            start = from_number if from_number is not None else self.block_number_of(criteria.from_block)
            end = to_number if to_number is not None else self.block_number_of(criteria.to_block)
            end = min(end, int(self.ledger.head.block_number))
            if start > end:
                return []
            if end - start + 1 > MAX_LOG_RANGE:
                raise ServerError(f"block range greater than {MAX_LOG_RANGE} max")
            headers = [h for n in range(start, end + 1) if (h := self.ledger.header_by_number(n))]
        out: list[dict[str, Any]] = []
        for header in headers:
            if header.bloom == 0:
                continue
            block = self.ledger.block(header)
            for log in self.block_logs(block):
                if _matches(log, criteria):
                    out.append(log)
                    if len(out) > MAX_LOGS:
                        raise ServerError(f"query returned more than {MAX_LOGS} results")
        return out

    def new_filter(self, kind: str, criteria: LogFilter | None = None) -> int:
        self._expire_filters()
        fid = self._next_filter_id
        self._next_filter_id += 1
        next_block = int(self.ledger.head.block_number) + 1
        if criteria is not None and criteria.from_block.number is not None:
            next_block = criteria.from_block.number
        self.filters[fid] = Filter(kind, criteria, next_block)
        return fid

    def filter_changes(self, fid: int) -> list[Any]:
        f = self.filters.get(fid)
        if f is None:
            raise ServerError("filter not found")
        f.last_poll = time.monotonic()
        head = int(self.ledger.head.block_number)
        if f.kind == "pending":
            hashes, f.pending_hashes = f.pending_hashes, []
            return [d(h) for h in hashes]
        if f.kind == "block":
            out = []
            for n in range(f.next_block, head + 1):
                header = self.ledger.header_by_number(n)
                if header is not None:
                    out.append(d(header.hash))
            f.next_block = head + 1
            return out
        assert f.criteria is not None
        end = head
        if f.criteria.to_block.number is not None:
            end = min(end, f.criteria.to_block.number)
        logs = self.logs(f.criteria, f.next_block, end) if f.next_block <= end else []
        f.next_block = max(f.next_block, head + 1)
        return logs

    def filter_logs(self, fid: int) -> list[dict[str, Any]]:
        f = self.filters.get(fid)
        if f is None or f.kind != "logs" or f.criteria is None:
            raise ServerError("filter not found")
        f.last_poll = time.monotonic()
        return self.logs(f.criteria)

    def uninstall_filter(self, fid: int) -> bool:
        return self.filters.pop(fid, None) is not None

    def _expire_filters(self) -> None:
        cutoff = time.monotonic() - FILTER_TIMEOUT
        for fid in [fid for fid, f in self.filters.items() if f.last_poll < cutoff]:
            del self.filters[fid]


def contribution_fields(tx: SignedTransactionAPI) -> tuple[bytes, int] | None:
    """(content hash, size) when ``tx`` directly records a contribution, else None."""
    inner = getattr(tx, "_inner", None)
    if isinstance(inner, DataContributionTransaction):
        return bytes(inner.content_hash), int(inner.size)
    if tx.to == DATANETS and tx.data[:4] == _CONTRIBUTE.selector:
        try:
            _, content_hash, size, _, _ = _CONTRIBUTE.decode_args(tx.data[4:])
        except Exception:
            return None  # the precompile reverts it with the decoding error
        return bytes(content_hash), int(size)
    return None


def _matches(log: dict[str, Any], criteria: LogFilter) -> bool:
    if criteria.addresses and log["address"] not in {d(a) for a in criteria.addresses}:
        return False
    topics = log["topics"]
    for position, wanted in enumerate(criteria.topics):
        if wanted is None:
            continue
        if position >= len(topics) or topics[position] not in {d(t) for t in wanted}:
            return False
    return True


def matches(log: dict[str, Any], criteria: LogFilter) -> bool:
    """Whether a formatted log satisfies filter ``criteria`` (for subscriptions)."""
    return _matches(log, criteria)

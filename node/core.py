"""The chain core of a node: ledger, transaction pool, block production, dev controls,
filters and the event feed, all confined to the node's one chain worker thread.

py-evm is not thread-safe, so nothing here is either: the async side reaches the core
only through :class:`node.worker.ChainWorker`, which runs every call on one thread. The
one exception is the read worker beside it, which may call only the methods that read
committed state and no mutable field of the core: :meth:`ChainCore.call`,
:meth:`ChainCore.estimate_gas`, :meth:`ChainCore.logs`, :meth:`ChainCore.resolve` and
:meth:`ChainCore.filter_logs` (which hands its bookkeeping back through a deque).

Errors raised here are the node's own (``node.errors``); the RPC edge maps them to codes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from node.errors import (
    ExecutionTimeout,
    InvalidInput,
    LimitExceeded,
    NotAvailable,
    NotFound,
    Refused,
    UnknownBlock,
    UnknownFutureBlock,
)
from node.rpc.format import format_header, format_log, hex_data
from node.rpc.params import BlockRef, LogFilter
from node.txpool import AccountView, PoolConfig, PoolError, TxPool
from node.validators import ValidatorSets
from state import (
    AccountOverride,
    BuiltBlock,
    CallResult,
    CallTimeout,
    Ledger,
    TransactionError,
    decode_transaction,
)
from state.native import DataContributionTransaction
from state.vm import LedgerVM, call_deadline

log = logging.getLogger("ailedger")

_CONTRIBUTE = ai_precompiles.MODULES["Datanets"].abi.by_name["contribute"]
#: How long a filter lives without being polled (geth: 5 minutes).
FILTER_TIMEOUT = 300.0
#: Most blocks one eth_getLogs may scan.
MAX_LOG_RANGE = 10_000
#: Most logs one eth_getLogs may return.
MAX_LOGS = 10_000
#: Most installed filters on one node, and per client (its IP address).
MAX_FILTERS = 10_000
MAX_FILTERS_PER_CLIENT = 500
#: Most pending-transaction hashes kept for pending filters; a filter polled less often
#: than this many transactions arrive misses the oldest (they are still in the pool).
PENDING_LOG_SIZE = 10_000
#: Most block hashes one eth_getFilterChanges returns; the rest come with the next poll.
MAX_FILTER_BLOCKS = 10_000
#: Most blocks one evm_mine / anvil_mine may build (anvil's and hardhat's scripts mine
#: thousands); the RPC layer builds them a few per job, so others interleave.
MAX_MINE_BLOCKS = 10_000

#: A listener for chain events (kind, payload): 'newHeads', 'logs',
#: 'newPendingTransactions'. Called on the chain thread; must not block.
EventListener = Callable[[str, Any], None]


@dataclass
class Filter:
    kind: str
    """'block', 'pending' or 'logs'."""
    client: str = ""
    """Who installed it (the caller's address), for the per-client cap."""
    criteria: LogFilter | None = None
    next_block: int = 0
    """First block number not yet reported (block and log filters)."""
    next_pending: int = 0
    """Sequence number of the first pending transaction not yet reported."""
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
        dev: bool = False,
        pool_config: PoolConfig | None = None,
        rpc_gas_cap: int | None = None,
        rpc_evm_timeout: float | None = 5.0,
    ) -> None:
        self.ledger = ledger
        #: A dev chain (``ailedger dev``): state edits, snapshots and rewinds allowed.
        #: On any other node a committed block is final and state changes only by blocks.
        self.dev = dev
        #: Most gas an eth_call / eth_estimateGas may use (geth's --rpc.gascap); never
        #: more than the block gas limit.
        self.rpc_gas_cap = rpc_gas_cap
        #: Wall-clock budget of one eth_call / eth_estimateGas, seconds (--rpc.evmtimeout).
        self.rpc_evm_timeout = rpc_evm_timeout
        self.validator = validator
        self.pool = TxPool(ledger.chain_id, pool_config or PoolConfig())
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
        #: Installed filters, least recently polled first (so expiry is O(expired)).
        self.filters: collections.OrderedDict[int, Filter] = collections.OrderedDict()
        self._filters_per_client: collections.Counter[str] = collections.Counter()
        #: Filters polled from the read worker (eth_getFilterLogs), to move to the back
        #: of ``filters`` on the chain thread (deque appends are thread-safe).
        self._touched: collections.deque[int] = collections.deque()
        self._next_filter_id = 1
        #: (sequence number, hash) of recent pending transactions, shared by all pending
        #: filters: a new transaction costs O(1) whatever the number of filters.
        self._pending_log: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=PENDING_LOG_SIZE)
        self._pending_seq = 0
        self.snapshots: dict[int, Snapshot] = {}
        self._next_snapshot_id = 1
        #: Receives chain events (the RPC server's subscriptions); None drops them.
        self.listener: EventListener | None = None
        #: Called on this thread with ("transaction", tx) for each admitted transaction and
        #: ("block", block) for each block built here: the network layer gossips them.
        self.listeners: list[Callable[[str, Any], None]] = []
        #: The validator set of every height, on a chain run by BFT consensus (several genesis
        #: validators); None on a single-validator chain, whose commits the genesis set signs.
        self.validator_sets: ValidatorSets | None = None
        #: Called on this thread with the new head's number whenever a block from elsewhere
        #: (a peer, or BFT consensus) becomes the head (the consensus reactor follows it).
        self.head_listeners: list[Callable[[int], None]] = []
        #: False on a follower: its blocks come from the network, never from itself.
        self.produces_blocks = True
        #: While syncing: startingBlock/currentBlock/highestBlock for eth_syncing.
        self.sync_status: dict[str, int] | None = None
        #: Connected peers, for net_peerCount.
        self.peer_count = 0
        #: Accounts eth_sendTransaction may send from without their key (dev only).
        self.impersonated: set[bytes] = set()
        #: anvil_autoImpersonateAccount: every account is impersonated.
        self.auto_impersonate = False
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
        self._require_dev("evm_increaseTime")
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
            raise Refused(str(e)) from None
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
            raise Refused(str(e)) from None
        metrics.TX_ACCEPTED.inc()
        self._publish_pending(tx)
        if self.automine and executable and self.produces_blocks:
            built = self.mine()
            if tx.hash in built.faulted:
                reason = next(r for t, r in built.rejected if t.hash == tx.hash)
                raise Refused(f"transaction dropped: {reason}")
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
            raise Refused(
                f"contribution refused: no blob with content hash {hex_data(content_hash)} in the blob "
                "store; upload the bytes with ai_putBlob first"
            )
        if stored != size:
            raise Refused(f"contribution refused: size {size} does not match the blob's {stored} bytes")

    def _publish_pending(self, tx: SignedTransactionAPI) -> None:
        self._pending_seq += 1
        self._pending_log.append((self._pending_seq, bytes(tx.hash)))
        # Formatted by the subscriber side, and only for subscribers that want full objects.
        self._emit("newPendingTransactions", tx)
        for listener in self.listeners:
            listener("transaction", tx)

    def _emit(self, kind: str, payload: Any) -> None:
        if self.listener is not None:
            self.listener(kind, payload)

    def _update_pool_metrics(self) -> None:
        metrics.POOL_PENDING.set(self.pool.pending_count)
        metrics.POOL_QUEUED.set(self.pool.queued_count)

    # -- blocks ---------------------------------------------------------------------------

    def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """Build one block from the pool (the whole pool that fits) and commit it.

        A transaction the block builder leaves out (invalid at its turn, or its execution
        failed inside the node) is dropped from the pool with a log line, so that one bad
        transaction cannot stop block production.
        """
        if not self.produces_blocks:
            raise Refused("this node follows the chain from its peers; it does not produce blocks")
        head = self.ledger.head
        # Every executable transaction, best first: the builder counts the gas each really
        # uses, so one that declares the whole block does not keep the others out.
        txs = self.pool.select(head.gas_limit, self.next_base_fee(), budget=False)
        ts = timestamp if timestamp is not None else self.block_timestamp()
        if ts <= head.timestamp:
            raise Refused(
                f"timestamp error: {ts} is lower than or equal to previous block's timestamp {head.timestamp}"
            )
        self.blobs.expire()  # each block is a tick of the idle-upload timer
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
        for tx, reason in built.rejected:
            log.warning("dropped transaction 0x%s from the pool: %s", tx.hash.hex(), reason)
        self.pool.remove({tx.hash for tx, _ in built.rejected})
        self._after_head_change()
        self._publish_block(built.block, built.receipts)
        for listener in self.listeners:
            listener("block", built.block)
        return built

    def adopt_block(self, block: BlockAPI) -> None:
        """Bring the pool, metrics and subscribers up to a block imported from a peer."""
        metrics.HEAD.set(block.header.block_number)
        self.pool.remove({tx.hash for tx in block.transactions})
        self._after_head_change()
        self._publish_block(block)
        for listener in self.head_listeners:
            listener(int(block.header.block_number))

    def _after_head_change(self) -> None:
        if len(self.pool):
            state, _ = self._head_view()
            self.pool.reset(state.get_nonce, state.get_balance, self.ledger.head.gas_limit)
        self._update_pool_metrics()

    def _publish_block(self, block: BlockAPI, receipts: tuple[Any, ...] | None = None) -> None:
        header = block.header
        if self.listener is None:
            return
        self._emit("newHeads", format_header(header))
        logs = self.block_logs(block, receipts=receipts)
        if logs:
            self._emit("logs", logs)

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
                raise NotFound(f"header for hash {hex_data(ref.block_hash)} not found")
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
                raise UnknownFutureBlock(f"BlockOutOfRangeError: block height is {head} but requested was {number}")
            raise UnknownBlock("header not found")
        return header

    def block_number_of(self, ref: BlockRef) -> int:
        """The number a log range's bound names: tags other than ``earliest`` are the head (a
        committed block is final); a number is taken as given, even past the head."""
        if ref.number is not None:
            return ref.number
        return int(self.resolve(ref).block_number)

    # -- read-only execution --------------------------------------------------------------

    def _call_limits(self, header: BlockHeaderAPI) -> tuple[int, float | None]:
        cap = int(header.gas_limit)
        if self.rpc_gas_cap is not None:
            cap = min(cap, self.rpc_gas_cap)
        deadline = None if not self.rpc_evm_timeout else time.monotonic() + self.rpc_evm_timeout
        return cap, deadline

    @contextlib.contextmanager
    def execution_budget(self) -> Iterator[None]:
        """Run read-only executions other than eth_call (traces, simulations, access
        lists) under the same time budget (--rpc-evmtimeout); a run past it is a
        :class:`ExecutionTimeout`."""
        deadline = None if not self.rpc_evm_timeout else time.monotonic() + self.rpc_evm_timeout
        try:
            with call_deadline(deadline):
                yield
        except CallTimeout:
            raise self._timeout() from None

    def _timeout(self) -> ExecutionTimeout:
        return ExecutionTimeout(f"execution aborted (timeout = {self.rpc_evm_timeout:g}s)")

    def call(
        self, header: BlockHeaderAPI, sender: bytes, to: bytes | None, data: bytes, value: int,
        gas: int | None, overrides: dict[bytes, AccountOverride] | None = None,
        authorizations: Sequence[Any] | None = None,
    ) -> CallResult:
        """eth_call: run a message on ``header``'s state under the node's gas cap and time
        budget. Safe to run off the chain thread: it only reads committed state."""
        cap, deadline = self._call_limits(header)
        try:
            return self.ledger.execute_call(
                header, sender, to, data, value, min(gas or cap, cap), overrides, deadline, authorizations
            )
        except CallTimeout:
            raise self._timeout() from None

    def estimate_gas(
        self, header: BlockHeaderAPI, sender: bytes, to: bytes | None, data: bytes, value: int,
        gas: int | None = None, overrides: dict[bytes, AccountOverride] | None = None,
        authorizations: Sequence[Any] | None = None,
    ) -> tuple[int, CallResult]:
        """eth_estimateGas under the gas cap; the time budget bounds the whole search."""
        cap, deadline = self._call_limits(header)
        try:
            return self.ledger.estimate_gas(
                header, sender, to, data, value, min(gas or cap, cap), overrides, deadline, authorizations
            )
        except CallTimeout:
            raise self._timeout() from None

    # -- dev controls ---------------------------------------------------------------------

    def _require_dev(self, what: str) -> None:
        """Dev controls rewrite state and history; only a dev chain has them."""
        if not self.dev:
            raise NotAvailable(f"{what} is a dev-chain control; this node serves a real chain")

    def mine_blocks(self, count: int, timestamp: int | None = None) -> None:
        """Build ``count`` blocks (evm_mine); the caller splits large counts into jobs."""
        self._require_dev("mining on demand")
        if count > MAX_MINE_BLOCKS:
            raise InvalidInput(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks at once")
        for i in range(count):
            self.mine(timestamp if i == 0 else None)

    def set_automine(self, on: bool) -> None:
        self._require_dev("evm_setAutomine")
        self.automine = on

    def set_next_timestamp(self, timestamp: int) -> None:
        """evm_setNextBlockTimestamp: the next block carries ``timestamp``."""
        self._require_dev("evm_setNextBlockTimestamp")
        head = self.ledger.head
        if timestamp <= head.timestamp:
            raise Refused(
                f"timestamp error: {timestamp} is lower than or equal to previous block's timestamp {head.timestamp}"
            )
        self.next_timestamp = timestamp
        self.time_offset = timestamp - int(time.time())

    def edit_state(
        self, address: bytes, balance: int | None = None, nonce: int | None = None,
        code: bytes | None = None, storage: dict[int, int] | None = None,
    ) -> None:
        """anvil_setBalance & co.: change an account at the head without a block."""
        self._require_dev("editing state")
        self.ledger.edit_state(address=address, balance=balance, nonce=nonce, code=code, storage=storage)
        self.pool.reset(self.account_nonce)

    def snapshot(self) -> int:
        self._require_dev("evm_snapshot")
        sid = self._next_snapshot_id
        self._next_snapshot_id += 1
        head = self.ledger.head
        self.snapshots[sid] = Snapshot(head.hash, self.time_offset, self.ledger.state_edit(head.hash))
        return sid

    def revert(self, sid: int) -> bool:
        # The one way history rewinds: never on a node whose committed blocks are final.
        self._require_dev("evm_revert")
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
        self._require_dev("anvil_reset")
        self.ledger.rewind(genesis.hash)
        self.ledger.restore_state_edit(genesis.hash, None)
        self.pool = TxPool(self.ledger.chain_id, self.pool.config)
        self.filters.clear()
        self._filters_per_client.clear()
        self._pending_log.clear()
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
                raise NotFound("unknown block")
            headers = [header]
        else:
            start = from_number if from_number is not None else self.block_number_of(criteria.from_block)
            end = to_number if to_number is not None else self.block_number_of(criteria.to_block)
            end = min(end, int(self.ledger.head.block_number))
            if start > end:
                return []
            if end - start + 1 > MAX_LOG_RANGE:
                raise Refused(f"block range greater than {MAX_LOG_RANGE} max")
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
                        raise Refused(f"query returned more than {MAX_LOGS} results")
        return out

    def new_filter(self, kind: str, criteria: LogFilter | None = None, client: str = "") -> int:
        """Install a filter; O(1) apart from expiring filters that timed out."""
        self.expire_filters()
        if len(self.filters) >= MAX_FILTERS:
            raise LimitExceeded(f"too many filters: this node holds at most {MAX_FILTERS}")
        if self._filters_per_client[client] >= MAX_FILTERS_PER_CLIENT:
            raise LimitExceeded(
                f"too many filters: at most {MAX_FILTERS_PER_CLIENT} per client; uninstall some "
                f"or let them expire ({FILTER_TIMEOUT:g} s unpolled)"
            )
        fid = self._next_filter_id
        self._next_filter_id += 1
        next_block = int(self.ledger.head.block_number) + 1
        if criteria is not None and criteria.from_block.number is not None:
            next_block = criteria.from_block.number
        self.filters[fid] = Filter(kind, client, criteria, next_block, self._pending_seq + 1)
        self._filters_per_client[client] += 1
        metrics.FILTERS.set(len(self.filters))
        return fid

    def _poll(self, fid: int) -> Filter:
        f = self.filters.get(fid)
        if f is None:
            raise Refused("filter not found")
        f.last_poll = time.monotonic()
        self.filters.move_to_end(fid)
        return f

    def filter_changes(self, fid: int) -> list[Any]:
        """What a filter saw since its last poll, at most one page (the rest next poll)."""
        f = self._poll(fid)
        head = int(self.ledger.head.block_number)
        if f.kind == "pending":
            log = self._pending_log
            if not log or f.next_pending > log[-1][0]:
                return []
            skip = max(0, f.next_pending - log[0][0])
            out = [hex_data(h) for _, h in itertools.islice(log, skip, None)]
            f.next_pending = log[-1][0] + 1
            return out
        if f.kind == "block":
            last = min(head, f.next_block + MAX_FILTER_BLOCKS - 1)
            hashes = []
            for n in range(f.next_block, last + 1):
                header = self.ledger.header_by_number(n)
                if header is not None:
                    hashes.append(hex_data(header.hash))
            f.next_block = max(f.next_block, last + 1)
            return hashes
        assert f.criteria is not None
        end = head
        if f.criteria.to_block.number is not None:
            end = min(end, f.criteria.to_block.number)
        end = min(end, f.next_block + MAX_LOG_RANGE - 1)
        logs = self.logs(f.criteria, f.next_block, end) if f.next_block <= end else []
        f.next_block = max(f.next_block, end + 1)
        return logs

    def filter_logs(self, fid: int) -> list[dict[str, Any]]:
        """eth_getFilterLogs. Runs on the read worker (it may scan MAX_LOG_RANGE blocks):
        it only reads the filter table and leaves the reordering to the chain thread."""
        f = self.filters.get(fid)
        if f is None or f.kind != "logs" or f.criteria is None:
            raise Refused("filter not found")
        f.last_poll = time.monotonic()
        self._touched.append(fid)
        return self.logs(f.criteria)

    def uninstall_filter(self, fid: int) -> bool:
        f = self.filters.pop(fid, None)
        if f is None:
            return False
        self._forget_client(f.client)
        return True

    def _forget_client(self, client: str) -> None:
        metrics.FILTERS.set(len(self.filters))
        self._filters_per_client[client] -= 1
        if self._filters_per_client[client] <= 0:
            del self._filters_per_client[client]

    def expire_filters(self, now: float | None = None) -> int:
        """Drop filters unpolled for FILTER_TIMEOUT; O(number dropped). Runs on a timer
        and before each install. Returns how many were dropped."""
        while self._touched:
            fid = self._touched.popleft()
            if fid in self.filters:
                self.filters.move_to_end(fid)
        cutoff = (time.monotonic() if now is None else now) - FILTER_TIMEOUT
        dropped = 0
        while self.filters:
            fid, f = next(iter(self.filters.items()))
            if f.last_poll >= cutoff:
                break
            del self.filters[fid]
            self._forget_client(f.client)
            dropped += 1
        return dropped


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


@functools.lru_cache(maxsize=256)
def _wanted(criteria: LogFilter) -> tuple[frozenset[str], tuple[frozenset[str] | None, ...]]:
    """A filter's addresses and topics as sets of the formatted hex, built once per
    filter rather than once per log (a filter may name 1,000 of each)."""
    return (
        frozenset(hex_data(a) for a in criteria.addresses),
        tuple(None if t is None else frozenset(hex_data(x) for x in t) for t in criteria.topics),
    )


def _matches(log: dict[str, Any], criteria: LogFilter) -> bool:
    addresses, topic_sets = _wanted(criteria)
    if addresses and log["address"] not in addresses:
        return False
    topics = log["topics"]
    for position, wanted in enumerate(topic_sets):
        if wanted is None:
            continue
        if position >= len(topics) or topics[position] not in wanted:
            return False
    return True


def matches(log: dict[str, Any], criteria: LogFilter) -> bool:
    """Whether a formatted log satisfies filter ``criteria`` (for subscriptions)."""
    return _matches(log, criteria)

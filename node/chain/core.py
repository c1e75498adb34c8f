"""The chain core of a node: ledger, transaction pool and blob store, admission of
transactions (nonces, fees, the contribution-blob rule), and the reads every other part makes
(block references, eth_call and gas estimates under the node's budgets). Blocks come in through
:mod:`node.chain.pipeline`; events go out through :attr:`ChainCore.events`.

py-evm is not thread-safe, so nothing here is either: the async side reaches the core
only through :class:`node.worker.ChainWorker`, which runs every call on one thread. The
one exception is the read worker beside it, which may call only the methods that read
committed state and no mutable field of the core: :meth:`ChainCore.call`,
:meth:`ChainCore.estimate_gas` and :meth:`ChainCore.resolve` (and the log queries of
``node.rpc.filters``, which read the ledger only).

Errors raised here are the node's own (``node.errors``); the RPC edge maps them to codes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI
from eth_account import Account
from eth_utils import to_canonical_address

import ai_precompiles
from ai_precompiles.addresses import DATANETS
from node import metrics
from node.blobstore import BlobStore
from node.chain.clock import Clock
from node.chain.events import ChainEvents, Origin, TransactionAdmitted
from node.chain.own_tx import sign_call, suggested_fees
from node.chain.reader import BlockRef
from node.errors import (
    ExecutionTimeout,
    NotFound,
    Refused,
    UnknownBlock,
    UnknownFutureBlock,
)
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
from state.native import DataContributionTransaction, native_payload
from state.vm import LedgerVM, call_deadline

log = logging.getLogger("ailedger")

_CONTRIBUTE = ai_precompiles.MODULES["Datanets"].abi.by_name["contribute"]
#: contributeBonded starts with contribute's arguments (datanetId, contentHash, size, ...).
_CONTRIBUTE_BONDED = ai_precompiles.MODULES["Datanets"].abi.by_name["contributeBonded"]
class Producer(Protocol):
    """What admission needs of the node's block producer (``node.chain.producers``)."""

    automine: bool
    """Build a block as soon as a transaction is executable."""

    @property
    def requested(self) -> bool:
        """A block was requested (automine) and has not been built yet."""
        ...

    def mine(self, timestamp: int | None = None) -> BuiltBlock: ...

    def request_block(self) -> None:
        """Ask for a block of everything executable, after the jobs already queued."""

    def faulted(self, tx_hash: bytes) -> str | None:
        """Why an automine block dropped ``tx_hash`` as faulted, if it did."""


class ChainCore:
    """Everything a node does to its chain, on one thread."""

    def __init__(
        self,
        ledger: Ledger,
        coinbase: bytes = b"\x00" * 20,
        pool_config: PoolConfig | None = None,
        rpc_gas_cap: int | None = None,
        rpc_evm_timeout: float | None = 5.0,
    ) -> None:
        self.ledger = ledger
        #: Most gas an eth_call / eth_estimateGas may use (geth's --rpc.gascap); never
        #: more than the block gas limit.
        self.rpc_gas_cap = rpc_gas_cap
        #: Wall-clock budget of one eth_call / eth_estimateGas, seconds (--rpc.evmtimeout).
        self.rpc_evm_timeout = rpc_evm_timeout
        #: Who this node's blocks pay (eth_coinbase): its validator, or nobody on a follower.
        self.coinbase = coinbase
        self.pool = TxPool(ledger.chain_id, pool_config or PoolConfig())
        self.blobs = BlobStore(ledger.store)
        #: The one way out for chain events (node.chain.events).
        self.events = ChainEvents()
        #: Builds this node's blocks on a chain with one validator; None on a follower and a
        #: BFT validator, whose blocks come from the network (node.chain.producers).
        self.producer: Producer | None = None
        self.clock = Clock()
        self._head_cache: tuple[bytes, Any, int] | None = None
        #: The validator set of every height, on a chain run by BFT consensus (several genesis
        #: validators); None on a single-validator chain, whose commits the genesis set signs.
        self.validator_sets: ValidatorSets | None = None
        #: Set when the chain reached an upgrade this release lacks: the node stops on it.
        self.halted: Exception | None = None
        #: Called once (on the chain thread) when :attr:`halted` is set: the service shuts down.
        self.on_halt: Callable[[Exception], None] | None = None
        #: Asks the network for a blob someone wanted and this node lacks (set by the network
        #: side; None without one): True when it is being fetched now (node.network).
        self.ask_peers_for_blob: Callable[[bytes], bool] | None = None
        metrics.HEAD.set(ledger.head.block_number)

    def halt(self, reason: Exception) -> None:
        """Stop this node: the next block needs an upgrade it does not have
        (``ai_precompiles.upgrades``). Logged once, with what to install."""
        if self.halted is not None:
            return
        self.halted = reason
        log.critical("%s", reason)
        if self.on_halt is not None:
            self.on_halt(reason)

    def fetch_lazily(self, digest: bytes) -> bool:
        """Ask the peers for blob ``digest``, which someone asked this node for and it lacks (a
        state-synced node holds no blob of the blocks before its pivot). Any thread; True when
        a fetch is under way, False without a network or when its lazy fetches are full."""
        ask = self.ask_peers_for_blob
        return ask is not None and ask(bytes(digest))

    @property
    def produces_blocks(self) -> bool:
        """False on a follower and a BFT validator: their blocks come from the network."""
        return self.producer is not None

    # -- time -----------------------------------------------------------------------------

    def now(self) -> int:
        return self.clock.now()

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

    def next_nonce(self, address: bytes) -> int:
        """The nonce ``address``'s next transaction takes, counting its pooled ones."""
        return self.pool.next_nonce(address, self.account(address).nonce)

    def fees(self) -> tuple[int, int]:
        """``(maxFeePerGas, maxPriorityFeePerGas)`` the node suggests and signs with."""
        return suggested_fees(self.next_base_fee())

    def submit_call(self, private_key: bytes, to: bytes, data: bytes, gas: int, value: int = 0) -> bytes:
        """Sign a call with the node's fee rule and the next nonce, and submit it (the node's
        own transactions: evidence, receipts); returns its hash."""
        sender = bytes(to_canonical_address(Account.from_key(private_key).address))
        max_fee, tip = self.fees()
        raw = sign_call(private_key, self.ledger.chain_id, self.next_nonce(sender), to, data, gas, max_fee,
                        tip, value)
        return self.submit_raw(raw)

    def submit_raw(self, raw: bytes, wait: bool = True) -> bytes:
        """Decode, admit and (under automine) mine one raw transaction; returns its hash
        (``wait`` as for :meth:`submit`)."""
        try:
            tx = decode_transaction(raw)
        except TransactionError as e:
            raise Refused(str(e)) from None
        return self.submit(tx, wait=wait)

    def submit(self, tx: SignedTransactionAPI, origin: Origin = Origin.LOCAL, wait: bool = True) -> bytes:
        """Admit ``tx`` to the pool and, under automine, have it mined; returns its hash.

        With ``wait`` the block is built now, so the transaction is in a block when this
        returns. Without it the block is only requested: it is built once the jobs already
        queued have admitted theirs, and the caller finishes with :meth:`settle` in a later
        job (the RPC send paths, so that arrivals share blocks). A transaction from this
        node's users must name contribution bytes this node holds; one relayed by a peer may
        name bytes its first node holds (fetched in the background)."""
        head = self.ledger.head
        if origin is Origin.LOCAL:
            self._check_contribution_blob(tx)
        try:
            executable = self.pool.add(
                tx, self.account(tx.sender), self.next_base_fee(), head.gas_limit
            )
        except PoolError as e:
            if not wait and self.producer is not None and self.producer.automine and self.producer.requested:
                # An earlier transaction still waiting for its block may be what this one
                # needs (the funds it sends, the nonce it uses): judge this one as sent after
                # that block, as it would have been had each sender waited for its own.
                self.producer.mine()
                return self.submit(tx, origin, wait)
            metrics.TX_REJECTED.inc()
            raise Refused(str(e)) from None
        metrics.TX_ACCEPTED.inc()
        self._publish_pending(tx, origin)
        if executable and self.producer is not None and self.producer.automine:
            if wait:
                self.producer.mine()
                self._raise_if_faulted(bytes(tx.hash))
            else:
                self.producer.request_block()
        self._update_pool_metrics()
        return bytes(tx.hash)

    def awaits_block(self, tx_hash: bytes) -> bool:
        """Whether ``tx_hash`` (just submitted without ``wait``) waits for a block automine
        has been asked for: its sender should :meth:`settle` in a later job."""
        return (self.producer is not None and self.producer.automine
                and self.producer.requested and tx_hash in self.pool.by_hash)

    def settle(self, tx_hash: bytes) -> bytes:
        """Finish a submission made without ``wait``, once the requested block ran: returns the
        hash when the transaction is in a block (or was never due one: queued behind a nonce
        gap, automine off); refuses it, as :meth:`submit` with ``wait`` would have, when the
        block dropped it as faulted. Should it still be executable in the pool (its block
        failed or was full), a block is built for it now, and what that raises is the
        caller's."""
        producer = self.producer
        if producer is None or not producer.automine:
            return tx_hash
        entry = self.pool.by_hash.get(tx_hash)
        if entry is not None and self.pool.pending.get(entry.sender, {}).get(entry.tx.nonce) is entry:
            producer.mine()
        self._raise_if_faulted(tx_hash)
        return tx_hash

    def _raise_if_faulted(self, tx_hash: bytes) -> None:
        reason = self.producer.faulted(tx_hash) if self.producer is not None else None
        if reason is not None:
            raise Refused(f"transaction dropped: {reason}")

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
                f"contribution refused: no blob with content hash 0x{content_hash.hex()} in the blob "
                "store; upload the bytes with ai_putBlob first"
            )
        if stored != size:
            raise Refused(f"contribution refused: size {size} does not match the blob's {stored} bytes")

    def _publish_pending(self, tx: SignedTransactionAPI, origin: Origin) -> None:
        self.events.publish(TransactionAdmitted(tx, origin))

    def _update_pool_metrics(self) -> None:
        metrics.POOL_PENDING.set(self.pool.pending_count)
        metrics.POOL_QUEUED.set(self.pool.queued_count)

    # -- blocks ---------------------------------------------------------------------------

    def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """Build one block from the pool and commit it (dev mining, interval mining)."""
        if self.producer is None:
            raise Refused("this node follows the chain from its peers; it does not produce blocks")
        return self.producer.mine(timestamp)

    def block_committed(self, block: BlockAPI) -> None:
        """Bring the pool and metrics up to a block that became the head (the block pipeline
        calls this once per block, whoever built it)."""
        metrics.HEAD.set(block.header.block_number)
        self.pool.remove({tx.hash for tx in block.transactions})
        self._after_head_change()

    def head_changed(self) -> None:
        """Bring the pool up to a head that changed without a new block (a dev rewind or
        state edit)."""
        self._head_cache = None
        self._after_head_change()

    def _after_head_change(self) -> None:
        if len(self.pool):
            state, _ = self._head_view()
            self.pool.reset(state.get_nonce, state.get_balance, self.ledger.head.gas_limit)
        self._update_pool_metrics()

    def resolve(self, ref: BlockRef) -> BlockHeaderAPI:
        """The header a block reference names; -32000 'header not found' when none."""
        if ref.block_hash is not None:
            header = self.ledger.header_by_hash(ref.block_hash)
            if header is None:
                raise NotFound(f"header for hash 0x{ref.block_hash.hex()} not found")
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

def contribution_fields(tx: SignedTransactionAPI) -> tuple[bytes, int] | None:
    """(content hash, size) when ``tx`` directly records a contribution, else None."""
    inner = native_payload(tx)
    if isinstance(inner, DataContributionTransaction):
        return bytes(inner.content_hash), int(inner.size)
    for fn in (_CONTRIBUTE, _CONTRIBUTE_BONDED):
        if tx.to == DATANETS and tx.data[:4] == fn.selector:
            try:
                _, content_hash, size, *_ = fn.decode_args(tx.data[4:])
            except Exception:
                return None  # the precompile reverts it with the decoding error
            return bytes(content_hash), int(size)
    return None



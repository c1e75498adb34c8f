"""The ledger: a py-evm chain over a staged store, with one entry point to build or import
a block and commit it in one atomic write, plus the reads the RPC needs.

A :class:`Ledger` is not thread-safe (neither is py-evm): the node calls it from one
dedicated worker thread.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    BlockPersistResult,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
)
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain_gaps import GENESIS_CHAIN_GAPS  # noqa: F401 - documents the gaps format
from eth.db.schema import SchemaV1
from eth.exceptions import HeaderNotFound, TransactionNotFound
from eth.rlp.headers import BlockHeader
from eth.rlp.sedes import chain_gaps
from eth.vm.chain_context import ChainContext
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address, BlockNumber
from eth_utils import ValidationError

import ai_precompiles
from ai_precompiles.errors import AIError
from genesis import Genesis, GenesisError, decode_genesis
from state.db import KeyValueStore, StagedDB
from state.impersonation import IMPERSONATED_PREFIX, restore_senders
from state.ordered_trie import ordered_trie_root_and_nodes
from state.senders import SENDERS
from state.vm import CallTimeout, CallVM, LedgerVM, call_deadline

#: Where the genesis document of a datadir's chain is kept, beside the chain itself.
GENESIS_KEY = b"ailedger:genesis"
#: Prefix of dev-only state edits (anvil_setBalance & co.): block hash -> edited state root.
STATE_EDIT_PREFIX = b"ailedger:state-edit:"
#: Prefix of block commits (consensus signatures), keyed by block hash.
COMMIT_PREFIX = b"ailedger:commit:"

log = logging.getLogger("ailedger.chain")
#: Least gas any transaction needs: a block with less left is full.
_MIN_TX_GAS = 21_000
#: Largest encoded block (header and body) the chain accepts: it must travel whole, with its
#: commit, in one 1 MiB p2p frame (blocks by range, block gossip). The builder leaves out
#: what would not fit (for the next block); import refuses a larger block.
MAX_BLOCK_BYTES = 896 * 1024
#: Room kept for the header and the body's list framing.
_BLOCK_OVERHEAD = 4 * 1024
#: Blocks executed without being written (BFT proposals built or checked) whose writes are kept,
#: so that the one consensus decides is committed without executing it again.
MAX_PREPARED = 8


class ChainMismatch(RuntimeError):
    """The store holds a different chain than the genesis given."""


class BlockImportError(ValueError):
    """A block failed validation; nothing was written."""


class BlockBuildError(RuntimeError):
    """A block could not be sealed with the transactions that went in: the fault is not a
    transaction's (nothing was written)."""


@dataclass(frozen=True)
class BuiltBlock:
    """The result of building and committing a block."""

    block: BlockAPI
    """The committed block."""
    receipts: tuple[ReceiptAPI, ...]
    """One receipt per included transaction."""
    computations: tuple[ComputationAPI, ...]
    """One computation per included transaction (errors, outputs)."""
    rejected: tuple[tuple[SignedTransactionAPI, str], ...]
    """Transactions left out because they were invalid at this point or their execution
    failed in a way no transaction may (an exception other than a VM error), with the reason."""
    faulted: tuple[bytes, ...] = ()
    """Hashes of the rejected transactions whose execution raised such an exception."""


@dataclass(frozen=True)
class CallResult:
    """The outcome of executing a message without committing it (eth_call)."""

    success: bool
    """False when the execution reverted or hit an exceptional halt."""
    output: bytes
    """Return data, or the revert data when reverted."""
    gas_used: int
    """Gas consumed, intrinsic gas included."""
    error: str
    """Empty on success; 'execution reverted' or the halt's name otherwise."""
    reverted: bool
    """True for a REVERT (whose data the caller may decode); False for other halts."""


@dataclass(frozen=True)
class AccountOverride:
    """A state override for one account in eth_call / eth_estimateGas (geth's shape)."""

    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[int, int] | None = None
    """Replace the whole storage with these slots."""
    state_diff: dict[int, int] | None = None
    """Change only these slots."""


class LedgerChain(MiningChain):
    vm_configuration = ((BlockNumber(0), LedgerVM),)

    def persist_block(self, block: BlockAPI, perform_validation: bool = True) -> BlockPersistResult:
        """py-evm's, without reading the new head block back from the database to return it:
        that decoded every transaction of the block again, and the ledger never reads the
        result (it holds the block). Another canonical block (a reorg, which this chain never
        makes) is still read back."""
        if perform_validation:
            self.validate_block(block)
        new_hashes, old_hashes = self.chaindb.persist_block(block)
        return BlockPersistResult(
            imported_block=block,
            new_canonical_blocks=tuple(block if h == block.hash else self.get_block_by_hash(h) for h in new_hashes),
            old_canonical_blocks=tuple(self.get_block_by_hash(h) for h in old_hashes),
        )


class Ledger:
    """The chain of one node: blocks, state and receipts in one store."""

    def __init__(self, store: KeyValueStore, genesis: Genesis | None = None) -> None:
        """Open the chain in ``store``, creating it from ``genesis`` when the store is empty.

        An existing store must hold the chain of ``genesis`` (if given): opening another
        chain's datadir fails instead of silently forking.
        """
        self.store = store
        self.staged = StagedDB(store)
        self.db = AtomicDB(self.staged)
        #: block hash -> (parent hash, its staged writes), for :meth:`commit_prepared`.
        self._prepared: collections.OrderedDict[bytes, tuple[bytes, dict[bytes, bytes | None]]] = (
            collections.OrderedDict())
        stored = store.get(GENESIS_KEY)
        if stored is None:
            if genesis is None:
                raise ChainMismatch("the datadir holds no chain; run `ailedger init` first")
            self.genesis = genesis
            self._create(genesis)
        else:
            self.genesis = decode_genesis(json.loads(stored))
            if genesis is not None and genesis.encode() != self.genesis.encode():
                raise ChainMismatch(
                    "the datadir holds a chain with another genesis "
                    f"(chain id {self.genesis.chain_id}); use a fresh --datadir"
                )
            self.chain = self._chain_class()(self.db)
        self.chain_id = self.genesis.chain_id

    def _chain_class(self) -> type[LedgerChain]:
        return LedgerChain.configure(chain_id=self.genesis.chain_id)  # type: ignore[return-value]

    def _create(self, genesis: Genesis) -> None:
        state = genesis.state_dict()
        try:
            ai_accounts = ai_precompiles.genesis_accounts(genesis.ai)
        except GenesisError:
            raise
        except (AIError, ValueError, TypeError) as e:
            # A mistake in the file's "ai" section (an unknown parameter, a value out of its
            # bounds or not a number) is the file's fault: one line naming it, never a traceback.
            reason = e.reason if isinstance(e, AIError) else str(e)
            raise GenesisError(f"ai: {reason}") from None
        for address, account in ai_accounts.items():
            state.setdefault(address, account)
        params = {
            "difficulty": 0,
            "gas_limit": genesis.gas_limit,
            "timestamp": genesis.timestamp,
            "extra_data": genesis.extra_data,
            "coinbase": genesis.coinbase,
            "nonce": b"\x00" * 8,
            "base_fee_per_gas": genesis.base_fee,
        }
        self.chain = self._chain_class().from_genesis(self.db, params, state)  # type: ignore[arg-type,assignment]
        self.staged[GENESIS_KEY] = json.dumps(genesis.encode(), sort_keys=True).encode()
        self.staged.commit()

    # -- the one way blocks enter the chain ------------------------------------------

    def build_block(
        self,
        transactions: Sequence[SignedTransactionAPI],
        timestamp: int,
        coinbase: bytes,
        seal: Callable[[int, bytes], bytes] | None = None,
        persist: bool = True,
        extra_data: bytes | None = None,
        max_txs: int | None = None,
        deadline: float | None = None,
    ) -> BuiltBlock:
        """Build a block from ``transactions`` (candidates, in the order to try them) on the
        head, commit it, and return it.

        One pass, as geth's miner fills a block: a transaction that no longer fits the gas
        the block has left is skipped (it stays a candidate for the next block); one that is
        invalid at its turn (nonce gap, balance spent), or whose execution raises what no
        transaction may (an exception other than a VM error: a bug in a precompile), is left
        out, its partial execution undone, and reported in ``rejected``. Either way its
        sender's later transactions wait. Nothing is retried: if the block still cannot be
        sealed, no transaction is to blame and :class:`BlockBuildError` says so.

        ``persist=False`` builds the block and writes nothing (a BFT proposal: the block is
        committed later, through :meth:`import_block`, once consensus decides it).
        ``extra_data`` goes into the header (a BFT block names its signing set there).
        ``max_txs`` caps the transactions the block *holds*, never the candidates tried: a cap on
        the candidates let the best-paying ones that do not fit (each declaring the whole block)
        fill it, one per block, while everything that fits waited (issue 19).
        ``deadline`` (``time.monotonic()``) stops taking transactions once passed, after the
        first: a BFT proposal's size follows what this machine executes in its budget, so every
        validator re-executes it well inside ``timeout_propose`` whatever the machine's load.
        """
        head = self.head
        if timestamp <= head.timestamp:
            raise BlockImportError(
                f"timestamp {timestamp} must be greater than the head's {head.timestamp}"
            )
        self.require_upgrades(head, head.block_number + 1)
        try:
            block, receipts, computations, rejected, faulted = self._fill(
                head, list(transactions), timestamp, coinbase, extra_data, max_txs, deadline)
        except Exception as e:
            self.staged.discard()
            self.chain.header = self.chain.create_header_from_parent(self.head)
            raise BlockBuildError(f"block {head.block_number + 1} cannot be built: {type(e).__name__}: {e}") from e
        if not persist:
            self._prepare(block)
            self.staged.discard()
            self.chain.header = self.chain.create_header_from_parent(self.head)
            return BuiltBlock(block, tuple(receipts), tuple(computations), tuple(rejected), tuple(faulted))
        if seal is not None:
            # The commit that makes the block final lands in the same atomic write.
            self.staged[COMMIT_PREFIX + block.header.hash] = seal(block.header.block_number, block.header.hash)
        self._commit()
        return BuiltBlock(block, tuple(receipts), tuple(computations), tuple(rejected), tuple(faulted))

    def _fill(
        self, head: BlockHeaderAPI, txs: list[SignedTransactionAPI], timestamp: int, coinbase: bytes,
        extra_data: bytes | None = None, max_txs: int | None = None, deadline: float | None = None,
    ) -> tuple[BlockAPI, list[ReceiptAPI], list[ComputationAPI], list[tuple[SignedTransactionAPI, str]], list[bytes]]:
        """py-evm's ``MiningChain.mine_all``, with the choice of what goes in made per
        transaction on the block's own VM (so each executes once): it packs what still fits,
        going on past any transaction that does not, until the gas, the size or ``max_txs``
        is used up."""
        base = self._pending_header(head, timestamp, coinbase)
        if extra_data is not None:
            base = base.copy(extra_data=extra_data)
        self.chain.header = base
        vm = self.chain.get_vm(base)
        header = base
        included: list[SignedTransactionAPI] = []
        receipts: list[ReceiptAPI] = []
        computations: list[ComputationAPI] = []
        rejected: list[tuple[SignedTransactionAPI, str]] = []
        faulted: list[bytes] = []
        waiting: set[bytes] = set()  # senders whose earlier transaction stayed out
        body_bytes = _BLOCK_OVERHEAD
        for tx in txs:
            gas_left = header.gas_limit - header.gas_used
            if gas_left < _MIN_TX_GAS or (max_txs is not None and len(included) >= max_txs):
                break
            if deadline is not None and included and time.monotonic() >= deadline:
                break
            sender = tx.sender
            if sender in waiting:
                continue
            size = len(rlp.encode(tx))
            if tx.gas > gas_left or body_bytes + size > MAX_BLOCK_BYTES:
                waiting.add(sender)  # a candidate for the next block
                continue
            try:
                # VM.apply_transaction, with a snapshot after its lock_changes (which forgets
                # older ones) so that a fault's partial writes can be undone.
                vm.validate_transaction_against_header(header, tx)
                vm.state.lock_changes()
            except ValidationError as e:
                rejected.append((tx, str(e)))
                waiting.add(sender)
                continue
            snapshot = vm.state.snapshot()
            try:
                computation = vm.state.apply_transaction(tx)
                receipt = vm.make_receipt(header, tx, computation, vm.state)
                vm.validate_receipt(receipt)
            except ValidationError as e:
                vm.state.revert(snapshot)
                rejected.append((tx, str(e)))
                waiting.add(sender)
                continue
            except Exception as e:
                vm.state.revert(snapshot)
                vm.state.clear_transient_storage()  # the executor would have, had it returned
                log.error(
                    "transaction 0x%s left out of block %d: its execution raised %s: %s",
                    tx.hash.hex(), head.block_number + 1, type(e).__name__, e, exc_info=True,
                )
                rejected.append((tx, f"execution fault: {type(e).__name__}: {e}"))
                faulted.append(bytes(tx.hash))
                waiting.add(sender)
                continue
            header = vm.add_receipt_to_header(header, receipt)
            header = vm.increment_blob_gas_used(header, tx)
            included.append(tx)
            body_bytes += size
            receipts.append(receipt)
            computations.append(computation)
        filled = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, included, receipts)
        block = vm.mine_block(filled, coinbase=coinbase).block  # validates it, too
        self.chain.persist_block(block, perform_validation=False)
        return block, receipts, computations, rejected, faulted

    def _pending_header(self, head: BlockHeaderAPI, timestamp: int, coinbase: bytes) -> BlockHeaderAPI:
        header = LedgerVM.create_header_from_parent(head, timestamp=timestamp, coinbase=coinbase)
        edited = self._edited_root(head)
        return header if edited is None else header.copy(state_root=edited)

    def _edited_root(self, header: BlockHeaderAPI) -> bytes | None:
        edited: bytes | None = self.staged.get(STATE_EDIT_PREFIX + header.hash)
        return edited

    def state_edit(self, block_hash: bytes) -> bytes | None:
        """The state root a dev edit left on block ``block_hash``, if any."""
        edited: bytes | None = self.staged.get(STATE_EDIT_PREFIX + block_hash)
        return edited

    def restore_state_edit(self, block_hash: bytes, root: bytes | None) -> None:
        """Put back (or remove) the dev edit of a block, as a snapshot recorded it."""
        key = STATE_EDIT_PREFIX + block_hash
        if root is not None:
            self.staged[key] = root
        elif key in self.staged:
            del self.staged[key]
        self._commit()

    def state_header(self, header: BlockHeaderAPI) -> BlockHeaderAPI:
        """``header`` with the state root that reads at it must use: its own, or the root
        a dev state edit left on it."""
        edited = self._edited_root(header)
        return header if edited is None else header.copy(state_root=edited)

    def edit_state(
        self,
        address: bytes,
        balance: int | None = None,
        nonce: int | None = None,
        code: bytes | None = None,
        storage: dict[int, int] | None = None,
    ) -> None:
        """Change an account at the head without a block, as anvil_setBalance does.

        The head's header keeps its state root; the edited root is stored beside it and
        used by every read at the head and by the next block built on it. A dev-only
        tool: a peer importing the next block would see a state it cannot reproduce.
        """
        head = self.head
        vm = self.chain.get_vm(self.state_header(head))
        state = vm.state
        _apply_overrides(state, {address: AccountOverride(balance, nonce, code, None, storage)})
        state.persist()
        self.staged[STATE_EDIT_PREFIX + head.hash] = state.state_root
        self._commit()

    def import_block(self, block: BlockAPI, commit: bytes | None = None, persist: bool = True) -> BlockAPI:
        """Validate ``block``'s header against its parent, apply its body, check the
        resulting roots, and commit block, state, new head and ``commit`` (the signatures that
        made it final) in one atomic write. A block this ledger built or checked with
        ``persist=False`` on the current head is committed from its kept writes, without
        executing it again. ``persist=False`` only checks: the same validation and execution,
        nothing written (a BFT validator re-executing a proposal before it prevotes)."""
        extra = {} if commit is None else {COMMIT_PREFIX + bytes(block.header.hash): commit}
        if persist and self.commit_prepared(bytes(block.header.hash), extra):
            return block
        parent = self.header_by_hash(bytes(block.header.parent_hash))
        if parent is not None:
            self.require_upgrades(parent, int(block.header.block_number))
        size = len(rlp.encode(block))
        if size > MAX_BLOCK_BYTES:
            raise BlockImportError(f"block of {size} bytes exceeds the chain's {MAX_BLOCK_BYTES}")
        SENDERS.restore(block.transactions)  # those this node admitted are not recovered again
        try:
            self.chain.import_block(block, perform_validation=True)
        except (ValidationError, HeaderNotFound) as e:
            self.staged.discard()
            self.chain.header = self.chain.create_header_from_parent(self.head)
            raise BlockImportError(str(e)) from None
        except Exception:
            self.staged.discard()
            self.chain.header = self.chain.create_header_from_parent(self.head)
            raise
        for tx in block.transactions:  # recovered now: a later import of the block reuses them
            SENDERS.remember(bytes(tx.hash), bytes(tx.sender))
        if not persist:
            self._prepare(block)
            self.staged.discard()
            self.chain.header = self.chain.create_header_from_parent(self.head)
            return block
        for key, value in extra.items():
            self.staged[key] = value
        self._commit()
        return block

    def require_upgrades(self, parent: BlockHeaderAPI, number: int) -> None:
        """Refuse to build or import block ``number`` on ``parent`` when an upgrade scheduled at
        or below it is one this release does not know: raises
        :class:`ai_precompiles.upgrades.UpgradeRequired` (what to install), nothing written. The
        block would run under rules this node does not have, so it stops instead."""
        ai_precompiles.upgrades.require_known(self.state_at(parent), number)

    def adopt_state(self, block: BlockAPI, commit: bytes, ancestors: Sequence[BlockAPI] = (),
                    forget: Sequence[bytes] = ()) -> None:
        """Make ``block`` the head of an empty chain without executing anything before it (state
        sync): its state, fetched node by node from its header's state root and checked against
        each node's hash, must be in the store already. ``ancestors`` are the blocks just before
        it, oldest first, each the parent of the next (BLOCKHASH reads 256 of them); the caller
        verified ``commit``. Each block's transactions are stored, checked against its header;
        receipts and everything before the ancestors are not (this ledger's history starts
        here). Headers, bodies, commit, the new head, and the deletion of the ``forget`` keys
        (the syncer's record), in one atomic write."""
        header = block.header
        if self.head.block_number != 0:
            raise BlockImportError("a synced state is adopted only by an empty chain")
        if self.staged.get(header.state_root) is None:
            raise BlockImportError(f"the state root 0x{header.state_root.hex()} is not in the store")
        blocks = [*ancestors, block]
        for parent, child in zip(blocks, blocks[1:], strict=False):
            if child.header.parent_hash != parent.header.hash or child.number != parent.number + 1:
                raise BlockImportError(f"block {parent.number} is not the parent of {child.number}")
        chaindb = self.chain.chaindb
        try:
            for each in blocks:
                tx_root, tx_nodes = ordered_trie_root_and_nodes([tx.encode() for tx in each.transactions])
                if tx_root != each.header.transaction_root:
                    raise BlockImportError(f"block {each.number}'s transactions do not match its header")
                chaindb.persist_trie_data_dict(tx_nodes)
            chaindb.persist_checkpoint_header(blocks[0].header, int(blocks[0].number))
            if len(blocks) > 1:
                chaindb.persist_header_chain([b.header for b in blocks[1:]])
        except Exception:
            self.staged.discard()
            raise
        self.staged[COMMIT_PREFIX + bytes(header.hash)] = commit
        for key in forget:
            if key in self.staged:
                del self.staged[key]
        self._commit()

    def _prepare(self, block: BlockAPI) -> None:
        self._prepared[bytes(block.header.hash)] = (bytes(block.header.parent_hash), self.staged.staged_writes())
        while len(self._prepared) > MAX_PREPARED:
            self._prepared.popitem(last=False)

    def commit_prepared(self, block_hash: bytes, extra: dict[bytes, bytes]) -> bool:
        """Commit a block built or checked with ``persist=False`` (and ``extra`` beside it, its
        commit) in one atomic write, without executing it again. False when it is not held or
        its parent is no longer the head: the caller imports it instead."""
        entry = self._prepared.pop(block_hash, None)
        if entry is None or entry[0] != self.head.hash or self.staged.has_staged:
            return False
        writes = dict(entry[1])
        writes.update(extra)
        self.staged.restage(writes)
        self._commit()
        return True

    def _commit(self) -> None:
        self.staged.commit()
        self._prepared.clear()
        self.chain.header = self.chain.create_header_from_parent(self.head)

    def rewind(self, block_hash: bytes) -> None:
        """Make the canonical chain end at ``block_hash`` (for evm_revert snapshots).

        Blocks above stay stored by hash but leave the canonical index, and their
        transactions stop resolving, exactly as after a reorg.
        """
        target = self.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
        head = self.head
        for number in range(target.block_number + 1, head.block_number + 1):
            block = self.chain.get_canonical_block_by_number(number)  # type: ignore[arg-type]
            for tx in block.transactions:
                key = SchemaV1.make_transaction_hash_to_block_lookup_key(tx.hash)
                if key in self.staged:
                    del self.staged[key]
            del self.staged[SchemaV1.make_block_number_to_hash_lookup_key(number)]  # type: ignore[arg-type]
        self.staged[SchemaV1.make_canonical_head_hash_lookup_key()] = target.hash
        # py-evm tracks which block numbers it holds ("gaps"); the chain now ends at target.
        self.staged[SchemaV1.make_chain_gaps_lookup_key()] = rlp.encode(
            ((), target.block_number + 1), sedes=chain_gaps
        )
        self._commit()

    # -- reads ---------------------------------------------------------------------------

    @property
    def head(self) -> BlockHeaderAPI:
        return self.chain.get_canonical_head()

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        try:
            return self.chain.get_canonical_block_header_by_number(number)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None

    def blooms(self, start: int, end: int) -> Iterable[tuple[bytes, int]]:
        """(hash, logs bloom) of each canonical block from ``start`` to ``end``, in order.

        The bloom is read from the stored header's RLP (:func:`_header_bloom`), without building
        the header object: a log query tests each block's bloom
        before reading the block, and decoding 10,000 headers in full costs about a second.
        """
        for number in range(start, end + 1):
            raw = self.db.get(SchemaV1.make_block_number_to_hash_lookup_key(BlockNumber(number)))
            if raw is None:
                continue
            block_hash = rlp.decode(raw, sedes=rlp.sedes.binary)
            header_rlp = self.db.get(block_hash)
            if header_rlp is None:
                continue
            yield block_hash, _header_bloom(header_rlp)

    def stored_header(self, block_hash: bytes) -> BlockHeaderAPI:
        """The header stored under ``block_hash``, canonical or not (for hashes that
        :meth:`blooms` gave); raises ``HeaderNotFound`` when none is."""
        return self.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        try:
            header = self.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None
        canonical = self.header_by_number(header.block_number)
        return header if canonical is not None and canonical.hash == header.hash else None

    def block(self, header: BlockHeaderAPI) -> BlockAPI:
        block = self.chain.get_vm(header).get_block_class().from_header(header, self.chain.chaindb)
        restore_senders(block.transactions, self.staged)
        return block

    def record_impersonated(self, tx_hash: bytes, sender: bytes) -> None:
        """Remember the sender of a dev transaction sent without its key (see
        state/impersonation.py)."""
        self.staged[IMPERSONATED_PREFIX + tx_hash] = sender
        self._commit()

    def commit_of(self, block_hash: bytes) -> bytes | None:
        """The encoded consensus commit stored beside a block, if any."""
        raw: bytes | None = self.staged.get(COMMIT_PREFIX + block_hash)
        return raw

    def receipts(self, block: BlockAPI) -> tuple[ReceiptAPI, ...]:
        return block.get_receipts(self.chain.chaindb)

    def transaction_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(block number, index) of a transaction in the canonical chain, or None."""
        try:
            number, index = self.chain.chaindb.get_transaction_index(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        return int(number), int(index)

    def receipt_of(self, tx_hash: bytes) -> tuple[BlockHeaderAPI, ReceiptAPI] | None:
        """The header of the canonical block holding transaction ``tx_hash`` and its receipt, or
        None when no canonical block holds it."""
        where = self.transaction_location(tx_hash)
        if where is None:
            return None
        header = self.header_by_number(where[0])
        assert header is not None
        return header, self.receipts(self.block(header))[where[1]]

    def state_at(self, header: BlockHeaderAPI) -> StateAPI:
        """The state after ``header``'s block (read it; do not persist it)."""
        return self.chain.get_vm(self.state_header(header)).state

    def close(self) -> None:
        """Release the store. trie's per-method caches hold every trie and its database
        alive (NOTES.md), so they are cleared first."""
        from trie import HexaryTrie

        for name in dir(HexaryTrie):
            cached = getattr(getattr(HexaryTrie, name, None), "cache_clear", None)
            if cached is not None:
                cached()
        self.store.close()

    def call_vm(self, header: BlockHeaderAPI) -> CallVM:
        """A VM on ``header`` for read-only execution (calls, traces, simulations): the
        block rules, but every execution stops at the thread's :class:`call_deadline`."""
        return CallVM(
            header=header, chaindb=self.chain.chaindb,
            chain_context=ChainContext(self.chain_id), consensus_context=self.chain.consensus_context,
        )

    def execute_call(
        self,
        header: BlockHeaderAPI,
        sender: bytes,
        to: bytes | None,
        data: bytes,
        value: int = 0,
        gas: int | None = None,
        overrides: dict[bytes, AccountOverride] | None = None,
        deadline: float | None = None,
        authorizations: Sequence[Any] | None = None,
    ) -> CallResult:
        """Run a message on top of ``header``'s state as the next block would, at zero gas
        price, and throw the changes away (eth_call). With ``authorizations`` (py-evm
        ``Authorization`` objects) it runs as an EIP-7702 set-code transaction.

        With ``deadline`` (a ``time.monotonic()`` value) the execution raises
        :class:`CallTimeout` once it passes; nothing of it is kept.
        """
        vm = self.call_vm(self.state_header(header))
        gas = min(gas or header.gas_limit, header.gas_limit)
        with call_deadline(deadline), vm.in_costless_state() as state:
            _apply_overrides(state, overrides or {})
            if authorizations:
                unsigned = vm.get_transaction_builder().new_unsigned_set_code_transaction(  # type: ignore[attr-defined]
                    chain_id=self.chain_id, nonce=state.get_nonce(Address(sender)),
                    max_priority_fee_per_gas=0, max_fee_per_gas=0, gas=gas,
                    to=Address(to if to is not None else b""), value=value, data=data, access_list=[],
                    authorization_list=list(authorizations),
                )
            else:
                unsigned = vm.create_unsigned_transaction(
                    nonce=state.get_nonce(Address(sender)),
                    gas_price=0,
                    gas=gas,
                    to=Address(to if to is not None else b""),
                    value=value,
                    data=data,
                )
            tx = SpoofTransaction(unsigned, from_=sender)
            try:
                computation = state.apply_transaction(tx)  # type: ignore[arg-type]
            except ValidationError as e:
                return CallResult(False, b"", 0, str(e), False)
            gas_used = gas - computation.get_gas_remaining() - computation.get_gas_refund()
            if computation.is_error:
                from eth.exceptions import Revert

                reverted = isinstance(computation.error, Revert)
                error = "execution reverted" if reverted else _halt_name(computation.error)
                return CallResult(False, computation.output if reverted else b"", gas_used, error, reverted)
            return CallResult(True, computation.output, gas_used, "", False)

    def estimate_gas(
        self,
        header: BlockHeaderAPI,
        sender: bytes,
        to: bytes | None,
        data: bytes,
        value: int = 0,
        gas_cap: int | None = None,
        overrides: dict[bytes, AccountOverride] | None = None,
        deadline: float | None = None,
        authorizations: Sequence[Any] | None = None,
    ) -> tuple[int, CallResult]:
        """The least gas at which the message succeeds (geth's binary search).

        Returns (gas, result); when the message fails even at the cap, gas is 0 and the
        failing result is returned for the caller to report. ``deadline`` bounds the whole
        search (:class:`CallTimeout`).
        """
        cap = min(gas_cap or header.gas_limit, header.gas_limit)
        top = self.execute_call(header, sender, to, data, value, cap, overrides, deadline, authorizations)
        if not top.success:
            return 0, top
        low, high = top.gas_used - 1, cap
        # Most calls succeed with gas_used plus the 63/64 reserve: try that first.
        guess = min(cap, top.gas_used * 64 // 63 + 2300)
        if self.execute_call(header, sender, to, data, value, guess, overrides, deadline, authorizations).success:
            high = guess
        while high - low > 1:
            mid = (low + high) // 2
            if self.execute_call(header, sender, to, data, value, mid, overrides, deadline, authorizations).success:
                high = mid
            else:
                low = mid
        return high, top


#: Bytes of a header's RLP before its bloom, past the list prefix: parent hash, ommers hash,
#: coinbase, state, transactions and receipts roots, each a fixed-size string.
_BLOOM_OFFSET = 33 + 33 + 21 + 33 + 33 + 33
_BLOOM_PREFIX = b"\xb9\x01\x00"  # a 256-byte string


def _header_bloom(header_rlp: bytes) -> int:
    """The logs bloom of an RLP-encoded header, read in place when the layout is the usual one
    (every field before it has a fixed size), else from the decoded list."""
    first = header_rlp[0]
    start = (1 + first - 0xF7 if first > 0xF7 else 1) + _BLOOM_OFFSET
    if header_rlp[start:start + 3] == _BLOOM_PREFIX:
        return int.from_bytes(header_rlp[start + 3:start + 259], "big")
    return int.from_bytes(rlp.decode(header_rlp)[6], "big")


def _halt_name(error: Exception | None) -> str:
    name = type(error).__name__ if error is not None else "error"
    messages = {
        "OutOfGas": "out of gas",
        "InvalidInstruction": "invalid opcode",
        "InvalidJumpDestination": "invalid jump destination",
        "StackDepthLimit": "max call depth exceeded",
        "InsufficientFunds": "insufficient balance for transfer",
        "WriteProtection": "write protection",
        "InsufficientStack": "stack underflow",
        "FullStack": "stack limit reached",
        "ContractCreationCollision": "contract address collision",
        "OutOfBoundsRead": "return data out of bounds",
    }
    return messages.get(name, f"execution failed: {name}")


def _apply_overrides(state: StateAPI, overrides: dict[bytes, AccountOverride]) -> None:
    for address, o in overrides.items():
        if o.balance is not None:
            state.set_balance(address, o.balance)  # type: ignore[arg-type]
        if o.nonce is not None:
            state.set_nonce(address, o.nonce)  # type: ignore[arg-type]
        if o.code is not None:
            state.set_code(address, o.code)  # type: ignore[arg-type]
        if o.state is not None:
            state.delete_storage(address)  # type: ignore[arg-type]
            for slot, value in o.state.items():
                state.set_storage(address, slot, value)  # type: ignore[arg-type]
        for slot, value in (o.state_diff or {}).items():
            state.set_storage(address, slot, value)  # type: ignore[arg-type]


def iter_logs(receipts: Iterable[ReceiptAPI]) -> Iterable[tuple[int, int, Any]]:
    """(transaction index, log index in block, log) for every log of a block's receipts."""
    log_index = 0
    for tx_index, receipt in enumerate(receipts):
        for log in receipt.logs:
            yield tx_index, log_index, log
            log_index += 1


__all__ = [
    "AccountOverride", "BlockBuildError", "BlockHeader", "BlockImportError", "BuiltBlock",
    "CallResult", "CallTimeout", "ChainMismatch", "Ledger", "iter_logs",
]

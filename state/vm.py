"""ailedger's py-evm fork: Prague plus the AI precompiles, with a constant gas limit.

Following py-evm's own forks, the subclasses override class attributes and a hook or
two; the precompile table is Prague's merged with ai_precompiles'.
"""

from __future__ import annotations

import threading
import time
from collections import ChainMap
from collections.abc import Sequence
from typing import Any

import rlp
from eth._utils.db import get_parent_header
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    TransactionFieldsAPI,
    WithdrawalAPI,
)
from eth.constants import MAX_UNCLES
from eth.db.account import AccountDB
from eth.rlp.accounts import Account
from eth.validation import validate_gas_limit, validate_length_lte
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.headers import create_prague_header_from_parent
from eth.vm.forks.prague.receipts import PragueReceiptBuilder, PragueTypedReceipt
from eth.vm.forks.prague.state import PragueState
from eth.vm.forks.prague.transactions import PragueTransactionBuilder, PragueTypedTransaction
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_bloom import BloomFilter
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils import ValidationError
from rlp.sedes import CountableList
from rlp.sedes.serializable import make_immutable

import ai_precompiles
from ai_precompiles.errors import ExecutionInterrupted
from state.native import DECODERS, RECEIPT_CODECS, NativeTransaction
from state.ordered_trie import ordered_trie_root_and_nodes


class LedgerTypedReceipt(PragueTypedReceipt):
    # Live views: a native type registered later (state.native.native_type) is known at once.
    codecs = ChainMap(RECEIPT_CODECS, PragueTypedReceipt.codecs)  # type: ignore[assignment]


class LedgerReceiptBuilder(PragueReceiptBuilder):
    typed_receipt_class = LedgerTypedReceipt


class LedgerTypedTransaction(PragueTypedTransaction):
    """Prague's typed transactions plus the native AI types (see state/native.py)."""

    decoders = ChainMap(DECODERS, PragueTypedTransaction.decoders)  # type: ignore[assignment]
    receipt_builder = LedgerReceiptBuilder


class LedgerTransactionBuilder(PragueTransactionBuilder):
    typed_transaction = LedgerTypedTransaction

    @classmethod
    def wrap_native(cls, inner: NativeTransaction) -> LedgerTypedTransaction:
        """The envelope of a native transaction, as blocks and the pool carry it."""
        return LedgerTypedTransaction(inner._type_id, inner)


def replace_fields(record: Any, **changes: Any) -> Any:
    """``record.copy(**changes)`` for an rlp record whose constructor only stores its fields
    (a header, an account). rlp's ``copy`` deep-copies every unchanged field and re-checks the
    arguments by name; header and account copies, several per transaction, were a quarter of
    block building. The fields are immutable (bytes, ints, tuples), so sharing them is safe;
    cached encodings and hashes are not carried over."""
    meta = record._meta
    copied = object.__new__(type(record))
    for name, attr in zip(meta.field_names, meta.field_attrs, strict=True):
        value = make_immutable(changes.pop(name)) if name in changes else getattr(record, attr)
        object.__setattr__(copied, attr, value)
    if changes:
        raise TypeError(f"{type(record).__name__} has no field(s) {', '.join(changes)}")
    return copied


class LedgerAccount(Account):
    """py-evm's account record with a cheap :meth:`copy` (every balance and nonce change makes
    one)."""

    def copy(self, *args: Any, **kwargs: Any) -> LedgerAccount:
        if args:
            return super().copy(*args, **kwargs)  # type: ignore[no-any-return]
        return replace_fields(self, **kwargs)  # type: ignore[no-any-return]


class LedgerAccountDB(AccountDB):
    """py-evm's account database, reading accounts as :class:`LedgerAccount`."""

    def _get_account(self, address: Address, from_journal: bool = True) -> Account:
        # AccountDB._get_account, decoding to LedgerAccount.
        if from_journal and address in self._account_cache:
            return self._account_cache[address]
        encoded = self._get_encoded_account(address, from_journal)
        account = rlp.decode(encoded, sedes=LedgerAccount) if encoded else LedgerAccount()
        if from_journal:
            self._account_cache[address] = account
        return account


class LedgerBlock(PragueBlock):
    transaction_builder = LedgerTransactionBuilder
    receipt_builder = LedgerReceiptBuilder
    # rlp binds the transaction sedes at class creation: redeclare to use ours.
    fields = [
        ("header", PragueBlockHeader),
        ("transactions", CountableList(LedgerTransactionBuilder)),
        ("uncles", CountableList(None, max_length=0)),
        ("withdrawals", CountableList(Withdrawal)),
    ]

    def copy(self, *args: Any, **kwargs: Any) -> LedgerBlock:
        """rlp's copy without deep-copying the fields left as they are (every transaction of
        the block, twice per block built); built through the constructor, which also sets the
        block's bloom filter and empty request list."""
        if args:
            return super().copy(*args, **kwargs)  # type: ignore[no-any-return,return-value]
        return type(self)(
            header=kwargs.pop("header", self.header),
            transactions=kwargs.pop("transactions", self.transactions),
            uncles=kwargs.pop("uncles", self.uncles),
            withdrawals=kwargs.pop("withdrawals", self.withdrawals),
            **kwargs,
        )


class LedgerComputation(PragueComputation):
    """Prague's computation with the AI modules' precompiles added to its table."""

    _precompiles = {**PragueComputation.get_precompiles(), **ai_precompiles.PRECOMPILES}


class LedgerState(PragueState):
    computation_class = LedgerComputation
    account_db_class = LedgerAccountDB


class CallTimeout(ExecutionInterrupted):
    """An eth_call / eth_estimateGas ran past its wall-clock budget.

    Deliberately not a ``VMError``: a VM error only ends the innermost call frame (its
    caller goes on running), while this must unwind the whole execution. An
    :class:`~ai_precompiles.errors.ExecutionInterrupted`, so an AI precompile whose gas charge
    hits the deadline passes it on instead of reporting a fault.
    """


#: The deadline (``time.monotonic()``) of the read-only execution running on this thread.
_call_deadline = threading.local()


class call_deadline:  # noqa: N801 - used as a context manager, like contextlib's helpers
    """Run read-only executions on this thread under a wall-clock deadline (or none)."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __enter__(self) -> None:
        self._saved = getattr(_call_deadline, "at", None)
        _call_deadline.at = self.deadline

    def __exit__(self, *exc: object) -> None:
        _call_deadline.at = self._saved


class CallComputation(LedgerComputation):
    """The computation of eth_call and eth_estimateGas: every opcode charges gas, so a
    check here bounds the wall time of any loop. Blocks never use this class, so block
    building and import pay nothing for it."""

    def consume_gas(self, amount: int, reason: str) -> None:
        super().consume_gas(amount, reason)
        deadline = getattr(_call_deadline, "at", None)
        if deadline is not None and time.monotonic() > deadline:
            raise CallTimeout("execution aborted (timeout)")


class CallState(LedgerState):
    computation_class = CallComputation


class LedgerVM(PragueVM):
    """The VM of every ailedger block."""

    fork = "ailedger-prague"
    block_class = LedgerBlock
    _state_class = LedgerState

    @staticmethod
    def create_header_from_parent(  # type: ignore[override]
        parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        # Mainnet lets block producers drift the gas limit; our chain keeps the genesis
        # limit (governance changes it), so every block builder agrees on it.
        if parent_header is not None:
            header_params.setdefault("gas_limit", parent_header.gas_limit)
        header = create_prague_header_from_parent(parent_header, **header_params)
        if parent_header is not None and parent_header.block_number == 0:
            header = header.copy(base_fee_per_gas=expected_base_fee(parent_header))
        return header

    def set_block_transactions_and_withdrawals(
        self,
        base_block: BlockAPI,
        new_header: BlockHeaderAPI,
        transactions: Sequence[SignedTransactionAPI],
        receipts: Sequence[ReceiptAPI],
        withdrawals: Sequence[WithdrawalAPI] | None = None,
    ) -> BlockAPI:
        """py-evm's, with each trie built in one pass (``state/ordered_trie.py``: the same roots
        and nodes, several times faster than inserting the items one by one)."""
        tx_root, tx_nodes = ordered_trie_root_and_nodes([tx.encode() for tx in transactions])
        self.chaindb.persist_trie_data_dict(tx_nodes)
        receipt_root, receipt_nodes = ordered_trie_root_and_nodes([r.encode() for r in receipts])
        self.chaindb.persist_trie_data_dict(receipt_nodes)
        block_fields: dict[str, Any] = {"transactions": transactions}
        header_fields: dict[str, Any] = {"transaction_root": tx_root, "receipt_root": receipt_root}
        if withdrawals:
            withdrawals_root, withdrawal_nodes = ordered_trie_root_and_nodes([w.encode() for w in withdrawals])
            self.chaindb.persist_trie_data_dict(withdrawal_nodes)
            block_fields["withdrawals"] = withdrawals
            header_fields["withdrawals_root"] = withdrawals_root
        block_fields["header"] = new_header.copy(**header_fields)
        return base_block.copy(**block_fields)

    def add_receipt_to_header(self, old_header: BlockHeaderAPI, receipt: ReceiptAPI) -> BlockHeaderAPI:
        """Byzantium's, copying the header cheaply (:func:`replace_fields`)."""
        return replace_fields(  # type: ignore[no-any-return]
            old_header, bloom=int(BloomFilter(old_header.bloom) | receipt.bloom), gas_used=receipt.gas_used)

    def increment_blob_gas_used(self, old_header: BlockHeaderAPI, transaction: TransactionFieldsAPI) -> BlockHeaderAPI:
        """Cancun's, without a copy for a transaction that carries no blobs (all of ours)."""
        blob_gas = get_total_blob_gas(transaction)
        if not blob_gas:
            return old_header
        return replace_fields(old_header, blob_gas_used=old_header.blob_gas_used + blob_gas)  # type: ignore[no-any-return]

    def validate_block(self, block: BlockAPI) -> None:
        """py-evm's checks of a block (``VM.validate_block`` and Prague's blob rules), in the
        same order, with the transaction root built in one pass."""
        if not isinstance(block, self.get_block_class()):
            raise ValidationError(f"This vm ({self!r}) is not equipped to validate a block of type {block!r}")
        if block.is_genesis:
            validate_length_lte(block.header.extra_data, self.extra_data_max_bytes, title="BlockHeader.extra_data")
        else:
            self.validate_header(block.header, get_parent_header(block.header, self.chaindb))
        tx_root, _ = ordered_trie_root_and_nodes([tx.encode() for tx in block.transactions])
        if tx_root != block.header.transaction_root:
            raise ValidationError(
                f"Block's transaction_root ({block.header.transaction_root!r}) does not match expected value: {tx_root!r}"
            )
        if len(block.uncles) > MAX_UNCLES:
            raise ValidationError(f"Blocks may have a maximum of {MAX_UNCLES} uncles.  Found {len(block.uncles)}.")
        if not self.chaindb.exists(block.header.state_root) and self.state.make_state_root() != block.header.state_root:
            raise ValidationError(
                f"`state_root` does not match or was not found in the db.\n- state_root: {block.header.state_root!r}"
            )
        if keccak(rlp.encode(block.uncles)) != block.header.uncles_hash:
            raise ValidationError("`uncles_hash` and block `uncles` do not match.")
        self.validate_block_blobs(block)

    @classmethod
    def validate_gas(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        validate_gas_limit(header.gas_limit, parent_header.gas_limit)
        expected = expected_base_fee(parent_header)
        if header.base_fee_per_gas != expected:
            raise ValidationError(
                f"Header has invalid base fee per gas (has {header.base_fee_per_gas}, expected {expected})"
            )


class CallVM(LedgerVM):
    """The VM reads execute on (eth_call, eth_estimateGas): the same rules, but every
    execution stops at the thread's :class:`call_deadline`."""

    _state_class = CallState


def expected_base_fee(parent_header: BlockHeaderAPI) -> int:
    """EIP-1559's base fee of the child of ``parent_header``.

    Block 1 keeps the genesis base fee instead of lowering it for the empty genesis
    block: the genesis fee is the one the chain's operator chose (anvil does the same).
    """
    if parent_header.block_number == 0:
        return int(parent_header.base_fee_per_gas or 0)
    return int(calculate_expected_base_fee_per_gas(parent_header))

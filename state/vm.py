"""ailedger's py-evm fork: Prague plus the AI precompiles, with a constant gas limit.

Following py-evm's own forks, the subclasses override class attributes and a hook or
two; the precompile table is Prague's merged with ai_precompiles'.
"""

from __future__ import annotations

import threading
import time
from collections import ChainMap
from typing import Any

from eth.abc import BlockHeaderAPI
from eth.validation import validate_gas_limit
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.headers import create_prague_header_from_parent
from eth.vm.forks.prague.receipts import PragueReceiptBuilder, PragueTypedReceipt
from eth.vm.forks.prague.state import PragueState
from eth.vm.forks.prague.transactions import PragueTransactionBuilder, PragueTypedTransaction
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_utils import ValidationError
from rlp.sedes import CountableList

import ai_precompiles
from ai_precompiles.errors import ExecutionInterrupted
from state.native import DECODERS, RECEIPT_CODECS, NativeTransaction


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


class LedgerComputation(PragueComputation):
    """Prague's computation with the AI modules' precompiles added to its table."""

    _precompiles = {**PragueComputation.get_precompiles(), **ai_precompiles.PRECOMPILES}


class LedgerState(PragueState):
    computation_class = LedgerComputation


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

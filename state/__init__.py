"""The chain: py-evm VM subclass, LevelDB storage and the one atomic block-import entry point."""

from state.chain import (
    AccountOverride,
    BlockBuildError,
    BlockImportError,
    BuiltBlock,
    CallResult,
    ChainMismatch,
    Ledger,
    iter_logs,
)
from state.db import LevelDBStore, MemoryStore, StagedDB
from state.transactions import (
    MAX_TRANSACTION_SIZE,
    InvalidSignature,
    MalformedTransaction,
    OversizedTransaction,
    TransactionError,
    UnsupportedTransactionType,
    decode_transaction,
)
from state.vm import LedgerVM

__all__ = [
    "MAX_TRANSACTION_SIZE", "AccountOverride", "BlockBuildError", "BlockImportError", "BuiltBlock", "CallResult",
    "ChainMismatch", "InvalidSignature", "Ledger", "LedgerVM", "LevelDBStore",
    "MalformedTransaction", "MemoryStore", "OversizedTransaction", "StagedDB",
    "TransactionError", "UnsupportedTransactionType", "decode_transaction", "iter_logs",
]

"""The chain: py-evm VM subclass, LevelDB storage and the one atomic block-import entry point."""

from state.chain import (
    AccountOverride,
    BlockBuildError,
    BlockImportError,
    BuiltBlock,
    CallResult,
    CallTimeout,
    ChainMismatch,
    Ledger,
    iter_logs,
)
from state.db import LevelDBStore, MemoryStore, ReadTimeout, StagedDB, read_deadline
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
    "MAX_TRANSACTION_SIZE", "AccountOverride", "BlockBuildError", "BlockImportError", "BuiltBlock",
    "CallResult", "CallTimeout", "ChainMismatch", "InvalidSignature", "Ledger", "LedgerVM",
    "LevelDBStore", "MalformedTransaction", "MemoryStore", "OversizedTransaction", "ReadTimeout",
    "StagedDB",
    "TransactionError", "UnsupportedTransactionType", "decode_transaction", "iter_logs",
    "read_deadline",
]

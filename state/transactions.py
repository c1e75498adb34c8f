"""Decoding signed transactions from the wire, with one typed error per kind of bad input."""

from __future__ import annotations

import rlp
from eth.abc import SignedTransactionAPI
from eth.exceptions import UnrecognizedTransactionType
from eth_utils import ValidationError

from state.native import NATIVE_TYPES
from state.senders import SENDERS
from state.vm import LedgerVM

#: EIP-4844 blob transactions need a blob pool and a consensus client; we refuse them.
BLOB_TRANSACTION_TYPE = 3
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Largest accepted transaction, as geth's pool (128 KiB).
MAX_TRANSACTION_SIZE = 128 * 1024


class TransactionError(ValueError):
    """A transaction that cannot enter the pool; the message says why."""


class MalformedTransaction(TransactionError):
    """The bytes are not a valid RLP/EIP-2718 transaction."""


class UnsupportedTransactionType(TransactionError):
    """A well-formed transaction of a type this chain does not accept."""


class InvalidSignature(TransactionError):
    """The signature does not recover to a sender."""


class OversizedTransaction(TransactionError):
    """Larger than :data:`MAX_TRANSACTION_SIZE`."""


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    """Decode and check the signature of one signed transaction (raw EIP-2718 bytes)."""
    if len(raw) > MAX_TRANSACTION_SIZE:
        raise OversizedTransaction(
            f"oversized data: transaction size {len(raw)}, limit {MAX_TRANSACTION_SIZE}"
        )
    if not raw:
        raise MalformedTransaction("empty transaction")
    if raw[0] == BLOB_TRANSACTION_TYPE:
        raise UnsupportedTransactionType(
            "blob transactions (type 3) are not supported on this chain"
        )
    builder = LedgerVM.get_transaction_builder()
    try:
        tx = builder.decode(raw)
    except UnrecognizedTransactionType:
        raise UnsupportedTransactionType(f"transaction type {raw[0]} not supported") from None
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError, TypeError,
            IndexError, KeyError) as e:
        if raw[0] < 0x7F and raw[0] not in (1, 2, 4, *NATIVE_TYPES):
            raise UnsupportedTransactionType(f"transaction type {raw[0]} not supported") from None
        raise MalformedTransaction(f"rlp: {e}") from None
    try:
        tx.validate()
    except ValidationError as e:
        raise MalformedTransaction(f"invalid transaction: {e}") from None
    if not 0 < tx.s <= SECP256K1_N // 2 or not 0 < tx.r < SECP256K1_N:
        # EIP-2: a high-s twin of a signature recovers the same sender under another hash.
        raise InvalidSignature("invalid transaction v, r, s values")
    try:
        SENDERS.sender_of(tx)  # recovering the sender (once per hash) is the signature check
    except Exception as e:
        raise InvalidSignature(f"invalid sender: {e}") from None
    return tx


def transaction_type(tx: SignedTransactionAPI) -> int:
    return getattr(tx, "type_id", None) or 0

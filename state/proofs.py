"""Merkle proofs of accounts and storage slots against a state root (EIP-1186,
eth_getProof), read from the same trie nodes the chain stores."""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from trie import HexaryTrie

BLANK_ROOT = keccak(rlp.encode(b""))
EMPTY_CODE_HASH = keccak(b"")
#: Most storage slots one proof request may name.
MAX_PROOF_SLOTS = 1024


@dataclass(frozen=True)
class StorageProof:
    slot: int
    value: int
    proof: tuple[bytes, ...]
    """RLP-encoded trie nodes from the storage root down to the slot."""


@dataclass(frozen=True)
class AccountProof:
    address: bytes
    nonce: int
    balance: int
    code_hash: bytes
    storage_root: bytes
    proof: tuple[bytes, ...]
    """RLP-encoded trie nodes from the state root down to the account."""
    storage: tuple[StorageProof, ...]


def _encoded(nodes: object) -> tuple[bytes, ...]:
    return tuple(rlp.encode(node) for node in nodes)  # type: ignore[attr-defined]


def prove_account(db: object, state_root: bytes, address: bytes, slots: list[int]) -> AccountProof:
    """The proof of ``address`` and of each of ``slots`` in its storage at ``state_root``.

    An absent account proves as the empty account (the proof shows where it would be).
    """
    state_trie = HexaryTrie(db, state_root)
    key = keccak(address)
    raw = state_trie.get(key)
    account = rlp.decode(raw, sedes=Account) if raw else Account()
    account_proof = _encoded(state_trie.get_proof(key))
    storage_trie = HexaryTrie(db, account.storage_root)
    storage = []
    for slot in slots:
        slot_key = keccak(slot.to_bytes(32, "big"))
        value_raw = storage_trie.get(slot_key)
        value = rlp.decode(value_raw, sedes=rlp.sedes.big_endian_int) if value_raw else 0
        proof = _encoded(storage_trie.get_proof(slot_key)) if account.storage_root != BLANK_ROOT else ()
        storage.append(StorageProof(slot, value, proof))
    return AccountProof(
        address=address,
        nonce=account.nonce,
        balance=account.balance,
        code_hash=account.code_hash,
        storage_root=account.storage_root,
        proof=account_proof,
        storage=tuple(storage),
    )

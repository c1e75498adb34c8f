"""A transaction's sender is recovered once per hash: a block decoded after its transactions were
admitted carries their senders without recovering them again, a bad signature is still refused,
and the cache stays within its bound."""

from __future__ import annotations

import rlp
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import InvalidSignature, Ledger, MemoryStore, decode_transaction
from state.senders import SENDERS, SenderCache
from state.vm import LedgerBlock

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 2)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=2)


def signed(nonce: int) -> bytes:
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=ACCOUNTS[1].address, value=1, gas=21_000,
              maxFeePerGas=10**10, maxPriorityFeePerGas=1)
    return bytes(Account.sign_transaction(tx, ACCOUNTS[0].private_key).raw_transaction)


def test_a_decoded_block_gets_the_senders_of_admitted_transactions():
    txs = [decode_transaction(signed(n)) for n in range(3)]
    assert all(SENDERS.get(bytes(tx.hash)) == bytes.fromhex(ACCOUNTS[0].address[2:]) for tx in txs)
    builder = Ledger(MemoryStore(), GENESIS)
    block = builder.build_block(txs, GENESIS.timestamp + 1, b"\0" * 20).block
    wire = rlp.decode(rlp.encode(block), sedes=LedgerBlock)
    assert all("sender" not in tx.__dict__ for tx in wire.transactions)
    SENDERS.restore(wire.transactions)
    assert [tx.__dict__["sender"] for tx in wire.transactions] == [tx.sender for tx in txs]
    follower = Ledger(MemoryStore(), GENESIS)
    follower.import_block(rlp.decode(rlp.encode(block), sedes=LedgerBlock))
    assert follower.head == block.header


def test_another_signature_is_another_hash_recovered_anew():
    good = decode_transaction(signed(7))
    raw = bytearray(signed(7))
    raw[-40] ^= 0x01  # inside s: another signature over the same fields
    try:
        other = decode_transaction(bytes(raw))
    except InvalidSignature:
        return  # no sender at all: refused
    assert other.hash != good.hash
    assert other.sender != good.sender and SENDERS.get(bytes(other.hash)) == other.sender


def test_the_cache_is_bounded():
    cache = SenderCache(size=4)
    for i in range(10):
        cache.remember(bytes([i]) * 32, bytes([i]) * 20)
    assert len(cache) == 4
    assert cache.get(bytes([0]) * 32) is None and cache.get(bytes([9]) * 32) == bytes([9]) * 20

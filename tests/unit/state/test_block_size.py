"""A block must travel whole, with its commit, in one 1 MiB p2p frame: the builder leaves
out what would make it larger (for the next block) and import refuses a larger block."""

import rlp
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import BlockImportError, Ledger, MemoryStore, decode_transaction
from state import chain as chain_module

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 4)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=4)
PAYLOAD = 120 * 1024  # each transaction near the 128 KiB transaction cap


def big(i, nonce):
    data = bytes([i + 1]) * PAYLOAD
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=ACCOUNTS[(i + 1) % 4].address, value=1,
              gas=21_000 + 16 * PAYLOAD, maxFeePerGas=10**10, maxPriorityFeePerGas=1, data=data)
    return decode_transaction(bytes(Account.sign_transaction(tx, ACCOUNTS[i].private_key).raw_transaction))


def test_the_builder_keeps_a_block_under_the_size_limit():
    ledger = Ledger(MemoryStore(), GENESIS)
    txs = [big(i, n) for n in range(3) for i in range(3)]  # 9 x 120 KiB, 18M gas: fits the gas, not the size
    built = ledger.build_block(txs, GENESIS.timestamp + 1, b"\0" * 20)
    size = len(rlp.encode(built.block))
    assert 5 <= len(built.block.transactions) < 9
    assert size <= chain_module.MAX_BLOCK_BYTES
    assert built.rejected == ()  # left out for the next block, not refused
    rest = [tx for tx in txs if tx not in built.block.transactions]
    again = ledger.build_block(rest, GENESIS.timestamp + 2, b"\0" * 20)
    assert len(again.block.transactions) == len(rest)


def test_import_refuses_a_block_over_the_limit(monkeypatch):
    source = Ledger(MemoryStore(), GENESIS)
    built = source.build_block([big(0, 0), big(1, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    size = len(rlp.encode(built.block))
    follower = Ledger(MemoryStore(), GENESIS)
    monkeypatch.setattr(chain_module, "MAX_BLOCK_BYTES", size - 1)
    try:
        follower.import_block(built.block)
    except BlockImportError as e:
        assert "exceeds" in str(e)
    else:
        raise AssertionError("a block over the limit was imported")
    assert follower.head.block_number == 0
    monkeypatch.setattr(chain_module, "MAX_BLOCK_BYTES", size)
    follower.import_block(built.block)
    assert follower.head.block_number == 1

"""The ledger on a real LevelDB: atomic commits, restarts, rewinds, dev state edits."""

import pytest
import rlp
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import (
    BlockImportError,
    ChainMismatch,
    InvalidSignature,
    Ledger,
    LevelDBStore,
    MalformedTransaction,
    MemoryStore,
    OversizedTransaction,
    StagedDB,
    UnsupportedTransactionType,
    decode_transaction,
)

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 4)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=4)


def addr(i):
    return bytes.fromhex(ACCOUNTS[i].address[2:])


def transfer(i, nonce, to=1, value=1, **kw):
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=ACCOUNTS[to].address, value=value,
              gas=21_000, maxFeePerGas=10**10, maxPriorityFeePerGas=1)
    tx.update(kw)
    return decode_transaction(bytes(Account.sign_transaction(tx, ACCOUNTS[i].private_key).raw_transaction))


def test_build_commit_and_reopen(tmp_path):
    ledger = Ledger(LevelDBStore(tmp_path), GENESIS)
    built = ledger.build_block([transfer(0, 0), transfer(0, 1)], GENESIS.timestamp + 1, b"\x11" * 20)
    assert len(built.block.transactions) == 2
    head = ledger.head
    balance = ledger.state_at(head).get_balance(addr(1))
    ledger.close()

    reopened = Ledger(LevelDBStore(tmp_path), GENESIS)
    assert reopened.head == head
    assert reopened.state_at(reopened.head).get_balance(addr(1)) == balance
    assert reopened.transaction_location(built.block.transactions[1].hash) == (1, 1)
    reopened.close()


def test_invalid_transactions_are_left_out_not_fatal():
    ledger = Ledger(MemoryStore(), GENESIS)
    built = ledger.build_block([transfer(0, 0), transfer(0, 5), transfer(1, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    assert [tx.nonce for tx in built.block.transactions] == [0, 0]
    assert len(built.rejected) == 1 and "nonce" in built.rejected[0][1]


def test_timestamp_must_increase():
    ledger = Ledger(MemoryStore(), GENESIS)
    with pytest.raises(BlockImportError, match="timestamp"):
        ledger.build_block([], GENESIS.timestamp, b"\0" * 20)


def test_a_failed_build_leaves_nothing_staged(tmp_path):
    ledger = Ledger(LevelDBStore(tmp_path), GENESIS)
    root = ledger.head.state_root
    with pytest.raises(BlockImportError):
        ledger.build_block([transfer(0, 0)], GENESIS.timestamp - 5, b"\0" * 20)
    assert not ledger.staged.has_staged
    assert ledger.head.state_root == root
    ledger.close()


def test_other_genesis_on_same_datadir_is_refused(tmp_path):
    Ledger(LevelDBStore(tmp_path), GENESIS).close()
    other = dev_genesis(timestamp=5, accounts=1)
    store = LevelDBStore(tmp_path)
    with pytest.raises(ChainMismatch):
        Ledger(store, other)
    store.close()


def test_import_block_validates_and_commits():
    builder = Ledger(MemoryStore(), GENESIS)
    built = builder.build_block([transfer(0, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    follower = Ledger(MemoryStore(), GENESIS)
    follower.import_block(built.block)
    assert follower.head.hash == built.block.header.hash
    # A tampered block (wrong state root) is refused and leaves the follower unchanged.
    builder.build_block([transfer(0, 1)], GENESIS.timestamp + 2, b"\0" * 20)
    second = builder.block(builder.head)
    forged = second.copy(header=second.header.copy(state_root=b"\x01" * 32))
    with pytest.raises(BlockImportError):
        follower.import_block(forged)
    assert follower.head.hash == built.block.header.hash
    assert not follower.staged.has_staged


def test_rewind_and_rebuild():
    ledger = Ledger(MemoryStore(), GENESIS)
    ledger.build_block([transfer(0, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    mark = ledger.head.hash
    later = ledger.build_block([transfer(0, 1)], GENESIS.timestamp + 2, b"\0" * 20)
    ledger.rewind(mark)
    assert ledger.head.hash == mark
    assert ledger.transaction_location(later.block.transactions[0].hash) is None
    assert ledger.state_at(ledger.head).get_nonce(addr(0)) == 1
    rebuilt = ledger.build_block([transfer(0, 1, value=7)], GENESIS.timestamp + 3, b"\0" * 20)
    assert ledger.head.block_number == 2
    assert ledger.transaction_location(rebuilt.block.transactions[0].hash) == (2, 0)


def test_dev_state_edit_carries_into_next_block():
    ledger = Ledger(MemoryStore(), GENESIS)
    ledger.edit_state(addr(3), balance=12345)
    assert ledger.state_at(ledger.head).get_balance(addr(3)) == 12345
    ledger.build_block([], GENESIS.timestamp + 1, b"\0" * 20)
    assert ledger.state_at(ledger.head).get_balance(addr(3)) == 12345


def test_call_and_estimate():
    ledger = Ledger(MemoryStore(), GENESIS)
    # PUSH1 0x2a PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN: returns 42
    code = bytes.fromhex("602a60005260206000f3")
    ledger.edit_state(b"\x42" * 20, code=code)
    result = ledger.execute_call(ledger.head, addr(0), b"\x42" * 20, b"")
    assert result.success and int.from_bytes(result.output, "big") == 42
    # PUSH1 0 PUSH1 0 REVERT
    ledger.edit_state(b"\x43" * 20, code=bytes.fromhex("60006000fd"))
    reverted = ledger.execute_call(ledger.head, addr(0), b"\x43" * 20, b"")
    assert not reverted.success and reverted.reverted
    gas, _ = ledger.estimate_gas(ledger.head, addr(0), addr(1), b"", 1)
    assert gas == 21_000


def test_staged_db_commits_all_or_nothing():
    store = MemoryStore()
    db = StagedDB(store)
    db[b"a"] = b"1"
    db[b"b"] = b"2"
    assert store.get(b"a") is None and db[b"a"] == b"1"
    db.discard()
    assert b"a" not in db
    db[b"a"] = b"1"
    db.commit()
    assert store.get(b"a") == b"1"
    del db[b"a"]
    assert b"a" not in db and store.get(b"a") == b"1"
    db.commit()
    assert store.get(b"a") is None


def test_decode_errors_are_typed():
    good = transfer(0, 0)
    raw = bytearray(good.encode())
    with pytest.raises(MalformedTransaction):
        decode_transaction(bytes(raw[:-5]))
    with pytest.raises(MalformedTransaction):
        decode_transaction(b"")
    with pytest.raises(UnsupportedTransactionType):
        decode_transaction(b"\x03" + bytes(raw[1:]))
    with pytest.raises(OversizedTransaction):
        decode_transaction(b"\x02" + b"\x00" * (129 * 1024))
    tampered = Account.sign_transaction(
        dict(type=2, chainId=GENESIS.chain_id, nonce=0, to=ACCOUNTS[1].address, value=1, gas=21000,
             maxFeePerGas=10**10, maxPriorityFeePerGas=1), ACCOUNTS[0].private_key)
    fields = rlp.decode(bytes(tampered.raw_transaction)[1:])
    fields[-1] = b"\xff" * 32  # s above the curve order
    with pytest.raises((InvalidSignature, MalformedTransaction)):
        decode_transaction(b"\x02" + rlp.encode(fields))


def test_a_build_deadline_stops_taking_transactions_after_the_first():
    """A BFT proposal's size follows the machine: past its deadline the block takes no more
    (the first always goes in, so a slow machine still makes progress); the rest stay
    candidates, and without a deadline the block holds them all."""
    import time

    ledger = Ledger(MemoryStore(), GENESIS)
    txs = [transfer(0, n) for n in range(5)]
    built = ledger.build_block(txs, GENESIS.timestamp + 1, b"\0" * 20, persist=False, deadline=time.monotonic() - 1)
    assert [tx.nonce for tx in built.block.transactions] == [0] and not built.rejected
    built = ledger.build_block(txs, GENESIS.timestamp + 1, b"\0" * 20, persist=False, deadline=time.monotonic() + 60)
    assert len(built.block.transactions) == 5

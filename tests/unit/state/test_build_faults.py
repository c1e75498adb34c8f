"""Block building survives a transaction whose execution raises what no transaction may
(an exception other than a VM error, as a bug in a precompile does): it is left out and
reported, the block is built without it, and nothing of its partial execution remains."""

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from ai_precompiles.addresses import DATANETS
from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import BlockBuildError, Ledger, LevelDBStore, MemoryStore, decode_transaction
from state.vm import LedgerComputation
from tests.support.faults import FAULTY, SLOT, faulty_precompile

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 4)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=4)


@pytest.fixture
def faulty_vm(monkeypatch):
    monkeypatch.setattr(LedgerComputation, "_precompiles", {**LedgerComputation._precompiles, FAULTY: faulty_precompile})


def sign(i, nonce, to=None, data=b"", gas=30_000):
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=to or ACCOUNTS[(i + 1) % 4].address, value=1,
              gas=gas, maxFeePerGas=10**10, maxPriorityFeePerGas=1, data=data)
    return decode_transaction(bytes(Account.sign_transaction(tx, ACCOUNTS[i].private_key).raw_transaction))


def boom(i, nonce, kind=b"runtime"):
    return sign(i, nonce, to=to_checksum_address(FAULTY), data=b"boom:" + kind, gas=100_000)


@pytest.mark.parametrize("kind", [b"runtime", b"assert", b"memory", b"key"])
def test_a_faulting_transaction_is_left_out_and_the_block_built(faulty_vm, tmp_path, kind):
    ledger = Ledger(LevelDBStore(tmp_path), GENESIS)
    good_a, bad, after_bad, good_c = sign(0, 0), boom(1, 0, kind), sign(1, 1), sign(2, 0)
    built = ledger.build_block([good_a, bad, after_bad, good_c], GENESIS.timestamp + 1, b"\0" * 20)
    assert [tx.hash for tx in built.block.transactions] == [good_a.hash, good_c.hash]
    assert built.faulted == (bad.hash,)
    assert [(tx.hash, reason.split(":")[0]) for tx, reason in built.rejected] == [(bad.hash, "execution fault")]
    # The sender's later nonce is neither included nor rejected: the pool re-queues it.
    assert after_bad.hash not in {tx.hash for tx, _ in built.rejected}
    state = ledger.state_at(ledger.head)
    assert state.get_storage(DATANETS, SLOT) == 0
    assert state.get_nonce(bytes.fromhex(ACCOUNTS[1].address[2:])) == 0
    # The same block as one built from the good transactions alone.
    clean = Ledger(MemoryStore(), GENESIS)
    again = clean.build_block([good_a, good_c], GENESIS.timestamp + 1, b"\0" * 20)
    assert again.block.header.state_root == built.block.header.state_root
    ledger.close()


def test_a_call_that_does_not_fault_still_runs(faulty_vm):
    ledger = Ledger(MemoryStore(), GENESIS)
    ok = sign(0, 0, to=to_checksum_address(FAULTY), data=b"fine", gas=100_000)
    built = ledger.build_block([ok], GENESIS.timestamp + 1, b"\0" * 20)
    assert built.block.transactions == (ok,) and built.rejected == ()
    assert ledger.state_at(ledger.head).get_storage(DATANETS, SLOT) == 1


def test_a_block_that_cannot_be_sealed_is_an_error_not_a_retry(monkeypatch):
    ledger = Ledger(MemoryStore(), GENESIS)
    head = ledger.head
    calls = []

    def broken(*a, **kw):
        calls.append(1)
        raise RuntimeError("finalisation bug")

    monkeypatch.setattr(ledger.chain, "persist_block", broken)
    with pytest.raises(BlockBuildError, match="finalisation bug"):
        ledger.build_block([sign(0, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    assert len(calls) == 1  # no transaction is to blame: nothing to leave out and retry
    assert ledger.head == head and not ledger.staged.has_staged
    monkeypatch.undo()
    built = ledger.build_block([sign(0, 0)], GENESIS.timestamp + 1, b"\0" * 20)
    assert len(built.block.transactions) == 1


def test_a_transaction_that_no_longer_fits_waits_for_the_next_block():
    ledger = Ledger(MemoryStore(), GENESIS)
    # Declared gas counts against what the block has left after what really ran. The
    # attack: a transaction declaring (almost) the whole block, using 21,000. It does not
    # keep the others out; one more like it no longer fits and waits.
    small = [sign(1, n) for n in range(3)]
    big = sign(0, 0, gas=GENESIS.gas_limit - 3 * 21_000)
    after_big, last = sign(0, 1), sign(3, 0)
    too_big = sign(2, 0, gas=GENESIS.gas_limit - 2 * 21_000)
    after_too_big = sign(2, 1)
    built = ledger.build_block([*small, big, after_big, too_big, after_too_big, last], GENESIS.timestamp + 1, b"\0" * 20)
    assert [tx.hash for tx in built.block.transactions] == [t.hash for t in (*small, big, after_big, last)]
    assert built.block.header.gas_used == 6 * 21_000
    assert built.rejected == ()  # too_big (and its sender's next) are left for the next block, not refused


def test_the_one_pass_builder_makes_the_block_py_evm_mine_all_makes():
    txs = [sign(i, n, data=b"\x01" * n) if i else sign(i, n, gas=60_000) for n in range(4) for i in range(3)]
    ours = Ledger(MemoryStore(), GENESIS)
    built = ours.build_block(txs, GENESIS.timestamp + 1, b"\x07" * 20)
    reference = Ledger(MemoryStore(), GENESIS)
    reference.chain.header = reference._pending_header(reference.head, GENESIS.timestamp + 1, b"\x07" * 20)
    result, receipts, _ = reference.chain.mine_all(txs, coinbase=b"\x07" * 20)
    assert built.block.header == result.imported_block.header
    assert built.receipts == receipts

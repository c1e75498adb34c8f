"""ChainCore with a faulty precompile on the real LedgerVM: one bad transaction is dropped
from the pool with a log line and never stops block production (automine or interval)."""

import logging

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from node.chain.assembly import assemble
from node.errors import Refused
from state import Ledger, MemoryStore, decode_transaction
from state.vm import LedgerComputation
from tests.support.faults import FAULTY, faulty_precompile

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 3)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=3)


@pytest.fixture(autouse=True)
def faulty_vm(monkeypatch):
    monkeypatch.setattr(LedgerComputation, "_precompiles", {**LedgerComputation._precompiles, FAULTY: faulty_precompile})


def sign(i, nonce, to=None, data=b"", gas=21_000):
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=to or ACCOUNTS[(i + 1) % 3].address, value=1,
              gas=gas, maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, data=data)
    return decode_transaction(bytes(Account.sign_transaction(tx, ACCOUNTS[i].private_key).raw_transaction))


def boom(i, nonce):
    return sign(i, nonce, to=to_checksum_address(FAULTY), data=b"boom:runtime", gas=100_000)


def test_automine_refuses_the_faulting_transaction_and_keeps_mining(caplog):
    core = assemble(Ledger(MemoryStore(), GENESIS), automine=True).core
    bad = boom(0, 0)
    with caplog.at_level(logging.WARNING), pytest.raises(Refused, match="transaction dropped: execution fault: RuntimeError"):
        core.submit(bad)
    assert len(core.pool) == 0
    assert f"dropped transaction 0x{bad.hash.hex()}" in caplog.text
    good = sign(1, 0)
    core.submit(good)
    assert core.ledger.transaction_location(good.hash) is not None
    assert core.ledger.transaction_location(bad.hash) is None
    # The faulting sender's nonce is free again: its next transaction uses nonce 0.
    core.submit(sign(0, 0))
    assert core.account_nonce(bytes.fromhex(ACCOUNTS[0].address[2:])) == 1


def test_interval_blocks_drop_the_faulting_transaction_once_and_requeue_its_successors():
    core = assemble(Ledger(MemoryStore(), GENESIS), automine=False).core
    bad, after_bad, other = boom(0, 0), sign(0, 1), sign(1, 0)
    for tx in (bad, after_bad, other):
        core.submit(tx)
    built = core.mine()
    assert [tx.hash for tx in built.block.transactions] == [other.hash]
    assert built.faulted == (bad.hash,)
    # Nonce 1 now waits for a new nonce 0; nothing is retried.
    assert bad.hash not in core.pool.by_hash
    assert (core.pool.pending_count, core.pool.queued_count) == (0, 1)
    again = core.mine()
    assert again.block.transactions == () and again.rejected == ()
    core.submit(sign(0, 0))
    assert [tx.nonce for tx in core.mine().block.transactions] == [0, 1]

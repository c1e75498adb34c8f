"""Automine groups arrivals: transactions admitted before the requested block's job runs share
that block, a sender that settles finds its transaction mined, a faulting one is still refused
to its sender, and an admission that needs an earlier unmined transaction is judged after it.
A real chain worker thread and a real in-memory chain; nothing mocked."""

from __future__ import annotations

import logging

import pytest
from eth_account import Account
from eth_utils import to_canonical_address, to_checksum_address

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from node.chain.assembly import LocalChain, assemble
from node.errors import Refused
from node.worker import ChainWorker
from state import Ledger, MemoryStore, decode_transaction
from state.vm import LedgerComputation
from tests.support.faults import FAULTY, faulty_precompile

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 4)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=4)
FRESH = Account.create("automine-groups")


def sign(key: bytes, nonce: int, to: str, value: int = 1, data: bytes = b"", gas: int = 21_000):
    tx = dict(type=2, chainId=GENESIS.chain_id, nonce=nonce, to=to, value=value, gas=gas,
              maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, data=data)
    return decode_transaction(bytes(Account.sign_transaction(tx, key).raw_transaction))


@pytest.fixture
def chain():
    worker = ChainWorker("test-chain")
    local: LocalChain = worker.call_blocking(lambda: assemble(Ledger(MemoryStore(), GENESIS), automine=True))
    assert local.producer is not None
    local.producer.attach(worker)
    yield local, worker
    worker.stop()


def test_transactions_admitted_in_one_job_share_one_block(chain):
    local, worker = chain
    core = local.core
    txs = [sign(ACCOUNTS[i % 4].private_key, i // 4, ACCOUNTS[(i + 1) % 4].address) for i in range(12)]

    def admit_all():
        hashes = [core.submit(tx, wait=False) for tx in txs]
        # Nothing is mined inside the job that admitted them: the block is a job of its own.
        assert core.ledger.head.block_number == 0
        assert all(core.awaits_block(h) for h in hashes)
        return hashes

    hashes = worker.call_blocking(admit_all)
    settled = worker.call_blocking(lambda: [core.settle(h) for h in hashes])
    assert settled == hashes
    head = worker.call_blocking(lambda: core.ledger.head)
    assert head.block_number == 1
    block = worker.call_blocking(lambda: core.ledger.block(head))
    assert [tx.hash for tx in block.transactions] == hashes
    assert worker.call_blocking(lambda: len(core.pool)) == 0


def test_a_lone_transaction_is_mined_before_its_sender_settles(chain):
    local, worker = chain
    core = local.core
    tx = sign(ACCOUNTS[0].private_key, 0, ACCOUNTS[1].address)
    tx_hash = worker.call_blocking(lambda: core.submit(tx, wait=False))
    worker.call_blocking(lambda: core.settle(tx_hash))
    assert worker.call_blocking(lambda: core.ledger.transaction_location(tx_hash)) == (1, 0)


def test_a_transaction_that_needs_an_unmined_one_is_judged_after_it(chain):
    local, worker = chain
    core = local.core
    fund = sign(ACCOUNTS[0].private_key, 0, FRESH.address, value=10**18)
    spend = sign(FRESH.key, 0, ACCOUNTS[1].address)

    def admit_both():
        return core.submit(fund, wait=False), core.submit(spend, wait=False)

    # The fresh account has nothing at the head; sent one after the other, each waiting for
    # its block, the second would find the first's funds: so it does here.
    first, second = worker.call_blocking(admit_both)
    worker.call_blocking(lambda: [core.settle(first), core.settle(second)])
    assert worker.call_blocking(lambda: core.ledger.transaction_location(first)) == (1, 0)
    assert worker.call_blocking(lambda: core.ledger.transaction_location(second)) == (2, 0)
    fresh = bytes(to_canonical_address(FRESH.address))
    assert worker.call_blocking(lambda: core.account_nonce(fresh)) == 1


def test_a_faulting_transaction_in_a_group_is_refused_to_its_sender_only(chain, monkeypatch, caplog):
    monkeypatch.setattr(LedgerComputation, "_precompiles", {**LedgerComputation._precompiles, FAULTY: faulty_precompile})
    local, worker = chain
    core = local.core
    good = sign(ACCOUNTS[1].private_key, 0, ACCOUNTS[2].address)
    bad = sign(ACCOUNTS[0].private_key, 0, to_checksum_address(FAULTY), value=0, data=b"boom:runtime", gas=100_000)
    hashes = worker.call_blocking(lambda: [core.submit(good, wait=False), core.submit(bad, wait=False)])
    with caplog.at_level(logging.WARNING):
        assert worker.call_blocking(lambda: core.settle(hashes[0])) == hashes[0]
        with pytest.raises(Refused, match="transaction dropped: execution fault: RuntimeError"):
            worker.call_blocking(lambda: core.settle(hashes[1]))
    assert worker.call_blocking(lambda: core.ledger.transaction_location(hashes[0])) == (1, 0)
    assert worker.call_blocking(lambda: core.ledger.transaction_location(hashes[1])) is None


def test_automine_off_leaves_the_group_in_the_pool(chain):
    local, worker = chain
    core = local.core
    assert local.producer is not None
    tx = sign(ACCOUNTS[0].private_key, 0, ACCOUNTS[1].address)

    def admit_then_switch_off():
        tx_hash = core.submit(tx, wait=False)
        local.producer.automine = False  # evm_setAutomine(false) before the block's job runs
        return tx_hash

    tx_hash = worker.call_blocking(admit_then_switch_off)
    assert worker.call_blocking(lambda: core.settle(tx_hash)) == tx_hash
    assert worker.call_blocking(lambda: core.ledger.head.block_number) == 0
    assert tx_hash in worker.call_blocking(lambda: core.pool.by_hash)

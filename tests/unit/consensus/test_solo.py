from eth_account import Account

from consensus import Commit, SingleValidator
from genesis import dev_genesis
from state import Ledger, MemoryStore

CHAIN = 1337


def test_commit_verifies_only_with_the_validators_signature():
    v = SingleValidator(Account.create().key, CHAIN)
    commit = v.commit(5, b"\x11" * 32)
    assert commit.verify({v.address: 1}, chain_id=CHAIN)
    assert Commit.decode(commit.encode()) == commit
    other = SingleValidator(Account.create().key, CHAIN)
    assert not commit.verify({other.address: 1}, chain_id=CHAIN)  # not in the validator set
    forged = Commit(5, b"\x22" * 32, commit.signatures)  # signature over another block
    assert not forged.verify({v.address: 1}, chain_id=CHAIN)
    # One of two equal validators is not more than 2/3.
    assert not commit.verify({v.address: 1, other.address: 1}, chain_id=CHAIN)


def test_commit_is_stored_with_its_block():
    genesis = dev_genesis(timestamp=10, accounts=1)
    v = SingleValidator(Account.create().key, genesis.chain_id)
    ledger = Ledger(MemoryStore(), genesis)
    built = ledger.build_block([], 11, v.address, lambda h, bh: v.commit(h, bh).encode())
    raw = ledger.commit_of(built.block.header.hash)
    assert raw is not None
    commit = Commit.decode(raw)
    assert commit.height == 1 and commit.block_hash == built.block.header.hash
    assert commit.verify({v.address: 1}, chain_id=ledger.chain_id, height=1, block_hash=built.block.header.hash)
    assert not commit.verify({v.address: 1}, chain_id=ledger.chain_id + 1)

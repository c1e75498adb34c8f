"""What a BFT validator asks of the ledger: build a proposal without committing it, re-execute
a proposal without committing it, then commit the decided block with its commit atomically."""

import rlp

from state import BlockImportError, Ledger, LevelDBStore
from state.chain import COMMIT_PREFIX
from state.vm import LedgerBlock
from tests.unit.state.test_ledger import GENESIS, addr, transfer


def test_a_proposal_is_built_without_writing_and_imports_elsewhere(tmp_path):
    proposer = Ledger(LevelDBStore(tmp_path / "a"), GENESIS)
    other = Ledger(LevelDBStore(tmp_path / "b"), GENESIS)
    try:
        built = proposer.build_block([transfer(0, 0, value=7)], GENESIS.timestamp + 1, b"\x11" * 20,
                                     persist=False, extra_data=b"\x22" * 32)
        header = built.block.header
        assert header.block_number == 1 and header.extra_data == b"\x22" * 32
        assert proposer.head.block_number == 0  # nothing committed
        assert proposer.header_by_hash(header.hash) is None
        assert proposer.state_at(proposer.head).get_balance(addr(1)) == other.state_at(other.head).get_balance(addr(1))
        # Another validator re-executes it on its parent without writing, then commits it.
        block = rlp.decode(rlp.encode(built.block), sedes=LedgerBlock)
        other.import_block(block, persist=False)
        assert other.head.block_number == 0 and other.header_by_hash(header.hash) is None
        other.import_block(block, commit=b"commit")
        assert other.head.hash == header.hash and other.commit_of(header.hash) == b"commit"
        # The proposer commits the same bytes: the same block, the same state root.
        proposer.import_block(rlp.decode(rlp.encode(built.block), sedes=LedgerBlock))
        assert proposer.head.hash == other.head.hash
        assert proposer.head.state_root == other.head.state_root
    finally:
        proposer.close()
        other.close()


def test_a_checked_or_built_block_commits_without_executing_again(tmp_path):
    proposer = Ledger(LevelDBStore(tmp_path / "a"), GENESIS)
    other = Ledger(LevelDBStore(tmp_path / "b"), GENESIS)
    try:
        built = proposer.build_block([transfer(0, 0, value=9)], GENESIS.timestamp + 1, b"\x11" * 20, persist=False)
        block_hash = built.block.header.hash
        other.import_block(rlp.decode(rlp.encode(built.block), sedes=LedgerBlock), persist=False)
        assert not other.commit_prepared(b"\x44" * 32, {})  # never checked: the caller imports it
        assert other.commit_prepared(block_hash, {COMMIT_PREFIX + block_hash: b"commit"})
        assert proposer.commit_prepared(block_hash, {COMMIT_PREFIX + block_hash: b"commit"})
        for ledger in (proposer, other):
            assert ledger.head.hash == block_hash and ledger.commit_of(block_hash) == b"commit"
            assert ledger.state_at(ledger.head).get_balance(addr(1)) > 0
        assert proposer.head.state_root == other.head.state_root
        # A second block on top works, and a prepared block whose parent is gone is refused.
        nxt = other.build_block([transfer(0, 1)], GENESIS.timestamp + 2, b"\x11" * 20, persist=False)
        stale = other.build_block([transfer(0, 1, value=2)], GENESIS.timestamp + 2, b"\x11" * 20, persist=False)
        assert other.commit_prepared(nxt.block.header.hash, {})
        assert not other.commit_prepared(stale.block.header.hash, {})
    finally:
        proposer.close()
        other.close()
    reopened = Ledger(LevelDBStore(tmp_path / "b"), GENESIS)
    try:
        assert reopened.head.block_number == 2 and reopened.commit_of(block_hash) == b"commit"
    finally:
        reopened.close()


def test_a_tampered_proposal_fails_its_check_and_writes_nothing(tmp_path):
    proposer = Ledger(LevelDBStore(tmp_path / "a"), GENESIS)
    other = Ledger(LevelDBStore(tmp_path / "b"), GENESIS)
    try:
        built = proposer.build_block([transfer(0, 0)], GENESIS.timestamp + 1, b"\x11" * 20, persist=False)
        bad = built.block.copy(header=built.block.header.copy(state_root=b"\x33" * 32))
        try:
            other.import_block(bad, persist=False)
        except BlockImportError:
            pass
        else:
            raise AssertionError("a block with a wrong state root passed its check")
        assert other.head.block_number == 0
        other.import_block(built.block, persist=False)  # the true block still checks
    finally:
        proposer.close()
        other.close()

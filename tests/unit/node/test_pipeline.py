"""Block sync's step through the block pipeline (BlockPipeline.import_verified) on in-memory ledgers: a block enters
only with its exact commit signed by the validator set, and only if it re-executes to its
own roots; a refused block leaves the head and the store as they were."""

import pytest
import rlp
from eth_keys import keys

from consensus import Commit, SingleValidator
from genesis import DEV_CHAIN_ID, GenesisValidator, dev_genesis
from node.chain.assembly import assemble
from node.chain.pipeline import InvalidBlock
from node.network import encode_block
from p2p.wire import BlockWithCommit
from state import Ledger, MemoryStore, decode_transaction
from state.vm import LedgerBlock
from tests.integration.p2p.netsupport import ACCOUNTS, transfer

KEY = keys.PrivateKey(b"\x07" * 32)


@pytest.fixture(scope="module")
def source():
    validator = SingleValidator(KEY.to_bytes(), DEV_CHAIN_ID)
    genesis = dev_genesis(timestamp=1_700_000_000)
    genesis = type(genesis)(**{**genesis.__dict__, "validators": (GenesisValidator(validator.address, 1),)})
    ledger = Ledger(MemoryStore(), genesis)
    for b in range(3):
        tx = decode_transaction(transfer(genesis.chain_id, 0, b, ACCOUNTS[1].address))
        ledger.build_block([tx], genesis.timestamp + b + 1, validator.address,
                           lambda h, bh: validator.commit(h, bh).encode())
    core = assemble(ledger, produces_blocks=False).core
    items = [encode_block(core, ledger.block(ledger.header_by_number(n))) for n in (1, 2, 3)]
    return genesis, validator, items


def fresh(genesis):
    chain = assemble(Ledger(MemoryStore(), genesis), produces_blocks=False)
    return chain.core, chain.pipeline


def test_good_blocks_import_with_their_commits(source):
    genesis, _, items = source
    core, pipeline = fresh(genesis)
    for n, item in enumerate(items, start=1):
        pipeline.import_verified(item.block, item.commit, expected=n)
    assert core.ledger.head.block_number == 3
    assert core.ledger.commit_of(core.ledger.head.hash) == items[2].commit


def refused(genesis, item, match, expected=1):
    core, pipeline = fresh(genesis)
    with pytest.raises(InvalidBlock, match=match):
        pipeline.import_verified(item.block, item.commit, expected)
    assert core.ledger.head.block_number == 0
    try:
        block_hash = rlp.decode(item.block, sedes=LedgerBlock).header.hash
    except rlp.DecodingError:
        return
    assert core.ledger.commit_of(block_hash) is None  # the staged commit went with the block


def test_wrong_state_root_under_a_valid_commit(source):
    genesis, validator, items = source
    block = rlp.decode(items[0].block, sedes=LedgerBlock)
    header = block.header.copy(state_root=b"\x42" * 32)
    bad = BlockWithCommit(rlp.encode(block.copy(header=header)), validator.commit(1, header.hash).encode())
    refused(genesis, bad, "does not verify")


def test_bad_duplicated_foreign_or_misplaced_commits(source):
    genesis, validator, items = source
    commit = Commit.decode(items[0].commit)
    address, signature = commit.signatures[0]
    broken = bytes([signature[0] ^ 1]) + signature[1:]
    refused(genesis, BlockWithCommit(items[0].block, Commit(1, commit.block_hash, ((address, broken),)).encode()), "2/3")
    refused(genesis, BlockWithCommit(items[0].block, Commit(1, commit.block_hash, ((address, signature),) * 2).encode()), "twice")
    stranger = SingleValidator(b"\x09" * 32, DEV_CHAIN_ID)
    refused(genesis, BlockWithCommit(items[0].block, stranger.commit(1, commit.block_hash).encode()), "2/3")
    refused(genesis, BlockWithCommit(items[0].block, items[1].commit), "another block")
    refused(genesis, items[1], "where block 1 was asked for")
    refused(genesis, BlockWithCommit(b"\xff garbage", items[0].commit), "undecodable block")
    refused(genesis, BlockWithCommit(items[0].block, b"\x00junk"), "undecodable commit")


def test_a_proposal_packs_what_fits_past_transactions_declaring_the_whole_block():
    """Issue 19: a proposal took the first ``max_txs`` candidates by price and then tried only
    those; senders whose transactions each declare the whole block at a higher tip filled the
    candidates, one fitted, and the block held nothing else. The cap counts what the block holds."""
    from eth_account import Account

    from genesis import DEV_MNEMONIC, derive_accounts

    genesis = dev_genesis(timestamp=1_700_000_000)
    core, pipeline = fresh(genesis)
    keys_ = derive_accounts(DEV_MNEMONIC, 10)

    def raw(i, nonce, gas, tip):
        return bytes(Account.sign_transaction(dict(
            type=2, chainId=genesis.chain_id, nonce=nonce, to=keys_[9].address, value=1, gas=gas,
            maxFeePerGas=10**11, maxPriorityFeePerGas=tip), keys_[i].private_key).raw_transaction)

    hogs = [core.submit_raw(raw(i, 0, genesis.gas_limit, 5 * 10**9)) for i in range(6)]
    honest = [core.submit_raw(raw(i, n, 21_000, 10**9)) for i in (6, 7) for n in range(3)]
    built = pipeline.propose(genesis.timestamp + 1, bytes.fromhex(keys_[0].address[2:]), b"", max_txs=5)
    # The best tip first; after it no other hog fits, and the honest ones that do are packed.
    assert [tx.hash for tx in built.block.transactions] == [hogs[0], *honest[:4]]


def test_an_unknown_upgrade_stops_the_node_without_blaming_the_peer(source, monkeypatch):
    """A block at the height of an upgrade this release lacks is not the peer's fault: the
    pipeline raises UpgradeRequired (not InvalidBlock, which bans), halts the node once, and
    writes nothing; the block below the height imports as before."""
    from ai_precompiles import upgrades

    genesis, _, items = source
    core, pipeline = fresh(genesis)
    planned = upgrades.ScheduledUpgrade(name="ai-from-the-future", height=2, info="ailedger 9.9", proposal_id=1)
    monkeypatch.setattr(upgrades, "scheduled", lambda state: [planned])
    halts = []
    core.on_halt = halts.append
    pipeline.import_verified(items[0].block, items[0].commit, expected=1)
    for _ in range(2):
        with pytest.raises(upgrades.UpgradeRequired, match="ailedger 9.9"):
            pipeline.import_verified(items[1].block, items[1].commit, expected=2)
    assert core.ledger.head.block_number == 1
    assert len(halts) == 1 and core.halted is halts[0] and halts[0].height == 2

"""No optimisation changes a state root: random blocks built and imported by the ledger (one-pass
tries, cheap record copies, persisting without reading back, and whatever else the ledger does
to go faster) agree with py-evm's own code on the same chain, root for root.

The reference is py-evm's Prague VM with only what defines this chain (its header rules, its
precompiles, its transaction types) and none of the ledger's speed-ups. Each random block the
ledger builds is imported into the reference with py-evm's full validation (state, transaction
and receipt roots, bloom, gas); each block the reference mines with ``mine_all`` is imported into
a second ledger, whose own validation must accept it and reach the same state.
"""

from __future__ import annotations

import random

import pytest
import rlp
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth.vm.forks.prague.state import PragueState
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address
from rlp.sedes import CountableList

import ai_precompiles
from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import Ledger, MemoryStore, decode_transaction
from state.vm import (
    LedgerBlock,
    LedgerComputation,
    LedgerReceiptBuilder,
    LedgerTransactionBuilder,
    LedgerVM,
)

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 6)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=6)
COINBASE = b"\x42" * 20
#: Stores calldata[32:64] at slot calldata[0:32] and logs it under that slot as topic; reverts
#: on empty calldata.
RUNTIME = bytes.fromhex("3615601557" "60203560003555" "6000356020600" "0a1" "00" "5b60006000fd")
INITCODE = bytes.fromhex("601b600c600039601b6000f3") + RUNTIME


class ReferenceBlock(PragueBlock):
    transaction_builder = LedgerTransactionBuilder
    receipt_builder = LedgerReceiptBuilder
    fields = [  # noqa: RUF012 - rlp binds the sedes at class creation, as in LedgerBlock
        ("header", PragueBlockHeader),
        ("transactions", CountableList(LedgerTransactionBuilder)),
        ("uncles", CountableList(None, max_length=0)),
        ("withdrawals", CountableList(Withdrawal)),
    ]


class ReferenceState(PragueState):
    computation_class = LedgerComputation


class ReferenceVM(PragueVM):
    """py-evm's Prague, with this chain's header rules and precompiles only."""

    block_class = ReferenceBlock
    _state_class = ReferenceState
    create_header_from_parent = LedgerVM.create_header_from_parent
    validate_gas = LedgerVM.validate_gas


def reference_chain() -> MiningChain:
    genesis_header = Ledger(MemoryStore(), GENESIS).head
    state = GENESIS.state_dict()  # the genesis state as the ledger makes it (Ledger._create)
    for address, account in ai_precompiles.genesis_accounts(GENESIS.ai).items():
        state.setdefault(address, account)
    params = {name: getattr(genesis_header, name) for name in (
        "difficulty", "gas_limit", "timestamp", "extra_data", "coinbase", "nonce", "base_fee_per_gas")}
    chain_class = MiningChain.configure(vm_configuration=((0, ReferenceVM),), chain_id=GENESIS.chain_id)
    chain = chain_class.from_genesis(AtomicDB(), params, state)
    assert chain.get_canonical_head().state_root == genesis_header.state_root, "genesis differs"
    return chain


class Workload:
    """Random transactions: transfers to known, fresh and empty accounts, contract creations,
    storing and reverting calls, out-of-gas calls, legacy, access-list and fee-market types."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.nonces = [0] * len(ACCOUNTS)
        self.contracts: list[str] = []

    def transaction(self) -> object:
        rng = self.rng
        i = rng.randrange(len(ACCOUNTS))
        sender = ACCOUNTS[i]
        nonce = self.nonces[i]
        kind = rng.choice(["transfer", "transfer", "fresh", "zero", "create", "store", "revert", "oog"])
        if kind in ("store", "revert", "oog") and not self.contracts:
            kind = "create"
        tx: dict = {"chainId": GENESIS.chain_id, "nonce": nonce, "value": 0, "data": b"", "gas": 21_000}
        if kind == "transfer":
            tx.update(to=ACCOUNTS[rng.randrange(len(ACCOUNTS))].address, value=rng.randrange(1, 10**15))
        elif kind == "fresh":
            tx.update(to=to_checksum_address(rng.randbytes(20)), value=rng.randrange(1, 10**9))
        elif kind == "zero":
            tx.update(to=to_checksum_address(rng.randbytes(20)), value=0)  # touches an empty account
        elif kind == "create":
            tx.update(data=INITCODE, gas=200_000)
            address = keccak(rlp.encode([to_canonical_address(sender.address), nonce]))[12:]
            self.contracts.append(to_checksum_address(address))
        else:
            slot, value = rng.randrange(4), rng.randrange(0, 3)
            data = b"" if kind == "revert" else slot.to_bytes(32, "big") + value.to_bytes(32, "big")
            tx.update(to=rng.choice(self.contracts), data=data, gas=23_000 if kind == "oog" else 100_000,
                      value=rng.choice((0, 0, 7)))
        style = rng.choice(["legacy", "access", "fee", "fee"])
        if style == "legacy":
            tx["gasPrice"] = 10**10
        else:
            tx.update(maxFeePerGas=10**10, maxPriorityFeePerGas=rng.choice((0, 1, 10**9)), type=2)
            if style == "access":
                tx["accessList"] = [{"address": ACCOUNTS[0].address, "storageKeys": ["0x" + "00" * 32]}]
                tx["gas"] += 2_400 + 1_900  # the access list's intrinsic gas
                tx["gasPrice"] = tx.pop("maxFeePerGas")
                tx.pop("maxPriorityFeePerGas")
                tx["type"] = 1
        self.nonces[i] += 1
        signed = Account.sign_transaction(tx, sender.private_key)
        return decode_transaction(bytes(signed.raw_transaction))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_the_ledger_builds_import_into_py_evm(seed: int) -> None:
    ledger = Ledger(MemoryStore(), GENESIS)
    reference = reference_chain()
    work = Workload(seed)
    for number in range(1, 7):
        txs = [work.transaction() for _ in range(work.rng.randrange(0, 60))]
        built = ledger.build_block(txs, GENESIS.timestamp + number, COINBASE)
        assert len(built.block.transactions) == len(txs), built.rejected[:1]
        imported = reference.import_block(built.block).imported_block
        assert imported.header == built.block.header
        assert reference.get_canonical_head().state_root == ledger.head.state_root
        assert ledger.receipts(ledger.block(ledger.head)) == reference.get_canonical_block_by_number(
            number).get_receipts(reference.chaindb)


@pytest.mark.parametrize("seed", [4, 5])
def test_blocks_py_evm_mines_import_into_the_ledger(seed: int) -> None:
    ledger = Ledger(MemoryStore(), GENESIS)
    reference = reference_chain()
    work = Workload(seed)
    for number in range(1, 6):
        txs = [work.transaction() for _ in range(work.rng.randrange(0, 60))]
        mined, _, _ = reference.mine_all(txs, coinbase=COINBASE, timestamp=GENESIS.timestamp + number)
        block = rlp.decode(rlp.encode(mined.imported_block), sedes=LedgerBlock)  # as it comes off the wire
        ledger.import_block(block)
        assert ledger.head == block.header
        view, expected = ledger.state_at(ledger.head), reference.get_vm().state
        for account in ACCOUNTS:
            address = to_canonical_address(account.address)
            assert view.get_balance(address) == expected.get_balance(address)

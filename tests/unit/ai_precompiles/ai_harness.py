"""An in-process py-evm chain on the node's own VM (``state.vm.LedgerVM``, the VM of every
ailedger block), for unit tests and the bench.

A ``MiningChain`` configured with ``LedgerVM``, genesis from ``genesis_accounts`` plus funded
keys, in memory. Each ``send`` mines one block holding one signed EIP-1559 transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth import constants
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_utils import keccak, to_checksum_address

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from ai_precompiles.errors import decode_revert_reason
from state.vm import LedgerTransactionBuilder, LedgerVM

CHAIN_ID = 1337
GWEI = 10**9
ETHER = 10**18


class Reverted(Exception):
    """A transaction or call that failed; ``reason`` is its Error(string) reason, if any."""

    def __init__(self, reason: str | None, computation: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.computation = computation


@dataclass
class Sent:
    """Result of one mined transaction."""

    result: Any
    receipt: Any
    computation: Any
    block: Any

    @property
    def gas_used(self) -> int:
        return int(self.receipt.gas_used)

    @property
    def logs(self) -> list[Any]:
        return list(self.receipt.logs)


def make_key(i: int) -> Any:
    return Account.from_key(keccak(text=f"ailedger-test-key-{i}"))


class AIChain:
    def __init__(self, params: dict[str, Any] | None = None, n_keys: int = 8,
                 extra_genesis: dict[bytes, dict[str, Any]] | None = None) -> None:
        self.keys = [make_key(i) for i in range(n_keys)]
        genesis_state = {
            **ai_precompiles.genesis_accounts(params),
            **{bytes.fromhex(k.address[2:]): {"balance": 10**6 * ETHER, "nonce": 0, "code": b"",
                                                "storage": {}} for k in self.keys},
            **(extra_genesis or {}),
        }
        genesis_params = {
            "difficulty": 0, "gas_limit": 60_000_000, "timestamp": 1_700_000_000,
            "coinbase": constants.ZERO_ADDRESS, "nonce": b"\x00" * 8,
            "mix_hash": constants.ZERO_HASH32, "extra_data": b"",
        }
        klass = MiningChain.configure(__name__="AITestChain", vm_configuration=((0, LedgerVM),),
                                      chain_id=CHAIN_ID)
        self.chain = klass.from_genesis(AtomicDB(), genesis_params, genesis_state)
        self.nonces: dict[str, int] = {}
        self.next_timestamp: int | None = None

    # -- accounts --
    def addr(self, i: int) -> bytes:
        return bytes.fromhex(self.keys[i].address[2:])

    @property
    def state(self) -> Any:
        return self.chain.get_vm().state

    @property
    def head(self) -> Any:
        return self.chain.get_canonical_head()

    def balance(self, address: bytes) -> int:
        return self.state.get_balance(address)

    def _header_for_next(self) -> None:
        if self.next_timestamp is not None:
            self.chain.header = self.chain.header.copy(timestamp=self.next_timestamp)
            self.next_timestamp = None

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self._header_for_next()
            self.chain.mine_all([])

    # -- transactions --
    def send_raw(self, key_index: int, to: bytes, data: bytes = b"", value: int = 0,
                 gas: int = 5_000_000) -> Sent:
        key = self.keys[key_index]
        nonce = self.nonces.get(key.address, 0)
        tx = {
            "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": to_checksum_address(to),
            "value": value, "data": data, "gas": gas, "maxFeePerGas": 100 * GWEI,
            "maxPriorityFeePerGas": GWEI,
        }
        raw = bytes(key.sign_transaction(tx).raw_transaction)
        self._header_for_next()
        evm_tx = self.chain.get_vm().get_transaction_builder().decode(raw)
        result, receipts, computations = self.chain.mine_all([evm_tx])
        self.nonces[key.address] = nonce + 1
        return Sent(None, receipts[0], computations[0], result.imported_block)

    def send_block(self, calls: list[tuple[int, str, str, tuple[Any, ...]]]) -> list[Any]:
        """Mine ``(key_index, module, function, args)`` ABI calls together in one block; the
        computations, in order (a failed one has ``is_error``)."""
        txs = []
        for key_index, module, function, args in calls:
            key = self.keys[key_index]
            nonce = self.nonces.get(key.address, 0)
            fn = ai_precompiles.load_abi(module).by_name[function]
            tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": to_checksum_address(BY_NAME[module]),
                  "value": 0, "data": fn.encode_args(*args), "gas": 5_000_000,
                  "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI}
            raw = bytes(key.sign_transaction(tx).raw_transaction)
            txs.append(self.chain.get_vm().get_transaction_builder().decode(raw))
            self.nonces[key.address] = nonce + 1
        self._header_for_next()
        result, receipts, computations = self.chain.mine_all(txs)
        assert len(result.imported_block.transactions) == len(calls)
        return list(computations)

    def send_native(self, key_index: int, tx_class: Any, **payload: Any) -> Sent:
        """Mine one native EIP-2718 transaction (``state.native``) signed by key ``key_index``,
        decoded from its raw bytes by the node's own transaction builder."""
        key = self.keys[key_index]
        nonce = self.nonces.get(key.address, 0)
        tx = tx_class.sign(bytes(key.key), chain_id=CHAIN_ID, nonce=nonce,
                           max_priority_fee_per_gas=GWEI, max_fee_per_gas=100 * GWEI,
                           gas=5_000_000, **payload)
        self._header_for_next()
        raw = LedgerTransactionBuilder.wrap_native(tx).encode()
        evm_tx = self.chain.get_vm().get_transaction_builder().decode(raw)
        result, receipts, computations = self.chain.mine_all([evm_tx])
        self.nonces[key.address] = nonce + 1
        return Sent(None, receipts[0], computations[0], result.imported_block)

    def deploy(self, key_index: int, bytecode: bytes, gas: int = 10_000_000) -> bytes:
        key = self.keys[key_index]
        nonce = self.nonces.get(key.address, 0)
        tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "value": 0, "data": bytecode,
              "gas": gas, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI}
        raw = bytes(key.sign_transaction(tx).raw_transaction)
        evm_tx = self.chain.get_vm().get_transaction_builder().decode(raw)
        _, receipts, computations = self.chain.mine_all([evm_tx])
        self.nonces[key.address] = nonce + 1
        if computations[0].is_error:
            raise Reverted(str(computations[0].error), computations[0])
        return bytes(computations[0].msg.storage_address)

    def send(self, key_index: int, module: str, function: str, *args: Any, value: int = 0,
             gas: int = 5_000_000) -> Sent:
        """ABI call to a precompile in a mined transaction; raises :class:`Reverted` on failure."""
        fn = ai_precompiles.load_abi(module).by_name[function]
        sent = self.send_raw(key_index, BY_NAME[module], fn.encode_args(*args), value, gas)
        c = sent.computation
        if c.is_error:
            raise Reverted(decode_revert_reason(bytes(c.output)) or str(c.error), c)
        sent.result = fn.decode_result(bytes(c.output)) if fn.output_types else None
        return sent

    def commit(self, key_index: int, datanet: int, content_hash: bytes, size: int, license: str,
               metadata_hash: bytes, salt: bytes | None = None) -> bytes:
        """Mine key ``key_index``'s commitment to a contribution (``Datanets.commitContribution``);
        returns the salt that a contribution in a later block spends it with."""
        from ai_precompiles.datanets import contribution_commitment

        salt = keccak(text=f"salt {key_index} {datanet} {content_hash.hex()}") if salt is None else salt
        self.send(key_index, "Datanets", "commitContribution", contribution_commitment(
            self.addr(key_index), datanet, content_hash, size, license, metadata_hash, salt))
        return salt

    def contribute(self, key_index: int, datanet: int, content_hash: bytes, size: int, license: str,
                   metadata_hash: bytes) -> Sent:
        """Commit, then contribute in the next block (``Datanets.contribute``), as the CLI does."""
        salt = self.commit(key_index, datanet, content_hash, size, license, metadata_hash)
        return self.send(key_index, "Datanets", "contribute", datanet, content_hash, size, license,
                         metadata_hash, salt)

    def call(self, module: str, function: str, *args: Any, sender: bytes | None = None) -> Any:
        """eth_call-style read at the head (no block mined)."""
        fn = ai_precompiles.load_abi(module).by_name[function]
        vm = self.chain.get_vm(self.head)  # like eth_call at "latest": runs in block head + 1
        sender = sender or self.addr(0)
        unsigned = vm.create_unsigned_transaction(
            nonce=vm.state.get_nonce(sender), gas_price=0, gas=10_000_000, to=BY_NAME[module], value=0,
            data=fn.encode_args(*args))
        spoof = SpoofTransaction(unsigned, from_=sender)
        with vm.in_costless_state() as state:
            c = state.costless_execute_transaction(spoof)
        if c.is_error:
            raise Reverted(decode_revert_reason(bytes(c.output)) or str(c.error), c)
        return fn.decode_result(bytes(c.output))

    # -- state snapshots for "no state change" checks --
    def ai_snapshot(self) -> dict[bytes, tuple[int, int, bytes]]:
        """(balance, nonce, storage root) of every AI precompile account."""
        st = self.state
        acct_db = st._account_db
        return {a: (st.get_balance(a), st.get_nonce(a), acct_db._get_storage_root(a))
                for a in BY_NAME.values()}

"""``eth_`` reads of account state at a block: balance, nonce, code, storage slots, and
EIP-1186 account proofs (at most MAX_PROOF_SLOTS slots a call).

Each takes a block reference as its last parameter (default ``latest``);
``eth_getTransactionCount`` at ``pending`` counts the pool's transactions too."""

from __future__ import annotations

from typing import Any

from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import Params, args, rpc
from state.proofs import MAX_PROOF_SLOTS, prove_account


@rpc("eth_getBalance", max_params=2)
def eth_get_balance(ctx: NodeContext, params: Params) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    return hex_quantity(p.state_at(ctx.core, ref, 1).get_balance(address))


@rpc("eth_getTransactionCount", max_params=2)
def eth_get_transaction_count(ctx: NodeContext, params: Params) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    if ref == "pending":
        return hex_quantity(ctx.core.pool.next_nonce(address, ctx.core.account(address).nonce))
    return hex_quantity(p.state_at(ctx.core, ref, 1).get_nonce(address))


@rpc("eth_getCode", max_params=2)
def eth_get_code(ctx: NodeContext, params: Params) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    return hex_data(p.state_at(ctx.core, ref, 1).get_code(address))


@rpc("eth_getStorageAt", max_params=3)
def eth_get_storage_at(ctx: NodeContext, params: Params) -> str:
    who, slot_raw, ref = args(params, 2, 1)
    address = p.address(who, "0")
    slot = p.quantity(slot_raw, "1") if isinstance(slot_raw, str) and len(slot_raw) <= 66 else None
    if slot is None:
        raise InvalidParams("invalid argument 1: storage slot must be a hex quantity of at most 32 bytes")
    value = p.state_at(ctx.core, ref, 2).get_storage(address, slot)
    return "0x" + value.to_bytes(32, "big").hex()


# -- proofs ---------------------------------------------------------------------------------


@rpc("eth_getProof", max_params=3)
def eth_get_proof(ctx: NodeContext, params: Params) -> dict[str, Any]:
    who, keys_raw, ref = args(params, 2, 1)
    address = p.address(who, "0")
    if not isinstance(keys_raw, list):
        raise InvalidParams("invalid argument 1: expected an array of storage keys")
    if len(keys_raw) > MAX_PROOF_SLOTS:
        raise InvalidParams(f"invalid argument 1: at most {MAX_PROOF_SLOTS} storage keys")
    keys = [p.hash32(k, "1") for k in keys_raw]
    header = ctx.core.resolve(p.block_ref(ref, "2"))
    root = ctx.core.ledger.state_header(header).state_root
    proof = prove_account(ctx.core.ledger.chain.chaindb.db, root, address, [int.from_bytes(k, "big") for k in keys])
    return {
        "address": hex_data(address),
        "balance": hex_quantity(proof.balance),
        "codeHash": hex_data(proof.code_hash),
        "nonce": hex_quantity(proof.nonce),
        "storageHash": hex_data(proof.storage_root),
        "accountProof": [hex_data(node) for node in proof.proof],
        "storageProof": [
            {"key": hex_data(key), "value": hex_quantity(s.value), "proof": [hex_data(node) for node in s.proof]}
            for key, s in zip(keys, proof.storage, strict=True)
        ],
    }

"""The ``eth_`` methods beyond the basics of methods.py that anvil and geth serve: raw
transactions, account proofs (EIP-1186), access lists (EIP-2930) and eth_simulateV1.

Each takes bounded input (counts of slots, blocks and calls are capped) and bounds its
work; errors use anvil's codes.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import SignedTransactionAPI
from eth_utils import to_checksum_address

from node.core import ChainCore
from node.rpc import params as p
from node.rpc.errors import InvalidParams, ServerError
from node.rpc.format import d, q
from node.rpc.methods import args, rpc
from state.proofs import MAX_PROOF_SLOTS, prove_account
from state.tracing import AccessListTracer, TraceLimitExceeded, run_call


def encode_transaction(tx: SignedTransactionAPI) -> bytes:
    """The EIP-2718 bytes of a signed transaction, as eth_sendRawTransaction takes them."""
    if getattr(tx, "type_id", None) is not None:
        return bytes(tx.encode())
    return bytes(rlp.encode(tx))


def _raw_at(core: ChainCore, header: Any, index: int) -> str | None:
    if header is None:
        return None
    block = core.ledger.block(header)
    if index >= len(block.transactions):
        return None
    return d(encode_transaction(block.transactions[index]))


@rpc("eth_getRawTransactionByHash")
def eth_get_raw_transaction_by_hash(core: ChainCore, params: list[Any]) -> str | None:
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    where = core.ledger.transaction_location(tx_hash)
    if where is not None:
        return _raw_at(core, core.ledger.header_by_number(where[0]), where[1])
    entry = core.pool.by_hash.get(tx_hash)
    return d(encode_transaction(entry.tx)) if entry is not None else None


@rpc("eth_getRawTransactionByBlockNumberAndIndex")
def eth_get_raw_tx_by_number_and_index(core: ChainCore, params: list[Any]) -> str | None:
    ref, index = args(params, 2)
    block_ref = p.block_ref(ref, "0")
    index_value = p.quantity(index, "1")
    try:
        header = core.resolve(block_ref)
    except ServerError:
        return None
    return _raw_at(core, header, index_value)


@rpc("eth_getRawTransactionByBlockHashAndIndex")
def eth_get_raw_tx_by_hash_and_index(core: ChainCore, params: list[Any]) -> str | None:
    h, index = args(params, 2)
    block_hash = p.hash32(h, "0")
    index_value = p.quantity(index, "1")
    return _raw_at(core, core.ledger.header_by_hash(block_hash), index_value)


# -- proofs ---------------------------------------------------------------------------------


@rpc("eth_getProof")
def eth_get_proof(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    who, keys_raw, ref = args(params, 2, 1)
    address = p.address(who, "0")
    if not isinstance(keys_raw, list):
        raise InvalidParams("invalid argument 1: expected an array of storage keys")
    if len(keys_raw) > MAX_PROOF_SLOTS:
        raise InvalidParams(f"invalid argument 1: at most {MAX_PROOF_SLOTS} storage keys")
    keys = [p.hash32(k, "1") for k in keys_raw]
    header = core.resolve(p.block_ref(ref, "2"))
    root = core.ledger.state_header(header).state_root
    proof = prove_account(core.ledger.chain.chaindb.db, root, address, [int.from_bytes(k, "big") for k in keys])
    return {
        "address": d(address),
        "balance": q(proof.balance),
        "codeHash": d(proof.code_hash),
        "nonce": q(proof.nonce),
        "storageHash": d(proof.storage_root),
        "accountProof": [d(node) for node in proof.proof],
        "storageProof": [
            {"key": d(key), "value": q(s.value), "proof": [d(node) for node in s.proof]}
            for key, s in zip(keys, proof.storage, strict=True)
        ],
    }


# -- access lists ---------------------------------------------------------------------------


@rpc("eth_createAccessList")
def eth_create_access_list(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    """The accounts and slots a call touches, and the gas it uses with them listed.

    As anvil: the sender and precompiles are left out, the recipient stays in.
    """
    req_raw, ref = args(params, 1, 1)
    req = p.call_request(req_raw)
    header = core.resolve(p.block_ref(ref, "1"))
    sender = req.sender or b"\x00" * 20
    tracer = AccessListTracer()
    for address, slots in req.access_list or []:
        tracer.slots.setdefault(address, set()).update(slots)
    try:
        first = run_call(
            core.ledger, header, sender, req.to, req.data, req.value, req.gas, None, req.access_list, tracer
        )
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
    precompiles = set(first.computation.precompiles)
    access_list = [
        (address, sorted(slots))
        for address, slots in tracer.slots.items()
        if address != sender and address not in precompiles
    ]
    if req.to is None:
        created = first.computation.msg.storage_address
        access_list = [(a, s) for a, s in access_list if a != created]
    run = run_call(core.ledger, header, sender, req.to, req.data, req.value, req.gas, None, access_list, None)
    out: dict[str, Any] = {
        "accessList": [
            {
                "address": to_checksum_address(address).lower(),
                "storageKeys": [f"0x{slot:064x}" for slot in slots],
            }
            for address, slots in access_list
        ],
        "gasUsed": q(run.gas_used),
    }
    if run.computation.is_error:
        from eth.exceptions import Revert

        out["error"] = "execution reverted" if isinstance(run.computation.error, Revert) else str(run.computation.error)
    return out

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
from node.errors import NotFound, UnknownBlock
from node.rpc import params as p
from node.rpc.errors import InvalidParams, RPCError, ServerError
from node.rpc.format import d, format_header, q
from node.rpc.registry import args, rpc
from state.chain import CallResult
from state.proofs import MAX_PROOF_SLOTS, prove_account
from state.simulation import (
    MAX_BLOCKS,
    MAX_CALLS,
    BlockOverrides,
    SimBlock,
    SimCall,
    SimulationError,
    simulate,
)
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


@rpc("eth_getRawTransactionByHash", max_params=1)
def eth_get_raw_transaction_by_hash(core: ChainCore, params: list[Any]) -> str | None:
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    where = core.ledger.transaction_location(tx_hash)
    if where is not None:
        return _raw_at(core, core.ledger.header_by_number(where[0]), where[1])
    entry = core.pool.by_hash.get(tx_hash)
    return d(encode_transaction(entry.tx)) if entry is not None else None


@rpc("eth_getRawTransactionByBlockNumberAndIndex", max_params=2)
def eth_get_raw_tx_by_number_and_index(core: ChainCore, params: list[Any]) -> str | None:
    ref, index = args(params, 2)
    block_ref = p.block_ref(ref, "0")
    index_value = p.quantity(index, "1")
    try:
        header = core.resolve(block_ref)
    except (UnknownBlock, NotFound):
        return None  # anvil: null for a block it does not have, future ones included
    return _raw_at(core, header, index_value)


@rpc("eth_getRawTransactionByBlockHashAndIndex", max_params=2)
def eth_get_raw_tx_by_hash_and_index(core: ChainCore, params: list[Any]) -> str | None:
    h, index = args(params, 2)
    block_hash = p.hash32(h, "0")
    index_value = p.quantity(index, "1")
    return _raw_at(core, core.ledger.header_by_hash(block_hash), index_value)


# -- proofs ---------------------------------------------------------------------------------


@rpc("eth_getProof", max_params=3)
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


def _access_list_runs(core: ChainCore, header: Any, sender: bytes, req: Any, tracer: AccessListTracer) -> tuple[Any, list[tuple[bytes, list[int]]], Any]:
    """Run the call once to collect what it touches, then again with that access list."""
    first = run_call(
        core.ledger, header, sender, req.to, req.data, req.value, req.gas, None, req.access_list, tracer
    )
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
    return first, access_list, run


@rpc("eth_createAccessList", max_params=2)
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
        with core.execution_budget():  # both runs together, as one eth_call's budget
            first, access_list, run = _access_list_runs(core, header, sender, req, tracer)
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
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


# -- eth_simulateV1 -------------------------------------------------------------------------


class SimulationRefused(RPCError):
    """A simulation refused with geth's (or anvil's) code for the reason."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


_BLOCK_OVERRIDE_KEYS = {"number", "time", "gasLimit", "feeRecipient", "baseFeePerGas"}
_PAYLOAD_KEYS = {"blockStateCalls", "validation", "traceTransfers", "returnFullTransactions"}


def _block_overrides(value: Any, name: str) -> BlockOverrides:
    if value is None:
        return BlockOverrides()
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid argument {name}: expected an object")
    unknown = set(value) - _BLOCK_OVERRIDE_KEYS
    if unknown:
        raise InvalidParams(f"invalid argument {name}: unsupported block overrides {sorted(unknown)}")

    def opt(key: str) -> int | None:
        return None if value.get(key) is None else p.quantity(value[key], f"{name}.{key}")

    fee_recipient = value.get("feeRecipient")
    return BlockOverrides(
        number=opt("number"),
        time=opt("time"),
        gas_limit=opt("gasLimit"),
        fee_recipient=None if fee_recipient is None else p.address(fee_recipient, f"{name}.feeRecipient"),
        base_fee=opt("baseFeePerGas"),
    )


def _sim_blocks(payload: Any) -> list[SimBlock]:
    if not isinstance(payload, dict):
        raise InvalidParams("invalid argument 0: expected a simulation payload object")
    unknown = set(payload) - _PAYLOAD_KEYS
    if unknown:
        raise InvalidParams(f"invalid argument 0: unknown fields {sorted(unknown)}")
    for flag in ("validation", "traceTransfers"):
        if payload.get(flag):
            raise InvalidParams(f"invalid argument 0: {flag} is not supported by this node")
    raw_blocks = payload.get("blockStateCalls")
    if raw_blocks is None:
        return []
    if not isinstance(raw_blocks, list):
        raise InvalidParams("invalid argument 0.blockStateCalls: expected an array")
    if len(raw_blocks) > MAX_BLOCKS:
        raise SimulationRefused(-38026, f"too many blocks: {len(raw_blocks)} > {MAX_BLOCKS}")
    blocks = []
    calls_seen = 0
    for i, raw in enumerate(raw_blocks):
        name = f"0.blockStateCalls[{i}]"
        if not isinstance(raw, dict):
            raise InvalidParams(f"invalid argument {name}: expected an object")
        raw_calls = raw.get("calls") or []
        if not isinstance(raw_calls, list):
            raise InvalidParams(f"invalid argument {name}.calls: expected an array")
        calls_seen += len(raw_calls)
        if calls_seen > MAX_CALLS:
            raise SimulationRefused(-38026, f"too many calls: at most {MAX_CALLS} per request")
        calls = []
        for j, c in enumerate(raw_calls):
            req = p.call_request(c, f"{name}.calls[{j}]")
            calls.append(SimCall(req.sender or b"\x00" * 20, req.to, req.data, req.value, req.gas, req.nonce))
        blocks.append(
            SimBlock(
                overrides=_block_overrides(raw.get("blockOverrides"), f"{name}.blockOverrides"),
                state_overrides=p.state_overrides(raw.get("stateOverrides"), f"{name}.stateOverrides"),
                calls=tuple(calls),
            )
        )
    return blocks


@rpc("eth_simulateV1", max_params=2)
def eth_simulate_v1(core: ChainCore, params: list[Any]) -> list[dict[str, Any]]:
    payload, ref = args(params, 1, 1)
    blocks = _sim_blocks(payload)
    base = core.resolve(p.block_ref(ref, "1"))
    try:
        with core.execution_budget():
            simulated = simulate(core.ledger, base, blocks)
    except SimulationError as e:
        raise SimulationRefused(e.code, str(e)) from None
    out = []
    for block in simulated:
        header = block.header
        shown = format_header(header)
        log_index = 0
        calls = []
        for i, call in enumerate(block.calls):
            logs = []
            for address, topics, data in call.logs:
                logs.append({
                    "address": d(address),
                    "topics": [f"0x{t:064x}" for t in topics],
                    "data": d(data),
                    "blockHash": shown["hash"],
                    "blockNumber": shown["number"],
                    "blockTimestamp": shown["timestamp"],
                    "transactionHash": d(call.tx_hash),
                    "transactionIndex": q(i),
                    "logIndex": q(log_index),
                    "removed": False,
                })
                log_index += 1
            entry: dict[str, Any] = {
                "returnData": d(call.return_data), "logs": logs, "gasUsed": q(call.gas_used), "status": q(call.status),
            }
            if call.error is not None:
                code, message, revert_data = call.error
                entry["error"] = {"code": code, "message": message}
                if revert_data is not None:
                    entry["error"]["data"] = d(revert_data)
            calls.append(entry)
        shown.update(uncles=[], withdrawals=[], transactions=[d(c.tx_hash) for c in block.calls], calls=calls)
        out.append(shown)
    return out


def call_in_overridden_block(
    core: ChainCore, header: Any, req: p.CallRequest, overrides: dict[bytes, Any], block_overrides: Any
) -> CallResult:
    """eth_call's fourth parameter: the call runs as the only call of one simulated block
    with these header fields (number, time, gasLimit, feeRecipient, baseFeePerGas)."""
    if req.authorization_list is not None:
        raise InvalidParams("invalid argument 0: authorizationList with block overrides is not supported")
    block = SimBlock(
        overrides=_block_overrides(block_overrides, "3"),
        state_overrides=overrides,
        calls=(SimCall(req.sender or b"\x00" * 20, req.to, req.data, req.value, req.gas, None),),
    )
    try:
        (simulated,) = simulate(core.ledger, header, [block], ordered=False)
    except SimulationError as e:
        raise SimulationRefused(e.code, str(e)) from None
    (outcome,) = simulated.calls
    if outcome.error is None:
        return CallResult(True, outcome.return_data, outcome.gas_used, "", False)
    code, message, _ = outcome.error
    return CallResult(False, outcome.return_data, outcome.gas_used, message, code == 3)

"""``eth_simulateV1``: calls in a sequence of simulated blocks on top of a block, with state
and block overrides, nothing written.

Input is bounded before any work (MAX_BLOCKS blocks, MAX_CALLS calls a request) and the run
shares eth_call's time budget; a refusal carries geth's code for its reason (-38026 for too
many blocks or calls)."""

from __future__ import annotations

from typing import Any

from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams, RPCError
from node.rpc.format import format_header, hex_data, hex_quantity
from node.rpc.registry import Json, Params, args, rpc
from state.simulation import (
    MAX_BLOCKS,
    MAX_CALLS,
    BlockOverrides,
    SimBlock,
    SimCall,
    SimulationError,
    simulate,
)


class SimulationRefused(RPCError):
    """A simulation refused with geth's (or anvil's) code for the reason."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


_BLOCK_OVERRIDE_KEYS = {"number", "time", "gasLimit", "feeRecipient", "baseFeePerGas"}


_PAYLOAD_KEYS = {"blockStateCalls", "validation", "traceTransfers", "returnFullTransactions"}


def parse_block_overrides(value: Json, name: str) -> BlockOverrides:
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


def _sim_blocks(payload: Json) -> list[SimBlock]:
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
                overrides=parse_block_overrides(raw.get("blockOverrides"), f"{name}.blockOverrides"),
                state_overrides=p.state_overrides(raw.get("stateOverrides"), f"{name}.stateOverrides"),
                calls=tuple(calls),
            )
        )
    return blocks


@rpc("eth_simulateV1", max_params=2)
def eth_simulate_v1(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    payload, ref = args(params, 1, 1)
    blocks = _sim_blocks(payload)
    base = ctx.core.resolve(p.block_ref(ref, "1"))
    try:
        with ctx.core.execution_budget():
            simulated = simulate(ctx.core.ledger, base, blocks)
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
                    "address": hex_data(address),
                    "topics": [f"0x{t:064x}" for t in topics],
                    "data": hex_data(data),
                    "blockHash": shown["hash"],
                    "blockNumber": shown["number"],
                    "blockTimestamp": shown["timestamp"],
                    "transactionHash": hex_data(call.tx_hash),
                    "transactionIndex": hex_quantity(i),
                    "logIndex": hex_quantity(log_index),
                    "removed": False,
                })
                log_index += 1
            entry: dict[str, Any] = {
                "returnData": hex_data(call.return_data), "logs": logs, "gasUsed": hex_quantity(call.gas_used), "status": hex_quantity(call.status),
            }
            if call.error is not None:
                code, message, revert_data = call.error
                entry["error"] = {"code": code, "message": message}
                if revert_data is not None:
                    entry["error"]["data"] = hex_data(revert_data)
            calls.append(entry)
        shown.update(uncles=[], withdrawals=[], transactions=[hex_data(c.tx_hash) for c in block.calls], calls=calls)
        out.append(shown)
    return out

"""The ``eth_call`` family: ``eth_call``, ``eth_estimateGas`` and ``eth_createAccessList``.

Each runs a call against the state of a block, never writing it, under the node's gas cap
and time budget (``ChainCore.call``, ``execution_budget``). A failed call is a typed
error: a revert is code 3 with its bytes (geth's shape, so clients decode reason strings),
any other failure -32000. ``eth_call``'s fourth parameter (block overrides) runs the call
as the only call of one simulated block (:func:`call_in_overridden_block`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth.abc import BlockHeaderAPI
from eth_utils import to_checksum_address

from node.chain.core import ChainCore
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import ExecutionReverted, InvalidParams, ServerError
from node.rpc.eth.simulate import SimulationRefused, parse_block_overrides
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import READ, Json, Params, args, rpc
from state import AccountOverride
from state.chain import CallResult
from state.simulation import SimBlock, SimCall, SimulationError, simulate
from state.tracing import AccessListTracer, TracedRun, TraceLimitExceeded, run_call

if TYPE_CHECKING:
    from eth.vm.forks.prague.transactions import Authorization


def _call(core: ChainCore, params: Params, estimate: bool) -> str:
    req_raw, ref_raw, overrides_raw, block_overrides = args(params, 1, 3)
    if estimate and block_overrides not in (None, {}):
        raise InvalidParams("invalid argument 3: block overrides are not supported by eth_estimateGas")
    req = p.call_request(req_raw)
    header = core.resolve(p.block_ref(ref_raw, "1"))
    overrides = p.state_overrides(overrides_raw)
    sender = req.sender or b"\x00" * 20
    if block_overrides not in (None, {}):
        result = call_in_overridden_block(core, header, req, overrides, block_overrides)
        raise_on_failure(result)
        return hex_data(result.output)
    auths = call_authorizations(req)
    if estimate:
        gas, result = core.estimate_gas(
            header, sender, req.to, req.data, req.value, req.gas, overrides, authorizations=auths
        )
        raise_on_failure(result)
        return hex_quantity(gas)
    result = core.call(header, sender, req.to, req.data, req.value, req.gas, overrides, authorizations=auths)
    raise_on_failure(result)
    return hex_data(result.output)


def call_authorizations(req: p.CallRequest) -> list[Authorization] | None:
    """The request's EIP-7702 authorizations as py-evm builds set-code transactions."""
    if req.authorization_list is None:
        return None
    from eth.vm.forks.prague.transactions import Authorization

    return [Authorization(a.chain_id, a.address, a.nonce, a.y_parity, a.r, a.s) for a in req.authorization_list]


def raise_on_failure(result: CallResult) -> None:
    """A failed call as its typed error: a revert is code 3 with its bytes, else -32000."""
    if result.success:
        return
    if result.reverted:
        raise ExecutionReverted(result.output)
    raise ServerError(result.error)


@rpc("eth_call", max_params=4, lane=READ)
def eth_call(ctx: NodeContext, params: Params) -> str:
    return str(_call(ctx.core, params, estimate=False))


@rpc("eth_estimateGas", max_params=4, lane=READ)
def eth_estimate_gas(ctx: NodeContext, params: Params) -> str:
    return str(_call(ctx.core, params, estimate=True))


def call_in_overridden_block(
    core: ChainCore, header: BlockHeaderAPI, req: p.CallRequest, overrides: dict[bytes, AccountOverride],
    block_overrides: Json,
) -> CallResult:
    """eth_call's fourth parameter: the call runs as the only call of one simulated block
    with these header fields (number, time, gasLimit, feeRecipient, baseFeePerGas)."""
    if req.authorization_list is not None:
        raise InvalidParams("invalid argument 0: authorizationList with block overrides is not supported")
    block = SimBlock(
        overrides=parse_block_overrides(block_overrides, "3"),
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


# -- access lists ---------------------------------------------------------------------------


def _access_list_runs(
    core: ChainCore, header: BlockHeaderAPI, sender: bytes, req: p.CallRequest, tracer: AccessListTracer
) -> tuple[TracedRun, list[tuple[bytes, list[int]]], TracedRun]:
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
def eth_create_access_list(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """The accounts and slots a call touches, and the gas it uses with them listed.

    As anvil: the sender and precompiles are left out, the recipient stays in.
    """
    req_raw, ref = args(params, 1, 1)
    req = p.call_request(req_raw)
    header = ctx.core.resolve(p.block_ref(ref, "1"))
    sender = req.sender or b"\x00" * 20
    tracer = AccessListTracer()
    for address, slots in req.access_list or []:
        tracer.slots.setdefault(address, set()).update(slots)
    try:
        with ctx.core.execution_budget():  # both runs together, as one eth_call's budget
            first, access_list, run = _access_list_runs(ctx.core, header, sender, req, tracer)
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
        "gasUsed": hex_quantity(run.gas_used),
    }
    if run.computation.is_error:
        from eth.exceptions import Revert

        out["error"] = "execution reverted" if isinstance(run.computation.error, Revert) else str(run.computation.error)
    return out

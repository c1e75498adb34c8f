"""The ``debug`` namespace: execution traces of committed transactions and of calls, with
geth's default struct logger and its ``callTracer``, ``prestateTracer``, ``4byteTracer``
and ``noopTracer``, shaped as anvil shows them.

A trace re-executes on the chain worker: the struct logger stops at MAX_STEPS opcodes and
MAX_TRACE_WORDS recorded words (stack, memory and storage together), and the frame-based
tracers at MAX_CALL_FRAMES frames, so a hostile caller gets an error, not a node that
spends its memory on one trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.abc import BlockHeaderAPI, StateAPI
from eth.exceptions import Revert
from eth.vm.forks.shanghai.constants import INITCODE_WORD_COST

from node.chain.core import ChainCore
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams, ServerError
from node.rpc.format import hex_data
from node.rpc.registry import Json, Params, args, rpc
from state import AccountOverride
from state.tracing import (
    CallTracer,
    FourByteTracer,
    PrestateTracer,
    StructLogConfig,
    StructLogTracer,
    TracedRun,
    TraceLimitExceeded,
    Tracer,
    format_call_frame,
    format_prestate,
    format_prestate_diff,
    replay_transaction,
    run_call,
    state_before_transaction,
)

TRACERS = ("callTracer", "prestateTracer", "4byteTracer", "noopTracer")


def _tracer(config_raw: Json, name: str) -> tuple[Tracer, dict[str, Any]]:
    if config_raw is None:
        config_raw = {}
    if not isinstance(config_raw, dict):
        raise InvalidParams(f"invalid argument {name}: expected a trace config object")
    tracer_name = config_raw.get("tracer")
    if tracer_name is not None:
        if tracer_name not in TRACERS:
            raise InvalidParams(
                f"invalid argument {name}: tracer {tracer_name!r} is not supported (one of {', '.join(TRACERS)})"
            )
        options = config_raw.get("tracerConfig") or {}
        if not isinstance(options, dict):
            raise InvalidParams(f"invalid argument {name}: tracerConfig must be an object")
        if tracer_name == "prestateTracer":
            return PrestateTracer(), options
        if tracer_name == "4byteTracer":
            return FourByteTracer(), options
        if tracer_name == "noopTracer":
            return Tracer(), options
        return CallTracer(), options

    def flag(key: str) -> bool:
        value = config_raw.get(key)
        return False if value is None else p.boolean(value, f"{name}.{key}")

    limit = config_raw.get("limit", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise InvalidParams(f"invalid argument {name}.limit: expected a non-negative number")
    config = StructLogConfig(
        enable_memory=flag("enableMemory"),
        disable_stack=flag("disableStack"),
        disable_storage=flag("disableStorage"),
        limit=limit,
    )
    return StructLogTracer(config), {}


def _result(
    tracer: Tracer, run: TracedRun, options: dict[str, Any],
    pre_state: Callable[[], StateAPI], post_state: Callable[[], StateAPI] | None = None,
) -> dict[str, Any]:
    """The answer of a finished trace, shaped by its tracer. ``pre_state`` and ``post_state``
    open the states before and after the run, read only by the prestate tracer (a traced
    call makes its diff while it runs, so it has no ``post_state``)."""
    c = run.computation
    if isinstance(tracer, PrestateTracer):
        if options.get("diffMode"):
            assert post_state is not None
            return format_prestate_diff(pre_state(), post_state(), tracer.touched, tracer.created)
        return format_prestate(pre_state(), tracer.touched)
    if isinstance(tracer, FourByteTracer):
        return tracer.counts()
    if isinstance(tracer, CallTracer):
        assert tracer.root is not None
        gas = c.msg.gas
        if c.msg.is_create:
            # py-evm charges the initcode words (EIP-3860) inside the frame, geth before it.
            gas -= INITCODE_WORD_COST * ((len(c.msg.code) + 31) // 32)
        out = format_call_frame(tracer.root, run.gas_used, gas, with_log=bool(options.get("withLog")))
        if options.get("onlyTopCall"):
            out.pop("calls", None)
        return out
    if not isinstance(tracer, StructLogTracer):
        return {}  # noopTracer
    failed = c.is_error
    output = c.output if not failed or isinstance(c.error, Revert) else b""
    return {"failed": failed, "gas": run.gas_used, "returnValue": hex_data(output), "structLogs": tracer.logs}


@rpc("debug_traceTransaction", max_params=2)
def debug_trace_transaction(ctx: NodeContext, params: Params) -> dict[str, Any]:
    h, config = args(params, 1, 1)
    tx_hash = p.hash32(h, "0")
    tracer, options = _tracer(config, "1")
    where = ctx.core.ledger.transaction_location(tx_hash)
    if where is None:
        raise ServerError(f"transaction {hex_data(tx_hash)} not found")
    header = ctx.core.ledger.header_by_number(where[0])
    assert header is not None
    block = ctx.core.ledger.block(header)
    try:
        with ctx.core.execution_budget():
            run = replay_transaction(ctx.core.ledger, block, where[1], tracer)
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
    if isinstance(tracer, PrestateTracer):
        tracer.touched.setdefault(bytes(header.coinbase), set())
    index = where[1]
    return _result(
        tracer, run, options,
        lambda: state_before_transaction(ctx.core.ledger, block, index),
        lambda: state_before_transaction(ctx.core.ledger, block, index + 1),
    )


@rpc("debug_traceCall", max_params=3)
def debug_trace_call(ctx: NodeContext, params: Params) -> dict[str, Any]:
    req_raw, ref, config = args(params, 1, 2)
    req = p.call_request(req_raw)
    header = ctx.core.resolve(p.block_ref(ref, "1"))
    tracer, options = _tracer(config, "2")
    overrides = p.state_overrides(config.get("stateOverrides"), "2.stateOverrides") if isinstance(config, dict) else {}
    sender = req.sender or b"\x00" * 20
    diff = isinstance(tracer, PrestateTracer) and bool(options.get("diffMode"))
    try:
        with ctx.core.execution_budget():
            run = run_call(
                ctx.core.ledger, header, sender, req.to, req.data, req.value, req.gas, overrides, req.access_list,
                tracer,
                # the call's state is gone once it returns: the diff is made while it exists
                inspect=(lambda post: _diff_now(ctx.core, header, overrides, tracer, post)) if diff else None,
            )
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
    if diff:
        return dict(run.inspected)
    if isinstance(tracer, PrestateTracer):
        tracer.touched.setdefault(bytes(header.coinbase), set())
    return _result(tracer, run, options, lambda: _call_pre_state(ctx.core, header, overrides))


def _diff_now(
    core: ChainCore, header: BlockHeaderAPI, overrides: dict[bytes, AccountOverride], tracer: Tracer,
    post: StateAPI,
) -> dict[str, Any]:
    assert isinstance(tracer, PrestateTracer)  # diffMode is the prestate tracer's
    tracer.touched.setdefault(bytes(header.coinbase), set())
    return format_prestate_diff(_call_pre_state(core, header, overrides), post, tracer.touched, tracer.created)


def _call_pre_state(core: ChainCore, header: BlockHeaderAPI, overrides: dict[bytes, AccountOverride]) -> StateAPI:
    """The state a traced call starts from: the block's, with the call's overrides."""
    from state.chain import _apply_overrides

    state = core.ledger.state_at(header)
    _apply_overrides(state, overrides)
    return state

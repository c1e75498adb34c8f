"""The dev namespaces ``evm_``, ``anvil_`` and ``hardhat_``: what scripts and test suites
drive a dev chain with (anvil's and Hardhat's names; a ``hardhat_`` method is its ``anvil_``
twin): mining on demand, snapshots and reverts, the clock, automine, state edits,
impersonation and reset.

They rewrite state and history, so only ``ailedger dev`` serves them
(``namespaces.DEV_NAMESPACES``), and only a dev chain has the controls they drive
(``NodeContext.dev``; NotAvailable anywhere else).
Mining many blocks is bounded (MAX_MINE_BLOCKS a call) and runs MINE_STEP blocks per worker
job, so block production and other callers interleave with a long ``evm_mine``.
"""

from __future__ import annotations

from node.chain.dev import MAX_MINE_BLOCKS, DevControls
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams
from node.rpc.format import hex_quantity
from node.rpc.registry import Continue, Params, args, rpc

#: Blocks one worker job builds; a larger count continues in further jobs.
MINE_STEP = 50


def _mine_steps(
    dev: DevControls, remaining: int, done: str | None, timestamp: int | None = None, interval: int | None = None
) -> str | None | Continue:
    """Build ``remaining`` blocks, at most MINE_STEP in this job, then answer ``done``.
    ``timestamp`` is the first block's (evm_mine); with ``interval``, each block comes
    ``interval`` seconds after the one before, as if evm_increaseTime(interval) preceded it
    (anvil_mine)."""
    step = min(remaining, MINE_STEP)
    if interval is None:
        dev.mine_blocks(step, timestamp)
    else:
        for _ in range(step):
            dev.increase_time(interval)
            dev.mine_blocks(1)
    if remaining == step:
        return done
    return Continue(lambda: _mine_steps(dev, remaining - step, done, interval=interval))


@rpc("evm_mine", max_params=1)
def evm_mine(ctx: NodeContext, params: Params) -> str | None | Continue:
    first = params[0] if params else None
    blocks, timestamp = 1, None
    if isinstance(first, dict):  # ganache/anvil {timestamp, blocks}
        blocks = p.quantity(first.get("blocks", 1), "0.blocks") if "blocks" in first else 1
        timestamp = p.quantity(first["timestamp"], "0.timestamp") if "timestamp" in first else None
    elif first is not None:  # evm_mine(timestamp)
        # a JSON number is the timestamp itself; an array is a typed -32602, not a crash
        timestamp = int(first) if isinstance(first, (int, float)) else p.quantity(first, "0")
    head_timestamp = ctx.core.ledger.head.timestamp
    if timestamp is not None and timestamp <= head_timestamp:
        # anvil's code and words for a timestamp in the past
        raise InvalidParams(f"Timestamp error: {timestamp} is lower than previous block's timestamp {head_timestamp}")
    if blocks > MAX_MINE_BLOCKS:
        raise InvalidParams(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks at once")
    if blocks == 0:
        return "0x0"
    return _mine_steps(ctx.dev_controls("mining on demand"), blocks, "0x0", timestamp=timestamp)


@rpc("anvil_mine", "hardhat_mine", max_params=2)
def anvil_mine(ctx: NodeContext, params: Params) -> str | None | Continue:
    """Mine ``blocks`` blocks (default 1); with ``interval``, each block comes ``interval``
    seconds after the one before, as if evm_increaseTime(interval) preceded it."""
    blocks_raw, interval_raw = args(params, 0, 2)
    blocks = 1 if blocks_raw is None else p.quantity(blocks_raw, "0")
    interval = None if interval_raw is None else p.quantity(interval_raw, "1")
    if blocks > MAX_MINE_BLOCKS:
        raise InvalidParams(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks per call, got {blocks}")
    if interval is not None and interval > 2**32:
        raise InvalidParams("invalid argument 1: interval too large")
    if blocks == 0:
        return None
    return _mine_steps(ctx.dev_controls("mining on demand"), blocks, None, interval=interval)


@rpc("evm_snapshot", "anvil_snapshot", max_params=0)
def evm_snapshot(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.dev_controls("evm_snapshot").snapshot())


@rpc("evm_revert", "anvil_revert", max_params=1)
def evm_revert(ctx: NodeContext, params: Params) -> bool:
    (sid,) = args(params, 1)
    return ctx.dev_controls("evm_revert").revert(p.quantity(sid, "0"))


@rpc("evm_increaseTime", "anvil_increaseTime", max_params=1)
def evm_increase_time(ctx: NodeContext, params: Params) -> str:
    (seconds,) = args(params, 1)
    amount = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else p.quantity(seconds, "0")
    return hex_quantity(ctx.dev_controls("evm_increaseTime").increase_time(amount))


@rpc("evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp", max_params=1)
def evm_set_next_block_timestamp(ctx: NodeContext, params: Params) -> None:
    (ts,) = args(params, 1)
    timestamp = ts if isinstance(ts, int) and not isinstance(ts, bool) else p.quantity(ts, "0")
    head = ctx.core.ledger.head
    if timestamp <= head.timestamp:
        raise InvalidParams(
            f"Timestamp error: {timestamp} is lower than or equal to previous block's timestamp {head.timestamp}"
        )
    ctx.dev_controls("evm_setNextBlockTimestamp").set_next_timestamp(timestamp)
    return None


@rpc("evm_setAutomine", "anvil_setAutomine", max_params=1)
def evm_set_automine(ctx: NodeContext, params: Params) -> None:
    (on,) = args(params, 1)
    ctx.dev_controls("evm_setAutomine").set_automine(p.boolean(on, "0"))
    return None


@rpc("anvil_getAutomine", "hardhat_getAutomine", max_params=0)
def anvil_get_automine(ctx: NodeContext, params: Params) -> bool:
    return ctx.dev_controls("anvil_getAutomine").producer.automine


@rpc("anvil_setBalance", "hardhat_setBalance", max_params=2)
def anvil_set_balance(ctx: NodeContext, params: Params) -> None:
    who, amount = args(params, 2)
    ctx.dev_controls("editing state").edit_state(address=p.address(who, "0"), balance=p.quantity(amount, "1"))


@rpc("anvil_setNonce", "hardhat_setNonce", max_params=2)
def anvil_set_nonce(ctx: NodeContext, params: Params) -> None:
    who, nonce = args(params, 2)
    ctx.dev_controls("editing state").edit_state(address=p.address(who, "0"), nonce=p.quantity(nonce, "1"))


@rpc("anvil_setCode", "hardhat_setCode", max_params=2)
def anvil_set_code(ctx: NodeContext, params: Params) -> None:
    who, code = args(params, 2)
    ctx.dev_controls("editing state").edit_state(address=p.address(who, "0"), code=p.data(code, "1"))


@rpc("anvil_setStorageAt", "hardhat_setStorageAt", max_params=3)
def anvil_set_storage_at(ctx: NodeContext, params: Params) -> bool:
    who, slot, value = args(params, 3)
    ctx.dev_controls("editing state").edit_state(
        address=p.address(who, "0"),
        storage={p.quantity(slot, "1"): int.from_bytes(p.hash32(value, "2"), "big")},
    )
    return True


# -- impersonation and reset ----------------------------------------------------------------


@rpc("anvil_impersonateAccount", "hardhat_impersonateAccount", max_params=1)
def anvil_impersonate_account(ctx: NodeContext, params: Params) -> None:
    (who,) = args(params, 1)
    ctx.dev_controls("impersonation").impersonated.add(p.address(who, "0"))
    return None


@rpc("anvil_stopImpersonatingAccount", "hardhat_stopImpersonatingAccount", max_params=1)
def anvil_stop_impersonating_account(ctx: NodeContext, params: Params) -> None:
    (who,) = args(params, 1)
    ctx.dev_controls("impersonation").impersonated.discard(p.address(who, "0"))
    return None


@rpc("anvil_autoImpersonateAccount", max_params=1)
def anvil_auto_impersonate_account(ctx: NodeContext, params: Params) -> None:
    (on,) = args(params, 1)
    ctx.dev_controls("impersonation").auto_impersonate = p.boolean(on, "0")
    return None


@rpc("anvil_reset", "hardhat_reset", max_params=1)
def anvil_reset(ctx: NodeContext, params: Params) -> None:
    """Back to the genesis of the dev chain. Forking is not supported: a reset with options
    (anvil's ``{forking: ...}``) is refused, as anvil refuses one when it was not forked."""
    (options,) = args(params, 0, 1)
    if options is not None:
        raise InvalidParams("Forking not enabled and RPC URL not provided to start forking")
    ctx.dev_controls("anvil_reset").reset()
    return None

"""anvil's dev methods beyond the basics in methods.py: mining many blocks, sending as an
account without its key (impersonation), and resetting the chain to its genesis.

They belong to the dev namespace: only `ailedger dev` serves them.
"""

from __future__ import annotations

from typing import Any

from node.core import ChainCore
from node.rpc import params as p
from node.rpc.errors import InvalidParams
from node.rpc.methods import MINE_STEP
from node.rpc.registry import Continue, args, rpc

#: Most blocks one anvil_mine may build: each block is built on the chain worker, which
#: serves no other call meanwhile.
MAX_MINE_BLOCKS = 1024


def _count(value: Any, name: str) -> int:
    return p.quantity(value, name)


@rpc("anvil_mine", "hardhat_mine", max_params=2)
def anvil_mine(core: ChainCore, params: list[Any]) -> Continue | None:
    """Mine ``blocks`` blocks (default 1); with ``interval``, each block comes ``interval``
    seconds after the one before, as if evm_increaseTime(interval) preceded it."""
    blocks_raw, interval_raw = args(params, 0, 2)
    blocks = 1 if blocks_raw is None else _count(blocks_raw, "0")
    interval = None if interval_raw is None else _count(interval_raw, "1")
    if blocks > MAX_MINE_BLOCKS:
        raise InvalidParams(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks per call, got {blocks}")
    if interval is not None and interval > 2**32:
        raise InvalidParams("invalid argument 1: interval too large")
    if blocks == 0:
        return None
    return _mine_steps(core, blocks, interval)


def _mine_steps(core: ChainCore, remaining: int, interval: int | None) -> Continue | None:
    """At most MINE_STEP blocks per worker job: a long anvil_mine never holds the chain
    thread, and block production and other callers interleave (as evm_mine)."""
    step = min(remaining, MINE_STEP)
    for _ in range(step):
        if interval is not None:
            core.increase_time(interval)
        core.mine_blocks(1)
    if remaining == step:
        return None
    return Continue(lambda: _mine_steps(core, remaining - step, interval))


@rpc("anvil_impersonateAccount", "hardhat_impersonateAccount", max_params=1)
def anvil_impersonate_account(core: ChainCore, params: list[Any]) -> None:
    (who,) = args(params, 1)
    core.impersonated.add(p.address(who, "0"))
    return None


@rpc("anvil_stopImpersonatingAccount", "hardhat_stopImpersonatingAccount", max_params=1)
def anvil_stop_impersonating_account(core: ChainCore, params: list[Any]) -> None:
    (who,) = args(params, 1)
    core.impersonated.discard(p.address(who, "0"))
    return None


@rpc("anvil_autoImpersonateAccount", max_params=1)
def anvil_auto_impersonate_account(core: ChainCore, params: list[Any]) -> None:
    (on,) = args(params, 1)
    core.auto_impersonate = p.boolean(on, "0")
    return None


@rpc("anvil_reset", "hardhat_reset", max_params=1)
def anvil_reset(core: ChainCore, params: list[Any]) -> None:
    """Back to the genesis of the dev chain. Forking is not supported: a reset with options
    (anvil's ``{forking: ...}``) is refused, as anvil refuses one when it was not forked."""
    (options,) = args(params, 0, 1)
    if options is not None:
        raise InvalidParams("Forking not enabled and RPC URL not provided to start forking")
    core.reset()
    return None

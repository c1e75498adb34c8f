"""Hostile input never reaches a ``PrecompileFault``: every function of every module, called by
a stranger with arbitrary well-typed arguments (eth_abi's own strategies) or arbitrary bytes
after its selector, either succeeds or reverts with the module's own error. Since a fault drops
the transaction instead of reverting it, this is what keeps bad input a clean revert."""

from __future__ import annotations

from typing import Any

import pytest
from eth.exceptions import VMError
from eth.vm.message import Message
from eth_abi.tools import get_abi_strategy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_precompiles import MODULES
from tests.unit.ai_precompiles.ai_world import World

pytestmark = pytest.mark.xdist_group("ai_world")

FUNCTIONS = [(name, fn) for name, m in MODULES.items() for fn in m.abi.by_name.values()]


def _run(world: World, module: str, data: bytes, static: bool, value: int = 0) -> None:
    state = world.c.state
    snapshot = state.snapshot()
    sender = world.c.addr(9)
    msg = Message(gas=30_000_000, to=MODULES[module].address, sender=sender, value=value, data=data,
                  code=b"", is_static=static)
    computation = state.get_computation(msg, state.get_transaction_context_class()(0, sender))
    try:
        MODULES[module](computation)
    except VMError:
        pass  # a revert or out of gas: the module's own answer
    finally:
        state.revert(snapshot)


@pytest.mark.parametrize("module, fn", FUNCTIONS, ids=[f"{m}.{f.name}" for m, f in FUNCTIONS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arguments_revert_cleanly(world: World, module: str, fn: Any, data: st.DataObject) -> None:
    types = "(" + ",".join(fn.input_types) + ")"
    args = data.draw(get_abi_strategy(types)) if fn.input_types else ()
    calldata = bytes(fn.encode_args(*args))
    _run(world, module, calldata, static=data.draw(st.booleans()))
    tail = data.draw(st.binary(max_size=200))
    _run(world, module, fn.selector + tail, static=False)

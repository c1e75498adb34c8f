"""A toy JSON-RPC namespace, ``toy_``: the one module a new namespace takes. Its one
registration line is the entry ``test_registry.py`` adds to ``node.rpc.METHOD_MODULES``."""

from __future__ import annotations

from node.rpc.context import NodeContext
from node.rpc.format import hex_quantity
from node.rpc.registry import ASYNC, Json, Params, args, rpc


@rpc("toy_echo", max_params=1)
def toy_echo(ctx: NodeContext, params: Params) -> dict[str, Json]:
    """Answers its parameter and the head it saw (on the chain worker)."""
    (value,) = args(params, 1)
    return {"echo": value, "head": hex_quantity(ctx.core.ledger.head.block_number)}


@rpc("toy_headLater", max_params=0, lane=ASYNC)
async def toy_head_later(ctx: NodeContext, params: Params) -> str:
    """Waits on the loop, then reads the head through the chain worker, as ai_infer does."""
    head = await ctx.worker.run(lambda: ctx.core.ledger.head.block_number)
    return hex_quantity(head)

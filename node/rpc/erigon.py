"""The ``erigon`` namespace: the one Erigon method Otterscan needs besides ``ots_``
(``node/rpc/ots.py``). Otterscan calls it when it connects, to tell an Erigon-compatible
node from a plain one."""

from __future__ import annotations

from typing import Any

from node.errors import NotFound, UnknownBlock
from node.rpc.context import NodeContext
from node.rpc.format import format_block
from node.rpc.ots import block_param
from node.rpc.registry import Params, args, rpc


@rpc("erigon_getHeaderByNumber", max_params=1)
def erigon_get_header_by_number(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    """The block at a number or tag, with its transaction hashes (anvil's answer: its block;
    Erigon's: the header alone), or null when the chain has no such block."""
    (ref,) = args(params, 1)
    block_ref = block_param(ref, "0")
    try:
        header = ctx.core.resolve(block_ref)
    except (UnknownBlock, NotFound):
        return None
    return format_block(ctx.core.ledger.block(header), False)

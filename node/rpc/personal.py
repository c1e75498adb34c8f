"""The ``personal_`` namespace: ``personal_sign``, which is ``eth_sign`` with its parameters
the other way round (wallets call it); dev accounts only."""

from __future__ import annotations

from node.rpc.context import NodeContext
from node.rpc.eth.sign import eth_sign
from node.rpc.registry import Params, args, rpc


@rpc("personal_sign", max_params=2)
def personal_sign(ctx: NodeContext, params: Params) -> str:
    message, who = args(params, 2)
    return eth_sign(ctx, [who, message])

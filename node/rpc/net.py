"""The ``net_`` namespace: the network id (the chain id, as geth answers on a chain that has
no separate one), whether the node listens, and how many peers it has."""

from __future__ import annotations

from node.rpc.context import NodeContext
from node.rpc.format import hex_quantity
from node.rpc.registry import Params, rpc


@rpc("net_version", max_params=0)
def net_version(ctx: NodeContext, params: Params) -> str:
    return str(ctx.core.ledger.chain_id)


@rpc("net_listening", max_params=0)
def net_listening(ctx: NodeContext, params: Params) -> bool:
    return True


@rpc("net_peerCount", max_params=0)
def net_peer_count(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.network.peer_count)

"""The ``net_`` namespace: the network id (the chain id, as geth answers on a chain that has
no separate one), whether the node listens, and how many peers it has."""

from __future__ import annotations

from node.core import ChainCore
from node.rpc.format import hex_quantity
from node.rpc.registry import Params, rpc


@rpc("net_version", max_params=0)
def net_version(core: ChainCore, params: Params) -> str:
    return str(core.ledger.chain_id)


@rpc("net_listening", max_params=0)
def net_listening(core: ChainCore, params: Params) -> bool:
    return True


@rpc("net_peerCount", max_params=0)
def net_peer_count(core: ChainCore, params: Params) -> str:
    return hex_quantity(core.peer_count)

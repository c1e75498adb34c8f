"""``eth_`` methods about the chain and this node: chain id, head number, sync status,
whether it builds blocks, and its coinbase."""

from __future__ import annotations

from node.rpc.context import NodeContext
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import Params, rpc


@rpc("eth_chainId", max_params=0)
def eth_chain_id(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.core.ledger.chain_id)


@rpc("eth_blockNumber", max_params=0)
def eth_block_number(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.core.ledger.head.block_number)


@rpc("eth_syncing", max_params=0)
def eth_syncing(ctx: NodeContext, params: Params) -> bool | dict[str, str]:
    """Block sync's progress, with the live head as ``currentBlock`` (it moves block by block,
    gossip included); false once the head reaches the highest block a proven peer shows."""
    status = ctx.network.syncing
    head = int(ctx.core.ledger.head.block_number)
    if status is None or head >= status["highestBlock"]:
        return False
    return {**{k: hex_quantity(v) for k, v in status.items()}, "currentBlock": hex_quantity(head)}


@rpc("eth_mining", max_params=0)
def eth_mining(ctx: NodeContext, params: Params) -> bool:
    return ctx.core.produces_blocks


@rpc("eth_hashrate", max_params=0)
def eth_hashrate(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(0)


@rpc("eth_coinbase", max_params=0)
def eth_coinbase(ctx: NodeContext, params: Params) -> str:
    return hex_data(ctx.core.coinbase)

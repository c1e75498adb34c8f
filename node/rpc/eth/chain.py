"""``eth_`` methods about the chain and this node: chain id, head number, sync status,
whether it builds blocks, and its coinbase."""

from __future__ import annotations

from node.core import ChainCore
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import Params, rpc


@rpc("eth_chainId", max_params=0)
def eth_chain_id(core: ChainCore, params: Params) -> str:
    return hex_quantity(core.ledger.chain_id)


@rpc("eth_blockNumber", max_params=0)
def eth_block_number(core: ChainCore, params: Params) -> str:
    return hex_quantity(core.ledger.head.block_number)


@rpc("eth_syncing", max_params=0)
def eth_syncing(core: ChainCore, params: Params) -> bool | dict[str, str]:
    status = core.sync_status
    return False if status is None else {k: hex_quantity(v) for k, v in status.items()}


@rpc("eth_mining", max_params=0)
def eth_mining(core: ChainCore, params: Params) -> bool:
    return core.produces_blocks


@rpc("eth_hashrate", max_params=0)
def eth_hashrate(core: ChainCore, params: Params) -> str:
    return hex_quantity(0)


@rpc("eth_coinbase", max_params=0)
def eth_coinbase(core: ChainCore, params: Params) -> str:
    return hex_data(core.coinbase)

"""``eth_`` block methods: blocks by number or hash (with transaction hashes or whole
transactions), the pending block the node would build next, transaction counts, and the
uncle methods (this chain has no uncles)."""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI

from node.chain.core import ChainCore
from node.errors import UnknownBlock
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.format import format_block, format_header, format_transaction, hex_data, hex_quantity
from node.rpc.registry import Params, args, rpc


def _block_json(core: ChainCore, header: BlockHeaderAPI, full: bool) -> dict[str, Any]:
    return format_block(core.ledger.block(header), full)


@rpc("eth_getBlockByNumber", max_params=2)
def eth_get_block_by_number(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    ref, full = args(params, 1, 1)
    full = p.boolean(full, "1") if full is not None else False
    if ref == "pending":
        return _pending_block(ctx.core, full)
    try:
        header = ctx.core.resolve(p.block_ref(ref, "0"))
    except UnknownBlock:
        return None
    return _block_json(ctx.core, header, full)


def _pending_block(core: ChainCore, full: bool) -> dict[str, Any]:
    """The block the node would build next, as geth shows it: no hash, nonce or miner yet."""
    from state.vm import LedgerVM

    head = core.ledger.head
    header = LedgerVM.create_header_from_parent(head, timestamp=max(core.now(), head.timestamp + 1))
    out = format_header(header)
    txs = core.pool.select(head.gas_limit)
    out.update(hash=None, nonce=None, miner=None, uncles=[], size=hex_quantity(0), withdrawals=[])
    out["gasUsed"] = hex_quantity(sum(tx.gas for tx in txs))
    out["transactions"] = [format_transaction(tx) for tx in txs] if full else [hex_data(tx.hash) for tx in txs]
    return out


@rpc("eth_getBlockByHash", max_params=2)
def eth_get_block_by_hash(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    h, full = args(params, 1, 1)
    full = p.boolean(full, "1") if full is not None else False
    header = ctx.core.ledger.header_by_hash(p.hash32(h, "0"))
    return None if header is None else _block_json(ctx.core, header, full)


@rpc("eth_getBlockTransactionCountByNumber", max_params=1)
def eth_block_tx_count_by_number(ctx: NodeContext, params: Params) -> str | None:
    (ref,) = args(params, 1)
    try:
        header = ctx.core.resolve(p.block_ref(ref, "0"))
    except UnknownBlock:
        return None
    return hex_quantity(len(ctx.core.ledger.block(header).transactions))


@rpc("eth_getBlockTransactionCountByHash", max_params=1)
def eth_block_tx_count_by_hash(ctx: NodeContext, params: Params) -> str | None:
    (h,) = args(params, 1)
    header = ctx.core.ledger.header_by_hash(p.hash32(h, "0"))
    return None if header is None else hex_quantity(len(ctx.core.ledger.block(header).transactions))


@rpc("eth_getUncleCountByBlockNumber", "eth_getUncleCountByBlockHash", max_params=1)
def eth_uncle_count(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(0)


@rpc("eth_getUncleByBlockNumberAndIndex", "eth_getUncleByBlockHashAndIndex", max_params=2)
def eth_uncle(ctx: NodeContext, params: Params) -> None:
    return None

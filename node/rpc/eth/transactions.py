"""``eth_`` transaction methods: submitting a signed transaction, finding one by hash or by
block and index (decoded or as its raw EIP-2718 bytes), and receipts.

A transaction still in the pool is found by hash, with no block; a block the node does not
have answers null."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, SignedTransactionAPI

from node.chain.core import ChainCore
from node.errors import NotFound, UnknownBlock
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.format import format_receipts, format_transaction, hex_data, hex_quantity
from node.rpc.registry import Continue, Params, args, rpc


@rpc("eth_sendRawTransaction", max_params=1, sends=True)
def eth_send_raw_transaction(ctx: NodeContext, params: Params) -> str | Continue:
    (raw,) = args(params, 1)
    return answer_when_mined(ctx.core, ctx.core.submit_raw(p.data(raw, "0"), wait=False))


def answer_when_mined(core: ChainCore, tx_hash: bytes) -> str | Continue:
    """The answer to a send: the hash, once the block automine was asked for is built (in a
    later job, so that the transactions admitted meanwhile share that block)."""
    if core.awaits_block(tx_hash):
        return Continue(lambda: hex_data(core.settle(tx_hash)))
    return hex_data(tx_hash)


def _tx_at(core: ChainCore, number: int, index: int) -> dict[str, Any] | None:
    header = core.ledger.header_by_number(number)
    if header is None:
        return None
    block = core.ledger.block(header)
    if index >= len(block.transactions):
        return None
    out = format_transaction(block.transactions[index], header, index)
    out["blockTimestamp"] = hex_quantity(header.timestamp)
    return out


@rpc("eth_getTransactionByHash", max_params=1)
def eth_get_transaction_by_hash(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    where = ctx.core.ledger.transaction_location(tx_hash)
    if where is not None:
        return _tx_at(ctx.core, *where)
    entry = ctx.core.pool.by_hash.get(tx_hash)
    return format_transaction(entry.tx) if entry is not None else None


@rpc("eth_getTransactionByBlockNumberAndIndex", max_params=2)
def eth_get_tx_by_number_and_index(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    ref, index = args(params, 2)
    header = ctx.core.resolve(p.block_ref(ref, "0"))
    return _tx_at(ctx.core, header.block_number, p.quantity(index, "1"))


@rpc("eth_getTransactionByBlockHashAndIndex", max_params=2)
def eth_get_tx_by_hash_and_index(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    h, index = args(params, 2)
    header = ctx.core.ledger.header_by_hash(p.hash32(h, "0"))
    if header is None:
        return None
    return _tx_at(ctx.core, header.block_number, p.quantity(index, "1"))


@rpc("eth_getTransactionReceipt", max_params=1)
def eth_get_transaction_receipt(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    (h,) = args(params, 1)
    where = ctx.core.ledger.transaction_location(p.hash32(h, "0"))
    if where is None:
        return None
    header = ctx.core.ledger.header_by_number(where[0])
    assert header is not None
    block = ctx.core.ledger.block(header)
    receipts = format_receipts(block, ctx.core.ledger.receipts(block))
    return receipts[where[1]]


@rpc("eth_getBlockReceipts", max_params=1)
def eth_get_block_receipts(ctx: NodeContext, params: Params) -> list[dict[str, Any]] | None:
    (ref,) = args(params, 1)
    block_ref = p.block_ref(ref, "0")
    try:
        header = ctx.core.resolve(block_ref)
    except (UnknownBlock, NotFound):
        return None  # an unknown block, by number or by hash, has no receipts (anvil: null)
    block = ctx.core.ledger.block(header)
    return format_receipts(block, ctx.core.ledger.receipts(block))


# -- raw transactions -----------------------------------------------------------------------


def encode_transaction(tx: SignedTransactionAPI) -> bytes:
    """The EIP-2718 bytes of a signed transaction, as eth_sendRawTransaction takes them."""
    if getattr(tx, "type_id", None) is not None:
        return bytes(tx.encode())
    return bytes(rlp.encode(tx))


def _raw_at(core: ChainCore, header: BlockHeaderAPI | None, index: int) -> str | None:
    if header is None:
        return None
    block = core.ledger.block(header)
    if index >= len(block.transactions):
        return None
    return hex_data(encode_transaction(block.transactions[index]))


@rpc("eth_getRawTransactionByHash", max_params=1)
def eth_get_raw_transaction_by_hash(ctx: NodeContext, params: Params) -> str | None:
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    where = ctx.core.ledger.transaction_location(tx_hash)
    if where is not None:
        return _raw_at(ctx.core, ctx.core.ledger.header_by_number(where[0]), where[1])
    entry = ctx.core.pool.by_hash.get(tx_hash)
    return hex_data(encode_transaction(entry.tx)) if entry is not None else None


@rpc("eth_getRawTransactionByBlockNumberAndIndex", max_params=2)
def eth_get_raw_tx_by_number_and_index(ctx: NodeContext, params: Params) -> str | None:
    ref, index = args(params, 2)
    block_ref = p.block_ref(ref, "0")
    index_value = p.quantity(index, "1")
    try:
        header = ctx.core.resolve(block_ref)
    except (UnknownBlock, NotFound):
        return None  # anvil: null for a block it does not have, future ones included
    return _raw_at(ctx.core, header, index_value)


@rpc("eth_getRawTransactionByBlockHashAndIndex", max_params=2)
def eth_get_raw_tx_by_hash_and_index(ctx: NodeContext, params: Params) -> str | None:
    h, index = args(params, 2)
    block_hash = p.hash32(h, "0")
    index_value = p.quantity(index, "1")
    return _raw_at(ctx.core, ctx.core.ledger.header_by_hash(block_hash), index_value)

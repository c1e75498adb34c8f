"""The ``txpool_`` namespace, as geth serves it: counts, contents and a one-line summary per
transaction of the pending (executable) and queued (waiting on a nonce gap) transactions."""

from __future__ import annotations

from typing import Any

from eth.abc import SignedTransactionAPI

from node.rpc.context import NodeContext
from node.rpc.format import format_transaction, hex_data, hex_quantity
from node.rpc.registry import Params, rpc
from node.txpool import max_fee


@rpc("txpool_status", max_params=0)
def txpool_status(ctx: NodeContext, params: Params) -> dict[str, str]:
    return {"pending": hex_quantity(ctx.core.pool.pending_count), "queued": hex_quantity(ctx.core.pool.queued_count)}


@rpc("txpool_content", max_params=0)
def txpool_content(ctx: NodeContext, params: Params) -> dict[str, Any]:
    pending, queued = ctx.core.pool.content()

    def shape(table: dict[bytes, list[SignedTransactionAPI]]) -> dict[str, Any]:
        from eth_utils import to_checksum_address

        return {
            to_checksum_address(s): {str(tx.nonce): format_transaction(tx) for tx in txs}
            for s, txs in table.items()
        }

    return {"pending": shape(pending), "queued": shape(queued)}


@rpc("txpool_inspect", max_params=0)
def txpool_inspect(ctx: NodeContext, params: Params) -> dict[str, Any]:
    pending, queued = ctx.core.pool.content()

    def shape(table: dict[bytes, list[SignedTransactionAPI]]) -> dict[str, Any]:
        from eth_utils import to_checksum_address

        return {
            to_checksum_address(s): {
                str(tx.nonce): f"{hex_data(tx.to) if tx.to else 'contract creation'}: {tx.value} wei + {tx.gas} gas × {max_fee(tx)} wei"
                for tx in txs
            }
            for s, txs in table.items()
        }

    return {"pending": shape(pending), "queued": shape(queued)}

"""``eth_getLogs`` and the polling filters (``eth_newFilter``, ``eth_newBlockFilter``,
``eth_newPendingTransactionFilter``, ``eth_getFilterChanges``, ...).

The node keeps the filters (``node.rpc.filters``), with a cap per client (the caller's address) and per
node and an expiry for filters nobody polls; log queries are bounded in blocks and results
and run on the read worker."""

from __future__ import annotations

from typing import Any

from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.format import hex_quantity
from node.rpc.registry import READ, Params, args, current_client, rpc


@rpc("eth_getLogs", max_params=1, lane=READ)
def eth_get_logs(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    (criteria,) = args(params, 1)
    return ctx.filters.logs(p.log_filter(criteria))


@rpc("eth_newFilter", max_params=1)
def eth_new_filter(ctx: NodeContext, params: Params) -> str:
    (criteria,) = args(params, 1)
    return hex_quantity(ctx.filters.new_filter("logs", p.log_filter(criteria), client=current_client()))


@rpc("eth_newBlockFilter", max_params=0)
def eth_new_block_filter(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.filters.new_filter("block", client=current_client()))


@rpc("eth_newPendingTransactionFilter", max_params=0)
def eth_new_pending_filter(ctx: NodeContext, params: Params) -> str:
    return hex_quantity(ctx.filters.new_filter("pending", client=current_client()))


@rpc("eth_getFilterChanges", max_params=1)
def eth_get_filter_changes(ctx: NodeContext, params: Params) -> list[Any]:
    (fid,) = args(params, 1)
    return ctx.filters.filter_changes(p.quantity(fid, "0"))


@rpc("eth_getFilterLogs", max_params=1, lane=READ)
def eth_get_filter_logs(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    (fid,) = args(params, 1)
    return ctx.filters.filter_logs(p.quantity(fid, "0"))


@rpc("eth_uninstallFilter", max_params=1)
def eth_uninstall_filter(ctx: NodeContext, params: Params) -> bool:
    (fid,) = args(params, 1)
    return ctx.filters.uninstall_filter(p.quantity(fid, "0"))

"""The ``ai_`` namespace's governance reads beyond ``ai_getProposal`` (in ``ai``): whether an
adapter may be served under its approval policy, and the upgrade schedule with what this node
knows of it. Each reads a bounded number of slots (an adapter's declared datanets; at most
``upgrades.MAX_UPGRADES`` schedule entries)."""

from __future__ import annotations

from typing import Any

from ai_precompiles import governance, upgrades
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import ResourceNotFound
from node.rpc.format import hex_quantity
from node.rpc.registry import Params, args, rpc


@rpc("ai_getModelStatus", max_params=2)
def ai_get_model_status(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """``{adapterId, requiresApproval, approved, approvedBy, openProposal, deployable}``: a
    validator serves, and the chain takes receipts for, a deployable adapter only."""
    adapter_id, ref = args(params, 1, 1)
    status = governance.get_model_status(p.state_at(ctx.core, ref, 1), p.quantity(adapter_id, "0"))
    if status is None:
        raise ResourceNotFound(f"adapter {adapter_id} not found")
    return {k: hex_quantity(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in status.items()}


@rpc("ai_getUpgrades", max_params=1)
def ai_get_upgrades(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """``{scheduled: [{name, height, info, proposalId, known, doc}], known: {name: doc}}``: the
    chain's schedule and this release's table (a scheduled name it lacks stops it at the
    height)."""
    (ref,) = args(params, 0, 1)
    scheduled = upgrades.get_upgrades(p.state_at(ctx.core, ref, 0))
    return {"scheduled": [dict(u, height=hex_quantity(u["height"]), proposalId=hex_quantity(u["proposalId"]))
                          for u in scheduled],
            "known": {name: u.doc for name, u in upgrades.KNOWN.items()}}

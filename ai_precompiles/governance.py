"""Governance precompile: stake-weighted proposals that set one protocol parameter; its storage.

A proposal names a parameter and a value within its bounds (``params.PARAMS``). Its snapshot
is the epoch it was made in: voting power is each voter's stake effective in that epoch (so
stake moved during the vote cannot vote twice), and the quorum base is the total stake then.
Votes are accepted through ``endBlock = start + gov.voting_period``; from
``executableBlock = endBlock + gov.execution_delay`` anyone may execute a proposal whose votes
reach ``gov.quorum_bp`` of the snapshot's total power with more yes than no. A proposal is
checked (``params.check_param``: bounds and the invariants between parameters) when it is made
and again at execution, against the parameters of that moment, then the new value is read by
every module from the next operation on.

Storage (account ``GOVERNANCE``): the parameters (see params.py), ``slot("proposal.count")``,
:class:`Proposal` records, ``slot("proposal.voted", id, voter)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import staking
from .addresses import GOVERNANCE, STAKING
from .context import Ctx
from .dispatch import Precompile
from .errors import InvalidArgument, InvalidState, NotFound, Unauthorized
from .params import BP, PARAMS, check_param, get_param, set_param
from .storage import Record, Store, rfield, slot


@dataclass(frozen=True)
class Proposal(Record):
    """A proposal to set one parameter."""

    NS = "proposal"
    id: int = rfield("uint", "proposal id (from 1)")
    proposer: bytes = rfield("address", "who proposed")
    param: str = rfield("string", "parameter name, e.g. 'reward.validator_bp'")
    value: int = rfield("uint", "value to set")
    snapshot_epoch: int = rfield("uint", "epoch whose stakes weigh the votes")
    start_block: int = rfield("uint", "block of the proposal")
    end_block: int = rfield("uint", "last block that accepts votes")
    executable_block: int = rfield("uint", "first block it may be executed in")
    yes_votes: int = rfield("uint", "stake voting yes")
    no_votes: int = rfield("uint", "stake voting no")
    total_power: int = rfield("uint", "total stake at the snapshot (quorum base)")
    executed: bool = rfield("bool", "executed already")


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(GOVERNANCE, topics, data)


def _check(ctx: Ctx, param: str, value: int) -> None:
    """Check setting ``param`` to ``value`` now (``params.check_param``). The epoch running now
    keeps its length to its end whatever the parameter says (a change applies from the next
    boundary), so ``staking.epoch_length`` is also checked as the longer of the two: the
    unbonding rule must hold for the epoch a validator may be unstaking in."""
    gov = ctx.store(GOVERNANCE)
    current = {n: get_param(gov, n) for n in PARAMS}
    check_param(param, value, current)
    running = staking.epoch_length_at(ctx.store(STAKING), ctx.block_number)
    if param == "staking.epoch_length":
        check_param(param, max(value, running), current)
    elif running > current["staking.epoch_length"]:
        check_param(param, value, {**current, "staking.epoch_length": running})


def _proposal(store: Store, pid: int) -> Proposal:
    if not 0 < pid <= store.get(slot("proposal.count")):
        raise NotFound(f"proposal {pid} does not exist")
    return Proposal.decode(store, pid)


def propose(ctx: Ctx, param: str, value: int) -> int:
    """Open a proposal; the proposer needs ``gov.min_proposer_stake`` at the current epoch."""
    gov = ctx.store(GOVERNANCE)
    st = ctx.store(STAKING)
    if param not in PARAMS:
        raise InvalidArgument(f"unknown parameter {param}")
    _check(ctx, param, value)
    epoch = staking.epoch_of(st, ctx.block_number)
    if staking.power_at(st, ctx.sender, epoch) < get_param(gov, "gov.min_proposer_stake"):
        raise Unauthorized("proposer has too little stake")
    total = staking.total_power(st, epoch)
    end = ctx.block_number + get_param(gov, "gov.voting_period")
    pid = gov.incr(slot("proposal.count"))
    Proposal(id=pid, proposer=ctx.sender, param=param, value=value, snapshot_epoch=epoch,
             start_block=ctx.block_number, end_block=end,
             executable_block=end + get_param(gov, "gov.execution_delay"),
             total_power=total).encode(gov, pid)
    _event(ctx, "ProposalCreated", pid, ctx.sender, param, value, end)
    return pid


def vote(ctx: Ctx, proposal_id: int, support: bool) -> None:
    """Vote with the sender's stake at the snapshot epoch, once, during the voting period."""
    gov = ctx.store(GOVERNANCE)
    p = _proposal(gov, proposal_id)
    if ctx.block_number > p.end_block:
        raise InvalidState("voting period is over")
    voted = slot("proposal.voted", proposal_id, ctx.sender)
    if gov.get(voted):
        raise InvalidState("already voted on this proposal")
    weight = staking.power_at(ctx.store(STAKING), ctx.sender, p.snapshot_epoch)
    if weight == 0:
        raise Unauthorized("no voting power at the proposal's snapshot epoch")
    gov.set(voted, 1 if support else 2)
    field = "yes_votes" if support else "no_votes"
    Proposal.store_field(gov, proposal_id, field, getattr(p, field) + weight)
    _event(ctx, "VoteCast", proposal_id, ctx.sender, support, weight)


def execute(ctx: Ctx, proposal_id: int) -> None:
    """Apply a passed proposal after its delay (anyone may call)."""
    gov = ctx.store(GOVERNANCE)
    p = _proposal(gov, proposal_id)
    if p.executed:
        raise InvalidState("proposal already executed")
    if ctx.block_number <= p.end_block:
        raise InvalidState("voting period is not over")
    if ctx.block_number < p.executable_block:
        raise InvalidState("execution delay is not over")
    if (p.yes_votes + p.no_votes) * BP < p.total_power * get_param(gov, "gov.quorum_bp"):
        raise InvalidState("quorum not reached")
    if p.yes_votes <= p.no_votes:
        raise InvalidState("proposal did not pass")
    _check(ctx, p.param, p.value)
    old = get_param(gov, p.param)
    set_param(gov, p.param, p.value)
    Proposal.store_field(gov, proposal_id, "executed", True)
    if p.param == "staking.epoch_length" and p.value != old:
        staking.on_epoch_length_changed(ctx, p.value)
    _event(ctx, "ProposalExecuted", proposal_id, p.param, old, p.value)


def _param_bounds(ctx: Ctx, name: str) -> tuple[int, int]:
    if name not in PARAMS:
        raise InvalidArgument(f"unknown parameter {name}")
    return PARAMS[name].min, PARAMS[name].max


PRECOMPILE = Precompile("Governance", GOVERNANCE, {
    "propose": propose,
    "vote": vote,
    "execute": execute,
    "getProposal": lambda ctx, pid: _proposal(ctx.store(GOVERNANCE), pid),
    "hasVotedOn": lambda ctx, pid, a: bool(ctx.store(GOVERNANCE).get(slot("proposal.voted", pid, a))),
    "getParam": lambda ctx, name: get_param(ctx.store(GOVERNANCE), name),
    "paramBounds": _param_bounds,
    "proposalCount": lambda ctx: ctx.store(GOVERNANCE).get(slot("proposal.count")),
})


def get_proposal(state: Any, proposal_id: int) -> Proposal | None:
    store = Store(state, GOVERNANCE)
    if not 0 < proposal_id <= store.get(slot("proposal.count")):
        return None
    return Proposal.decode(store, proposal_id)

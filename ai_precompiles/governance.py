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

Three kinds of proposal share the record, the vote and the tally (``kind``):

- **Parameter** (``propose``): as above.
- **Model** (``proposeModel``, docs/ai_precompiles.md "Model proposals"): the author of an adapter
  whose base model or datanets require approval (:func:`set_approval_policy`) proposes it for
  deployment with a bond of at least ``gov.model_min_bond`` (the call's value, held by this
  account). Its rule is copied into the record when it is made (``quorum_bp``,
  ``threshold_bp``, voting period ``gov.model_voting_period``, timelock ``gov.model_timelock``),
  so a parameter change during the vote does not change the vote. ``execute`` of a passed one
  approves the adapter (receipts for it are accepted from then on) and returns the bond;
  ``closeProposal`` of a failed one returns the bond when the vote reached quorum and its no
  votes are less than ``gov.model_slash_bp`` of the votes cast, and otherwise pays it to the
  treasury (a proposal nobody votes for, or one a large majority rejects, is what a spammer's
  costs: without the loss, flooding the voters costs only locked capital).
- **Upgrade** (``proposeUpgrade``, upgrades.py): a named rule change at a height, voted as a
  parameter proposal; ``execute`` schedules it, if the height is still at least
  ``gov.upgrade_min_lead`` blocks ahead.

Work is bounded: a vote adds the voter's weight to the record's running tallies (no proposal
ever walks its voters), execution reads the tallies, and an approval check reads the adapter's
base model and its declared datanets (at most ``registry.max_datanet_versions``).

Storage (account ``GOVERNANCE``): the parameters (see params.py), ``slot("proposal.count")``,
:class:`Proposal` records, ``slot("proposal.voted", id, voter)``; ``slot("policy", kind, id)``
(block the approval policy was set in + 1, 0 when off), ``slot("model.approved", adapter)``
(approving proposal id), ``slot("model.open", adapter)`` (open model proposal id); the upgrade
schedule (upgrades.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import datanets, registry, rewards, staking, upgrades
from .addresses import DATANETS, GOVERNANCE, MODEL_REGISTRY, STAKING
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds, InvalidArgument, InvalidState, NotFound, Unauthorized
from .params import BP, PARAMS, check_param, get_param, set_param
from .storage import Record, Store, rfield, slot

#: ``Proposal.kind``
PARAM, MODEL, UPGRADE = 0, 1, 2
#: ``setApprovalPolicy``'s subject kinds
POLICY_DATANET, POLICY_BASE_MODEL = 1, 2


@dataclass(frozen=True)
class Proposal(Record):
    """A proposal: set one parameter, approve one adapter, or schedule one upgrade."""

    NS = "proposal"
    id: int = rfield("uint", "proposal id (from 1)")
    proposer: bytes = rfield("address", "who proposed")
    param: str = rfield("string", "parameter name (kind 0), upgrade name (kind 2), '' (kind 1)")
    value: int = rfield("uint", "value to set (kind 0), adapter id (kind 1), upgrade height (kind 2)")
    snapshot_epoch: int = rfield("uint", "epoch whose stakes weigh the votes")
    start_block: int = rfield("uint", "block of the proposal")
    end_block: int = rfield("uint", "last block that accepts votes")
    executable_block: int = rfield("uint", "first block it may be executed in")
    yes_votes: int = rfield("uint", "stake voting yes")
    no_votes: int = rfield("uint", "stake voting no")
    total_power: int = rfield("uint", "total stake at the snapshot (quorum base)")
    executed: bool = rfield("bool", "executed already")
    # appended fields (a record written before them reads them as 0, a parameter proposal)
    kind: int = rfield("uint", "0 parameter, 1 model (adapter deployment), 2 upgrade")
    bond: int = rfield("uint", "wei bonded with a model proposal")
    quorum_bp: int = rfield("uint", "a model proposal's quorum, copied from gov.model_quorum_bp (0: gov.quorum_bp read at execution)")
    threshold_bp: int = rfield("uint", "a model proposal's threshold, copied from gov.model_threshold_bp (0: more yes than no)")
    info: str = rfield("string", "an upgrade's install hint (a version, a URL)")
    closed: bool = rfield("bool", "closed without passing (its bond settled)")


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


def _open(ctx: Ctx, kind: int, param: str, value: int, voting_period: int, delay: int,
          bond: int = 0, quorum_bp: int = 0, threshold_bp: int = 0, info: str = "") -> int:
    """Write a new proposal whose snapshot is the current epoch: the stakes of that epoch were
    fixed before it began, so stake added from now on (a flash stake) weighs nothing in it."""
    gov = ctx.store(GOVERNANCE)
    st = ctx.store(STAKING)
    epoch = staking.epoch_of(st, ctx.block_number)
    end = ctx.block_number + voting_period
    pid = gov.incr(slot("proposal.count"))
    Proposal(id=pid, proposer=ctx.sender, param=param, value=value, snapshot_epoch=epoch,
             start_block=ctx.block_number, end_block=end, executable_block=end + delay,
             total_power=staking.total_power(st, epoch), kind=kind, bond=bond, quorum_bp=quorum_bp,
             threshold_bp=threshold_bp, info=info).encode(gov, pid)
    return int(pid)


def _require_proposer_stake(ctx: Ctx) -> None:
    st = ctx.store(STAKING)
    if staking.power_at(st, ctx.sender, staking.epoch_of(st, ctx.block_number)) < get_param(
            ctx.store(GOVERNANCE), "gov.min_proposer_stake"):
        raise Unauthorized("proposer has too little stake")


def propose(ctx: Ctx, param: str, value: int) -> int:
    """Open a proposal; the proposer needs ``gov.min_proposer_stake`` at the current epoch."""
    gov = ctx.store(GOVERNANCE)
    if param not in PARAMS:
        raise InvalidArgument(f"unknown parameter {param}")
    _check(ctx, param, value)
    _require_proposer_stake(ctx)
    period = get_param(gov, "gov.voting_period")
    pid = _open(ctx, PARAM, param, value, period, get_param(gov, "gov.execution_delay"))
    _event(ctx, "ProposalCreated", pid, ctx.sender, param, value, ctx.block_number + period)
    return pid


def vote(ctx: Ctx, proposal_id: int, support: bool) -> None:
    """Vote with the sender's stake at the snapshot epoch, once, during the voting period. The
    weight is added to the proposal's running tally: constant work however many have voted."""
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


def _quorum_reached(gov: Store, p: Proposal) -> bool:
    quorum = p.quorum_bp or get_param(gov, "gov.quorum_bp")
    return (p.yes_votes + p.no_votes) * BP >= p.total_power * quorum


def _passed(gov: Store, p: Proposal) -> bool:
    """Quorum reached and yes above the threshold of the votes cast (more yes than no when the
    proposal has no threshold of its own)."""
    if not _quorum_reached(gov, p):
        return False
    if p.threshold_bp:
        return p.yes_votes * BP > (p.yes_votes + p.no_votes) * p.threshold_bp
    return p.yes_votes > p.no_votes


def execute(ctx: Ctx, proposal_id: int) -> None:
    """Apply a passed proposal after its delay (anyone may call), once."""
    gov = ctx.store(GOVERNANCE)
    p = _proposal(gov, proposal_id)
    if p.executed:
        raise InvalidState("proposal already executed")
    if p.closed:
        raise InvalidState("proposal is closed")
    if ctx.block_number <= p.end_block:
        raise InvalidState("voting period is not over")
    if ctx.block_number < p.executable_block:
        raise InvalidState("execution delay is not over")
    if not _quorum_reached(gov, p):
        raise InvalidState("quorum not reached")
    if not _passed(gov, p):
        raise InvalidState("proposal did not pass")
    if p.kind == MODEL:
        _execute_model(ctx, gov, p)
    elif p.kind == UPGRADE:
        _execute_upgrade(ctx, gov, p)
    else:
        _check(ctx, p.param, p.value)
        old = get_param(gov, p.param)
        set_param(gov, p.param, p.value)
        Proposal.store_field(gov, proposal_id, "executed", True)
        if p.param == "staking.epoch_length" and p.value != old:
            staking.on_epoch_length_changed(ctx, p.value)
        _event(ctx, "ProposalExecuted", proposal_id, p.param, old, p.value)


# -- model proposals ---------------------------------------------------------------------


def set_approval_policy(ctx: Ctx, kind: int, subject_id: int, required: bool) -> None:
    """The owner of a datanet (``kind`` 1) or the registrant of a base model (``kind`` 2) sets
    whether adapters trained on it need an approved model proposal before receipts for them are
    accepted. The policy does not reach back: it binds adapters registered from this block on
    (one registered before keeps being served), so an owner cannot cut off deployed models."""
    gov = ctx.store(GOVERNANCE)
    if kind == POLICY_DATANET:
        dn = datanets._datanet(ctx.store(DATANETS), subject_id)
        if dn.owner != ctx.sender:
            raise Unauthorized("only the datanet's owner may set its approval policy")
    elif kind == POLICY_BASE_MODEL:
        m = registry._model(ctx.store(MODEL_REGISTRY), subject_id, "base model")
        if m.kind != registry.BASE:
            raise InvalidArgument(f"model {subject_id} is not a base model")
        if m.author != ctx.sender:
            raise Unauthorized("only the base model's registrant may set its approval policy")
    else:
        raise InvalidArgument("policy kind must be 1 (datanet) or 2 (base model)")
    gov.set(slot("policy", kind, subject_id), ctx.block_number + 1 if required else 0)
    _event(ctx, "ApprovalPolicySet", kind, subject_id, required)


def _policy_since(gov: Store, kind: int, subject_id: int) -> int | None:
    """Block the policy binds from, or None when it is off."""
    raw = gov.get(slot("policy", kind, subject_id))
    return raw - 1 if raw else None


def _requires_approval(gov: Store, reg: Store, adapter_id: int) -> bool:
    """Whether the adapter's base model or one of its declared datanets requires approval for
    adapters registered when it did. Reads at most 3 + ``registry.max_datanet_versions`` slots."""
    created = registry.Model.load_field(reg, adapter_id, "created_block")
    since = _policy_since(gov, POLICY_BASE_MODEL, registry.Model.load_field(reg, adapter_id, "base_model_id"))
    if since is not None and created >= since:
        return True
    for dn in registry.Model.list_field(reg, adapter_id, "datanet_ids"):
        since = _policy_since(gov, POLICY_DATANET, dn)
        if since is not None and created >= since:
            return True
    return False


def require_deployable(ctx: Ctx, adapter_id: int) -> None:
    """Refuse (the inference precompile, before recording a receipt) an adapter whose policy
    requires approval and that no executed model proposal approved."""
    gov = ctx.store(GOVERNANCE)
    if gov.get(slot("model.approved", adapter_id)):
        return
    if _requires_approval(gov, ctx.store(MODEL_REGISTRY), adapter_id):
        raise InvalidState(f"adapter {adapter_id} awaits approval: its policy requires an executed model proposal")


def propose_model(ctx: Ctx, adapter_id: int) -> int:
    """The adapter's author proposes it for deployment, bonding the call's value."""
    gov = ctx.store(GOVERNANCE)
    reg = ctx.store(MODEL_REGISTRY)
    m = registry._model(reg, adapter_id, "adapter")
    if m.kind != registry.ADAPTER:
        raise InvalidArgument(f"model {adapter_id} is not an adapter")
    if m.author != ctx.sender:
        raise Unauthorized("only the adapter's author may propose it")
    if m.retired:
        raise InvalidState(f"adapter {adapter_id} is retired")
    if gov.get(slot("model.approved", adapter_id)):
        raise InvalidState(f"adapter {adapter_id} is already approved")
    if not _requires_approval(gov, reg, adapter_id):
        raise InvalidState(f"adapter {adapter_id} needs no approval: no policy of its lineage requires it")
    if gov.get(slot("model.open", adapter_id)):
        raise InvalidState(f"adapter {adapter_id} already has an open proposal")
    if ctx.value < get_param(gov, "gov.model_min_bond"):
        raise InsufficientFunds(f"a model proposal needs a bond of at least gov.model_min_bond "
                                f"({get_param(gov, 'gov.model_min_bond')} wei), not {ctx.value}")
    # the value arrived with the call: the bond is this account's balance from now on
    pid = _open(ctx, MODEL, "", adapter_id, get_param(gov, "gov.model_voting_period"),
                get_param(gov, "gov.model_timelock"), bond=ctx.value,
                quorum_bp=get_param(gov, "gov.model_quorum_bp"),
                threshold_bp=get_param(gov, "gov.model_threshold_bp"))
    gov.set(slot("model.open", adapter_id), pid)
    _event(ctx, "ModelProposed", pid, ctx.sender, adapter_id, ctx.value,
           ctx.block_number + get_param(gov, "gov.model_voting_period"))
    return pid


def _execute_model(ctx: Ctx, gov: Store, p: Proposal) -> None:
    Proposal.store_field(gov, p.id, "executed", True)
    gov.set(slot("model.approved", p.value), p.id)
    gov.set(slot("model.open", p.value), 0)
    ctx.transfer(GOVERNANCE, p.proposer, p.bond)
    _event(ctx, "ModelApproved", p.id, p.value, p.proposer, p.bond)


def close_proposal(ctx: Ctx, proposal_id: int) -> bool:
    """Close a proposal whose vote is over and that did not pass (anyone may call, once). A
    model proposal's bond is settled: returned when the vote reached quorum and its no votes
    are below ``gov.model_slash_bp`` of the votes cast, else paid to the treasury. Returns
    whether the bond was returned."""
    gov = ctx.store(GOVERNANCE)
    p = _proposal(gov, proposal_id)
    if p.executed or p.closed:
        raise InvalidState("proposal already executed or closed")
    if ctx.block_number <= p.end_block:
        raise InvalidState("voting period is not over")
    if _passed(gov, p):
        raise InvalidState("proposal passed: execute it")
    Proposal.store_field(gov, proposal_id, "closed", True)
    returned = True
    if p.kind == MODEL:
        gov.set(slot("model.open", p.value), 0)
        cast = p.yes_votes + p.no_votes
        returned = _quorum_reached(gov, p) and p.no_votes * BP < cast * get_param(gov, "gov.model_slash_bp")
        if returned:
            ctx.transfer(GOVERNANCE, p.proposer, p.bond)
        else:
            treasury = get_param(gov, "treasury").to_bytes(20, "big")
            rewards.pay(ctx, GOVERNANCE, treasury, p.bond, rewards.TREASURY)
    _event(ctx, "ProposalClosed", proposal_id, p.bond if returned else 0, 0 if returned else p.bond)
    return returned


# -- upgrades ----------------------------------------------------------------------------


def propose_upgrade(ctx: Ctx, name: str, height: int, info: str) -> int:
    """Propose scheduling upgrade ``name`` at ``height``; the proposer needs
    ``gov.min_proposer_stake``. Any well-formed name is accepted (a newer release may know it);
    the height must leave ``gov.upgrade_min_lead`` blocks after the earliest execution."""
    gov = ctx.store(GOVERNANCE)
    upgrades.check_name(name)
    if len(info.encode()) > upgrades.MAX_INFO:
        raise InvalidArgument(f"upgrade info is longer than {upgrades.MAX_INFO} bytes")
    if upgrades.height_of(gov, name):
        raise InvalidState(f"upgrade {name} is already scheduled")
    _require_proposer_stake(ctx)
    period, delay = get_param(gov, "gov.voting_period"), get_param(gov, "gov.execution_delay")
    earliest = ctx.block_number + period + delay + get_param(gov, "gov.upgrade_min_lead")
    if height < earliest:
        raise InvalidArgument(f"upgrade height must be at least {earliest} (vote, delay and "
                              "gov.upgrade_min_lead from now)")
    pid = _open(ctx, UPGRADE, name, height, period, delay, info=info)
    _event(ctx, "UpgradeProposed", pid, ctx.sender, name, height, info)
    return pid


def _execute_upgrade(ctx: Ctx, gov: Store, p: Proposal) -> None:
    if upgrades.height_of(gov, p.param):
        raise InvalidState(f"upgrade {p.param} is already scheduled")
    lead = get_param(gov, "gov.upgrade_min_lead")
    if p.value < ctx.block_number + lead:
        raise InvalidState(f"upgrade height {p.value} is less than gov.upgrade_min_lead ({lead}) blocks ahead")
    if gov.get(slot("upgrade.count")) >= upgrades.MAX_UPGRADES:
        raise InvalidState(f"the chain holds {upgrades.MAX_UPGRADES} upgrades, the most it may schedule")
    Proposal.store_field(gov, p.id, "executed", True)
    upgrades.schedule(gov, p.param, p.value, p.info, p.id)
    _event(ctx, "UpgradeScheduled", p.id, p.param, p.value, p.info)


# -- views -------------------------------------------------------------------------------


def _param_bounds(ctx: Ctx, name: str) -> tuple[int, int]:
    if name not in PARAMS:
        raise InvalidArgument(f"unknown parameter {name}")
    return PARAMS[name].min, PARAMS[name].max


def _model_status(gov: Store, reg: Store, adapter_id: int) -> tuple[bool, bool, int, int]:
    """(requires approval, approved, approving proposal, open proposal)."""
    if not registry._exists(reg, adapter_id) or registry.Model.load_field(reg, adapter_id, "kind") != registry.ADAPTER:
        raise NotFound(f"adapter {adapter_id} does not exist")
    approved = gov.get(slot("model.approved", adapter_id))
    return (_requires_approval(gov, reg, adapter_id), bool(approved), approved,
            gov.get(slot("model.open", adapter_id)))


def _upgrade(ctx: Ctx, name: str) -> upgrades.ScheduledUpgrade:
    gov = ctx.store(GOVERNANCE)
    index = gov.get(slot("upgrade.index", name))
    if not index:
        raise NotFound(f"upgrade {name} is not scheduled")
    return upgrades.ScheduledUpgrade.decode(gov, index)


def _policy(ctx: Ctx, kind: int, subject_id: int) -> tuple[bool, int]:
    since = _policy_since(ctx.store(GOVERNANCE), kind, subject_id)
    return since is not None, since or 0


PRECOMPILE = Precompile("Governance", GOVERNANCE, {
    "propose": propose,
    "proposeModel": propose_model,
    "proposeUpgrade": propose_upgrade,
    "vote": vote,
    "execute": execute,
    "closeProposal": close_proposal,
    "setApprovalPolicy": set_approval_policy,
    "getProposal": lambda ctx, pid: _proposal(ctx.store(GOVERNANCE), pid),
    "hasVotedOn": lambda ctx, pid, a: bool(ctx.store(GOVERNANCE).get(slot("proposal.voted", pid, a))),
    "getParam": lambda ctx, name: get_param(ctx.store(GOVERNANCE), name),
    "paramBounds": _param_bounds,
    "proposalCount": lambda ctx: ctx.store(GOVERNANCE).get(slot("proposal.count")),
    "modelStatus": lambda ctx, aid: _model_status(ctx.store(GOVERNANCE), ctx.store(MODEL_REGISTRY), aid),
    "approvalPolicy": _policy,
    "getUpgrade": _upgrade,
    "upgradeCount": lambda ctx: ctx.store(GOVERNANCE).get(slot("upgrade.count")),
})


def get_proposal(state: Any, proposal_id: int) -> Proposal | None:
    store = Store(state, GOVERNANCE)
    if not 0 < proposal_id <= store.get(slot("proposal.count")):
        return None
    return Proposal.decode(store, proposal_id)


def get_model_status(state: Any, adapter_id: int) -> dict[str, Any] | None:
    """For ``ai_getModelStatus``: whether the adapter needs approval, has it, and the proposals."""
    gov, reg = Store(state, GOVERNANCE), Store(state, MODEL_REGISTRY)
    try:
        required, approved, by, open_pid = _model_status(gov, reg, adapter_id)
    except NotFound:
        return None
    return {"adapterId": adapter_id, "requiresApproval": required, "approved": approved,
            "approvedBy": by, "openProposal": open_pid, "deployable": approved or not required}


def is_deployable(state: Any, adapter_id: int) -> bool:
    """Whether receipts for the adapter are accepted (approved, or no policy requires it): what
    a validator checks before it serves a request."""
    status = get_model_status(state, adapter_id)
    return bool(status and status["deployable"])

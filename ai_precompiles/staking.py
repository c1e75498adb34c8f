"""Staking precompile: stakes, unbonding, epochs and the validator set per epoch; its storage.

Rules:

- A stake change made in epoch ``e`` takes effect at epoch ``e + 1`` (a checkpoint
  ``(e + 1, new_stake)``), so the validator set and voting power of an epoch are fixed before it
  starts: the BFT layer reads them with :func:`get_validator_set`.
- A stake (or what an unstake leaves) is either 0 or at least ``staking.min_holding``.
- ``unstake`` lowers the stake at once (effective next epoch) and parks the amount until
  ``block + staking.unbonding_blocks``; ``withdrawUnbonded`` then pays it.
- Epochs: a list of anchors ``(start block, first epoch, length)``; ``epochOf(b)`` uses the last
  anchor at or before ``b``. Governance changing ``staking.epoch_length`` appends an anchor at
  the next epoch boundary, so epoch numbers never jump.
- No operation walks the stakers (anyone may add one): the total stake is a running total with
  per-epoch checkpoints (the governance quorum base), checkpoints are found by binary search, and
  the validator set is chosen from a bounded list of *candidates*.
- Candidates: an account whose stake reaches ``staking.min_stake`` joins the list (effective next
  epoch); when ``staking.max_candidates`` are active, a newcomer with a larger stake takes the seat
  of the smallest (which leaves at the next epoch), otherwise it stays outside until it stakes
  more. A candidate whose stake falls below ``staking.min_stake`` leaves at the next epoch. A
  leaving candidate stays listed (as leaving) until its last epoch is over, so the set of the
  current epoch never changes under it; the list holds at most ``2 * staking.max_candidates``
  entries. Only joining a full list scans it (bounded by the parameter); every other stake
  operation does constant work.
- The set of an epoch: candidates active in it whose power in it is at least
  ``staking.min_stake``, largest first (ties by address), at most ``staking.max_validators``.
  Exact for the current and the next epoch of the state it is read from (a candidate that left is
  pruned from the list once its last epoch is over): read an older epoch's set from a state of
  that epoch.
- Evidence (:func:`submit_evidence`, docs/consensus.md §7): a proven double sign by a member of
  the set of its height slashes ``staking.slash_fraction_bp`` of the stake it had then (to the
  treasury, through the rewards escrow) and jails the validator for ``staking.jail_blocks``: a
  jailed account counts as staking nothing for candidacy (it leaves at the next epoch and takes
  no seat) until :func:`unjail`. One punishment per ``(validator, height)``, and none more while
  the validator is jailed for a double sign (it may go on signing until the next epoch); a jail
  for another cause (a lying receipt, missed verdicts) does not shield it.

Storage (account ``STAKING``): ``slot("stake", a)`` current stake; arrays
``slot("ckpt.epoch", a)`` / ``slot("ckpt.amount", a)`` checkpoints; ``slot("total")`` and arrays
``slot("total.epoch")`` / ``slot("total.amount")`` the running total and its checkpoints; array
``slot("candidates")`` with ``slot("cand.index", a)`` (position + 1), ``slot("cand.from", a)``
(first epoch in the set), ``slot("cand.until", a)`` (first epoch out of it, 0 while staying) and
``slot("cand.active")`` (count of those staying); ``slot("unbond.amount", a)``,
``slot("unbond.release", a)``; arrays ``slot("anchor.block")``, ``slot("anchor.epoch")``,
``slot("anchor.length")``; ``slot("jail.until", a)`` (release block, 0 when free) and
``slot("punished", a, h)``, ``slot("jail.evidence", a)`` (1 while jailed for a double sign).

The inference precompile's challenges use :func:`slash_and_jail` (a lying receipt) and
:func:`jail` (missed verdicts).
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_canonical_address

from genesis import POWER_UNIT

from . import rewards
from .addresses import GOVERNANCE, STAKING
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds, InvalidArgument, InvalidState, Unauthorized
from .evidence import SIGNATURES_PER_EVIDENCE, decode_evidence
from .params import BP, get_param
from .storage import Array, Store, data_slot, slot


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(STAKING, topics, data)


def epoch_of(store: Store, block: int) -> int:
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    for i in range(len(blocks) - 1, -1, -1):
        start = blocks.get(i)
        if block >= start:
            return epochs.get(i) + (block - start) // max(1, lengths.get(i))
    return 0


def epoch_start(store: Store, epoch: int) -> int:
    """First block of ``epoch``."""
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    for i in range(len(blocks) - 1, -1, -1):
        if epoch >= epochs.get(i):
            return blocks.get(i) + (epoch - epochs.get(i)) * lengths.get(i)
    return 0


def epoch_length_at(store: Store, block: int) -> int:
    """Length of the epoch ``block`` is in (a governance change applies only from the next
    boundary, so the parameter may already name another length)."""
    blocks, lengths = Array(store, slot("anchor.block")), Array(store, slot("anchor.length"))
    for i in range(len(blocks) - 1, -1, -1):
        if block >= blocks.get(i):
            return lengths.get(i)
    return lengths.get(0) if len(lengths) else 0


def on_epoch_length_changed(ctx: Ctx, new_length: int) -> None:
    """Governance hook: the new length applies from the next epoch boundary."""
    store = ctx.store(STAKING)
    nxt = epoch_of(store, ctx.block_number) + 1
    start = epoch_start(store, nxt)
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    if blocks.get(len(blocks) - 1) == start:  # a change already pending for that boundary
        lengths.set(len(lengths) - 1, new_length)
        return
    blocks.append(start)
    epochs.append(nxt)
    lengths.append(new_length)


def _checkpoint_at(ep: Array, amt: Array, epoch: int) -> int:
    """Amount of the last checkpoint at or before ``epoch`` (binary search: O(log n) reads)."""
    lo, hi = 0, len(ep)
    while lo < hi:
        mid = (lo + hi) // 2
        if ep.get(mid) <= epoch:
            lo = mid + 1
        else:
            hi = mid
    return amt.get(lo - 1) if lo else 0


def _checkpoint(ep: Array, amt: Array, effective: int, value: int) -> None:
    """Record ``value`` from epoch ``effective`` on (merging into a checkpoint of that epoch)."""
    n = len(ep)
    if n and ep.get(n - 1) == effective:
        amt.set(n - 1, value)
    else:
        ep.append(effective)
        amt.append(value)


def power_at(store: Store, account: bytes, epoch: int) -> int:
    """Stake of ``account`` effective in ``epoch``."""
    return _checkpoint_at(Array(store, slot("ckpt.epoch", account)),
                          Array(store, slot("ckpt.amount", account)), epoch)


def total_power(store: Store, epoch: int) -> int:
    """Sum of every staker's power in ``epoch`` (governance quorum base), from the running total."""
    return _checkpoint_at(Array(store, slot("total.epoch")), Array(store, slot("total.amount")), epoch)


def _set_stake(ctx: Ctx, store: Store, account: bytes, new: int) -> int:
    gov = ctx.store(GOVERNANCE)
    if 0 < new < get_param(gov, "staking.min_holding"):
        raise InvalidArgument(f"a stake must be 0 or at least staking.min_holding "
                              f"({get_param(gov, 'staking.min_holding')} wei), not {new}")
    old = store.get(slot("stake", account))
    store.set(slot("stake", account), new)
    current = epoch_of(store, ctx.block_number)
    effective = current + 1
    _checkpoint(Array(store, slot("ckpt.epoch", account)), Array(store, slot("ckpt.amount", account)),
                effective, new)
    total = store.get(slot("total")) + new - old
    store.set(slot("total"), total)
    _checkpoint(Array(store, slot("total.epoch")), Array(store, slot("total.amount")), effective, total)
    _update_candidacy(store, gov, account, new, current)
    return effective


# -- candidates (the bounded list the validator set is chosen from) --

def _candidate_active_in(store: Store, account: bytes, epoch: int) -> bool:
    until = store.get(slot("cand.until", account))
    return store.get(slot("cand.from", account)) <= epoch and (until == 0 or epoch < until)


def _remove_candidate(store: Store, cands: Array, account: bytes) -> None:
    """Swap-and-pop ``account`` out of the list."""
    i = store.get(slot("cand.index", account)) - 1
    last = len(cands) - 1
    if i != last:
        moved = cands.get(last)
        cands.set(i, moved)
        store.set(slot("cand.index", moved.to_bytes(20, "big")), i + 1)
    cands.set(last, 0)
    store.set(cands.key, last)
    for k in ("cand.index", "cand.from", "cand.until"):
        store.set(slot(k, account), 0)


def _update_candidacy(store: Store, gov: Store, account: bytes, new: int, current: int) -> None:
    """Keep the candidate list in step with ``account``'s new stake (see module docstring). A
    jailed account counts as staking nothing: it leaves, and cannot take a seat until unjailed."""
    if store.get(slot("jail.until", account)):
        new = 0
    min_stake = get_param(gov, "staking.min_stake")
    listed = store.get(slot("cand.index", account)) != 0
    until_slot = slot("cand.until", account)
    if listed and store.get(until_slot) == 0:  # staying
        if new < min_stake:
            store.set(until_slot, current + 1)
            store.set(slot("cand.active"), store.get(slot("cand.active")) - 1)
        return
    if new < min_stake:
        return
    cands = Array(store, slot("candidates"))
    cap = get_param(gov, "staking.max_candidates")
    if listed:
        if store.get(until_slot) > current:  # leaving next epoch: may stay after all
            if _take_seat(store, cands, new, current, cap, appending=False):
                store.set(until_slot, 0)
            return
        _remove_candidate(store, cands, account)  # its last epoch is over
    if not _take_seat(store, cands, new, current, cap, appending=True):
        return
    cands.append(int.from_bytes(account, "big"))
    store.set(slot("cand.index", account), len(cands))
    store.set(slot("cand.from", account), current + 1)


def _take_seat(store: Store, cands: Array, new: int, current: int, cap: int, appending: bool) -> bool:
    """Find a staying seat for an account staking ``new`` (counted in ``cand.active``); True when
    it has one. With ``cap`` seats taken, prune candidates whose last epoch is over and give the
    seat of the smallest staying candidate (who then leaves at the next epoch) if ``new`` is
    more. Scans the list only when it is full."""
    active = store.get(slot("cand.active"))
    if active < cap and (not appending or len(cands) < 2 * cap):
        store.set(slot("cand.active"), active + 1)
        return True
    smallest: tuple[int, bytes] | None = None
    i = 0
    while i < len(cands):
        a = cands.get(i).to_bytes(20, "big")
        until = store.get(slot("cand.until", a))
        if until and until <= current:
            _remove_candidate(store, cands, a)
            continue  # the last entry moved into position i
        if until == 0:
            s = store.get(slot("stake", a))
            if smallest is None or (s, a) < smallest:
                smallest = (s, a)
        i += 1
    if appending and len(cands) >= 2 * cap:
        return False
    if active < cap:
        store.set(slot("cand.active"), active + 1)
        return True
    if smallest is None or smallest[0] >= new:
        return False
    store.set(slot("cand.until", smallest[1]), current + 1)  # leaves; the newcomer takes the seat
    return True


def stake(ctx: Ctx) -> None:
    """Add the call's value to the sender's stake (effective next epoch)."""
    if ctx.value == 0:
        raise InvalidArgument("stake requires a value")
    store = ctx.store(STAKING)
    new = store.get(slot("stake", ctx.sender)) + ctx.value
    effective = _set_stake(ctx, store, ctx.sender, new)
    _event(ctx, "Staked", ctx.sender, ctx.value, new, effective)


def unstake(ctx: Ctx, amount: int) -> None:
    """Start unbonding ``amount`` of the sender's stake."""
    store = ctx.store(STAKING)
    current = store.get(slot("stake", ctx.sender))
    if amount == 0 or amount > current:
        raise InsufficientFunds(f"cannot unstake {amount}: stake is {current}")
    _set_stake(ctx, store, ctx.sender, current - amount)
    release = ctx.block_number + get_param(ctx.store(GOVERNANCE), "staking.unbonding_blocks")
    store.incr(slot("unbond.amount", ctx.sender), amount)
    store.set(slot("unbond.release", ctx.sender), release)
    _event(ctx, "Unstaked", ctx.sender, amount, current - amount, release)


def withdraw_unbonded(ctx: Ctx) -> int:
    """Pay the sender's unbonded amount once its release block is reached."""
    store = ctx.store(STAKING)
    amount = store.get(slot("unbond.amount", ctx.sender))
    if amount == 0:
        raise InsufficientFunds("nothing unbonding")
    if ctx.block_number < store.get(slot("unbond.release", ctx.sender)):
        raise InvalidState("unbonding period not over")
    store.set(slot("unbond.amount", ctx.sender), 0)
    store.set(slot("unbond.release", ctx.sender), 0)
    ctx.transfer(STAKING, ctx.sender, amount)
    _event(ctx, "UnbondedWithdrawn", ctx.sender, amount)
    return amount


# -- evidence, slashing and jail --


def _in_set_power(store: Store, gov: Store, account: bytes, epoch: int) -> int:
    """``account``'s stake in the validator set of ``epoch``, or 0 when it was not in it.

    Constant work while the candidate list holds no more than ``staking.max_validators`` entries
    (every active candidate with enough stake is then in the set); otherwise the set is rebuilt,
    a walk bounded by ``2 * staking.max_candidates``. Like :func:`get_validator_set` it knows the
    epochs the candidate list still remembers: a candidate pruned after leaving (or re-listed
    since) is not found for its older epochs, and its evidence is refused (never a wrong slash).
    """
    p = power_at(store, account, epoch)
    if p < get_param(gov, "staking.min_stake") or p // POWER_UNIT == 0:
        return 0
    if store.get(slot("cand.index", account)) == 0 or not _candidate_active_in(store, account, epoch):
        return 0
    if len(Array(store, slot("candidates"))) <= get_param(gov, "staking.max_validators"):
        return p
    return dict(validator_set(store, gov, epoch)).get(account, 0)


def submit_evidence(ctx: Ctx, raw: bytes) -> int:
    """Check double-sign evidence and punish the offender; returns the wei slashed.

    Refused (revert, nothing changes): bytes that do not decode (caps first), votes that do not
    conflict, a height not below this block or more than ``staking.evidence_max_age`` behind it, a
    signature that is not the validator's on this chain, an offender already punished for that
    height (one punishment per ``(validator, height)``, whatever the round or step), and a signer
    that was not in the validator set of that height. Then ``staking.slash_fraction_bp`` of the
    stake it had in that height's epoch is taken, from its stake first and then from its
    unbonding amount, and moved to the rewards escrow as the treasury's claimable balance; a stake
    that would be left below ``staking.min_holding`` is taken whole. The validator is jailed for
    ``staking.jail_blocks``: out of the candidates from the next epoch (the current set is fixed)
    until it calls :func:`unjail`.
    """
    ev = decode_evidence(raw)
    ev.check_shape()
    gov = ctx.store(GOVERNANCE)
    h = ev.height
    if h >= ctx.block_number:
        raise InvalidArgument(f"evidence: height {h} is not below the current block {ctx.block_number}")
    if ctx.block_number - h > get_param(gov, "staking.evidence_max_age"):
        # Within the age, what it staked is still held or unbonding (params.check_param's
        # rule ties unbonding_blocks to epoch_length + evidence_max_age), so the slash bites.
        raise InvalidState(f"evidence: height {h} is older than staking.evidence_max_age")
    ctx.meter.charge_extra(SIGNATURES_PER_EVIDENCE * get_param(gov, "gas.signature"), "signature recovery")
    ev.check_signatures(ctx.chain_id)
    store = ctx.store(STAKING)
    v = ev.validator
    punished = slot("punished", v, h)
    if store.get(punished):
        raise InvalidState(f"evidence: 0x{v.hex()} was already punished for height {h}")
    if store.get(slot("jail.evidence", v)):
        # CometBFT's tombstone, for the length of a jail: a validator that keeps double-signing
        # until the next epoch takes it out of the set is punished once, not at every height.
        # Only a double-sign jail counts: a validator jailed for missed verdicts or a lying
        # receipt must not double-sign for free.
        raise InvalidState(f"evidence: 0x{v.hex()} is jailed already (one punishment per jail)")
    epoch = epoch_of(store, h)
    power = _in_set_power(store, gov, v, epoch)
    if power == 0:
        raise Unauthorized(f"evidence: 0x{v.hex()} is not in the validator set of height {h}")
    store.set(punished, 1)
    store.set(slot("jail.evidence", v), 1)
    due = power * get_param(gov, "staking.slash_fraction_bp") // BP
    treasury = get_param(gov, "treasury").to_bytes(20, "big")
    amount = slash_and_jail(ctx, v, due, h)
    rewards.pay(ctx, STAKING, treasury, amount, rewards.TREASURY)
    return amount


def slash_and_jail(ctx: Ctx, v: bytes, due: int, height: int) -> int:
    """Take up to ``due`` wei from ``v`` and jail it; returns the wei taken, which leaves the
    stake accounting but stays in this account's balance for the caller to pay out in the same
    call (:func:`rewards.pay` with ``STAKING`` as the source).

    The wei comes from its stake first and then from its unbonding amount (an offender that
    unstaked after the offence still pays); a stake that would be left below
    ``staking.min_holding`` is taken whole. The jail lasts ``staking.jail_blocks`` (or longer if
    one is running): out of the candidates from the next epoch until :func:`unjail`. Emits
    ``Slashed`` and ``Jailed`` with ``height`` (the offence's block). Constant work.
    """
    store = ctx.store(STAKING)
    gov = ctx.store(GOVERNANCE)
    stake_now = store.get(slot("stake", v))
    from_stake = min(due, stake_now)
    if 0 < stake_now - from_stake < get_param(gov, "staking.min_holding"):
        from_stake = stake_now
    from_unbonding = min(due - min(due, from_stake), store.get(slot("unbond.amount", v)))
    current = epoch_of(store, ctx.block_number)
    release = ctx.block_number + get_param(gov, "staking.jail_blocks")
    store.set(slot("jail.until", v), max(release, store.get(slot("jail.until", v))))
    if from_stake:
        _set_stake(ctx, store, v, stake_now - from_stake)
    else:
        _update_candidacy(store, gov, v, stake_now, current)
    if from_unbonding:
        store.set(slot("unbond.amount", v), store.get(slot("unbond.amount", v)) - from_unbonding)
    amount = from_stake + from_unbonding
    _event(ctx, "Slashed", v, height, amount)
    _event(ctx, "Jailed", v, height, store.get(slot("jail.until", v)))
    return amount


def jail(ctx: Ctx, v: bytes, height: int) -> None:
    """Jail ``v`` for ``staking.jail_blocks`` without slashing it (missed verdicts): out of the
    candidates from the next epoch until :func:`unjail`, as after a slash. Constant work."""
    store = ctx.store(STAKING)
    gov = ctx.store(GOVERNANCE)
    release = ctx.block_number + get_param(gov, "staking.jail_blocks")
    store.set(slot("jail.until", v), max(release, store.get(slot("jail.until", v))))
    _update_candidacy(store, gov, v, store.get(slot("stake", v)), epoch_of(store, ctx.block_number))
    _event(ctx, "Jailed", v, height, store.get(slot("jail.until", v)))


def unjail(ctx: Ctx) -> None:
    """End the sender's jail once ``jail.until`` is reached; its stake stands for the set again
    (a seat from the next epoch, as a new stake would get one)."""
    store = ctx.store(STAKING)
    until = store.get(slot("jail.until", ctx.sender))
    if until == 0:
        raise InvalidState("not jailed")
    if ctx.block_number < until:
        raise InvalidState(f"jail period not over (until block {until})")
    store.set(slot("jail.until", ctx.sender), 0)
    store.set(slot("jail.evidence", ctx.sender), 0)
    stake_now = store.get(slot("stake", ctx.sender))
    _update_candidacy(store, ctx.store(GOVERNANCE), ctx.sender, stake_now,
                      epoch_of(store, ctx.block_number))
    _event(ctx, "Unjailed", ctx.sender, stake_now)


def validator_set(store: Store, gov: Store | Any, epoch: int) -> list[tuple[bytes, int]]:
    min_stake = get_param(gov, "staking.min_stake")
    cap = get_param(gov, "staking.max_validators")
    out = []
    for word in Array(store, slot("candidates")):
        a = word.to_bytes(20, "big")
        if not _candidate_active_in(store, a, epoch):
            continue
        p = power_at(store, a, epoch)
        if p >= min_stake:
            out.append((a, p))
    out.sort(key=lambda t: (-t[1], t[0]))
    return out[:cap]


def _validator_set_abi(ctx: Ctx, epoch: int) -> tuple[list[bytes], list[int]]:
    vs = validator_set(ctx.store(STAKING), ctx.store(GOVERNANCE), epoch)
    return [a for a, _ in vs], [p for _, p in vs]


PRECOMPILE = Precompile("Staking", STAKING, {
    "stake": stake,
    "unstake": unstake,
    "withdrawUnbonded": withdraw_unbonded,
    "submitEvidence": submit_evidence,
    "unjail": unjail,
    "jailedUntil": lambda ctx, a: ctx.store(STAKING).get(slot("jail.until", a)),
    "isPunished": lambda ctx, a, h: bool(ctx.store(STAKING).get(slot("punished", a, h))),
    "stakeOf": lambda ctx, a: ctx.store(STAKING).get(slot("stake", a)),
    "unbondingOf": lambda ctx, a: (ctx.store(STAKING).get(slot("unbond.amount", a)),
                                   ctx.store(STAKING).get(slot("unbond.release", a))),
    "currentEpoch": lambda ctx: epoch_of(ctx.store(STAKING), ctx.block_number),
    "epochOf": lambda ctx, b: epoch_of(ctx.store(STAKING), b),
    "votingPower": lambda ctx, a, e: power_at(ctx.store(STAKING), a, e),
    "getValidatorSet": _validator_set_abi,
})


def genesis_storage(values: dict[str, int], validators: dict[bytes, int] | None = None) -> dict[int, int]:
    """Initial staking storage: the first epoch anchor and any genesis validators (epoch 0)."""
    st: dict[int, int] = {}

    def push(key: int, items: list[int]) -> None:
        st[key] = len(items)
        for i, v in enumerate(items):
            st[data_slot(key) + i] = v

    push(slot("anchor.block"), [0])
    push(slot("anchor.epoch"), [0])
    push(slot("anchor.length"), [values["staking.epoch_length"]])
    min_stake = values["staking.min_stake"]
    seated = sorted(((a, v) for a, v in (validators or {}).items() if v >= min_stake),
                    key=lambda t: (-t[1], t[0]))
    if len(seated) > values["staking.max_candidates"]:
        raise ValueError("more genesis validators than staking.max_candidates")
    for addr, amount in (validators or {}).items():
        if 0 < amount < values["staking.min_holding"]:
            raise ValueError(f"genesis stake of 0x{addr.hex()} is below staking.min_holding")
        st[slot("stake", addr)] = amount
        push(slot("ckpt.epoch", addr), [0])
        push(slot("ckpt.amount", addr), [amount])
    push(slot("candidates"), [int.from_bytes(a, "big") for a, _ in seated])
    for i, (addr, _) in enumerate(seated):
        st[slot("cand.index", addr)] = i + 1
    st[slot("cand.active")] = len(seated)
    total = sum((validators or {}).values())
    st[slot("total")] = total
    push(slot("total.epoch"), [0])
    push(slot("total.amount"), [total])
    return {k: v for k, v in st.items() if v}


def parse_validators(raw: Any) -> dict[bytes, int]:
    """``{"0xaddr": stake_wei}`` (genesis file form) -> ``{address: stake}``."""
    return {to_canonical_address(a): int(v) for a, v in (raw or {}).items()}


# -- read helpers --

def get_validator_set(state: Any, epoch: int | None = None, block: int | None = None,
                      ) -> list[tuple[bytes, int]]:
    """Validators and voting power of ``epoch`` (or of the epoch containing ``block``; default:
    the epoch of the state's block). For the BFT layer: the set is fixed once the epoch starts."""
    store = Store(state, STAKING)
    if epoch is None:
        epoch = epoch_of(store, int(state.block_number if block is None else block))
    return validator_set(store, state, epoch)


def get_epoch(state: Any, block: int | None = None) -> int:
    return epoch_of(Store(state, STAKING), int(state.block_number if block is None else block))


def standing_refusal(state: Any, account: bytes, work: str) -> str | None:
    """Why ``account`` cannot do validator ``work`` now ("record receipts", "register adapters
    for builders"): it is not staked (``staking.min_stake``) or it is jailed; None when it can.
    For the node to refuse a request before any work the chain would then refuse."""
    store = Store(state, STAKING)
    if store.get(slot("stake", account)) < get_param(state, "staking.min_stake"):
        return f"this node's validator is not staked; it cannot {work}"
    if store.get(slot("jail.until", account)):
        return f"this node's validator is jailed; it cannot {work} until it unjails"
    return None


def get_stake(state: Any, account: bytes) -> dict[str, int]:
    store = Store(state, STAKING)
    return {"stake": store.get(slot("stake", account)),
            "unbonding": store.get(slot("unbond.amount", account)),
            "releaseBlock": store.get(slot("unbond.release", account)),
            "jailedUntil": store.get(slot("jail.until", account))}

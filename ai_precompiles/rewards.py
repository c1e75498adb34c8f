"""Rewards precompile: fee splits held pending, then claimable balances, and claims; its storage.

Split of an inference fee ``F`` (integer wei; shares are governance parameters in bp):

1. ``pool_x = F * share_x // 10000`` for contributors, author, lineage and validator.
2. Contributor ``i`` gets ``pool_contributors * weight_i // 10000`` (weights sum to 10000).
   Contributions of one near-duplicate group (``datanets.Quality.group_id``) count once: the
   group weighs its largest member's weight ``m_g``, the weights are scaled to the groups'
   total ``T = sum_g m_g``, and the group's part is split equally among its ``n_g`` members
   attributed: each gets ``pool_contributors * m_g // (T * n_g)``. Without groups ``T = 10000``
   and this is rule 2 as written. Why: ten near copies of one text are one text's influence, so
   they are paid as one (docs/ai_precompiles.md, "Near duplicates, bonds and penalties").
3. Each lineage ancestor (base model and ancestor adapters) gets ``pool_lineage // n``.
4. The treasury gets ``F`` minus everything above: its own share plus every rounding remainder,
   so no wei is created or lost.

A receipt's split is *held* when the receipt is recorded (each party's share is pending, the
fee moves here from the inference escrow), then either *released* when the receipt settles after
its challenge window (the shares become claimable) or *revoked* when a challenge against it is
upheld (the shares vanish and the fee goes back to the inference escrow, to the user's deposit).
Slashes, challenge bonds and training fees are *paid* here directly as claimable balances.

Storage (account ``REWARDS``): ``slot("claimable", account)``, ``slot("earned", account)``,
``slot("pending", account)``, ``slot("claimable.total")``, ``slot("pending.total")``. The
account's balance always equals the claimable total plus the pending total: wei moves here when
it is held or paid, and leaves only by ``claim`` or a revocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .addresses import INFERENCE, REWARDS
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds
from .params import BP, get_param
from .storage import Store, slot

CONTRIBUTOR, AUTHOR, LINEAGE, VALIDATOR, TREASURY, CHALLENGER, TRAINER = range(7)

#: One payout of a split: ``(account, role, amount)``.
Payout = tuple[bytes, int, int]


@dataclass(frozen=True)
class Split:
    """How one fee divides; ``sum(...) == fee`` always."""

    #: amount per attributed contribution, in attribution order
    contributors: tuple[int, ...]
    #: adapter author's amount
    author: int
    #: amount per lineage ancestor, in path order
    lineage: tuple[int, ...]
    #: validator's amount
    validator: int
    #: treasury's amount (its share plus all rounding remainders)
    treasury: int

    def total(self) -> int:
        return sum(self.contributors) + self.author + sum(self.lineage) + self.validator + self.treasury


def split_fee(fee: int, weights_bp: list[int], shares: dict[str, int], n_lineage: int,
              groups: list[int] | None = None) -> Split:
    """Divide ``fee`` (see module docstring); ``groups`` gives each weight's near-duplicate group
    (default: each its own). Pure integer math; raises on invalid shares."""
    if fee < 0 or any(w < 0 for w in weights_bp) or n_lineage < 0:
        raise ValueError("negative input")
    c_bp, a_bp, l_bp, v_bp = (shares["reward.contributors_bp"], shares["reward.author_bp"],
                              shares["reward.lineage_bp"], shares["reward.validator_bp"])
    if min(c_bp, a_bp, l_bp, v_bp) < 0 or c_bp + a_bp + l_bp + v_bp > BP:
        raise ValueError("reward shares out of range")
    if weights_bp and sum(weights_bp) != BP:
        raise ValueError("weights must sum to 10000")
    if groups is not None and len(groups) != len(weights_bp):
        raise ValueError("one group per weight")
    pool_c = fee * c_bp // BP if weights_bp else 0
    if groups is None or len(set(groups)) == len(groups):
        contributors = tuple(pool_c * w // BP for w in weights_bp)
    else:
        mass: dict[int, int] = {}
        members: dict[int, int] = {}
        for g, w in zip(groups, weights_bp, strict=True):
            mass[g] = max(mass.get(g, 0), w)
            members[g] = members.get(g, 0) + 1
        total = sum(mass.values())
        contributors = tuple(pool_c * mass[g] // (total * members[g]) if total else 0 for g in groups)
    author = fee * a_bp // BP
    pool_l = fee * l_bp // BP if n_lineage else 0
    lineage = tuple([pool_l // n_lineage] * n_lineage) if n_lineage else ()
    validator = fee * v_bp // BP
    treasury = fee - sum(contributors) - author - sum(lineage) - validator
    split = Split(contributors, author, lineage, validator, treasury)
    assert treasury >= 0 and split.total() == fee
    return split


SHARE_NAMES = ("reward.contributors_bp", "reward.author_bp", "reward.lineage_bp", "reward.validator_bp")


def pack_shares(shares: dict[str, int]) -> int:
    """The four reward shares in one word: contributors | author << 16 | lineage << 32 |
    validator << 48 (each at most 10000 bp, so 16 bits suffice). A receipt keeps the shares in
    force when it was recorded, so it settles or is reversed exactly as it was held."""
    return sum(shares[n] << (16 * i) for i, n in enumerate(SHARE_NAMES))


def unpack_shares(word: int) -> dict[str, int]:
    return {n: (word >> (16 * i)) & 0xFFFF for i, n in enumerate(SHARE_NAMES)}


def current_shares(gov: Store) -> dict[str, int]:
    return {k: get_param(gov, k) for k in SHARE_NAMES}


def payouts(split: Split, contributors: list[bytes], author: bytes, lineage_authors: list[bytes],
            validator: bytes, treasury: bytes) -> list[Payout]:
    """The split as one payout per (account, role), in a fixed order (a contributor attributed
    twice, or an author with two ancestors, gets one entry and one log)."""
    merged: dict[tuple[bytes, int], int] = {}
    for who, amount in zip(contributors, split.contributors, strict=True):
        merged[(who, CONTRIBUTOR)] = merged.get((who, CONTRIBUTOR), 0) + amount
    merged[(author, AUTHOR)] = split.author
    for who, amount in zip(lineage_authors, split.lineage, strict=True):
        merged[(who, LINEAGE)] = merged.get((who, LINEAGE), 0) + amount
    merged[(validator, VALIDATOR)] = split.validator
    merged[(treasury, TREASURY)] = merged.get((treasury, TREASURY), 0) + split.treasury
    return [(who, role, amount) for (who, role), amount in merged.items() if amount]


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(REWARDS, topics, data)


def credit(ctx: Ctx, account: bytes, amount: int, receipt_id: int, role: int) -> None:
    """Add ``amount`` to ``account``'s claimable balance (the wei must already be here)."""
    if amount == 0:
        return
    store = ctx.store(REWARDS)
    store.incr(slot("claimable", account), amount)
    store.incr(slot("earned", account), amount)
    _event(ctx, "RewardAccrued", account, receipt_id, role, amount)


def hold(ctx: Ctx, receipt_id: int, fee: int, parties: list[Payout]) -> None:
    """Move ``fee`` from the inference escrow here and hold every party's share as pending."""
    store = ctx.store(REWARDS)
    ctx.transfer(INFERENCE, REWARDS, fee)
    store.incr(slot("pending.total"), fee)
    for who, role, amount in parties:
        store.incr(slot("pending", who), amount)
        _event(ctx, "RewardPending", who, receipt_id, role, amount)


def release(ctx: Ctx, receipt_id: int, fee: int, parties: list[Payout],
            paused: Callable[[bytes], bool] | None = None, treasury: bytes = b"") -> None:
    """Turn a held split into claimable balances (the receipt settled). A contributor share
    whose account ``paused`` says is paused (its penalty score passed the threshold) is credited
    to ``treasury`` instead (``RewardForfeited``): one check per payout."""
    store = ctx.store(REWARDS)
    store.set(slot("pending.total"), store.get(slot("pending.total")) - fee)
    store.incr(slot("claimable.total"), fee)
    for who, role, amount in parties:
        store.set(slot("pending", who), store.get(slot("pending", who)) - amount)
        if role == CONTRIBUTOR and paused is not None and paused(who):
            _event(ctx, "RewardForfeited", who, receipt_id, amount)
            credit(ctx, treasury, amount, receipt_id, TREASURY)
        else:
            credit(ctx, who, amount, receipt_id, role)


def revoke(ctx: Ctx, receipt_id: int, fee: int, parties: list[Payout]) -> None:
    """Undo a held split and move ``fee`` back to the inference escrow (an upheld challenge)."""
    store = ctx.store(REWARDS)
    store.set(slot("pending.total"), store.get(slot("pending.total")) - fee)
    for who, role, amount in parties:
        store.set(slot("pending", who), store.get(slot("pending", who)) - amount)
        _event(ctx, "RewardRevoked", who, receipt_id, role, amount)
    ctx.transfer(REWARDS, INFERENCE, fee)


def pay(ctx: Ctx, source: bytes, account: bytes, amount: int, role: int) -> None:
    """Move ``amount`` from escrow ``source`` here, claimable by ``account`` at once (slashes,
    bonds). Logged with receipt id 0: it is no receipt's split."""
    if amount == 0:
        return
    ctx.transfer(source, REWARDS, amount)
    ctx.store(REWARDS).incr(slot("claimable.total"), amount)
    credit(ctx, account, amount, 0, role)


def claim(ctx: Ctx) -> int:
    """Pay the sender's whole claimable balance to the sender; returns the amount."""
    store = ctx.store(REWARDS)
    amount = store.get(slot("claimable", ctx.sender))
    if amount == 0:
        raise InsufficientFunds("nothing to claim")
    store.set(slot("claimable", ctx.sender), 0)
    store.set(slot("claimable.total"), store.get(slot("claimable.total")) - amount)
    ctx.transfer(REWARDS, ctx.sender, amount)
    _event(ctx, "RewardClaimed", ctx.sender, amount)
    return amount


PRECOMPILE = Precompile("Rewards", REWARDS, {
    "claim": claim,
    "claimable": lambda ctx, a: ctx.store(REWARDS).get(slot("claimable", a)),
    "pending": lambda ctx, a: ctx.store(REWARDS).get(slot("pending", a)),
    "totalPending": lambda ctx: ctx.store(REWARDS).get(slot("pending.total")),
    "totalEarned": lambda ctx, a: ctx.store(REWARDS).get(slot("earned", a)),
    "totalClaimable": lambda ctx: ctx.store(REWARDS).get(slot("claimable.total")),
})


def get_rewards(state: Any, account: bytes) -> dict[str, int]:
    """Claimable, lifetime-earned and pending wei of ``account`` (for ``ai_getRewards``;
    ``pending`` is held by receipts whose challenge window or challenge is not over)."""
    store = Store(state, REWARDS)
    return {"claimable": store.get(slot("claimable", account)),
            "earned": store.get(slot("earned", account)),
            "pending": store.get(slot("pending", account))}


def get_pending(state: Any, account: bytes) -> int:
    """Wei held for ``account`` by receipts not yet settled (nor reversed)."""
    return Store(state, REWARDS).get(slot("pending", account))

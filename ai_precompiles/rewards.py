"""Rewards precompile: fee splits into claimable balances, and claims; its storage.

Split of an inference fee ``F`` (integer wei; shares are governance parameters in bp):

1. ``pool_x = F * share_x // 10000`` for contributors, author, lineage and validator.
2. Contributor ``i`` gets ``pool_contributors * weight_i // 10000`` (weights sum to 10000).
3. Each lineage ancestor (base model and ancestor adapters) gets ``pool_lineage // n``.
4. The treasury gets ``F`` minus everything above: its own share plus every rounding remainder,
   so no wei is created or lost.

Storage (account ``REWARDS``): ``slot("claimable", account)``, ``slot("earned", account)``,
``slot("claimable.total")``. The account's balance always equals the claimable total: fees move
here from the inference escrow when credited and leave only by ``claim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .addresses import GOVERNANCE, INFERENCE, REWARDS
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds
from .params import BP, get_param
from .storage import Store, slot

CONTRIBUTOR, AUTHOR, LINEAGE, VALIDATOR, TREASURY = range(5)


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


def split_fee(fee: int, weights_bp: list[int], shares: dict[str, int], n_lineage: int) -> Split:
    """Divide ``fee`` (see module docstring). Pure integer math; raises on invalid shares."""
    if fee < 0 or any(w < 0 for w in weights_bp) or n_lineage < 0:
        raise ValueError("negative input")
    c_bp, a_bp, l_bp, v_bp = (shares["reward.contributors_bp"], shares["reward.author_bp"],
                              shares["reward.lineage_bp"], shares["reward.validator_bp"])
    if min(c_bp, a_bp, l_bp, v_bp) < 0 or c_bp + a_bp + l_bp + v_bp > BP:
        raise ValueError("reward shares out of range")
    if weights_bp and sum(weights_bp) != BP:
        raise ValueError("weights must sum to 10000")
    pool_c = fee * c_bp // BP if weights_bp else 0
    contributors = tuple(pool_c * w // BP for w in weights_bp)
    author = fee * a_bp // BP
    pool_l = fee * l_bp // BP if n_lineage else 0
    lineage = tuple([pool_l // n_lineage] * n_lineage) if n_lineage else ()
    validator = fee * v_bp // BP
    treasury = fee - sum(contributors) - author - sum(lineage) - validator
    split = Split(contributors, author, lineage, validator, treasury)
    assert treasury >= 0 and split.total() == fee
    return split


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


def distribute(ctx: Ctx, receipt_id: int, fee: int, contributors: list[bytes],
               weights_bp: list[int], author: bytes, lineage_authors: list[bytes],
               validator: bytes) -> Split:
    """Move ``fee`` from the inference escrow here and credit every party's share."""
    gov = ctx.store(GOVERNANCE)
    shares = {k: get_param(gov, k) for k in ("reward.contributors_bp", "reward.author_bp",
                                               "reward.lineage_bp", "reward.validator_bp")}
    treasury = get_param(gov, "treasury").to_bytes(20, "big")
    split = split_fee(fee, weights_bp, shares, len(lineage_authors))
    ctx.transfer(INFERENCE, REWARDS, fee)
    ctx.store(REWARDS).incr(slot("claimable.total"), fee)
    # one credit per (account, role), so a contributor attributed twice gets one log
    merged: dict[tuple[bytes, int], int] = {}
    for who, amount in zip(contributors, split.contributors, strict=True):
        merged[(who, CONTRIBUTOR)] = merged.get((who, CONTRIBUTOR), 0) + amount
    merged[(author, AUTHOR)] = split.author
    for who, amount in zip(lineage_authors, split.lineage, strict=True):
        merged[(who, LINEAGE)] = merged.get((who, LINEAGE), 0) + amount
    merged[(validator, VALIDATOR)] = split.validator
    merged[(treasury, TREASURY)] = split.treasury
    for (who, role), amount in merged.items():
        credit(ctx, who, amount, receipt_id, role)
    return split


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
    "totalEarned": lambda ctx, a: ctx.store(REWARDS).get(slot("earned", a)),
    "totalClaimable": lambda ctx: ctx.store(REWARDS).get(slot("claimable.total")),
})


def get_rewards(state: Any, account: bytes) -> dict[str, int]:
    """Claimable and lifetime-earned wei of ``account`` (for ``ai_getRewards``)."""
    store = Store(state, REWARDS)
    return {"claimable": store.get(slot("claimable", account)),
            "earned": store.get(slot("earned", account))}

"""No wei is created or lost by a fee split: hypothesis over fees, weights and shares."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_precompiles.addresses import INFERENCE, REWARDS
from ai_precompiles.params import BP
from ai_precompiles.rewards import split_fee
from tests.unit.ai_precompiles.ai_world import VALIDATOR, World


@st.composite
def weights(draw: st.DrawFn, max_n: int = 12) -> list[int]:
    n = draw(st.integers(1, max_n))
    cuts = sorted(draw(st.lists(st.integers(0, BP), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, BP]
    return [bounds[i + 1] - bounds[i] for i in range(n)]


@st.composite
def shares(draw: st.DrawFn) -> dict[str, int]:
    w = draw(weights(max_n=5))  # 5 parts of 10000: four shares + the treasury's remainder
    names = ("reward.contributors_bp", "reward.author_bp", "reward.lineage_bp",
             "reward.validator_bp")
    return dict(zip(names, w[:4] + [0] * (4 - len(w[:4])), strict=True))


@settings(max_examples=400, deadline=None)
@given(fee=st.integers(0, 2**256 - 1), ws=weights(), sh=shares(), n_lineage=st.integers(0, 40))
def test_split_conserves_every_wei(fee: int, ws: list[int], sh: dict[str, int],
                                   n_lineage: int) -> None:
    s = split_fee(fee, ws, sh, n_lineage)
    parts = [*s.contributors, s.author, *s.lineage, s.validator, s.treasury]
    assert sum(parts) == fee
    assert all(p >= 0 for p in parts)
    # a larger weight never earns less
    ranked = sorted(zip(ws, s.contributors, strict=True))
    assert [p for _, p in ranked] == sorted(p for _, p in ranked)
    # the treasury's extra over its own share is bounded by the rounding of each part
    # (with no lineage, the lineage share is the treasury's too)
    unassigned = BP - sum(sh.values()) + (sh["reward.lineage_bp"] if n_lineage == 0 else 0)
    own = fee * unassigned // BP
    assert s.treasury - own <= len(parts)


def test_split_rejects_bad_input() -> None:
    sh = {"reward.contributors_bp": 5000, "reward.author_bp": 5000, "reward.lineage_bp": 1,
          "reward.validator_bp": 0}
    with pytest.raises(ValueError):
        split_fee(100, [10000], sh, 1)
    with pytest.raises(ValueError):
        split_fee(100, [5000, 4999], dict(sh, **{"reward.lineage_bp": 0}), 1)


@pytest.mark.xdist_group("ai_world")
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fee=st.integers(0, 10**15), ws=weights(max_n=3))
def test_onchain_split_conserves(world: World, fee: int, ws: list[int]) -> None:
    c = world.c
    ids = world.contributions[: len(ws)]
    escrow_before = c.balance(INFERENCE) + c.balance(REWARDS)
    total_before = c.call("Rewards", "totalClaimable")
    req = world.request(world.adapter2, max_fee=fee)
    rid = c.send(VALIDATOR, "Inference", "submitReceipt", *world.receipt_args(req, ids, ws, fee)).result
    assert c.call("Rewards", "totalPending") == fee
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable") + fee
    world.settle(rid)
    assert c.call("Rewards", "totalClaimable") == total_before + fee
    assert c.call("Rewards", "totalPending") == 0
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable")
    assert c.balance(INFERENCE) + c.balance(REWARDS) == escrow_before

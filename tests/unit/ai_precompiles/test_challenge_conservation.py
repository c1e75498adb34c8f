"""Across every challenge outcome no wei is created or lost (issue 18's property): receipts of
random fees and attributions are settled, upheld, rejected or left undecided, parties claim at
random, and after each the escrows hold exactly what their books owe and the chain's wei (every
balance plus every burnt base fee) is what it was."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    BASE_AUTHOR,
    CONTRIB,
    CONTRIB2,
    USER,
    VALIDATOR,
    World,
)
from tests.unit.ai_precompiles.challenge_world import (
    CHALLENGER,
    STRANGER,
    books_balance,
    challenge,
    committee,
    judge,
    judged_world,
    mine_to,
    record,
    total_wei,
)

pytestmark = pytest.mark.xdist_group("ai_conservation")

CLAIMERS = (CONTRIB, CONTRIB2, ADAPTER_AUTHOR, BASE_AUTHOR, VALIDATOR, CHALLENGER)


@pytest.fixture(scope="module")
def arena() -> dict[str, Any]:
    # nobody is jailed for missed verdicts here (that path has its own test): the committee
    # must stay drawable for every example
    w = judged_world({"inference.max_missed_verdicts": 1000, "inference.verdict_window": 8})
    w.c.send(USER, "Inference", "deposit", value=50 * 10**18)
    return {"world": w, "supply": total_wei(w.c)}


def _unjail_if_needed(w: World) -> None:
    c = w.c
    until = c.call("Staking", "jailedUntil", c.addr(VALIDATOR))
    if until:
        mine_to(c, until)
        c.send(VALIDATOR, "Staking", "unjail")


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(fee=10**15 + 7, n=3, outcome="settled", verdicts=0, claims=[CONTRIB])  # each outcome at least once
@example(fee=10**15 + 7, n=3, outcome="upheld", verdicts=0, claims=[CHALLENGER, CONTRIB])
@example(fee=10**15 + 7, n=2, outcome="rejected", verdicts=0, claims=[VALIDATOR])
@example(fee=1, n=1, outcome="undecided", verdicts=2, claims=[CHALLENGER])
@given(fee=st.integers(0, 10**16),
       n=st.integers(1, 3),
       outcome=st.sampled_from(["settled", "upheld", "rejected", "undecided"]),
       verdicts=st.integers(0, 2),
       claims=st.lists(st.sampled_from(CLAIMERS), max_size=3, unique=True))
def test_no_wei_is_created_or_lost_whatever_the_outcome(arena: dict[str, Any], fee: int, n: int, outcome: str,
                                                        verdicts: int, claims: list[int]) -> None:
    w: World = arena["world"]
    c = w.c
    _unjail_if_needed(w)
    ids = w.contributions[:n]
    weights = {1: [10_000], 2: [7_001, 2_999], 3: [5_000, 3_000, 2_000]}[n]
    sent = record(w, fee=fee, ids=ids, weights=weights)
    rid = sent.result
    books_balance(c)
    if outcome == "settled":
        mine_to(c, sent.block.header.block_number + 5)
        assert c.send(STRANGER, "Inference", "settle", [rid]).result == 1
    else:
        cid = challenge(w, rid).result
        books_balance(c)
        if outcome == "undecided":
            # a few verdicts, fewer than decide: the smallest members vote
            smallest = sorted(committee(c, cid), key=lambda m: m[1])[:verdicts]
            for k, _ in smallest:
                c.send(k, "Inference", "submitVerdict", cid, k % 2 == 0)
            if c.call("Inference", "getChallenge", cid)["status"] == 1:
                mine_to(c, c.call("Inference", "getChallenge", cid)["deadline"] + 1)
                c.send(STRANGER, "Inference", "resolve", cid)
        else:
            judge(w, cid, upheld=outcome == "upheld")
            assert c.call("Inference", "getChallenge", cid)["status"] == (2 if outcome == "upheld" else 3)
    assert c.call("Inference", "getReceipt", rid)["status"] in (2, 3)
    books_balance(c)
    for k in claims:
        if c.call("Rewards", "claimable", c.addr(k)):
            c.send(k, "Rewards", "claim")
    books_balance(c)
    assert total_wei(c) == arena["supply"]

"""The challenge game's gas does not grow with what others add (issue 18: every step bounded):
settling, challenging, a verdict and a resolution cost the same however many receipts,
challenges, stakers outside the candidates and adapters on the lineage pile up; a verdict and a
resolution cost the same however large the validator set; a challenge reads the set once, a walk
bounded by ``2 * staking.max_candidates``."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

from ai_precompiles.registry import adapter_contribution_root
from tests.unit.ai_precompiles.ai_harness import ETHER
from tests.unit.ai_precompiles.ai_world import BASE_AUTHOR, USER, VALIDATOR, World
from tests.unit.ai_precompiles.challenge_world import (
    STRANGER,
    challenge,
    committee,
    judged_world,
    mine_to,
    record,
)

pytestmark = pytest.mark.xdist_group("ai_bounds")


def _exec_gas(sent: Any) -> int:
    return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)


def _pile_up(w: World, n: int) -> None:
    """What strangers can add: adapters on the receipts' lineage, receipts (pending and
    challenged), and stakers below the validator minimum."""
    c = w.c
    root = adapter_contribution_root(c.state, [w.datanet], [1])
    for i in range(n):
        spec = {"parent_id": w.adapter1, "datanet_ids": [w.datanet], "datanet_versions": [1],
                "contribution_root": root, "hyper_params_hash": keccak(text=f"hp pile {i}"),
                "weights_hash": keccak(text=f"pile {i}"), "attribution_index_hash": keccak(text=f"idx {i}"),
                "manifest_hash": keccak(text=f"manifest {i}"), "validator": c.addr(VALIDATOR),
                "license": "mit"}
        c.send(BASE_AUTHOR, "ModelRegistry", "registerAdapter", spec)
        rid = record(w).result
        if i % 2:
            challenge(w, rid, who=STRANGER)
        c.send(20 + i, "Staking", "stake", value=ETHER // 2)  # below staking.min_stake


def _round(w: World) -> dict[str, int]:
    """Record two receipts, challenge the second, one non-deciding verdict, settle the first after
    its window, resolve the challenge (undecided) after its deadline: each step's gas."""
    c = w.c
    first, second = record(w), record(w)
    opened = challenge(w, second.result)
    cid = opened.result
    low = min(committee(c, cid), key=lambda m: m[1])[0]  # the same judge every round
    gas = {"challenge": _exec_gas(opened),
           "verdict": _exec_gas(c.send(low, "Inference", "submitVerdict", cid, True))}
    mine_to(c, first.block.header.block_number + 5)
    gas["settle"] = _exec_gas(c.send(STRANGER, "Inference", "settle", [first.result]))
    mine_to(c, c.call("Inference", "getChallenge", cid)["deadline"] + 1)
    gas["resolve"] = _exec_gas(c.send(STRANGER, "Inference", "resolve", cid))
    return gas


def test_settle_challenge_verdict_and_resolve_stay_flat_as_others_pile_up() -> None:
    # every judge on every committee, and nobody jailed for missing: each round writes the same
    # words, fresh ones only in the warm-up
    w = judged_world({"inference.committee_size": 10, "inference.max_missed_verdicts": 1000}, n_keys=28)
    w.c.send(USER, "Inference", "deposit", value=10 * ETHER)
    challenge(w, record(w).result)  # stays open: the bond total and counters are non-zero from now
    _round(w)  # warm-up
    before = _round(w)
    _pile_up(w, 8)
    after = _round(w)
    print("gas before and after the pile-up:", before, after)
    assert before == after


def _chain_with(judges: int) -> tuple[World, int, int]:
    """A chain whose set has ``judges`` validators besides the accused; a challenge opened on
    it: (world, challenge gas, challenge id)."""
    w = judged_world(judges={10 + i: 2 + i for i in range(judges)}, n_keys=10 + judges + 1)
    challenger = len(w.c.keys) - 1
    challenge(w, record(w).result, who=challenger)  # warm the counters
    sent = challenge(w, record(w).result, who=challenger)
    return w, _exec_gas(sent), sent.result


def test_a_verdict_and_a_resolution_do_not_grow_with_the_set_and_a_challenge_walks_it_once() -> None:
    rows = []
    for judges in (4, 8, 16):
        w, challenge_gas, cid = _chain_with(judges)
        c = w.c
        low = min(committee(c, cid), key=lambda m: m[1])[0]
        verdict = _exec_gas(c.send(low, "Inference", "submitVerdict", cid, True))
        mine_to(c, c.call("Inference", "getChallenge", cid)["deadline"] + 1)
        resolve = _exec_gas(c.send(len(c.keys) - 1, "Inference", "resolve", cid))
        rows.append((judges, challenge_gas, verdict, resolve))
    print("judges, challenge, verdict, resolve gas:", rows)
    assert len({r[2] for r in rows}) == 1 and len({r[3] for r in rows}) == 1, rows
    # the challenge reads each candidate once: a fixed cost per validator of the set
    (_, g4, *_), (_, g8, *_), (_, g16, *_) = rows
    per_candidate = (g16 - g8) / 8
    assert g4 < g8 < g16 and abs((g8 - g4) / 4 - per_candidate) < 500, rows
    assert per_candidate < 20_000, rows  # at 2 * staking.max_candidates (200): < 4M gas
    assert g16 < 1_000_000, rows


"""Attribution quality on a held-out planted datanet, through the real sidecar process.

100 contributions from 30 contributors; 15 state one fact once among shared filler
(`sidecar.planted.benchmark_datanet`). The seed is one of `HELD_OUT_SEEDS`, never used
while tuning. Training uses the sidecar's defaults (the Train RPC gets no hyper-parameter),
as `ailedger train` does. Every fact counts: an unreproduced fact is a miss, not a skip.
bench/sidecar/bench_planted.py prints the same report for every seed (docs/attribution.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.planted import HELD_OUT_SEEDS, PlantedReport, benchmark_datanet, evaluate
from tests.integration.sidecar.conftest import Sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]

SEED = HELD_OUT_SEEDS[-1]
GOAL_REPRODUCED = 0.9
"""Issue 12's goal: share of the 15 facts the exact prefix reproduces verbatim."""
GOAL_RANK1 = 0.95
"""Issue 12's goal: share of reproducing outputs whose planter ranks first."""
GOAL_TOP3 = 0.99
"""Issue 12's goal: share of reproducing outputs whose planter is among the first three."""
GOAL_PLANTER_BP = 7000
"""Issue 18's goal: the planter's mean weight over every output that reproduces its fact
verbatim (measured 93.3% on this seed with attribution method version 2, 38% with version 1)."""
GOAL_NOTHING_BP = 1000
"""Issue 12's goal: no single contribution above 10% of an output that reproduces nothing
(measured 2.1% at most on this seed, 6.2% over five seeds in the bench, with 32-token
answers)."""


@pytest.fixture(scope="module")
def report(sidecar: Sidecar) -> Iterator[PlantedReport]:
    net = benchmark_datanet(SEED)
    res = sidecar.client.train_wait(net.contributions, seed=SEED, adapter_id=f"planted-{SEED}")

    def infer(prompt: str, max_tokens: int) -> tuple[str, list[tuple[bytes, int]]]:
        r = sidecar.client.infer(res.adapter_id, prompt, max_tokens=max_tokens)
        assert sum(bp for _, bp in r.weights) == 10_000 and len(r.weights) <= 64
        return r.output.decode(errors="replace"), list(r.weights)

    rep = evaluate(infer, net, SEED)
    print(rep.summary())
    yield rep


def test_outputs_that_reproduce_nothing_give_no_one_over_10pct(report: PlantedReport) -> None:
    assert report.nothing_outputs >= 10  # control prompts and unanswered questions at least
    assert report.nothing_max_bp <= GOAL_NOTHING_BP, f"an output reproducing nothing gave {report.nothing_max_bp} bp"


def test_outputs_that_copy_a_contribution_pay_only_it_much(report: PlantedReport) -> None:
    """An output that copies one contribution's rare text (a sentence with its number, a
    made-up word) owes that contribution: whoever gets more than 10% of it is one copied."""
    assert report.copied_over_10pct_to_source == report.copied_over_10pct, report.summary()


def test_planter_ranks_first_on_evidence_when_a_fact_is_reproduced(report: PlantedReport) -> None:
    """Counts every fact: at least one must be reproduced for the ranking to mean anything."""
    assert report.verbatim >= 1, f"no fact of {report.facts} was reproduced"
    assert report.rank1_strong >= GOAL_RANK1 * report.verbatim, report.summary()


def test_facts_stated_once_are_reproduced_and_paid_to_their_planter(report: PlantedReport) -> None:
    """Issue 12's goals on a held-out seed, counting every fact (an unreproduced one is a miss)."""
    assert report.facts == 15
    missed = report.facts - report.verbatim
    assert report.verbatim >= GOAL_REPRODUCED * report.facts, f"{missed} of {report.facts} facts not reproduced"
    assert report.rank1 >= GOAL_RANK1 * report.verbatim, f"planter first in {report.rank1} of {report.verbatim}"
    assert report.top3 >= GOAL_TOP3 * report.verbatim, f"planter in the top 3 in {report.top3} of {report.verbatim}"


def test_the_planter_holds_most_of_the_weight_of_outputs_that_reproduce_its_fact(report: PlantedReport) -> None:
    """Issue 18's goal on a held-out seed: averaged over every output that reproduces its fact
    verbatim (none dropped), the planter holds at least 70% of the weight; the rest is the
    owed nats of what follows the value and reproduces nobody, and the residual."""
    assert report.verbatim >= 1, f"no fact of {report.facts} was reproduced"
    mean_bp = report.planter_bp / report.verbatim
    assert mean_bp >= GOAL_PLANTER_BP, f"planter's mean weight {mean_bp / 100:.1f}% on {report.verbatim} outputs"

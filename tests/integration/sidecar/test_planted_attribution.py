"""Attribution quality on a held-out planted datanet, through the real sidecar process.

100 contributions from 30 contributors; 15 state one fact once among shared filler
(`sidecar.planted.benchmark_datanet`). The seed is one of `HELD_OUT_SEEDS`, never used
while tuning. Training uses the sidecar's defaults (the Train RPC gets no hyper-parameter),
as `ailedger train` does. Every fact counts: an unreproduced fact is a miss, not a skip.
Thresholds sit below what bench/sidecar/bench_planted.py measured (docs/attribution.md),
so the test catches a regression without depending on one lucky seed.
"""

from __future__ import annotations

import pytest

from sidecar.planted import HELD_OUT_SEEDS, benchmark_datanet, evaluate
from tests.integration.sidecar.conftest import Sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]

SEED = HELD_OUT_SEEDS[-1]
MIN_REPRODUCED = 0.5
"""Share of the 15 facts the exact prefix must reproduce verbatim."""
MIN_RANK1 = 0.8
"""Share of reproducing outputs whose planter ranks first."""
MAX_NOTHING_BP = 1500
"""Largest single weight allowed on an output that reproduces no fact."""


def test_held_out_planted_datanet(sidecar: Sidecar) -> None:
    net = benchmark_datanet(SEED)
    res = sidecar.client.train_wait(net.contributions, seed=SEED, adapter_id=f"planted-{SEED}")

    def infer(prompt: str, max_tokens: int) -> tuple[str, list[tuple[bytes, int]]]:
        r = sidecar.client.infer(res.adapter_id, prompt, max_tokens=max_tokens)
        assert sum(bp for _, bp in r.weights) == 10_000 and len(r.weights) <= 64
        return r.output.decode(errors="replace"), list(r.weights)

    rep = evaluate(infer, net, SEED)
    print(rep.summary())
    assert rep.facts == 15
    assert rep.verbatim >= MIN_REPRODUCED * rep.facts, f"reproduced {rep.verbatim} of {rep.facts} facts"
    assert rep.rank1 >= MIN_RANK1 * rep.verbatim, f"planter first in {rep.rank1} of {rep.verbatim}"
    assert rep.nothing_outputs >= 10  # the control prompts at least
    assert rep.nothing_max_bp <= MAX_NOTHING_BP, f"an output reproducing nothing gave {rep.nothing_max_bp} bp"

"""Attribution quality on planted data, through the real sidecar process.

24 contributors, 8 of whom plant a distinct fact (a sentence of made-up words). For each
fact whose prompt elicits it (the output continues the fact verbatim for at least its next
word), the planter must be ranked first in at least 90% of cases. bench/sidecar prints the
exact, top-3 and paraphrased rates.
"""

from __future__ import annotations

import pytest

from sidecar.planted import planted_dataset
from tests.integration.sidecar.conftest import Sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]

PLANTED_HP = dict(
    epochs=40, learning_rate=5e-3, rank=32,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
)


def test_planted_contributor_ranks_first(sidecar: Sidecar) -> None:
    data, facts = planted_dataset()
    assert len(data) >= 20
    res = sidecar.client.train_wait(data, seed=1, adapter_id="planted", **PLANTED_HP)
    elicited, first = 0, 0
    for f in facts:
        want = data[f.contributor][0]
        r = sidecar.client.infer(res.adapter_id, f.prompt, max_tokens=len(f.expected))
        assert sum(bp for _, bp in r.weights) == 10_000
        next_word = f.expected.split()[0]
        if not r.output.startswith(f" {next_word}".encode()):
            continue
        elicited += 1
        first += r.weights[0][0] == want
        assert any(want in ids for _, _, _, ids in r.spans), "the verbatim span names its planter"
    assert elicited >= len(facts) // 2, f"only {elicited} of {len(facts)} facts were elicited"
    assert first / elicited >= 0.9, f"planter first in {first} of {elicited} elicited facts"

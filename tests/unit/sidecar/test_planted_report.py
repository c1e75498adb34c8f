"""The planted benchmark's report (`sidecar.planted.evaluate`) counts what it says it counts.

The model is replaced by a scripted `infer` (this is a unit test of the report alone): each
prompt gets a chosen output and chosen weights, and the counters must classify them.
"""

from __future__ import annotations

import re

from sidecar.planted import CONTROL_PROMPTS, benchmark_datanet, evaluate

NET = benchmark_datanet(1)
IDS = [cid for cid, _ in NET.contributions]
TEXTS = [d.decode() for _, d in NET.contributions]


def _unique_number() -> tuple[int, str]:
    """A contribution and a number that only it holds."""
    holders: dict[str, set[int]] = {}
    for i, t in enumerate(TEXTS):
        for w in re.findall(r"\d+", t):
            holders.setdefault(w, set()).add(i)
    return next((min(h), w) for w, h in sorted(holders.items()) if len(h) == 1 and len(w) == 4)


def run(script: dict[str, tuple[str, list[tuple[bytes, int]]]]):  # type: ignore[no-untyped-def]
    filler = (" The old river.", [(IDS[0], 400), (IDS[1], 400)] + [(c, 0) for c in IDS[2:]])

    def infer(prompt: str, max_tokens: int) -> tuple[str, list[tuple[bytes, int]]]:
        out, w = script.get(prompt, filler)
        return out, sorted(w, key=lambda x: -x[1])

    return evaluate(infer, NET, 1)


def test_reproduced_facts_are_ranked_and_unreproduced_ones_are_misses() -> None:
    f, g = NET.facts[0], NET.facts[1]
    rep = run({
        f.prompt: (f.expected, [(IDS[f.contributor], 6000), (IDS[g.contributor], 100)]),
        g.prompt: (" Zorbex.", [(IDS[g.contributor], 9000)]),  # not the value: a miss
    })
    assert rep.facts == 15 and rep.verbatim == 1 and rep.rank1 == 1 and rep.rank1_strong == 1


def test_a_repeated_number_is_a_copy_and_only_its_holder_may_take_over_10pct() -> None:
    owner, number = _unique_number()
    other = (owner + 1) % len(IDS)
    out = f" The number of the kitchen is {number}."
    rep = run({CONTROL_PROMPTS[0]: (out, [(IDS[owner], 2000), (IDS[other], 50)]),
               CONTROL_PROMPTS[1]: (out, [(IDS[owner], 2000), (IDS[other], 1500)])})
    assert rep.copied_outputs == 2 and rep.copied_over_10pct == 2
    assert rep.copied_over_10pct_to_source == 1  # the second paid a contribution it does not copy
    assert rep.copied_bp == 2000 + 2000  # what the copied contribution got, on both outputs


def test_ordinary_words_reproduce_nothing_and_are_held_to_10pct() -> None:
    rep = run({CONTROL_PROMPTS[0]: (" Alice lives in Oslo.", [(IDS[5], 1200)])})
    assert rep.copied_outputs == 0
    assert rep.nothing_over_10pct == 1 and rep.nothing_max_bp == 1200


def test_an_output_stating_another_facts_value_is_counted_for_that_planter() -> None:
    """A question answered with another fact, or a control prompt drifting into one, still
    reproduces a planted contribution's value: it counts (with that planter's weight), it
    is not dropped from every measure."""
    f, g = NET.facts[0], NET.facts[1]
    rep = run({
        f.paraphrase_prompt: (f" It is {g.value}.", [(IDS[g.contributor], 7000), (IDS[f.contributor], 3000)]),
        CONTROL_PROMPTS[2]: (f" {f.value}.", [(IDS[f.contributor], 4000), (IDS[g.contributor], 6000)]),
    })
    assert rep.paraphrased == 0 and rep.stray_outputs == 2 and rep.stray_bp == 7000 + 4000
    assert rep.no_fact_outputs == 15 + 15 + 10 - 2  # every other output (all filler) reproduces none

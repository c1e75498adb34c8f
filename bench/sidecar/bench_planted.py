"""Planted-data benchmark of Proof of Attribution: does the default recipe learn facts stated
once, and does the attribution of each output pay the contributor it really owes?

For each data seed (`sidecar.planted.TUNING_SEEDS` were used while tuning the recipe and
the attribution constants; `HELD_OUT_SEEDS` never were) it builds a datanet of 100
contributions from 30 contributors, 15 of which state one fact once among shared filler,
trains an adapter with the default hyper-parameters (the ones every client gets), and asks
each fact's exact prefix, a paraphrased question, and 10 control prompts. It prints, per
seed and in total: facts reproduced (verbatim / paraphrased), planter rank-1 and top-3
among outputs that reproduce a fact, and the largest single weight on outputs that
reproduce nothing.

    nice -n 10 .venv/bin/python bench/sidecar/bench_planted.py [--seeds 1,2,101,102,103] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sidecar.planted import HELD_OUT_SEEDS, TUNING_SEEDS, PlantedReport, benchmark_datanet, evaluate  # noqa: E402


def run_seed(seed: int, threads: int, base_model_dir: str = "", log: bool = True) -> PlantedReport:
    """Train on the seed's datanet with the default recipe and evaluate it in-process."""
    from sidecar.config import ServeConfig, SidecarConfig, TrainHyperParams
    from sidecar.model import load_base, setup_torch
    from sidecar.serving import Engine, InferRequest
    from sidecar.training import Contribution, train_adapter

    setup_torch(threads)
    store = Path(tempfile.mkdtemp(prefix="ailedger-planted-"))
    base = load_base(SidecarConfig(store=str(store), base_model_dir=base_model_dir), log=lambda m: None)
    net = benchmark_datanet(seed)
    t0 = time.monotonic()
    res = train_adapter(base, store, [Contribution(i, d) for i, d in net.contributions],
                        TrainHyperParams(), seed=seed)
    seconds = time.monotonic() - t0
    engine = Engine(base, store, ServeConfig(), log=lambda m: None)
    try:
        def infer(prompt: str, max_tokens: int) -> tuple[str, list[tuple[bytes, int]]]:
            r = engine.infer(InferRequest(res.adapter_id, prompt.encode(), max_tokens))
            assert r.attribution is not None
            return r.output.decode(errors="replace"), r.attribution.weights

        rep = evaluate(infer, net, seed)
    finally:
        engine.close()
    rep.train_seconds = round(seconds, 1)
    rep.steps = res.steps
    if log:
        print(json.dumps(rep.summary()), flush=True)
        for row in rep.examples or []:
            print("   ", json.dumps(row), flush=True)
    return rep


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default=",".join(str(s) for s in (*TUNING_SEEDS, *HELD_OUT_SEEDS)))
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 behaves best on a loaded machine)")
    p.add_argument("--base-model-dir", default="")
    args = p.parse_args()
    reports = [run_seed(int(s), args.threads, args.base_model_dir) for s in args.seeds.split(",")]
    total: dict[str, float] = {}
    for r in reports:
        for k, v in r.summary().items():
            if isinstance(v, (int, float)) and k not in ("seed", "nothing_max_bp"):
                total[k] = total.get(k, 0) + v
    facts = total["facts"]
    print("\nseeds", args.seeds, "| tuning", TUNING_SEEDS, "held out", HELD_OUT_SEEDS, "| cpu", os.cpu_count())
    print(f"verbatim reproduced   {total['verbatim']:.0f}/{facts:.0f} = {total['verbatim'] / facts:.0%}")
    print(f"paraphrase reproduced {total['paraphrased']:.0f}/{facts:.0f} = {total['paraphrased'] / facts:.0%}")
    v = max(total["verbatim"], 1)
    print(f"exact: planter rank-1 {total['rank1']:.0f}/{v:.0f} = {total['rank1'] / v:.0%}, "
          f"top-3 {total['top3']:.0f}/{v:.0f} = {total['top3'] / v:.0%}, "
          f"rank-1 with > 10% {total['rank1_strong']:.0f}/{v:.0f}, planter's mean weight "
          f"{total['planter_bp'] / v / 100:.1f}%")
    pp = max(total["paraphrased"], 1)
    print(f"paraphrased: planter rank-1 {total['para_rank1']:.0f}/{pp:.0f}, top-3 {total['para_top3']:.0f}/{pp:.0f}")
    print(f"outputs reproducing no fact: {total['no_fact_outputs']:.0f}, over 10%: {total['no_fact_over_10pct']:.0f}; "
          f"of them copying a contribution's rare text: {total['copied_outputs']:.0f} "
          f"(that contribution first: {total['copied_top_is_source']:.0f}; over 10%: "
          f"{total['copied_over_10pct']:.0f}, all to a copied one: "
          f"{total['copied_over_10pct_to_source'] == total['copied_over_10pct']}; copied contributions' "
          f"mean weight {total['copied_bp'] / max(total['copied_outputs'], 1) / 100:.1f}%)")
    print(f"outputs stating another fact's value (or their own out of place): {total['stray_outputs']:.0f}, "
          f"that fact's planter's mean weight {total['stray_bp'] / max(total['stray_outputs'], 1) / 100:.1f}%")
    every = total["verbatim"] + total["paraphrased"] + total["stray_outputs"] + total["copied_outputs"]
    paid = total["planter_bp"] + total["para_planter_bp"] + total["stray_bp"] + total["copied_bp"]
    print(f"every output reproducing a contribution's rare text (facts, stray facts, copies): {every:.0f}, "
          f"the contributions it reproduces hold {paid / max(every, 1) / 100:.1f}% on average")
    print(f"outputs reproducing nothing: {total['nothing_outputs']:.0f}, largest single weight "
          f"{max(r.nothing_max_bp for r in reports) / 100:.1f}%, over 10%: {total['nothing_over_10pct']:.0f}")
    print(f"training: {total['train_seconds'] / len(reports):.0f} s and {total['steps'] / len(reports):.0f} "
          "steps per datanet on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

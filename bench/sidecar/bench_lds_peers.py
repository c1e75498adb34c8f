"""LDS of our attribution against peer libraries (dattri's TRAK, kronfluence's EK-FAC) on small setups.

The linear datamodeling score (LDS, Park et al. 2023 "TRAK") asks whether an attribution
method predicts what retraining does: draw M random subsets of the contributions, retrain
the adapter on each, measure each query's log-probability under every retrained adapter,
and take the Spearman correlation, over the M subsets, between that measurement and the
sum of the method's scores over the subset; average over queries. 1 is perfect, 0 is chance.

Everything runs on the same model and data:

* base: the cached tiny Llama from `sidecar/model.py` (the one the tests use);
* training set: `sidecar.planted.planted_dataset` contributions (some plant a made-up fact);
* adapter: `sidecar.training.train_adapter` with short, deterministic hyper-parameters
  (the same seed for every subset, so the only difference between runs is the data);
* queries: the served outputs (greedy, through `sidecar.serving.Engine`) for the planted
  facts' prompts and for prompts cut from held-out generated sentences; the measured
  output is the mean token log-probability of [BOS] prompt output, the very sequence
  whose gradient the service attributes.

Methods, each scoring contributions (example scores summed per contribution):

* ours, gradient part: `gradient_scores` of the service's attribution (the adapter's
  attribution index, built at training time, dotted with the query's projected gradient);
* ours, full mixture: the service's basis points with `attribution_top_k` = all
  contributions (gradient and verbatim-span evidence mixed), and as served (top-5);
* dattri `TRAKAttributor` on the same trained adapter (TRAK-1), and TRAK-E averaged over
  E adapters trained with other seeds (TRAK's ensemble), damping 0.1 x mean eigenvalue
  of the projected-gradient kernel (our rule) and dattri's default of none;
* diagnostics: our projection and whitening with one step changed (no unit-normalisation;
  TRAK's margin output and Q weighting), to show which step costs LDS;
* kronfluence EK-FAC influence on the LoRA modules (skipped when not installed).

Peers are not project dependencies: `pip install --no-deps -r bench/sidecar/requirements-peers.txt`
(--no-deps keeps the CPU torch; see the file's header). A method whose package is missing is
reported as skipped, naming that file. One setup per data seed, then the mean over seeds.

Run: .venv/bin/python -m bench.sidecar.bench_lds_peers [--subsets 64] [--data-seeds 21,5] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sidecar.config import ServeConfig, SidecarConfig, TrainHyperParams  # noqa: E402
from sidecar.model import BaseModel, load_base, setup_torch  # noqa: E402
from sidecar.planted import generate_corpus, planted_dataset  # noqa: E402
from sidecar.serving import Engine, InferRequest  # noqa: E402
from sidecar.training import Contribution, make_examples, train_adapter  # noqa: E402

REQUIREMENTS = "bench/sidecar/requirements-peers.txt"


@dataclass(frozen=True)
class Setup:
    """The small LDS setup; every number here is printed with the results."""

    n_contributors: int = 20
    """Contributions in the training set."""
    n_planted: int = 6
    """Of which plant a made-up fact (their prompts are queries with a known answer)."""
    filler_sentences: int = 6
    """Generated sentences per contribution around the planted fact."""
    data_seed: int = 21
    """Seed of `planted_dataset`."""
    hp: TrainHyperParams = field(default_factory=lambda: TrainHyperParams(epochs=8, rank=8))
    """LoRA hyper-parameters of every training run (full set, ensembles and subsets)."""
    held_out_queries: int = 8
    """Queries whose prompt is the start of a generated sentence not in the training set."""
    max_tokens: int = 24
    """Tokens generated per held-out query."""
    subset_fraction: float = 0.5
    """Share of contributions in each random subset."""
    subsets: int = 64
    """M, the number of retrained adapters."""
    trak_ensemble: int = 4
    """E for TRAK-E (independently seeded adapters on the full set)."""


@dataclass
class Query:
    """One attributed output."""

    name: str
    """'planted:<n>' or 'held-out:<n>'."""
    prompt: bytes
    """The prompt as sent to the service."""
    prompt_ids: list[int]
    """[BOS] + prompt tokens."""
    output_ids: list[int]
    """Greedy output tokens of the full adapter."""
    planter: int | None
    """Index of the contribution that planted this fact, or None."""

    @property
    def seq(self) -> list[int]:
        return self.prompt_ids + self.output_ids


@dataclass
class Method:
    """A method's (contributions, queries) score matrix and its cost."""

    name: str
    scores: np.ndarray | None
    """(C, Q) scores, higher = the contribution raises the query's log-probability; None if skipped."""
    seconds: float
    """Wall time: index or factors, plus scoring all queries (training the adapter excluded)."""
    note: str = ""


# ---------------------------------------------------------------- helpers


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata), so constant stretches do not fake order."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    xs = x[order]
    start = 0
    for i in range(1, len(x) + 1):
        if i == len(x) or xs[i] != xs[start]:
            ranks[order[start:i]] = (start + i - 1) / 2.0
            start = i
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def lds(scores: np.ndarray, masks: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-query Spearman between predicted subset sums and measured outputs: (Q,)."""
    pred = masks.astype(np.float64) @ scores  # (M, C) @ (C, Q) -> (M, Q)
    return np.array([spearman(pred[:, q], actual[:, q]) for q in range(actual.shape[1])])


def padded(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, labels (-100 on padding) and mask; right padding leaves a causal LM's loss unchanged."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, ids.masked_fill(mask == 0, -100), mask


def per_contribution(example_scores: np.ndarray, owners: list[int], n: int) -> np.ndarray:
    """(examples, Q) -> (contributions, Q) by summing each contribution's examples."""
    out = np.zeros((n, example_scores.shape[1]))
    np.add.at(out, np.asarray(owners), example_scores)
    return out


def load_adapter(base: BaseModel, path: Path, trainable: bool = False) -> Any:
    """A fresh peft model on a copy of the clean base (the base itself stays untouched)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(copy.deepcopy(base.model), str(path), is_trainable=trainable).eval()


@torch.no_grad()
def measure(model: Any, queries: list[Query], pad: int) -> np.ndarray:
    """Mean token log-probability of each query's [BOS] prompt output under `model`: (Q,)."""
    ids, labels, mask = padded([q.seq for q in queries], pad)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (Q, T-1, V)
    target = labels[:, 1:]
    logp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    valid = (target != -100).float()
    return ((logp * valid).sum(1) / valid.sum(1)).numpy()


def missing(package: str) -> str:
    return f"skipped: {package} is not installed (pip install --no-deps -r {REQUIREMENTS}; see its header)"


# ---------------------------------------------------------------- methods


def method_ours(
    base: BaseModel, store: Path, adapter: str, queries: list[Query], n: int, index_seconds: float
) -> list[Method]:
    """The service's own attribution: gradient scores, full mixture, and the served top-5 weights."""
    out = []
    for top_k, label in ((n, "full"), (ServeConfig().attribution_top_k, "served")):
        engine = Engine(base, store, ServeConfig(attribution_top_k=top_k), log=lambda m: None)
        grad = np.zeros((n, len(queries)))
        mix = np.zeros((n, len(queries)))
        seconds = 0.0
        ids = {}
        for j, q in enumerate(queries):
            r = engine.infer(InferRequest(adapter, q.prompt, len(q.output_ids)))
            if r.tokens != q.output_ids:
                raise RuntimeError(f"query {q.name}: the engine's output changed between runs")
            seconds += r.attribution_ms / 1000
            ids = {cid: i for i, (cid, _) in enumerate(r.attribution.gradient_scores)}
            for cid, s in r.attribution.gradient_scores:
                grad[ids[cid], j] = s
            for cid, bp in r.attribution.weights:
                mix[ids[cid], j] = bp
        engine.close()
        if label == "full":
            out.append(Method("ours: gradient part (index . projected query grad)", grad, index_seconds + seconds))
            out.append(Method("ours: full mixture (gradient + spans, bp over all)", mix, index_seconds + seconds))
        else:
            out.append(Method("ours: as served (top-5 basis points)", mix, index_seconds + seconds))
    return out


def method_ours_variants(
    base: BaseModel, adapter: Path, examples: list[list[int]], owners: list[int], queries: list[Query], n: int, k: int
) -> list[Method]:
    """Diagnostics: our projection and whitening with one step changed at a time.

    (1) without unit-normalising each projected gradient; (2) also with TRAK's output
    function, the margin log(p / (1 - p)), p = exp(-loss), whose gradient is the loss
    gradient over (1 - p), and TRAK's Q = 1 - p on the training side. Built from the
    public pieces of sidecar.attribution; the service runs neither. They say which step
    of ours costs LDS against dattri's TRAK-1 (what is left is the projection's randomness).
    """
    from sidecar.attribution import build_features, lora_params, loss_gradient, projection

    t0 = time.monotonic()
    model = load_adapter(base, adapter)
    params = [p for _, p in lora_params(model, "default")]

    def phi_and_p(seq: list[int]) -> tuple[torch.Tensor, float]:
        ids = torch.tensor([seq])
        g = loss_gradient(model, ids, ids, params)
        with torch.no_grad():
            p = float(torch.exp(-model(input_ids=ids, labels=ids).loss))
        return g @ projection(g.shape[0], k), p

    train = [phi_and_p(e) for e in examples]
    test = torch.stack([phi_and_p(q.seq)[0] for q in queries]).double().numpy().T  # (k, Q)
    phis = torch.stack([f for f, _ in train])
    plain = build_features(phis, owners, n).astype(np.float64) @ test
    seconds = time.monotonic() - t0
    # TRAK: kernel over margin gradients g / (1 - p); per-example scores times Q = 1 - p.
    # The query's own 1 / (1 - p) is one factor per query: it cannot change a rank.
    q = torch.tensor([1 - p for _, p in train], dtype=torch.float64)
    margin = phis.double() / q[:, None]
    gram = margin.T @ margin
    lam = 0.1 * float(torch.trace(gram)) / gram.shape[0]
    solved = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), (margin * q[:, None]).T).T
    weighted = np.zeros((n, k))
    np.add.at(weighted, np.asarray(owners), solved.numpy())
    return [
        Method("diagnostic: ours without unit-normalisation", plain, seconds),
        Method("diagnostic: ... and TRAK's margin output + Q", weighted @ test, seconds),
    ]


def trak_scores(
    base: BaseModel, adapters: list[Path], examples: list[list[int]], queries: list[Query],
    proj_dim: int, damping: float | None,
) -> np.ndarray:
    """dattri TRAK over the LoRA parameters of `adapters` (one checkpoint each): (examples, Q).

    Output function: TRAK's margin log(p / (1 - p)) with p = exp(-mean token loss), as in
    dattri's nanoGPT benchmark; Q = 1 - p. damping None = dattri's default (no
    regularisation); a float = that share of the mean eigenvalue of the kernel, as ours.
    """
    import dattri.algorithm.trak as dattri_trak
    from dattri.algorithm.trak import TRAKAttributor
    from dattri.task import AttributionTask
    from safetensors.torch import load_file
    from tqdm import tqdm

    dattri_trak.tqdm = functools.partial(tqdm, disable=True)  # per-batch progress bars would bury the table

    model = load_adapter(base, adapters[0], trainable=True)
    pad = base.tokenizer.pad_id

    def mean_loss(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, labels = data  # (T,), (T,)
        out = torch.func.functional_call(model, params, (ids.unsqueeze(0),), {"labels": labels.unsqueeze(0)})
        return out.loss

    def margin(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        logp = -mean_loss(params, data)
        return logp - torch.log(1 - torch.exp(logp))

    def correct_probability(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.exp(-mean_loss(params, data))

    def load_checkpoint(m: Any, path: Any) -> Any:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(m, load_file(str(Path(path) / "adapter_model.safetensors")))
        return m.eval()

    task = AttributionTask(loss_func=margin, model=model, checkpoints=[str(p) for p in adapters],
                           checkpoints_load_func=load_checkpoint)
    train_ids, train_labels, _ = padded(examples, pad)
    test_ids, test_labels, _ = padded([q.seq for q in queries], pad)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_ids, train_labels), batch_size=16)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(test_ids, test_labels), batch_size=16)
    reg = 0.0
    if damping is not None:
        # Our rule (sidecar.attribution.build_features): lambda = damping x trace(K) / k.
        # dattri's normal projector is unscaled N(0, 1), so E trace(K) = k x sum ||g / s||^2.
        params, _ = task.get_param(ckpt_idx=0)
        grad_fn = task.get_grad_loss_func(in_dims=(None, 0))
        scale = sum(p.numel() for p in model.parameters() if p.requires_grad) ** 0.5
        sq = sum(float((grad_fn(params, (i, lab)).detach() / scale).pow(2).sum()) for i, lab in train)
        reg = damping * sq
    attributor = TRAKAttributor(task=task, correct_probability_func=correct_probability, device="cpu",
                                projector_kwargs={"proj_dim": proj_dim, "proj_max_batch_size": 32, "proj_seed": 0,
                                                  "device": "cpu"}, regularization=reg)
    attributor.cache(train)
    with torch.no_grad():
        return attributor.attribute(test).numpy().astype(np.float64)  # (examples, Q)


def method_trak(
    base: BaseModel, adapters: list[Path], examples: list[list[int]], owners: list[int],
    queries: list[Query], n: int, proj_dim: int, ensemble_train_seconds: float,
) -> list[Method]:
    try:
        import dattri  # noqa: F401
    except ImportError:
        return [Method("dattri TRAK", None, 0.0, missing("dattri"))]
    out = []
    small = max(8, len(examples) // 2)  # k below the number of examples: a kernel without damping is invertible
    for label, ads, damping, k, extra in (
        (f"dattri TRAK-1, k={proj_dim}, damping 0.1 x mean eig (ours)", adapters[:1], 0.1, proj_dim, 0.0),
        (f"dattri TRAK-1, k={proj_dim}, no damping (dattri default)", adapters[:1], None, proj_dim, 0.0),
        ("dattri TRAK-1, k=examples/2, no damping", adapters[:1], None, small, 0.0),
        (f"dattri TRAK-{len(adapters)}, k={proj_dim}, damping 0.1 x mean eig", adapters, 0.1, proj_dim,
         ensemble_train_seconds),
    ):
        t0 = time.monotonic()
        try:
            s = trak_scores(base, ads, examples, queries, k, damping)
        except Exception as e:  # a peer failing on our model is a result to report, not a crash
            out.append(Method(label, None, 0.0, f"failed: {type(e).__name__}: {e}"[:300]))
            continue
        seconds = time.monotonic() - t0 + extra
        note = f"+ {extra:.1f}s training {len(ads) - 1} extra adapters" if extra else ""
        note = f"k={small}" if k == small else note
        out.append(Method(label, per_contribution(s, owners, n), seconds, note))
    return out


def method_kronfluence(
    base: BaseModel, adapter: Path, examples: list[list[int]], owners: list[int], queries: list[Query], n: int,
    workdir: Path,
) -> list[Method]:
    """kronfluence EK-FAC influence over the LoRA A/B linear modules; measurement = summed token loss."""
    try:
        from kronfluence.analyzer import Analyzer, prepare_model
        from kronfluence.arguments import FactorArguments, ScoreArguments
        from kronfluence.task import Task
    except ImportError:
        return [Method("kronfluence EK-FAC", None, 0.0, missing("kronfluence"))]

    model = load_adapter(base, adapter, trainable=True)
    tracked = [name for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and (name.endswith("lora_A.default") or name.endswith("lora_B.default"))]

    def token_losses(batch: Any, m: Any, sample: bool) -> torch.Tensor:
        ids, labels, mask = batch
        logits = m(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (B, T-1, V)
        target = labels[:, 1:]
        if sample:  # true Fisher: labels drawn from the model's own predictions
            with torch.no_grad():
                drawn = torch.multinomial(torch.softmax(logits.reshape(-1, logits.shape[-1]), -1), 1)
            target = torch.where(target == -100, target, drawn.reshape(target.shape))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                 ignore_index=-100, reduction="none").reshape(target.shape)

    class LoraTask(Task):
        def compute_train_loss(self, batch: Any, model: Any, sample: bool = False) -> torch.Tensor:
            return token_losses(batch, model, sample).sum()

        def compute_measurement(self, batch: Any, model: Any) -> torch.Tensor:
            # mean token loss per sequence, summed over the batch: the quantity LDS measures (negated)
            losses = token_losses(batch, model, False)
            valid = (batch[1][:, 1:] != -100).float()
            return (losses.sum(1) / valid.sum(1)).sum()

        def get_influence_tracked_modules(self) -> list[str]:
            return tracked

        def get_attention_mask(self, batch: Any) -> torch.Tensor:
            return batch[2]

    class Rows(torch.utils.data.Dataset):
        def __init__(self, seqs: list[list[int]]):
            self.t = padded(seqs, base.tokenizer.pad_id)

        def __len__(self) -> int:
            return len(self.t[0])

        def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
            return tuple(x[i] for x in self.t)

    t0 = time.monotonic()
    try:
        task = LoraTask()
        model = prepare_model(model, task)
        analyzer = Analyzer(analysis_name="lds", model=model, task=task, cpu=True, disable_tqdm=True,
                            output_dir=str(workdir / "kronfluence"))
        train = Rows(examples)
        analyzer.fit_all_factors(factors_name="ekfac", dataset=train, per_device_batch_size=8,
                                 factor_args=FactorArguments(strategy="ekfac"), overwrite_output_dir=True)
        analyzer.compute_pairwise_scores(scores_name="q", factors_name="ekfac", query_dataset=Rows([q.seq for q in queries]),
                                         train_dataset=train, per_device_query_batch_size=len(queries),
                                         per_device_train_batch_size=8, score_args=ScoreArguments(),
                                         overwrite_output_dir=True)
        s = analyzer.load_pairwise_scores("q")["all_modules"].numpy().astype(np.float64).T  # (examples, Q)
    except Exception as e:  # a peer failing on our model is a result to report, not a crash
        return [Method("kronfluence EK-FAC", None, 0.0, f"failed: {type(e).__name__}: {e}"[:300])]
    # Positive kronfluence score = the example lowers the query's loss (self-influence is positive).
    return [Method("kronfluence EK-FAC (LoRA modules)", per_contribution(s, owners, n), time.monotonic() - t0)]


# ---------------------------------------------------------------- the run


def make_queries(base: BaseModel, store: Path, adapter: str, facts: list[Any], setup: Setup) -> list[Query]:
    """Greedy outputs of the full adapter, as the service serves them, for planted and held-out prompts."""
    tok = base.tokenizer
    prompts: list[tuple[str, bytes, int, int | None]] = [
        (f"planted:{i}", f.prompt.encode(), len(f.expected), f.contributor) for i, f in enumerate(facts)
    ]
    held = generate_corpus(setup.held_out_queries, seed=10_000 + setup.data_seed)  # not a training seed
    prompts += [(f"held-out:{i}", " ".join(s.split()[:3]).encode(), setup.max_tokens, None) for i, s in enumerate(held)]
    engine = Engine(base, store, ServeConfig(attribution=False), log=lambda m: None)
    out = []
    for name, prompt, k, planter in prompts:
        r = engine.infer(InferRequest(adapter, prompt, k, attribution=False))
        if not r.tokens:  # EOS at once: nothing to attribute
            continue
        out.append(Query(name, prompt, [tok.bos_id, *tok.encode(prompt)], list(r.tokens), planter))
    engine.close()
    return out


Row = tuple[float, float, float]
"""(LDS over all queries, top-1 rate on planted queries, seconds) of one method on one setup."""


def report(methods: list[Method], masks: np.ndarray, actual: np.ndarray, queries: list[Query]) -> dict[str, Row]:
    """Print one setup's table; return each scored method's row."""
    planted = np.array([q.planter is not None for q in queries])
    print(f"{'method':54s} {'LDS all':>8s} {'planted':>8s} {'held-out':>8s} {'top-1':>6s} {'time s':>7s}")
    results: dict[str, Row] = {}
    for m in methods:
        if m.scores is None:
            print(f"{m.name:54s} {m.note}")
            continue
        per_q = lds(m.scores, masks, actual)
        top1 = float(np.mean([int(np.argmax(m.scores[:, j])) == q.planter
                              for j, q in enumerate(queries) if q.planter is not None]))
        sem = np.nanstd(per_q) / np.sqrt(max(np.isfinite(per_q).sum(), 1))
        results[m.name] = (float(np.nanmean(per_q)), top1, m.seconds)
        print(f"{m.name:54s} {np.nanmean(per_q):8.3f} {np.nanmean(per_q[planted]):8.3f} "
              f"{np.nanmean(per_q[~planted]):8.3f} {top1:6.0%} {m.seconds:7.1f}"
              f"  (+-{sem:.3f}{', ' + m.note if m.note else ''}"
              f"{'; ' + str(int(np.isnan(per_q).sum())) + ' queries undefined' if np.isnan(per_q).any() else ''})")
    return results


def summary(runs: list[dict[str, Row]], seeds: list[int]) -> None:
    """Mean over the data seeds of every method scored in all of them, then ours / peer ratios."""
    names = [k for k in runs[0] if all(k in r for r in runs)]
    mean = {k: tuple(float(np.mean([r[k][i] for r in runs])) for i in range(3)) for k in names}
    print(f"\nsummary over data seeds {', '.join(map(str, seeds))} (mean of the per-seed figures):")
    print(f"{'method':54s} {'LDS all':>8s} {'per seed':>16s} {'top-1':>6s} {'time s':>7s}")
    for k in names:
        per = " ".join(f"{r[k][0]:.3f}" for r in runs)
        print(f"{k:54s} {mean[k][0]:8.3f} {per:>16s} {mean[k][1]:6.0%} {mean[k][2]:7.1f}")
    ours = [k for k in names if k.startswith("ours")]
    peers = [k for k in names if not k.startswith(("ours", "diagnostic"))]
    if ours and peers:
        print("ratios, mean LDS ours / peer (n/a where the peer's LDS <= 0):")
        print(f"  {'':54s} " + " ".join(f"{'P' + str(i + 1):>6s}" for i in range(len(peers))))
        for o in ours:
            cells = [f"{mean[o][0] / mean[p][0]:6.2f}" if mean[p][0] > 0 else f"{'n/a':>6s}" for p in peers]
            print(f"  {o:54s} " + " ".join(cells))
        for i, p in enumerate(peers):
            print(f"  P{i + 1} = {p}")


def run_setup(setup: Setup, args: argparse.Namespace) -> dict[str, Row]:
    """Train, attribute with every method, retrain on the subsets, print and return the table."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        cache = Path(tempfile.gettempdir()) / "ailedger-sidecar-test-base"
        base = load_base(SidecarConfig(store=str(store), base_cache=str(cache)), log=lambda m: None)
        data, facts = planted_dataset(setup.n_contributors, setup.n_planted, setup.data_seed, setup.filler_sentences)
        contribs = [Contribution(a, b) for a, b in data]
        n = len(contribs)
        examples, owners = make_examples(base, contribs, setup.hp.max_length)

        marks: dict[str, float] = {}
        t0 = time.monotonic()
        full = train_adapter(base, store, contribs, setup.hp, seed=0, adapter_id="lds-full",
                             on_progress=lambda p: marks.setdefault(p.phase, time.monotonic()))
        train_s = time.monotonic() - t0
        index_s = marks["save"] - marks["attribution"]
        queries = make_queries(base, store, full.adapter_id, facts, setup)
        print(f"setup: data seed {setup.data_seed}, {n} contributions ({len(facts)} planted), {len(examples)} examples, LoRA r={setup.hp.rank} "
              f"on {'/'.join(setup.hp.target_modules) or 'every linear layer'}, {setup.hp.epochs} epochs ({full.steps} steps, {train_s:.1f}s "
              f"of which index {index_s:.1f}s); {len(queries)} queries ({len(facts)} planted prompts, "
              f"{setup.held_out_queries} held-out); {setup.subsets} subsets of {setup.subset_fraction:.0%}")

        methods = method_ours(base, store, full.adapter_id, queries, n, index_s)
        methods += method_ours_variants(base, store / "adapters" / full.adapter_id, examples, owners, queries,
                                        n, setup.hp.projection_dim)

        t0 = time.monotonic()
        ensemble = [store / "adapters" / full.adapter_id]
        for s in range(1, setup.trak_ensemble):
            r = train_adapter(base, store, contribs, setup.hp, seed=s, adapter_id=f"lds-seed{s}")
            ensemble.append(store / "adapters" / r.adapter_id)
        ens_s = time.monotonic() - t0
        methods += method_trak(base, ensemble, examples, owners, queries, n, args.proj_dim, ens_s)
        if not args.no_kronfluence:
            methods += method_kronfluence(base, ensemble[0], examples, owners, queries, n, store)

        # Ground truth: retrain on each subset with the same seed, measure every query.
        rng = np.random.default_rng(setup.data_seed)
        masks = np.stack([rng.random(n) < setup.subset_fraction for _ in range(setup.subsets)])
        actual = np.zeros((setup.subsets, len(queries)))
        t0 = time.monotonic()
        for s, mask in enumerate(masks):
            sub = [c for c, keep in zip(contribs, mask, strict=True) if keep]
            r = train_adapter(base, store, sub, setup.hp, seed=0, adapter_id=f"lds-sub{s}")
            path = store / "adapters" / r.adapter_id
            actual[s] = measure(load_adapter(base, path), queries, base.tokenizer.pad_id)
            shutil.rmtree(path)
        retrain_s = time.monotonic() - t0
        print(f"ground truth: {setup.subsets} retrainings in {retrain_s:.1f}s ({retrain_s / setup.subsets:.1f}s each); "
              f"query log-prob spread across subsets (mean std) {actual.std(0).mean():.4f}")
        return report(methods, masks, actual, queries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subsets", type=int, default=Setup.subsets, help="M, retrained adapters (>= 16)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest when the 2 cores are shared; results are per thread count)")
    ap.add_argument("--proj-dim", type=int, default=512, help="TRAK projection dimension (ours uses 512)")
    ap.add_argument("--data-seeds", default="21,5", help="comma-separated seeds of the planted data set; one setup each")
    ap.add_argument("--no-kronfluence", action="store_true", help="skip kronfluence EK-FAC")
    args = ap.parse_args()
    seeds = [int(x) for x in args.data_seeds.split(",") if x.strip()]
    # Library deprecation chatter (kronfluence's GradScaler, transformers) would bury the table.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    setup_torch(args.threads)
    started = time.monotonic()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = []
    for pkg in ("dattri", "kronfluence", "peft", "transformers"):
        try:
            from importlib.metadata import version

            versions.append(f"{pkg} {version(pkg)}")
        except Exception:
            versions.append(f"{pkg} missing")
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"python {platform.python_version()}, {', '.join(versions)}")

    runs = []
    for seed in seeds:
        runs.append(run_setup(Setup(subsets=args.subsets, data_seed=seed), args))
    summary(runs, seeds)
    print(f"total {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()

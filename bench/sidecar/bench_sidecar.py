"""Sidecar benchmarks (not tests): serving vs naive peft and vs peft's own mixed batch, adapter
load/memory, attribution cost, and LDS against an exact-gradient baseline. Prints ratios and
absolutes. Planted-data quality is bench/sidecar/bench_planted.py.

Run: .venv/bin/python -m bench.sidecar.bench_sidecar [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sidecar.attribution import lora_params, loss_gradient, projection  # noqa: E402
from sidecar.config import ServeConfig, SidecarConfig, TrainHyperParams  # noqa: E402
from sidecar.model import load_base, setup_torch  # noqa: E402
from sidecar.planted import planted_dataset  # noqa: E402
from sidecar.serving import Engine, InferRequest  # noqa: E402
from sidecar.training import Contribution, make_examples, train_adapter  # noqa: E402

PROMPTS = [b"The old river", b"Alice lives in", b"Q: Where does Omar live? A:", b"The number of the"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_adapters(base, store: Path, n: int) -> list[str]:
    """One real training job, then n copies with perturbed weights (same shapes, distinct outputs)."""
    from safetensors.torch import load_file, save_file

    data, _ = planted_dataset(n_contributors=4, n_planted=1, seed=3)
    res = train_adapter(base, store, [Contribution(a, b) for a, b in data], TrainHyperParams(epochs=1), seed=0,
                        adapter_id="seed")  # one pass: the bench needs shapes, not quality
    src = store / "adapters" / res.adapter_id
    w = load_file(str(src / "adapter_model.safetensors"))
    ids = []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        dst = store / "adapters" / f"bench-{i:03d}"
        shutil.copytree(src, dst)
        save_file({k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in w.items()},
                  str(dst / "adapter_model.safetensors"), metadata={"format": "pt"})
        ids.append(dst.name)
    return ids


def _warm_generate(model, tok, prompt: bytes, max_tokens: int, **kw) -> None:
    ids_t = torch.tensor([[tok.bos_id, *tok.encode(prompt)]])
    with torch.no_grad():
        model.generate(input_ids=ids_t, attention_mask=torch.ones_like(ids_t), max_new_tokens=max_tokens,
                       do_sample=False, pad_token_id=tok.pad_id, eos_token_id=tok.eos_id, **kw)


def bench_serving(base, store: Path, ids: list[str], n_requests: int, max_tokens: int, max_batch: int = 32) -> None:
    """Three ways to serve the same mixed traffic, each warmed by one untimed request first:
    naive peft (load + switch per request), peft's own mixed batch (`adapter_names`, all
    adapters loaded, batches of `max_batch` padded to their longest prompt), and the engine."""
    import copy

    from peft import PeftModel

    from sidecar import bgmv

    rng = np.random.default_rng(0)
    traffic = [(ids[int(rng.integers(len(ids)))], PROMPTS[i % len(PROMPTS)]) for i in range(n_requests)]
    tok = base.tokenizer

    # 1. naive peft: load the adapter for each request, generate alone, drop it
    bgmv.uninstall()
    model = PeftModel.from_pretrained(copy.deepcopy(base.model), str(store / "adapters" / "seed"), adapter_name="seed")
    model.eval()
    _warm_generate(model, tok, PROMPTS[0], 4)
    t0 = time.monotonic()
    naive_tokens = 0
    for a, p in traffic:
        model.load_adapter(str(store / "adapters" / a), adapter_name=a)
        model.set_adapter(a)
        model.eval()
        ids_t = torch.tensor([[tok.bos_id, *tok.encode(p)]])
        with torch.no_grad():
            out = model.generate(input_ids=ids_t, attention_mask=torch.ones_like(ids_t), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tok.pad_id, eos_token_id=tok.eos_id)
        naive_tokens += out.shape[1] - ids_t.shape[1]
        model.set_adapter("seed")
        model.delete_adapter(a)
    naive_s = time.monotonic() - t0

    # 2. peft's own mixed-adapter batch: every adapter loaded once (not timed), adapter_names per row
    t0 = time.monotonic()
    for a in ids:
        model.load_adapter(str(store / "adapters" / a), adapter_name=a)
    peft_load_s = time.monotonic() - t0
    model.eval()
    _warm_generate(model, tok, PROMPTS[0], 4, adapter_names=[ids[0]])
    t0 = time.monotonic()
    peft_tokens = 0
    for b in range(0, len(traffic), max_batch):
        chunk = traffic[b : b + max_batch]
        rows = [[tok.bos_id, *tok.encode(p)] for _, p in chunk]
        width = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids_t)
        for i, r in enumerate(rows):  # left padding
            ids_t[i, width - len(r):] = torch.tensor(r)
            mask[i, width - len(r):] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids_t, attention_mask=mask, max_new_tokens=max_tokens, do_sample=False,
                                 pad_token_id=tok.pad_id, eos_token_id=tok.eos_id,
                                 adapter_names=[a for a, _ in chunk])
        new = out[:, width:]
        peft_tokens += int((new != tok.pad_id).sum())
    peft_s = time.monotonic() - t0
    del model

    # 3. the engine (its own batched LoRA kernel, bucketed prompts, LRU cache)
    engine = Engine(base, store, ServeConfig(cache_max_adapters=len(ids), max_batch=max_batch, max_queue=10_000,
                                             batch_window_ms=5, attribution=False))
    r0 = rss_mb()
    t0 = time.monotonic()
    for a in ids:
        engine.load(a)
    load_s = time.monotonic() - t0
    r1 = rss_mb()
    st = engine.cache.stats()
    engine.submit(InferRequest(ids[0], PROMPTS[0], 4, attribution=False)).result()  # warm, as the peers
    t0 = time.monotonic()
    futs = [engine.submit(InferRequest(a, p, max_tokens, attribution=False)) for a, p in traffic]
    res = [f.result() for f in futs]
    ours_s = time.monotonic() - t0
    ours_tokens = sum(len(r.tokens) for r in res)
    print(f"serving, {len(ids)} adapters, {n_requests} mixed requests x {max_tokens} tokens, all warmed:")
    print(f"  naive peft (load + switch per request):   {naive_tokens / naive_s:9.1f} tok/s ({naive_s:.2f}s)")
    print(f"  peft mixed batch (adapter_names, b={max_batch}):  {peft_tokens / peft_s:9.1f} tok/s ({peft_s:.2f}s; "
          f"loading {len(ids)} adapters {peft_load_s:.2f}s untimed)")
    print(f"  sidecar engine (LRU + mixed batches):     {ours_tokens / ours_s:9.1f} tok/s ({ours_s:.2f}s), "
          f"mean batch {np.mean([r.batch_size for r in res]):.1f}")
    print(f"  ratio vs naive: {(ours_tokens / ours_s) / (naive_tokens / naive_s):.1f}x, "
          f"vs peft mixed batch: {(ours_tokens / ours_s) / (peft_tokens / peft_s):.2f}x")
    print(f"adapter load: {1000 * load_s / len(ids):.1f} ms each (cold, from the store); "
          f"weights+index bytes per cached adapter: {st.bytes / st.loaded / 1024:.1f} KiB; "
          f"RSS growth per cached adapter: {1024 * (r1 - r0) / len(ids):.1f} KiB")
    # attribution cost: same requests one at a time with and without attribution
    plain, attr = [], []
    for a, p in traffic[:16]:
        r = engine.submit(InferRequest(a, p, max_tokens, attribution=False)).result()
        plain.append(r.generate_ms)
        r = engine.submit(InferRequest(a, p, max_tokens, attribution=True)).result()
        attr.append(r.attribution_ms)
    print(f"attribution per inference: {np.mean(attr):.1f} ms vs generation {np.mean(plain):.1f} ms "
          f"= {np.mean(attr) / np.mean(plain):.2f}x of the inference")
    engine.close()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def bench_lds(base, store: Path, n_subsets: int) -> None:
    """LDS: correlate predicted (sum of scores over a subset) with the retrained model's target loss."""
    from peft import PeftModel

    data, _ = planted_dataset(n_contributors=12, n_planted=4, seed=21, filler_sentences=6)
    contribs = [Contribution(a, b) for a, b in data]
    hp = TrainHyperParams(epochs=4, rank=8)
    full = train_adapter(base, store, contribs, hp, seed=0, adapter_id="lds-full")
    pm = PeftModel.from_pretrained(base.model, str(store / "adapters" / full.adapter_id), adapter_name="x").eval()
    params = [p for _, p in lora_params(pm, "x")]
    examples, owners = make_examples(base, contribs, hp.max_length)
    raw = torch.stack([loss_gradient(pm, torch.tensor([e]), torch.tensor([e]), params, "x") for e in examples])
    tok = base.tokenizer
    targets = [[tok.bos_id, *tok.encode(d[:60])] for _, d in data[:6]]
    tgrads = torch.stack([loss_gradient(pm, torch.tensor([t]), torch.tensor([t]), params, "x") for t in targets])
    base.model = pm.unload()
    k = hp.projection_dim
    P = projection(raw.shape[1], k)
    phi = raw @ P
    phi_u = phi / phi.norm(dim=1, keepdim=True)
    tphi = tgrads @ P
    tphi_u = tphi / tphi.norm(dim=1, keepdim=True)
    from sidecar.attribution import build_features

    ours = build_features(phi_u, owners, len(data)) @ tphi_u.numpy().T  # (C, targets)
    exact = np.zeros((len(data), len(targets)))
    np.add.at(exact, owners, (raw @ tgrads.T).numpy())  # naive exact gradient dot product
    rng = np.random.default_rng(0)
    subsets = [rng.random(len(data)) < 0.5 for _ in range(n_subsets)]
    actual = np.zeros((n_subsets, len(targets)))
    for s, mask in enumerate(subsets):
        sub = [c for c, m in zip(contribs, mask, strict=True) if m]
        r = train_adapter(base, store, sub, hp, seed=0, adapter_id=f"lds-{s}")
        m = PeftModel.from_pretrained(base.model, str(store / "adapters" / r.adapter_id)).eval()
        with torch.no_grad():
            for j, t in enumerate(targets):
                ids = torch.tensor([t])
                actual[s, j] = -float(m(input_ids=ids, labels=ids).loss)
        base.model = m.unload()
    for name, scores in (("ours (projected k=512, whitened, cosine)", ours), ("exact gradient dot product", exact)):
        pred = np.stack([scores[mask].sum(0) for mask in subsets])  # (S, targets)
        lds = np.mean([spearman(pred[:, j], actual[:, j]) for j in range(len(targets))])
        print(f"LDS {name}: {lds:.3f}  ({n_subsets} subsets of 50%, {len(targets)} targets, {len(data)} contributors)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests and subsets")
    ap.add_argument("--serving-only", action="store_true", help="skip the LDS part")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 behaves better on a loaded machine)")
    args = ap.parse_args()
    setup_torch(args.threads)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, python {platform.python_version()}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}, threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        base = load_base(SidecarConfig(store=str(store)), log=lambda m: None)
        ids = make_adapters(base, store, 100)
        bench_serving(base, store, ids, 256, 16)
        if not args.serving_only:
            bench_lds(base, store, 8 if args.quick else 16)
    print("planted-data quality: bench/sidecar/bench_planted.py")


if __name__ == "__main__":
    main()

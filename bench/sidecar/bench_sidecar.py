"""Sidecar benchmarks (not tests): serving vs naive peft, adapter load/memory, attribution cost,
planted-data rates, and LDS against an exact-gradient baseline. Prints ratios and absolutes.

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

PLANTED_HP = TrainHyperParams(epochs=40, learning_rate=5e-3, rank=32, target_modules=(
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
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
                        adapter_id="seed")
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


def bench_serving(base, store: Path, ids: list[str], n_requests: int, max_tokens: int) -> None:
    from peft import PeftModel

    rng = np.random.default_rng(0)
    traffic = [(ids[int(rng.integers(len(ids)))], PROMPTS[i % len(PROMPTS)]) for i in range(n_requests)]
    # naive peft: load the adapter for each request, generate alone, drop it
    tok = base.tokenizer
    t0 = time.monotonic()
    naive_tokens = 0
    model = None
    for a, p in traffic:
        path = str(store / "adapters" / a)
        if model is None:
            model = PeftModel.from_pretrained(base.model, path, adapter_name=a)
        else:
            model.load_adapter(path, adapter_name=a)
        model.set_adapter(a)
        model.eval()
        ids_t = torch.tensor([[tok.bos_id, *tok.encode(p)]])
        with torch.no_grad():
            out = model.generate(input_ids=ids_t, attention_mask=torch.ones_like(ids_t), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tok.pad_id, eos_token_id=tok.eos_id)
        naive_tokens += out.shape[1] - ids_t.shape[1]
        if len(model.peft_config) > 1:
            model.delete_adapter([k for k in model.peft_config if k != a][0])
    naive_s = time.monotonic() - t0
    base.model = model.unload() if model is not None else base.model  # strip peft layers again

    engine = Engine(base, store, ServeConfig(cache_max_adapters=len(ids), max_batch=128, max_queue=10_000,
                                             batch_window_ms=5, attribution=False))
    r0 = rss_mb()
    t0 = time.monotonic()
    for a in ids:
        engine.load(a)
    load_s = time.monotonic() - t0
    r1 = rss_mb()
    st = engine.cache.stats()
    # warm, then measure mixed traffic submitted together (dynamic batching)
    engine.submit(InferRequest(ids[0], PROMPTS[0], 4, attribution=False)).result()
    t0 = time.monotonic()
    futs = [engine.submit(InferRequest(a, p, max_tokens, attribution=False)) for a, p in traffic]
    res = [f.result() for f in futs]
    ours_s = time.monotonic() - t0
    ours_tokens = sum(len(r.tokens) for r in res)
    print(f"serving, {len(ids)} adapters, {n_requests} mixed requests x {max_tokens} tokens:")
    print(f"  naive peft (load + switch per request): {naive_tokens / naive_s:9.1f} tok/s ({naive_s:.2f}s)")
    print(f"  sidecar engine (LRU + mixed batches):   {ours_tokens / ours_s:9.1f} tok/s ({ours_s:.2f}s), "
          f"mean batch {np.mean([r.batch_size for r in res]):.1f}")
    print(f"  ratio: {(ours_tokens / ours_s) / (naive_tokens / naive_s):.1f}x")
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


def bench_planted(base, store: Path) -> None:
    data, facts = planted_dataset()
    res = train_adapter(base, store, [Contribution(a, b) for a, b in data], PLANTED_HP, seed=1, adapter_id="planted")
    engine = Engine(base, store, ServeConfig())
    for mode in ("prompt", "paraphrase_prompt"):
        top1 = top3 = grad1 = elicited = 0
        for f in facts:
            want = data[f.contributor][0]
            r = engine.infer(InferRequest(res.adapter_id, getattr(f, mode).encode(), len(f.expected)))
            ranked = [c for c, _ in r.attribution.weights]
            top1 += ranked[:1] == [want]
            top3 += want in ranked[:3]
            g = max(r.attribution.gradient_scores, key=lambda x: x[1])[0]
            grad1 += g == want
            elicited += r.output.startswith(f" {f.expected.split()[0]}".encode())
        n = len(facts)
        name = "verbatim prompts" if mode == "prompt" else "paraphrased prompts"
        print(f"planted ({len(data)} contributors, {n} planted), {name}: top-1 {top1 / n:.0%}, top-3 {top3 / n:.0%}, "
              f"gradient-only top-1 {grad1 / n:.0%}, elicited {elicited}/{n}")
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
    args = ap.parse_args()
    setup_torch(2)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, python {platform.python_version()}, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}, threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        cache = Path(tempfile.gettempdir()) / "ailedger-sidecar-test-base"
        base = load_base(SidecarConfig(store=str(store), base_cache=str(cache)), log=lambda m: None)
        ids = make_adapters(base, store, 100)
        bench_serving(base, store, ids, 256, 16)
        bench_planted(base, store)
        bench_lds(base, store, 8 if args.quick else 16)


if __name__ == "__main__":
    main()

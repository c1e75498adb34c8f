"""Re-running receipts: does a verifier get the same output and attribution, and what does it cost?

Four real sidecar processes on this machine: A (the serving validator's, --threads 1), B
(another validator's, --threads 1), C (--threads 2) and D (--threads 1 with AVX2 kernels
forced on torch, MKL and oneDNN, standing in for a validator on an older CPU family). A
trains the planted benchmark datanet of each seed with the default recipe; its adapter is
exported and imported into B, C and D (hash-checked, as the node will move it). Every
prompt of the planted bench (each fact's exact prefix and paraphrased question, and the
control prompts, with the planted bench's token limits) is served by A's Infer, then
re-run by Verify on A (same process), B, C and D. Printed: outputs that differ (must be
none), the attribution difference in basis points (largest |difference| of one
contribution), and the time of Verify against the original Infer of the same request on
A. With --retrain, B, C and D also train the first seed's adapter again from its manifest
(Retrain) and say whether the weights hash is the same.

    nice -n 10 .venv/bin/python bench/sidecar/bench_verify.py [--seeds 1,101] [--repeat 2] [--retrain]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sidecar.client import SidecarClient  # noqa: E402
from sidecar.planted import CONTROL_PROMPTS, benchmark_datanet  # noqa: E402

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
"""Environment that makes torch, MKL and oneDNN run their AVX2 kernels on an AVX-512 machine."""
SIDECARS = (("A", 1, {}), ("B", 1, {}), ("C", 2, {}), ("D", 1, AVX2))
WHAT = {"A": "same process", "B": "another process, same threads", "C": "another process, 2 threads against 1",
        "D": "another process, AVX2 kernels against AVX-512"}


def start(tmp: Path, name: str, threads: int, env: dict[str, str]) -> tuple[subprocess.Popen, SidecarClient]:
    log = tmp / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "--port", "0", "--store", str(tmp / name), "--threads", str(threads)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    while True:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Sidecar listening on "):
                client = SidecarClient(line.split()[-1], timeout=3600)
                client.wait_ready(300)
                return proc, client
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.1)


def prompts(net: object) -> list[tuple[str, int]]:
    """The planted bench's prompts with its token limits (sidecar.planted.evaluate)."""
    out = []
    for f in net.facts:  # type: ignore[attr-defined]
        out += [(f.prompt, 12), (f.paraphrase_prompt, 32)]
    return out + [(p, 12) for p in CONTROL_PROMPTS]


def run_seed(seed: int, clients: dict[str, SidecarClient], repeat: int, retrain: bool) -> dict[str, list]:
    a = clients["A"]
    net = benchmark_datanet(seed)
    t0 = time.monotonic()
    res = a.train_wait(net.contributions, seed=seed, adapter_id=f"planted-{seed}")
    train_s = time.monotonic() - t0
    t0 = time.monotonic()
    arts = a.export_adapter(res.adapter_id)
    export_s = time.monotonic() - t0
    for name in ("B", "C", "D"):
        t0 = time.monotonic()
        got = clients[name].import_adapter(arts)
        assert got.weights_hash == res.weights_hash, got
        print(f"  import into {name}: {arts.size / 1024:.0f} KiB in {time.monotonic() - t0:.2f}s "
              f"(export {export_s:.2f}s)", flush=True)
    print(f"seed {seed}: trained in {train_s:.0f}s ({res.steps} steps), weights {res.weights_hash[:16]}", flush=True)
    for name in ("B", "C", "D") if retrain else ():
        t0 = time.monotonic()
        again = clients[name].retrain_wait(arts.manifest, net.contributions)
        print(f"  retrain on {name} ({WHAT[name]}; the manifest's 1 thread): same weights "
              f"{again.matches_manifest and again.weights_hash == res.weights_hash} "
              f"({again.weights_hash[:16]}, {again.threads} thread, {time.monotonic() - t0:.0f}s)", flush=True)
    rows: dict[str, list] = {"diff": [], "infer_s": [], "verify_s": [], "outputs_differ": []}
    for prompt, max_tokens in prompts(net):
        for _ in range(repeat):
            t0 = time.monotonic()
            orig = a.infer(res.adapter_id, prompt, max_tokens=max_tokens)
            rows["infer_s"].append(time.monotonic() - t0)
            for name in clients:
                t0 = time.monotonic()
                v = clients[name].verify(res.weights_hash, prompt.encode(), max_tokens,
                                         engine_profile_hash=orig.engine_profile_hash,
                                         expected_output_hash=orig.output_hash, expected_attribution=orig.weights)
                if name == "A":
                    rows["verify_s"].append(time.monotonic() - t0)
                rows["diff"].append((name, v.attribution_diff_bp))
                if not v.output_matches:
                    rows["outputs_differ"].append((name, prompt, orig.output, v.answer.output))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="1,101")
    p.add_argument("--repeat", type=int, default=2, help="runs of each request (timings are medians over them)")
    p.add_argument("--retrain", action="store_true", help="also retrain the first seed's adapter on B, C and D")
    args = p.parse_args()
    import torch

    print(f"machine: {os.cpu_count()} CPUs, {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-verify-"))
    procs, clients = [], {}
    try:
        for name, threads, env in SIDECARS:
            proc, client = start(tmp, name, threads, env)
            procs.append(proc)
            clients[name] = client
        total: dict[str, list] = {"diff": [], "infer_s": [], "verify_s": [], "outputs_differ": []}
        for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
            rows = run_seed(seed, clients, args.repeat, args.retrain and i == 0)
            for k in total:
                total[k] += rows[k]
        print(f"\nrequests: {len(total['infer_s'])} (seeds {args.seeds}, each run {args.repeat}x), "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"outputs that differ from A's Infer: {len(total['outputs_differ'])}")
        for row in total["outputs_differ"][:10]:
            print("   ", row)
        for name, what in WHAT.items():
            d = sorted(x for n, x in total["diff"] if n == name)
            print(f"attribution difference, {what}: max {d[-1]} bp, zero in {d.count(0)}/{len(d)}, "
                  f"<= 1 bp in {sum(x <= 1 for x in d)}/{len(d)}")
        inf, ver = sum(total["infer_s"]), sum(total["verify_s"])
        print(f"Verify on A against A's Infer of the same requests: {ver:.1f}s / {inf:.1f}s = {ver / inf:.2f}x "
              f"(median per request {median(total['verify_s']) * 1000:.0f} ms against "
              f"{median(total['infer_s']) * 1000:.0f} ms)")
    finally:
        for c in clients.values():
            c.close()
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

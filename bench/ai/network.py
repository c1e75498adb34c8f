"""AI as a network service, measured on a 4-validator BFT testnet with a sidecar per validator
(all real processes on this machine; issue 18's goals):

1. **Replication**: an adapter trained through node 1's sidecar with the default recipe on the
   planted benchmark datanet (100 contributions) is registered by node 1; printed per adapter and
   validator: seconds from the registration block to the validator holding all three artifacts,
   and to its first served inference on the adapter (which includes its sidecar's import). The
   goal: every validator serves it within 10 s of the registration block (median).
2. **Verification**: every prompt of the planted bench (each fact's exact prefix and paraphrased
   question, and the control prompts) is served by node 1 (``ailedger infer``) and re-run by node
   2 (``ai_verifyReceipt``): printed, how many re-runs gave the exact output and the attribution
   within tolerance (goal: all), and the time of a verification against the original inference
   (goal: at most 1.5x), both as the node answers them (``ai_infer`` and ``ai_verifyReceipt``
   round trips).

    nice -n 5 .venv/bin/python bench/ai/network.py [--seeds 101] [--adapters 3] [--prompts 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sidecar.planted import CONTROL_PROMPTS, benchmark_datanet  # noqa: E402
from tests.integration.ai.ainet import ai_net, cli, held, infer, publish, rpc, serve  # noqa: E402
from tests.integration.p2p.netsupport import wait_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="101", help="planted datanets, comma-separated")
    parser.add_argument("--adapters", type=int, default=3, help="adapters trained (seeds 1..N of the recipe)")
    parser.add_argument("--prompts", type=int, default=40, help="planted-bench prompts served and re-run")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ai_net(Path(tmp)) as net:
        folder = Path(tmp) / "data"
        folder.mkdir()
        planted = benchmark_datanet(int(args.seeds.split(",")[0]))
        files = {f"{cid.decode()}.txt": data.decode() for cid, data in planted.contributions}
        datanet = publish(net, 1, "planted", files, folder)
        sidecar1 = net.extra[1][1]
        to_artifacts, to_serving, sizes = [], [], []
        for seed in range(1, args.adapters + 1):
            cli(net, 1, "train", "--datanet", f"{datanet}:1", "--account", "0", "--sidecar", sidecar1,
                "--seed", str(seed))
            adapter_id = len(rpc(net, 1, "ai_listModels")["models"])
            model = rpc(net, 1, "ai_getModel", adapter_id)
            block = rpc(net, 1, "eth_getBlockByNumber", hex(model["createdBlock"]), False)
            at = int(block["timestamp"], 16)
            sizes.append(int(rpc(net, 1, "ai_getBlob", model["weightsHash"], "0x0", "0x1")["size"], 16))
            for node in (0, 2, 3):
                digests = (model["weightsHash"], model["attributionIndexHash"], model["manifestHash"])
                wait_for(lambda n=node, ds=digests: all(held(net, n, d) for d in ds), 120, "the artifacts")
                to_artifacts.append(time.time() - at)
                infer(net, node, adapter_id, "The old river", account=2, max_tokens=4)
                to_serving.append(time.time() - at)
        print(f"adapter weights blob: {statistics.median(sizes) / 1e6:.2f} MB (median of {len(sizes)})")
        print(f"artifacts on another validator: median {statistics.median(to_artifacts):.1f} s, "
              f"max {max(to_artifacts):.1f} s after the registration block (whole-second timestamps)")
        print(f"served by another validator:    median {statistics.median(to_serving):.1f} s, "
              f"max {max(to_serving):.1f} s (goal: median <= 10 s)")

        prompts = [(f.prompt, 32) for f in planted.facts] + [(f.paraphrase_prompt, 32) for f in planted.facts]
        prompts += [(p, 32) for p in CONTROL_PROMPTS]
        prompts = prompts[: args.prompts]
        exact = within = 0
        served_s, verify_s = [], []
        infer(net, 1, 2, "The old river", account=3)  # deposits for the account
        for prompt, tokens in prompts:
            answer, seconds = serve(net, 1, 2, prompt, account=3, max_tokens=tokens)
            served_s.append(seconds)
            tx = answer["transactionHash"]
            wait_for(lambda t=tx: rpc(net, 1, "eth_getTransactionReceipt", t), 60, "the receipt's block")
            receipt_id = rpc(net, 1, "ai_getInferenceAncestry", tx)["receipt"]["id"]
            started = time.perf_counter()
            checked = rpc(net, 2, "ai_verifyReceipt", receipt_id)
            verify_s.append(time.perf_counter() - started)
            exact += checked["outputMatches"]
            within += checked["attributionMatches"]
        n = len(prompts)
        ratio = statistics.median(verify_s) / statistics.median(served_s)
        print(f"verification on another validator: exact output {exact}/{n}, attribution within tolerance {within}/{n}")
        print(f"time: ai_infer median {statistics.median(served_s):.2f} s (checks, sidecar run, receipt sent), "
              f"verification median {statistics.median(verify_s):.2f} s: {ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()

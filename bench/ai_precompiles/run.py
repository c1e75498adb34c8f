"""Gas and wall time per AI operation: the precompiles vs a Solidity contract doing the same
storage writes (Baseline.sol, compiled with solc-js, deployed on the same in-process chain).

Run from the repository root: ``python bench/ai_precompiles/run.py [--n 10]``. Prints a table
with ratios (precompile / Solidity) and the machine. Wall time is per transaction, each mined
in its own block (signing + decoding + execution + block sealing: the same overhead on both
sides).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "unit" / "ai_precompiles"))

from ai_harness import CHAIN_ID, ETHER, AIChain  # noqa: E402

import ai_precompiles as ap  # noqa: E402
from ai_precompiles import typed_data  # noqa: E402
from ai_precompiles.abi import abi_type  # noqa: E402
from ai_precompiles.registry import adapter_contribution_root  # noqa: E402

SOLCJS = REPO / "node_modules" / ".bin" / "solcjs"


def compile_baseline() -> tuple[list[dict[str, Any]], bytes]:
    src = (Path(__file__).parent / "Baseline.sol").read_text()
    inp = {"language": "Solidity", "sources": {"Baseline.sol": {"content": src}},
           "settings": {"viaIR": True, "optimizer": {"enabled": True, "runs": 200},
                        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    r = subprocess.run([str(SOLCJS), "--standard-json"], input=json.dumps(inp),
                       capture_output=True, text=True, check=True)
    out = json.loads(r.stdout[r.stdout.index("{"):])
    errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise SystemExit(errors[0]["formattedMessage"])
    c = out["contracts"]["Baseline.sol"]["Baseline"]
    return c["abi"], bytes.fromhex(c["evm"]["bytecode"]["object"])


class Baseline:
    def __init__(self, chain: AIChain, abi: list[dict[str, Any]], address: bytes) -> None:
        self.c, self.address = chain, address
        self.fns = {i["name"]: i for i in abi if i["type"] == "function"}

    def send(self, key: int, name: str, *args: Any, value: int = 0) -> Any:
        item = self.fns[name]
        types = [abi_type(p) for p in item["inputs"]]
        sig = keccak(text=f"{name}({','.join(types)})")[:4]
        sent = self.c.send_raw(key, self.address, sig + encode(types, list(args)), value)
        if sent.computation.is_error:
            raise RuntimeError(f"baseline {name} failed: {sent.computation.error}")
        out = [abi_type(p) for p in item["outputs"]]
        sent.result = decode(out, bytes(sent.computation.output)) if out else None
        return sent


def timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def run(n: int) -> list[tuple[str, list[int], list[float], list[int], list[float]]]:
    c = AIChain(n_keys=8)
    abi, code = compile_baseline()
    bl = Baseline(c, abi, c.deploy(0, code))
    a = c.addr
    OWNER, CUR, CONTRIB, AUTHOR, VAL, USER = 0, 1, 2, 3, 4, 5
    rows: dict[str, tuple[list[int], list[float], list[int], list[float]]] = {}

    def both(op: str, pre: Any, base: Any) -> Any:
        s1, t1 = timed(pre)
        s2, t2 = timed(base)
        r = rows.setdefault(op, ([], [], [], []))
        r[0].append(s1.gas_used)
        r[1].append(t1)
        r[2].append(s2.gas_used)
        r[3].append(t2)
        return s1, s2

    curators = [a(CUR), a(6), a(7)]
    for _ in range(n):
        both("createDatanet",
             partial(c.send, OWNER, "Datanets", "createDatanet", "medical-qa", "medical",
                            "ipfs://description", "CC-BY-4.0", curators, 1, 1 << 20),
             partial(bl.send, OWNER, "createDatanet", "medical-qa", "medical",
                             "ipfs://description", "CC-BY-4.0", curators, 1, 1 << 20))
    ids = []
    for i in range(n):
        h, m = keccak(text=f"blob {i}"), keccak(text=f"meta {i}")
        s1, _ = both("contribute",
                     partial(c.send, CONTRIB, "Datanets", "contribute", 1, h, 1000 + i, "CC-BY-4.0", m),
                     partial(bl.send, CONTRIB, "contribute", 1, h, 1000 + i, "CC-BY-4.0", m))
        ids.append(s1.result)
    for cid in ids:
        both("curate (accepts)",
             partial(c.send, CUR, "Datanets", "curate", cid, True, 0),
             partial(bl.send, CUR, "curate", cid, True, 0))
    both(f"publishVersion ({n} leaves)",
         partial(c.send, OWNER, "Datanets", "publishVersion", 1),
         partial(bl.send, OWNER, "publishVersion", 1))
    for i in range(n):
        w, cfg, tok = keccak(text=f"base {i}"), keccak(text="cfg"), keccak(text="tok")
        both("registerBaseModel",
             partial(c.send, AUTHOR, "ModelRegistry", "registerBaseModel", w, cfg, tok, "apache-2.0"),
             partial(bl.send, AUTHOR, "registerBaseModel", w, cfg, tok, "apache-2.0"))
    root = adapter_contribution_root(c.state, [1], [1])
    parent = 1
    for i in range(n):
        w = keccak(text=f"adapter {i}")
        spec = {"parent_id": parent, "datanet_ids": [1], "datanet_versions": [1],
                "contribution_root": root, "hyper_params_hash": keccak(text="hp"),
                "weights_hash": w, "attribution_index_hash": keccak(text="idx"),
                "validator": a(VAL), "license": "apache-2.0"}
        s1, s2 = both("registerAdapter",
                      partial(c.send, AUTHOR, "ModelRegistry", "registerAdapter", spec),
                      partial(bl.send, AUTHOR, "registerAdapter", parent, [1], [1], root,
                                      keccak(text="hp"), w, keccak(text="idx"), a(VAL), "apache-2.0"))
        adapter_pre, adapter_bl = s1.result, s2.result[0]
        if i == 0:
            parent = adapter_pre  # a chain: each adapter on the previous one (lineage grows)
    c.send(VAL, "Staking", "stake", value=10 * ETHER)
    for _ in range(n):
        both("deposit", partial(c.send, USER, "Inference", "deposit", value=ETHER),
             partial(bl.send, USER, "deposit", value=ETHER))
    attributed = ids[:3]
    weights = [5000, 3000, 2000]
    for i in range(n):
        fee = 10**15 + i
        req = {"user": a(USER), "validator": a(VAL), "adapter_id": 2 * n + 2, "prompt_hash": keccak(text=f"p{i}"),
               "max_fee": fee, "nonce": i, "deadline": 2**40, "chain_id": CHAIN_ID}
        req["adapter_id"] = adapter_pre
        usig_key = bytes(c.keys[USER].key)
        vkey = bytes(c.keys[VAL].key)
        rh = typed_data.request_digest(req, CHAIN_ID)
        out = keccak(text=f"out {i}")
        usig = typed_data.sign(rh, usig_key)
        vsig = typed_data.sign(typed_data.receipt_digest(rh, out, attributed, weights, fee, a(VAL),
                                                         CHAIN_ID), vkey)
        bl_vdigest = keccak(encode(["bytes32", "bytes32", "uint256[]", "uint256[]", "uint256"],
                                   [rh, out, attributed, weights, fee]))
        bvsig = typed_data.sign(bl_vdigest, vkey)
        q = (a(USER), adapter_bl, rh, req["prompt_hash"], usig[64], usig[:32], usig[32:64], out,
             attributed, weights, fee, a(VAL), bvsig[64], bvsig[:32], bvsig[32:64])
        both("submitReceipt (3 attributions)",
             partial(c.send, VAL, "Inference", "submitReceipt", req, usig, out, attributed,
                            weights, fee, a(VAL), vsig),
             partial(bl.send, VAL, "submitReceipt", q))
    both("claim", partial(c.send, CONTRIB, "Rewards", "claim"), partial(bl.send, CONTRIB, "claim"))
    for _ in range(n):
        both("stake", partial(c.send, 6, "Staking", "stake", value=ETHER),
             partial(bl.send, 6, "stake", value=ETHER))
    return [(op, *vals) for op, vals in rows.items()]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md

    return (f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}, "
            f"py-evm {md.version('py-evm')}, {platform.system()} {platform.release()}")


def main() -> int:
    ap_ = argparse.ArgumentParser(description=__doc__)
    ap_.add_argument("--n", type=int, default=10, help="repetitions per operation")
    args = ap_.parse_args()
    rows = run(args.n)
    print(f"machine: {machine()}")
    print(f"repetitions: {args.n} per operation (publish and claim: 1); gas = receipt gasUsed "
          "(incl. 21000 intrinsic + calldata); time = mean wall ms per 1-tx block")
    print(f"{'operation':32} {'precompile gas':>14} {'solidity gas':>12} {'gas ratio':>9} "
          f"{'precompile ms':>13} {'solidity ms':>11} {'time ratio':>10}")
    for op, g1, t1, g2, t2 in rows:
        mg1, mg2 = statistics.mean(g1), statistics.mean(g2)
        mt1, mt2 = statistics.mean(t1) * 1e3, statistics.mean(t2) * 1e3
        print(f"{op:32} {mg1:14,.0f} {mg2:12,.0f} {mg1 / mg2:9.2f} {mt1:13.2f} {mt2:11.2f} "
              f"{mt1 / mt2:10.2f}")
    _ = ap.PRECOMPILES
    return 0


if __name__ == "__main__":
    sys.exit(main())

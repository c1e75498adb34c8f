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


FLOOR = {name: p.min for name, p in ap.PARAMS.items() if name.startswith("gas.")
         and name not in ("gas.signature",)}
"""Every governance price at its lowest bound: what is charged is then the metered work (storage
at EIP-2929/2200 prices, logs, signature recoveries), not the price governance chose."""

Row = tuple[str, list[int], list[int], list[float], list[int], list[float]]


def run(n: int) -> list[Row]:
    c = AIChain(n_keys=8)  # the governance prices of genesis
    cf = AIChain(FLOOR, n_keys=8)  # prices at their floor
    abi, code = compile_baseline()
    bl = Baseline(c, abi, c.deploy(0, code))
    a = c.addr
    OWNER, CUR, CONTRIB, AUTHOR, VAL, USER = 0, 1, 2, 3, 4, 5
    rows: dict[str, tuple[list[int], list[int], list[float], list[int], list[float]]] = {}

    def both(op: str, fn: str, *args: Any, key: int, value: int = 0, module: str = "",
             base_args: tuple[Any, ...] | None = None) -> tuple[Any, Any]:
        s1, t1 = timed(partial(c.send, key, module, fn, *args, value=value))
        sf = cf.send(key, module, fn, *args, value=value)
        assert sf.result == s1.result
        s2, t2 = timed(partial(bl.send, key, fn, *(args if base_args is None else base_args), value=value))
        r = rows.setdefault(op, ([], [], [], [], []))
        r[0].append(s1.gas_used)
        r[1].append(sf.gas_used)
        r[2].append(t1)
        r[3].append(s2.gas_used)
        r[4].append(t2)
        return s1, s2

    curators = [a(CUR), a(6), a(7)]
    for _ in range(n):
        both("createDatanet", "createDatanet", "medical-qa", "medical", "ipfs://description",
             "CC-BY-4.0", curators, 1, 1 << 20, key=OWNER, module="Datanets")
    ids = []
    for i in range(n):
        h, m = keccak(text=f"blob {i}"), keccak(text=f"meta {i}")
        # The precompile's contribution spends a commitment made a block before (the baseline,
        # which front-running would rob, has no such step); the commitment is not in the row.
        salt = c.commit(CONTRIB, 1, h, 1000 + i, "CC-BY-4.0", m)
        cf.commit(CONTRIB, 1, h, 1000 + i, "CC-BY-4.0", m, salt)
        s1, _ = both("contribute", "contribute", 1, h, 1000 + i, "CC-BY-4.0", m, salt, key=CONTRIB,
                     module="Datanets", base_args=(1, h, 1000 + i, "CC-BY-4.0", m))
        ids.append(s1.result)
    for cid in ids:
        both("curate (accepts)", "curate", cid, True, 0, key=CUR, module="Datanets")
    both(f"publishVersion ({n} leaves)", "publishVersion", 1, key=OWNER, module="Datanets")
    for i in range(n):
        w, cfg, tok = keccak(text=f"base {i}"), keccak(text="cfg"), keccak(text="tok")
        both("registerBaseModel", "registerBaseModel", w, cfg, tok, "apache-2.0", key=AUTHOR,
             module="ModelRegistry")
    root = adapter_contribution_root(c.state, [1], [1])
    parent = 1
    for i in range(n):
        w = keccak(text=f"adapter {i}")
        spec = {"parent_id": parent, "datanet_ids": [1], "datanet_versions": [1],
                "contribution_root": root, "hyper_params_hash": keccak(text="hp"),
                "weights_hash": w, "attribution_index_hash": keccak(text="idx"),
                "manifest_hash": keccak(text="manifest"), "validator": a(VAL), "license": "apache-2.0"}
        s1, s2 = both("registerAdapter", "registerAdapter", spec, key=AUTHOR, module="ModelRegistry",
                      base_args=(parent, [1], [1], root, keccak(text="hp"), w, keccak(text="idx"),
                                 keccak(text="manifest"), a(VAL), "apache-2.0"))
        adapter = s1.result
        assert s2.result[0] == adapter
        if i == 0:
            parent = adapter  # a chain: each adapter on the first (lineage of depth 2)
    for chain in (c, cf):
        chain.send(VAL, "Staking", "stake", value=10 * ETHER)
    bl.send(VAL, "stake", value=10 * ETHER)
    for _ in range(n):
        both("deposit", "deposit", key=USER, value=ETHER, module="Inference")
    attributed = ids[:3]
    weights = [5000, 3000, 2000]
    for i in range(n):
        fee = 10**15 + i
        req = {"user": a(USER), "validator": a(VAL), "adapter_id": adapter, "prompt_hash": keccak(text=f"p{i}"),
               "max_tokens": 32, "max_fee": fee, "nonce": i, "deadline": 2**40, "chain_id": CHAIN_ID,
               "commercial": False}
        rh = typed_data.request_digest(req, CHAIN_ID)
        out = keccak(text=f"out {i}")
        usig = typed_data.sign(rh, bytes(c.keys[USER].key))
        engine = keccak(text="engine profile")
        vsig = typed_data.sign(typed_data.receipt_digest(rh, out, engine, attributed, weights, fee, a(VAL),
                                                         CHAIN_ID), bytes(c.keys[VAL].key))
        # the baseline builds the same EIP-712 digests (same domain): the same signatures verify
        q = ((a(USER), adapter, req["prompt_hash"], 32, fee, i, 2**40, CHAIN_ID, False), usig, out, engine,
             attributed, weights, fee, a(VAL), vsig)
        both("submitReceipt (3 attributions)", "submitReceipt", req, usig, out, engine, attributed,
             weights, fee, a(VAL), vsig, key=VAL, module="Inference", base_args=(q,))
    for chain in (c, cf):  # receipts pay once their challenge window is over (not measured)
        chain.mine(ap.get_param(chain.state, "inference.challenge_window"))
        for first in range(1, n + 1, 64):
            chain.send(VAL, "Inference", "settle", list(range(first, min(n, first + 63) + 1)))
    both("claim", "claim", key=CONTRIB, module="Rewards")
    for _ in range(n):
        both("stake", "stake", key=6, value=ETHER, module="Staking")
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
    print("priced: genesis governance prices; floor: every gas.* price at its lowest bound, so "
          "what is charged is the metered work")
    print(f"{'operation':32} {'priced gas':>10} {'floor gas':>10} {'solidity':>10} "
          f"{'priced/sol':>10} {'floor/sol':>9} {'precompile ms':>13} {'solidity ms':>11} {'time ratio':>10}")
    for op, g1, gf, t1, g2, t2 in rows:
        mg1, mgf, mg2 = statistics.mean(g1), statistics.mean(gf), statistics.mean(g2)
        mt1, mt2 = statistics.mean(t1) * 1e3, statistics.mean(t2) * 1e3
        print(f"{op:32} {mg1:10,.0f} {mgf:10,.0f} {mg2:10,.0f} {mg1 / mg2:10.2f} {mgf / mg2:9.2f} "
              f"{mt1:13.2f} {mt2:11.2f} {mt1 / mt2:10.2f}")
    _ = ap.PRECOMPILES
    return 0


if __name__ == "__main__":
    sys.exit(main())

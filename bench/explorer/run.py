"""The explorer's goals (issue 21), measured in headless Chromium against a real `ailedger dev`:

1. **Every page is interactive within 1 s on a 10,000-block chain.** The chain: a datanet of
   1,000 contributions from 10 contributors, all accepted, one version; a base model and an
   adapter trained on that version; receipts crediting 20 contributions each; a stake, a
   proposal and a vote; then empty blocks up to 10,000, then more receipts at the head. Each page
   is loaded ``--runs`` times (the first with an empty cache); printed per page: the time from
   navigation start to the page marking itself ready (its data fetched over JSON-RPC and
   rendered: ``<html data-ready>``), the first load and the median and worst of the others.
2. **The lineage graph of an adapter trained on 1,000 contributions renders within 2 s.** On
   the adapter's page: navigation start to the laid-out graph in the DOM (ai_getLineage fetched,
   dagre layout, SVG of 2,000+ elements), and the layout alone.

Wall-clock times on a shared machine grow with its load, printed first; the node's own time for
the largest read (ai_getLineage of the adapter) is printed beside them.

    .venv/bin/python bench/explorer/run.py [--blocks 10000] [--contributions 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from eth_utils import keccak  # noqa: E402

from tests.integration.ai.client import (  # noqa: E402
    ADDR,
    ETHER,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    make_request,
    sign_receipt,
)
from tests.support.browser import Browser  # noqa: E402
from tests.support.procs import rpc, start_ailedger  # noqa: E402

CONTRIBUTORS = list(range(10, 20))
ATTRIBUTED = 20
FEE = 10**15


def batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """One JSON-RPC batch; every call must succeed."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    replies = sorted(json.loads(conn.getresponse().read()), key=lambda r: r["id"])
    conn.close()
    bad = [r for r in replies if "error" in r]
    assert not bad, bad[:3]
    return [r["result"] for r in replies]


def send_all(node: AINode, txs: list[tuple[int, str, str, list[Any]]], chunk: int = 25) -> None:
    """Send (who, module, fn, args) as dev-account transactions with automine off, then mine them
    into as few blocks as the gas limit allows; every one must succeed."""
    node.rpc("evm_setAutomine", False)
    hashes: list[str] = []
    try:
        for start in range(0, len(txs), chunk):
            hashes += batch(node.url, [("eth_sendTransaction", [{"from": ADDR[who], "to": node.c[module].address,
                                                                 "data": node.calldata(module, fn, *args)}])
                                       for who, module, fn, args in txs[start:start + chunk]])
        while int(node.rpc("txpool_status")["pending"], 16):
            node.rpc("evm_mine")
    finally:
        node.rpc("evm_setAutomine", True)
    for start in range(0, len(hashes), 200):
        receipts = batch(node.url, [("eth_getTransactionReceipt", [h]) for h in hashes[start:start + 200]])
        assert all(r and r["status"] == "0x1" for r in receipts), [r for r in receipts if not r or r["status"] != "0x1"][:2]


def build_chain(node: AINode, contributions: int, blocks: int, receipts: int) -> dict[str, Any]:
    started = time.monotonic()
    datanet, _ = node.do(OWNER, "Datanets", "createDatanet", "bench", "general", "", "CC-BY-4.0", [ADDR[OWNER]], 1, 4096)
    texts = [f"contribution {i}: the bench fact number {i} is {i * 7919 % 10007}.".encode() for i in range(contributions)]
    batch(node.url, [("ai_putBlob", ["0x" + t.hex()]) for t in texts])
    # authorship: each contribution spends its contributor's commitment, made in an earlier block
    from ai_precompiles.datanets import contribution_commitment

    who = [CONTRIBUTORS[i % len(CONTRIBUTORS)] for i in range(contributions)]
    salts = [keccak(text=f"bench salt {i}") for i in range(contributions)]
    send_all(node, [(who[i], "Datanets", "commitContribution",
                     [contribution_commitment(bytes.fromhex(ADDR[who[i]][2:]), datanet, keccak(t), len(t), "CC-BY-4.0",
                                              keccak(text=f"meta {i}"), salts[i])]) for i, t in enumerate(texts)])
    send_all(node, [(who[i], "Datanets", "contribute",
                     [datanet, keccak(t), len(t), "CC-BY-4.0", keccak(text=f"meta {i}"), salts[i]])
                    for i, t in enumerate(texts)])
    first = node.call(OWNER, "Datanets", "contributionCount") - contributions + 1
    ids = list(range(first, first + contributions))
    send_all(node, [(OWNER, "Datanets", "curate", [cid, True, 0]) for cid in ids])
    node.do(OWNER, "Datanets", "publishVersion", datanet)
    root = node.call(OWNER, "Datanets", "getVersion", datanet, 1)[2]
    base, _ = node.do(OWNER, "ModelRegistry", "registerBaseModel", keccak(text="bench base"), keccak(text="cfg"),
                      keccak(text="tok"), "apache-2.0")
    spec = (base, [datanet], [1], root, keccak(text="hp"), keccak(text="bench weights"), keccak(text="index"),
            keccak(text="manifest"), ADDR[VALIDATOR], "apache-2.0")
    adapter, _ = node.do(OWNER, "ModelRegistry", "registerAdapter", spec)
    node.do(VALIDATOR, "Staking", "stake", value=2 * ETHER)
    node.do(USER, "Inference", "deposit", value=ETHER)
    nonce = [0]

    def receipt() -> int:
        nonce[0] += 1
        deadline = int(node.head()["timestamp"], 16) + 3600
        prompt = f"bench prompt {nonce[0]}"
        node.put_blob(prompt.encode())
        req = make_request(USER, adapter, max_fee=2 * FEE, nonce=nonce[0], deadline=deadline, prompt=prompt)
        chosen = [ids[(nonce[0] * 37 + k * 53) % len(ids)] for k in range(ATTRIBUTED)]
        chosen = sorted(set(chosen))
        weights = [10000 // len(chosen)] * len(chosen)
        weights[0] += 10000 - sum(weights)
        output = f"bench output {nonce[0]}".encode()
        node.put_blob(output)
        signed = sign_receipt(req, chosen, weights, FEE, output=keccak(output))
        rid, _ = node.do(VALIDATOR, "Inference", "submitReceipt", *signed.abi_args())
        return int(rid)

    for _ in range(receipts // 2):
        receipt()
    head = int(node.rpc("eth_blockNumber"), 16)
    # Stake counts for governance from the next epoch: cross one, then propose and vote.
    node.rpc("anvil_mine", hex(100))
    node.do(VALIDATOR, "Governance", "propose", "reward.validator_bp", 2100)
    node.do(VALIDATOR, "Governance", "vote", 1, True)
    head = int(node.rpc("eth_blockNumber"), 16)
    left = blocks - head - receipts // 2 - 1
    while left > 0:
        step = min(left, 1000)
        node.rpc("anvil_mine", hex(step))
        left -= step
    last = 0
    for _ in range(receipts - receipts // 2):
        last = receipt()
    head = int(node.rpc("eth_blockNumber"), 16)
    receipt_block = node.rpc("ai_getReceipt", last)["receipt"]["blockNumber"]
    tx = node.rpc("eth_getBlockByNumber", hex(receipt_block), False)["transactions"][0]
    print(f"chain built in {time.monotonic() - started:.0f} s: head {head}, {contributions} contributions, "
          f"adapter {adapter}, receipts up to {last}", flush=True)
    return {"head": head, "datanet": datanet, "contribution": ids[len(ids) // 2], "base": base, "adapter": adapter,
            "receipt": last, "tx": tx, "contributor": ADDR[CONTRIBUTORS[0]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10_000, help="chain length")
    parser.add_argument("--contributions", type=int, default=1000, help="contributions the adapter trained on")
    parser.add_argument("--receipts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="loads of each page")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_ailedger(["--datadir", str(Path(tmp) / "chain")], Path(tmp))
        try:
            node = AINode(proc)
            ids = build_chain(node, args.contributions, args.blocks, args.receipts)
            t = time.monotonic()
            lineage = rpc(proc.url, "ai_getLineage", [ids["adapter"]], timeout=60)["result"]
            lineage_s = time.monotonic() - t
            n_contrib = sum(len(d["contributionIds"]) for s in lineage["path"] for d in s["datanetVersionsDetail"])
            print(f"ai_getLineage of adapter {ids['adapter']}: {n_contrib} contributions, "
                  f"{len(json.dumps(lineage)) / 1024:.0f} KiB, {lineage_s * 1000:.0f} ms at the node", flush=True)
            pages = {
                "home": "", "block (head)": f"block/{ids['head']}", "tx (inference receipt)": f"tx/{ids['tx']}",
                "address (contributor)": f"address/{ids['contributor']}", "datanet (1,000 contributions)": f"datanet/{ids['datanet']}",
                "contribution": f"contribution/{ids['contribution']}", "model (base)": f"model/{ids['base']}",
                "model (adapter)": f"model/{ids['adapter']}", "receipt": f"receipt/{ids['receipt']}",
                "validators": "validators", "governance": "governance",
            }
            results: dict[str, Any] = {"load": os.getloadavg()[0], "lineage_rpc_ms": lineage_s * 1000, "pages": {}}
            print(f"\n{'page':32} {'first':>8} {'median':>8} {'worst':>8}   goal 1000 ms", flush=True)
            with Browser(timeout_ms=60000) as browser:
                for name, path in pages.items():
                    times = []
                    for _ in range(args.runs):
                        times.append(browser.open(f"{proc.url}/explorer/{path}")["readyMs"])
                    errors = [m for m in browser.messages() if m["kind"] != "warning"]
                    rest = times[1:] or times
                    results["pages"][name] = {"first": times[0], "median": statistics.median(rest), "worst": max(rest),
                                              "errors": errors}
                    verdict = "ok" if max(rest) < 1000 else "OVER"
                    print(f"{name:32} {times[0]:8.0f} {statistics.median(rest):8.0f} {max(rest):8.0f}   {verdict}"
                          + (f"  console errors: {errors[:2]}" if errors else ""), flush=True)
                graph = []
                for _ in range(args.runs):
                    browser.open(f"{proc.url}/explorer/model/{ids['adapter']}")
                    browser.wait("svg.lineage[data-rendered-ms]", timeout_ms=60000)
                    graph.append(browser.eval("""(() => { const s = document.querySelector('svg.lineage').dataset;
                        return { rendered: +s.renderedMs, layout: +s.layoutMs, nodes: +s.nodes, edges: +s.edges }; })()"""))
                rendered = [g["rendered"] for g in graph]
                layout = [g["layout"] for g in graph]
                results["graph"] = {"nodes": graph[0]["nodes"], "edges": graph[0]["edges"], "rendered": rendered,
                                    "layout": layout}
                print(f"\nlineage graph of adapter {ids['adapter']} ({graph[0]['nodes']} nodes, {graph[0]['edges']} edges): "
                      f"in the DOM {statistics.median(rendered):.0f} ms after navigation start (median of {len(rendered)}, "
                      f"worst {max(rendered):.0f}; goal 2000 ms), of which dagre's layout {statistics.median(layout):.0f} ms",
                      flush=True)
            print(f"load at the end: {os.getloadavg()[0]:.1f}", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
        finally:
            proc.kill()


if __name__ == "__main__":
    main()

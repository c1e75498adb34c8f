"""BFT finality on loopback: 4 validators (real `ailedger run` processes), against the
single-node dev chain (`ailedger dev`, automine) in the same run.

- latency: eth_sendRawTransaction to a receipt on the node it was sent to (a committed block is
  final), one transfer at a time, p50/p99;
- throughput: N transfers sent as fast as the client can (JSON-RPC batches, spread over the
  validators, which gossip them to the proposer), transfers/s from the first send to the last
  receipt;
- cost: CPU seconds each validator process spent per transfer during the throughput run (user +
  system, from /proc), against raw py-evm's CPU per transfer mining the same kind of transfers
  in blocks of 200 in this process. Four validators sharing one 2-core machine is not how
  validators run; CPU per transaction per validator is what a validator on its own machine pays.

    nice -n 10 .venv/bin/python bench/consensus/bench_finality.py --latency 40 --transfers 1000
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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.consensus.bftnet import init_net  # noqa: E402
from tests.integration.p2p.netsupport import ACCOUNTS, result, transfer, wait_for  # noqa: E402
from tests.support.procs import start_ailedger  # noqa: E402

SINK = "0x000000000000000000000000000000000000bEEF"


def batch(url: str, calls: list[tuple[str, list]]) -> list[dict]:
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        out = json.loads(resp.read())
    return sorted(out, key=lambda r: r["id"])


def latency(urls: list[str], chain_id: int, count: int, nonces: list[int]) -> list[float]:
    out = []
    for k in range(count):
        sender = k % len(ACCOUNTS)
        raw = transfer(chain_id, sender, nonces[sender], SINK)
        nonces[sender] += 1
        url = urls[k % len(urls)]
        started = time.perf_counter()
        tx_hash = result(url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        wait_for(lambda url=url, tx_hash=tx_hash: result(url, "eth_getTransactionReceipt", [tx_hash]), 60,
                 "receipt", interval=0.02)
        out.append(time.perf_counter() - started)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_pyevm_cpu_per_tx(count: int) -> float:
    """CPU seconds per transfer of raw py-evm (decode, recover, mine_all in blocks of 200)."""
    from bench.rpc_throughput import make_workload, run_raw_pyevm

    work = make_workload(count, 20)
    started = time.process_time()
    run_raw_pyevm(work, 200)
    return (time.process_time() - started) / count


def throughput(urls: list[str], chain_id: int, count: int, nonces: list[int],
               pids: list[int] | None = None) -> tuple[float, int, float]:
    """(seconds, transfers included, CPU seconds per transfer per node of ``pids``)."""
    raws: list[list[bytes]] = [[] for _ in urls]
    for k in range(count):
        sender = k % len(ACCOUNTS)
        raw = transfer(chain_id, sender, nonces[sender], SINK)
        nonces[sender] += 1
        raws[sender % len(urls)].append(raw)  # each account's transfers go to one node, in nonce order
    before = int(result(urls[0], "eth_getBalance", [SINK, "latest"]), 16)
    cpu_before = [cpu_seconds(pid) for pid in pids or []]
    started = time.perf_counter()
    hashes = []
    for url, items in zip(urls, raws, strict=True):
        for i in range(0, len(items), 100):
            answers = batch(url, [("eth_sendRawTransaction", ["0x" + r.hex()]) for r in items[i:i + 100]])
            hashes += [a["result"] for a in answers if "result" in a]
    # Each transfer pays the sink 1 wei: its balance counts the included ones, in one cheap call.
    wait_for(lambda: int(result(urls[0], "eth_getBalance", [SINK, "latest"]), 16) >= before + len(hashes), 600,
             "every transfer included", interval=0.1)
    elapsed = time.perf_counter() - started
    cpu = [cpu_seconds(pid) - b for pid, b in zip(pids or [], cpu_before, strict=True)]
    # A sample has its receipt on every node (eth_getTransactionReceipt costs ~0.2 s in a block of
    # 500 transfers: all of them would take minutes).
    sample = hashes[:: max(1, len(hashes) // 20)]
    for url in urls:
        answers = batch(url, [("eth_getTransactionReceipt", [h]) for h in sample])
        assert all(a.get("result") and a["result"]["status"] == "0x1" for a in answers)
    per_tx = sum(cpu) / len(cpu) / len(hashes) if cpu and hashes else 0.0
    return elapsed, len(hashes), per_tx


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=int, default=40, help="transfers timed one at a time")
    ap.add_argument("--transfers", type=int, default=1000, help="transfers for the throughput run")
    ap.add_argument("--timeout-commit", type=float, default=1.0, help="consensus timeoutCommit, seconds")
    ap.add_argument("--max-block-txs", type=int, default=0,
                    help="consensus maxBlockTxs: most transactions per proposal (0: the node's default)")
    args = ap.parse_args()
    consensus: dict[str, float] = {"timeoutCommit": args.timeout_commit}
    if args.max_block_txs:
        consensus["maxBlockTxs"] = args.max_block_txs
    print(f"consensus settings: {consensus}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, {platform.python_implementation()} "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "bft").mkdir()
        net = init_net(tmp / "bft", validators=4, consensus=consensus)
        net.start()
        try:
            net.wait_heads(2, timeout=120)
            urls = [net.url(i) for i in range(4)]
            nonces = [0] * len(ACCOUNTS)
            bft_lat = latency(urls, net.chain_id, args.latency, nonces)
            pids = [net.procs[i].proc.pid for i in range(4)]
            bft_secs, bft_n, bft_cpu = throughput(urls, net.chain_id, args.transfers, nonces, pids)
            upto = net.assert_agree([0, 3])  # the full pairwise check is the tests' job
            print(f"nodes 0 and 3 agree on all {upto} blocks")
        finally:
            net.stop_all()
        dev = start_ailedger([], tmp)
        try:
            chain_id = int(result(dev.url, "eth_chainId"), 16)
            nonces = [0] * len(ACCOUNTS)
            dev_lat = latency([dev.url], chain_id, args.latency, nonces)
            dev_secs, dev_n, dev_cpu = throughput([dev.url], chain_id, args.transfers, nonces, [dev.proc.pid])
        finally:
            dev.kill()
    raw_cpu = raw_pyevm_cpu_per_tx(min(args.transfers, 2000))
    bft_tps, dev_tps = bft_n / bft_secs, dev_n / dev_secs
    print(f"{'':28}{'4 validators':>14}{'dev (1 node)':>14}{'ratio':>8}")
    for name, a, b in [("finality p50 (s)", statistics.median(bft_lat), statistics.median(dev_lat)),
                       ("finality p99 (s)", pct(bft_lat, 0.99), pct(dev_lat, 0.99)),
                       ("sustained transfers/s", bft_tps, dev_tps)]:
        print(f"{name:28}{a:14.3f}{b:14.3f}{a / b:8.2f}")
    print(f"{'CPU ms per transfer per node':28}{bft_cpu * 1e3:14.3f}{dev_cpu * 1e3:14.3f}{bft_cpu / dev_cpu:8.2f}")
    print(f"raw py-evm CPU ms per transfer (blocks of 200): {raw_cpu * 1e3:.3f}; "
          f"ratio per validator/raw py-evm = {bft_cpu / raw_cpu:.2f}x, dev/raw py-evm = {dev_cpu / raw_cpu:.2f}x")
    print(f"({args.latency} transfers timed one at a time; {bft_n} and {dev_n} transfers for throughput)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

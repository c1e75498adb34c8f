"""The network attacks of issue 19 against a running testnet, each measured against a quiet window
of the same run just before it: the target's block rate and its RPC latency (p50, p99), and its
memory. Goal: under each attack the target keeps at least 80% of its quiet block rate and its RPC
p99 stays within 2x the quiet one.

The testnet: two BFT validators and one follower, real `ailedger run` processes on loopback. The
attackers are `tests/integration/p2p/attackers.py` processes with throwaway keys, run with
``--repeat`` (a peer that is cut off or banned comes back with a fresh key, so the pressure lasts
the whole window) and at the lowest CPU priority (they stand in for attackers on machines of
their own):

- window: yamux DATA past the receive window, at validator 0;
- claim-head: three peers claiming head 10^12 that never answer, at the follower (the node that
  syncs);
- stale-commits: four keyless peers sending 0.9 MB stale commit frames on the consensus stream,
  at validator 0;
- unpayable: 800-transaction batches from an unfunded key, 50 a second, at validator 0.

    nice -n 10 .venv/bin/python bench/security/run.py --seconds 30 [--attacks window,unpayable]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.consensus.bftnet import Net, init_net  # noqa: E402
from tests.integration.p2p.netsupport import head, result, wait_for  # noqa: E402
from tests.support.procs import REPO  # noqa: E402

ATTACKERS = REPO / "tests" / "integration" / "p2p" / "attackers.py"
#: attack -> (node it aims at, extra attacker flags)
ATTACKS = {
    "window": (0, []),
    "claim-head": (2, ["--peers", "3"]),
    "stale-commits": (0, ["--peers", "4"]),
    "unpayable": (0, ["--rate", "50"]),
}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(net: Net, node: int, seconds: float) -> dict[str, float]:
    """Blocks per second and eth_blockNumber / eth_getBalance latencies on ``node`` over ``seconds``."""
    url = net.url(node)
    pid = net.procs[node].proc.pid
    latencies: list[float] = []
    rss = [rss_mib(pid)]
    first = head(url)
    started = time.monotonic()
    calls = (("eth_blockNumber", []), ("eth_getBalance", ["0x000000000000000000000000000000000000bEEF", "latest"]))
    i = 0
    while time.monotonic() - started < seconds:
        method, params = calls[i % 2]
        i += 1
        t = time.monotonic()
        try:
            result(url, method, params)
            latencies.append(time.monotonic() - t)
        except Exception:
            latencies.append(10.0)  # a failed call counts as a 10 s one
        if i % 20 == 0:
            rss.append(rss_mib(pid))
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    last = head(url)
    latencies.sort()
    return {
        "blocks_per_s": (last - first) / elapsed,
        "rpc_p50_ms": 1000 * statistics.median(latencies),
        "rpc_p99_ms": 1000 * latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "rpc_calls": len(latencies),
        "rss_max_mib": max(rss),
    }


def multiaddr(net: Net, i: int) -> str:
    config = net.config(i)
    return f"/ip4/127.0.0.1/tcp/{config['p2pPort']}/p2p/{config['peerId']}"


def run_attack(net: Net, tmp: Path, name: str, seconds: float) -> tuple[dict[str, float], str]:
    node, extra = ATTACKS[name]
    keydir = tmp / f"keys-{name}"
    keydir.mkdir()
    log = tmp / f"attack-{name}.log"
    with open(log, "wb") as out:
        # The attackers share this machine's cores with the nodes: at the lowest priority they stand
        # in for attackers on machines of their own (the node's own work is what is measured).
        proc = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, str(ATTACKERS), name, multiaddr(net, node), net.url(node),
             str(keydir), "--repeat", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
    marks = {"bans": "banning peer", "graylisted": "graylisting peer", "refused hellos": "consensus hello",
             "muxer violations": "broke the muxer"}
    before = net.logs(node)
    try:
        wait_for(lambda: f"ATTACK {name} started" in log.read_text(errors="replace"), 90, f"{name} started")
        figures = measure(net, node, seconds)
    finally:
        proc.kill()
        proc.wait()
    after = net.logs(node)
    summary = ", ".join(f"{what} {after.count(mark) - before.count(mark)}" for what, mark in marks.items())
    return figures, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each quiet and attacked window")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated: " + ", ".join(ATTACKS))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    names = [a for a in args.attacks.split(",") if a]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ailedger-security-") as scratch:
        tmp = Path(scratch)
        net = init_net(tmp, validators=2, nodes=3)
        try:
            net.start()
            net.wait_heads(3, timeout=180)
            time.sleep(5)  # past the start-up syncs
            for name in names:
                node = ATTACKS[name][0]
                quiet = measure(net, node, args.seconds)
                attacked, summary = run_attack(net, tmp, name, args.seconds)
                time.sleep(3)  # let the last attacker's connections drain before the next quiet window
                rows.append((name, node, quiet, attacked, summary))
        finally:
            net.stop_all()
    print(f"\n# {platform.node()}, {platform.processor() or platform.machine()}, {args.seconds:.0f} s windows, "
          "quiet window measured just before each attack\n")
    print("| attack | node | blocks/s quiet → attacked (ratio) | RPC p99 ms quiet → attacked (ratio) | "
          "RPC p50 ms | RSS max MiB | what the node did |")
    print("|---|---|---|---|---|---|---|")
    out = []
    for name, node, quiet, attacked, summary in rows:
        rate = attacked["blocks_per_s"] / quiet["blocks_per_s"] if quiet["blocks_per_s"] else float("nan")
        p99 = attacked["rpc_p99_ms"] / quiet["rpc_p99_ms"]
        print(f"| {name} | {'validator 0' if node == 0 else 'follower'} | {quiet['blocks_per_s']:.2f} → "
              f"{attacked['blocks_per_s']:.2f} ({rate:.0%}) | {quiet['rpc_p99_ms']:.1f} → {attacked['rpc_p99_ms']:.1f} "
              f"({p99:.2f}x) | {quiet['rpc_p50_ms']:.1f} → {attacked['rpc_p50_ms']:.1f} | {quiet['rss_max_mib']:.0f} → "
              f"{attacked['rss_max_mib']:.0f} | {summary} |")
        out.append({"attack": name, "node": node, "quiet": quiet, "attacked": attacked, "block_rate_ratio": rate,
                    "p99_ratio": p99, "summary": summary})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

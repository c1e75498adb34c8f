"""Sync speed: N blocks of T transfers synced from a peer over libp2p, against re-importing
the same blocks from local disk in the same run (both re-execute and verify every block).
Also gossip latency: eth_sendRawTransaction to its receipt, on a follower vs on the validator.

    nice -n 10 .venv/bin/python bench/sync/run.py --blocks 200 --txs 100 --latency 50
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.p2p.netsupport import (  # noqa: E402
    ACCOUNTS,
    build_chain,
    head,
    init_testnet,
    result,
    start_node,
    transfer,
    wait_for,
)


def local_reimport(directory: Path, scratch: Path) -> tuple[int, float]:
    """Import node0's blocks into a fresh ledger exactly as sync does, from disk."""
    from consensus import SingleValidator  # noqa: F401 - the commit type sync verifies
    from genesis import load_genesis
    from node.chain.assembly import assemble
    from node.network import encode_block
    from state import Ledger, LevelDBStore

    genesis = load_genesis(directory / "genesis.json")
    source = Ledger(LevelDBStore(directory / "node0" / "chain"), genesis)
    target = Ledger(LevelDBStore(scratch), genesis)
    src_core = assemble(source, produces_blocks=False).core
    pipeline = assemble(target, produces_blocks=False).pipeline
    n = int(source.head.block_number)
    items = []
    for number in range(1, n + 1):
        header = source.header_by_number(number)
        assert header is not None
        item = encode_block(src_core, source.block(header))
        assert item is not None
        items.append(item)
    started = time.perf_counter()
    for item in items:
        pipeline.import_verified(item.block, item.commit)
    elapsed = time.perf_counter() - started
    source.close()
    target.close()
    return n, elapsed


def burst(validator, follower, count: int) -> None:
    """Send ``count`` transactions to the follower as fast as possible (20 senders) and see
    how many reach the validator's chain, and how fast: gossipsub's per-peer rate limit
    (10/s by default) silently drops the rest."""
    chain_id = int(result(validator.url, "eth_chainId"), 16)
    senders = list(range(1, 17))
    nonces = {s: int(result(follower.url, "eth_getTransactionCount", [ACCOUNTS[s].address, "pending"]), 16) for s in senders}
    raws = []
    for k in range(count):
        s = senders[k % len(senders)]
        raws.append(transfer(chain_id, s, nonces[s], ACCOUNTS[0].address))
        nonces[s] += 1
    t = time.perf_counter()
    hashes = [result(follower.url, "eth_sendRawTransaction", ["0x" + r.hex()]) for r in raws]
    sent_s = time.perf_counter() - t

    def landed() -> int:
        return sum(1 for h in hashes if result(validator.url, "eth_getTransactionReceipt", [h]) is not None)

    try:
        wait_for(lambda: landed() == count, 120, "burst landed", interval=0.5)
    except TimeoutError:
        pass
    total_s = time.perf_counter() - t
    n = landed()
    print(f"burst: {count} txs sent to the follower in {sent_s:.1f}s ({count / sent_s:.0f} tx/s); "
          f"{n}/{count} landed on the validator's chain after {total_s:.1f}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=200)
    ap.add_argument("--txs", type=int, default=100, help="transfers per block")
    ap.add_argument("--latency", type=int, default=30, help="transactions per latency sample set (0: skip)")
    ap.add_argument("--block-time", type=float, default=0.2, help="the validator's block time during the run")
    ap.add_argument("--burst", type=int, default=300, help="transactions sent at once to the follower (0: skip)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-bench-sync-"))
    try:
        directory = init_testnet(tmp, 2, block_time=args.block_time)
        t = time.perf_counter()
        n = build_chain(directory, args.blocks, args.txs)
        print(f"built {n} blocks of {args.txs} transfers in {time.perf_counter() - t:.1f}s")
        _, local_s = local_reimport(directory, tmp / "reimport")
        print(f"local re-import: {n} blocks in {local_s:.2f}s = {n / local_s:.1f} blocks/s, {n * args.txs / local_s:.0f} tx/s")
        validator = start_node(directory, 0, tmp)
        follower = None
        try:
            t = time.perf_counter()
            follower = start_node(directory, 1, tmp)
            wait_for(lambda: head(follower.url) >= n, 3600, "sync", interval=0.05)
            sync_s = time.perf_counter() - t
            print(f"p2p sync (incl. follower start-up): {n} blocks in {sync_s:.2f}s = {n / sync_s:.1f} blocks/s, "
                  f"{n * args.txs / sync_s:.0f} tx/s")
            print(f"ratio p2p sync / local re-import speed: {local_s / sync_s:.2f}x (with start-up)")
            if args.latency:
                chain_id = int(result(validator.url, "eth_chainId"), 16)
                nonce = 10**6  # fresh sender below avoids clashing with the pre-built chain
                for label, node, sender in (("validator", validator, 18), ("follower", follower, 17)):
                    base = int(result(node.url, "eth_getTransactionCount", [ACCOUNTS[sender].address, "latest"]), 16)
                    samples = []
                    for k in range(args.latency):
                        raw = transfer(chain_id, sender, base + k, ACCOUNTS[0].address)
                        t = time.perf_counter()
                        h = result(node.url, "eth_sendRawTransaction", ["0x" + raw.hex()])
                        wait_for(lambda h=h, node=node: result(node.url, "eth_getTransactionReceipt", [h]), 60,
                                 "receipt", interval=0.005)
                        samples.append(time.perf_counter() - t)
                    samples.sort()
                    p50 = statistics.median(samples)
                    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
                    print(f"send->receipt on {label}: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
                          f"(block time {args.block_time} s, {len(samples)} txs)")
                del nonce
            if args.burst:
                burst(validator, follower, args.burst)
        finally:
            validator.kill()
            if follower is not None:
                follower.kill()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

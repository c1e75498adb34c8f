"""State sync against block replay: a joiner to a long chain with state, ready to serve the head.

node0's chain is built first (N blocks, each paying T fresh accounts, so the state grows with the
chain). Then, in the same run, two joiners start on empty datadirs with node0 as their only peer:

- `--state-sync`: takes node0's state at a recent committed block and replays the rest;
- block replay (the default): re-executes every block since genesis. It is stopped after
  `--replay-seconds` when it has not finished; its time for the whole chain is then
  extrapolated from its rate so far (and printed as such).

"Ready" is the joiner's eth_blockNumber reaching the chain's head at its start.

    nice -n 10 .venv/bin/python bench/sync/state_sync.py --blocks 10000 --txs 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eth_utils import keccak, to_checksum_address  # noqa: E402

from tests.integration.p2p.netsupport import ACCOUNTS, head, init_testnet, start_node, transfer  # noqa: E402


def build(directory: Path, blocks: int, txs: int) -> int:
    """node0's chain: ``txs`` transfers a block, each to a new account."""
    from consensus import SingleValidator
    from genesis import load_genesis
    from state import Ledger, LevelDBStore, decode_transaction

    genesis = load_genesis(directory / "genesis.json")
    key = bytes.fromhex((directory / "node0" / "validator.key").read_text().strip()[2:])
    validator = SingleValidator(key, genesis.chain_id)
    ledger = Ledger(LevelDBStore(directory / "node0" / "chain"), genesis)
    nonces = [0] * len(ACCOUNTS)
    try:
        for b in range(blocks):
            raws = []
            for k in range(txs):
                sender = k % len(ACCOUNTS)
                to = to_checksum_address(keccak(b"%d/%d" % (b, k))[:20])
                raws.append(transfer(genesis.chain_id, sender, nonces[sender], to))
                nonces[sender] += 1
            ledger.build_block([decode_transaction(r) for r in raws], genesis.timestamp + b + 1, validator.address,
                               lambda h, bh: validator.commit(h, bh).encode())
        return int(ledger.head.block_number)
    finally:
        ledger.close()


def join(directory: Path, tmp: Path, target: int, limit: float, *flags: str) -> tuple[float, int, bool]:
    """(seconds, head reached, finished) of a joiner started with ``flags``."""
    shutil.rmtree(directory / "node1" / "chain", ignore_errors=True)
    started = time.perf_counter()
    node = start_node(directory, 1, tmp, *flags)
    try:
        reached = 0
        while time.perf_counter() - started < limit:
            try:
                reached = head(node.url)
            except OSError:
                pass
            if reached >= target:
                return time.perf_counter() - started, reached, True
            time.sleep(0.1)
        return time.perf_counter() - started, reached, False
    finally:
        node.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--txs", type=int, default=2, help="transfers (each to a new account) per block")
    ap.add_argument("--replay-seconds", type=float, default=180.0, help="stop block replay after this long")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cpus, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-bench-state-sync-"))
    try:
        directory = init_testnet(tmp, 2, block_time=1.0)
        t = time.perf_counter()
        n = build(directory, args.blocks, args.txs)
        print(f"built {n} blocks of {args.txs} transfers to new accounts in {time.perf_counter() - t:.0f}s")
        validator = start_node(directory, 0, tmp)
        try:
            target = head(validator.url)
            state_s, _, done = join(directory, tmp, target, 600, "--state-sync")
            print(f"state sync: ready at block {target} in {state_s:.1f}s" + ("" if done else " (NOT finished)"))
            target = head(validator.url)
            replay_s, reached, done = join(directory, tmp, target, args.replay_seconds)
            if done:
                print(f"block replay: ready at block {target} in {replay_s:.1f}s")
            else:
                rate = max(reached, 1) / replay_s
                replay_s = target / rate
                print(f"block replay: {reached} of {target} blocks in {args.replay_seconds:.0f}s ({rate:.1f} blocks/s "
                      f"with start-up): {replay_s:.0f}s for the whole chain, extrapolated")
            print(f"ratio block replay / state sync time = {replay_s / state_s:.1f}x")
        finally:
            validator.kill()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

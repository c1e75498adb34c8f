"""Block building and import in one process, CPU seconds per transfer: the ledger against raw
py-evm on the same signed transfers, in blocks of the same size.

- raw py-evm: decode, recover and `mine_all` (what bench/rpc_throughput.py's raw run does);
- ledger build: `Ledger.build_block` on decoded transactions whose senders are known (the pool
  holds them so: they were recovered at admission);
- ledger import: `Ledger.import_block` of those blocks by a second ledger (a follower or a BFT
  validator checking a proposal), senders not yet known, then known (recovered when the
  transactions reached its pool).

CPU time (this process's user + system), best of `--repeat` runs: on a shared machine CPU time
is steadier than wall time, though not immune to load. Run it with another checkout first on
PYTHONPATH to compare two versions.

    python bench/block_build.py --txs 2000 --block-size 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(":")[0] or str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import rlp  # noqa: E402

from bench.rpc_throughput import CHAIN_ID, make_workload, run_raw_pyevm  # noqa: E402
from genesis import dev_genesis  # noqa: E402
from state import Ledger, MemoryStore, decode_transaction  # noqa: E402
from state.vm import LedgerBlock  # noqa: E402


def cpu(fn: Callable[[], object]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def build_all(ledger: Ledger, txs: list, size: int, timestamp: int) -> list:  # type: ignore[type-arg]
    return [ledger.build_block(txs[i:i + size], timestamp + n + 1, b"\0" * 20).block
            for n, i in enumerate(range(0, len(txs), size))]


def forget_senders() -> None:
    try:
        from state.senders import SENDERS
    except ImportError:  # a checkout without the sender cache
        return
    SENDERS._senders.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=2000)
    ap.add_argument("--block-size", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = make_workload(args.txs, 20)
    genesis = dev_genesis(chain_id=CHAIN_ID, accounts=20, timestamp=1_700_000_000)
    import state

    print(f"code: {Path(state.__file__).resolve().parents[1]}; load average {os.getloadavg()[0]:.2f}")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        best["raw py-evm"] = min(best.get("raw py-evm", 1e9), cpu(lambda: run_raw_pyevm(work, args.block_size)))
        txs = [decode_transaction(raw) for raw in work.raw]
        blocks: list = []  # type: ignore[type-arg]
        builder = Ledger(MemoryStore(), genesis)
        best["ledger build"] = min(best.get("ledger build", 1e9), cpu(
            lambda b=builder, t=txs, out=blocks: out.extend(build_all(b, t, args.block_size, genesis.timestamp))))
        for label in ("ledger import", "ledger import, senders known"):
            wire = [rlp.decode(rlp.encode(b), sedes=LedgerBlock) for b in blocks]
            if label == "ledger import":
                forget_senders()
            else:
                for raw in work.raw:  # admitted to the pool before the block came
                    decode_transaction(raw)
            follower = Ledger(MemoryStore(), genesis)
            best[label] = min(best.get(label, 1e9), cpu(lambda f=follower, w=wire: [f.import_block(b) for b in w]))
    raw = best["raw py-evm"]
    for label, seconds in best.items():
        print(f"{label:32} {seconds / args.txs * 1e3:7.3f} ms CPU per transfer  ({args.txs / seconds:6.0f}/s)  "
              f"{raw / seconds:5.2f}x raw py-evm")
    return 0


if __name__ == "__main__":
    sys.exit(main())

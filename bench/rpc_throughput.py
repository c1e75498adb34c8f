"""Transfers per second through the whole JSON-RPC path, against raw py-evm and anvil.

Every run applies the same pre-signed EIP-1559 transfers (chain id 31337, from the
standard dev mnemonic's accounts, each sender's nonces in order), the way a node really
runs them:

1. `ailedger dev` with automine (a block as soon as transactions arrive; those that arrive
   while one is built share the next), the chain in memory;
2. the same with `--datadir`: LevelDB, each block one fsynced write batch;
3. anvil with automine, driven exactly like (1);
4. raw py-evm in this process: a `MiningChain` on Prague with the same genesis alloc
   decodes the same raw transactions and mines them with `mine_all` (no RPC, no pool, no
   disk), twice: in blocks of the sizes ailedger made, and in large blocks
   (`--raw-block-size`, 200 by default: the engine's limit, which grouping aims at).

The transfers go in as `eth_sendRawTransaction` calls in JSON-RPC batches over HTTP; the
clock stops when every sender's nonce shows all its transfers mined. No run waits on a
block tick. With `--block-time S` the nodes mine on an interval instead (the tick then
rounds the RPC runs' time up).

It prints tx/s of each, the ratios ailedger/raw py-evm (both) and ailedger/anvil, and the
machine with its load average. Numbers are noisy on a shared machine: run it under `nice` and more than once.
Not a test: `python bench/rpc_throughput.py [--txs 2000] [--senders 20] [--batch 200]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eth_account import Account  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

from genesis import DEV_MNEMONIC  # noqa: E402
from tests.support.procs import Proc, start_ailedger, start_anvil  # noqa: E402

CHAIN_ID = 31337
GWEI = 10**9
DEV_BALANCE = 10_000 * 10**18
GAS_LIMIT = 30_000_000  # anvil's default block gas limit
BASE_FEE = GWEI  # anvil's default initial base fee


@dataclass(frozen=True)
class Workload:
    """The signed transfers every run applies."""

    raw: tuple[bytes, ...]
    """Signed EIP-2718 transactions, interleaved across senders, nonces in order per sender."""
    senders: tuple[str, ...]
    """Checksummed sender addresses."""
    per_sender: int
    """Transfers each sender makes (its final nonce)."""


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run."""

    name: str
    """Which system ran the workload."""
    txs: int
    """Transactions mined."""
    seconds: float
    """Wall time from the first submission to the last transaction mined."""
    submit_seconds: float
    """Wall time to hand every transaction to the system (RPC runs only)."""
    block_sizes: tuple[int, ...]
    """Transactions per block that carried the workload."""

    @property
    def tps(self) -> float:
        return self.txs / self.seconds


def dev_keys(n: int) -> list[tuple[str, bytes]]:
    """(address, key) of the first n accounts of the dev mnemonic (m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(n):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((acct.address, bytes(acct.key)))
    return out


def make_workload(total: int, senders: int) -> Workload:
    """Sign `total` transfers round-robin over `senders` accounts to 100 fixed recipients."""
    keys = dev_keys(senders)
    per = total // senders
    raw = []
    for nonce in range(per):
        for i, (_addr, key) in enumerate(keys):
            to = to_checksum_address((0xB000 + (nonce * senders + i) % 100).to_bytes(20, "big"))
            tx = {
                "type": 2,
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "to": to,
                "value": 1 + i,
                "gas": 21_000,
                "maxFeePerGas": 100 * GWEI,
                "maxPriorityFeePerGas": GWEI,
            }
            raw.append(bytes(Account.sign_transaction(tx, key).raw_transaction))
    return Workload(tuple(raw), tuple(a for a, _ in keys), per)


class Rpc:
    """A keep-alive HTTP JSON-RPC client (one connection per thread)."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 8545
        self.local = threading.local()
        self.next_id = 0

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return conn

    def batch(self, calls: Sequence[tuple[str, list]]) -> list[dict]:
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)
            ]
        )
        try:
            conn = self._conn()
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # this thread's connection sat idle past the server's keep-alive: reconnect
            self.local.conn = None
            conn = self._conn()
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
        data = json.loads(resp.read())
        if not isinstance(data, list):
            raise RuntimeError(f"batch answered with {data}")
        return sorted(data, key=lambda r: r["id"])

    def call(self, method: str, params: list) -> object:
        r = self.batch([(method, params)])[0]
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]


def run_rpc(name: str, proc: Proc, work: Workload, batch: int, threads: int) -> RunResult:
    """Submit the workload in JSON-RPC batches and wait until every transfer is mined."""
    rpc = Rpc(proc.url)
    start_block = int(str(rpc.call("eth_blockNumber", [])), 16)
    chunks = [work.raw[i : i + batch] for i in range(0, len(work.raw), batch)]
    errors: list[str] = []

    def submit(part: list[Sequence[bytes]]) -> None:
        for chunk in part:
            for r in rpc.batch([("eth_sendRawTransaction", ["0x" + tx.hex()]) for tx in chunk]):
                if "error" in r:
                    errors.append(str(r["error"]))

    # Chunks go out in order, one thread per contiguous share, so each sender's nonces
    # arrive nearly in order (a future nonce waits in the queue either way).
    shares = [chunks[i::threads] for i in range(threads)] if threads > 1 else [chunks]
    t0 = time.perf_counter()
    workers = [threading.Thread(target=submit, args=(s,)) for s in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    t_submit = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{name}: {len(errors)} submissions failed, first: {errors[0]}")
    nonce_calls = [("eth_getTransactionCount", [a, "latest"]) for a in work.senders]
    while True:
        nonces = [int(r["result"], 16) for r in rpc.batch(nonce_calls)]
        if min(nonces) >= work.per_sender:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    end_block = int(str(rpc.call("eth_blockNumber", [])), 16)
    numbers = range(start_block + 1, end_block + 1)
    counts = [
        r
        for i in range(0, len(numbers), 1000)  # the node's batch limit
        for r in rpc.batch([("eth_getBlockTransactionCountByNumber", [hex(n)]) for n in numbers[i : i + 1000]])
    ]
    sizes = tuple(int(r["result"], 16) for r in counts if int(r["result"], 16) > 0)
    if sum(sizes) != len(work.raw):
        # Seen with anvil on interval mining: its nonces count the transfers before its block
        # numbers show them. The time stands; only the block sizes are short.
        print(f"warning: {name}: blocks hold {sum(sizes)} txs, expected {len(work.raw)}", file=sys.stderr)
    return RunResult(name, len(work.raw), elapsed, t_submit, sizes)


def run_raw_pyevm(work: Workload, block_size: int | Sequence[int], name: str = "raw py-evm") -> RunResult:
    """Decode and mine the same raw transactions with py-evm alone, `block_size` per block (or
    blocks of these sizes, in order, then of the last size)."""
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.vm.forks.prague import PragueVM
    from eth_utils import to_canonical_address

    chain_class = MiningChain.configure(
        __name__="RawPyEvmChain", vm_configuration=((0, PragueVM),), chain_id=CHAIN_ID
    )
    alloc = {
        to_canonical_address(a): {"balance": DEV_BALANCE, "nonce": 0, "code": b"", "storage": {}}
        for a, _ in dev_keys(20)
    }
    params = {
        "difficulty": 0,
        "gas_limit": GAS_LIMIT,
        "timestamp": int(time.time()),
        "extra_data": b"",
        "nonce": b"\x00" * 8,
        "base_fee_per_gas": BASE_FEE,
    }
    chain = chain_class.from_genesis(AtomicDB(), params, alloc)
    builder = PragueVM.get_transaction_builder()
    coinbase = b"\x00" * 20
    sizes = []
    plan = [block_size] if isinstance(block_size, int) else list(block_size)
    t0 = time.perf_counter()
    i = 0
    while i < len(work.raw):
        size = plan[min(len(sizes), len(plan) - 1)]
        txs = [builder.decode(raw) for raw in work.raw[i : i + size]]
        i += size
        # py-evm drifts the gas limit block by block; hold it at the genesis limit, as
        # ailedger does, so both chains take blocks of the same size.
        chain.header = chain.header.copy(gas_limit=GAS_LIMIT)
        _result, receipts, _comps = chain.mine_all(txs, coinbase=coinbase)
        if any(r.state_root != b"\x01" for r in receipts):
            raise RuntimeError("a transfer failed in raw py-evm")
        sizes.append(len(txs))
    elapsed = time.perf_counter() - t0
    return RunResult(name, len(work.raw), elapsed, 0.0, tuple(sizes))


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()} cpu={cpu!r} python={platform.python_version()} ({sys.executable}) "
        f"load average={' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def report(r: RunResult) -> str:
    sizes = (f"blocks={len(r.block_sizes)} size median={statistics.median(r.block_sizes):.0f} max={max(r.block_sizes)}"
             if r.block_sizes else "blocks=?")
    submit = (
        f" submit={r.submit_seconds:.2f}s ({r.txs / r.submit_seconds:.0f} tx/s)"
        if r.submit_seconds
        else ""
    )
    return f"{r.name:>12}: {r.tps:8.1f} tx/s  ({r.txs} txs in {r.seconds:.2f}s;{submit} {sizes})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--txs", type=int, default=2000, help="transfers in the workload")
    ap.add_argument("--senders", type=int, default=20, help="dev accounts that send (at most 20)")
    ap.add_argument(
        "--batch", type=int, default=200, help="eth_sendRawTransaction calls per JSON-RPC batch"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="HTTP connections submitting in parallel"
    )
    ap.add_argument(
        "--block-time", type=int, default=None,
        help="mine on this interval instead of automine (rounds RPC runs up to a tick)",
    )
    ap.add_argument(
        "--raw-block-size",
        type=int,
        default=200,
        help="raw py-evm's large blocks (it also mines blocks of the sizes ailedger made)",
    )
    ap.add_argument("--skip-ailedger", action="store_true", help="only raw py-evm and anvil")
    args = ap.parse_args(argv)
    if not 1 <= args.senders <= 20:
        ap.error("--senders must be 1..20 (the dev accounts both nodes prefund)")

    print(f"machine: {machine()}")
    t = time.perf_counter()
    work = make_workload(args.txs, args.senders)
    print(
        f"workload: {len(work.raw)} signed transfers from {args.senders} senders "
        f"(signed in {time.perf_counter() - t:.1f}s, not timed)"
    )
    node_args = ["--chain-id", str(CHAIN_ID), "--accounts", "20"]
    if args.block_time is not None:
        node_args += ["--block-time", str(args.block_time)]
    results: dict[str, RunResult] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_ailedger:
            for name, extra in (("ailedger", []), ("ailedger+disk", ["--datadir", str(Path(tmp) / "chain")])):
                node = start_ailedger([*node_args, *extra], Path(tmp))
                try:
                    results[name] = run_rpc(name, node, work, args.batch, args.threads)
                finally:
                    node.kill()
                print(report(results[name]), flush=True)
        anvil = start_anvil(Path(tmp), [*node_args, "--hardfork", "prague"])
        try:
            results["anvil"] = run_rpc("anvil", anvil, work, args.batch, args.threads)
        finally:
            anvil.kill()
        print(report(results["anvil"]), flush=True)
    results["raw"] = run_raw_pyevm(work, args.raw_block_size, f"raw py-evm ({args.raw_block_size}/block)")
    print(report(results["raw"]))
    if "ailedger" in results:
        results["raw same"] = run_raw_pyevm(work, results["ailedger"].block_sizes, "raw py-evm (same blocks)")
        print(report(results["raw same"]))
    raw, anvil_tps = results["raw"].tps, results["anvil"].tps
    for name in ("ailedger", "ailedger+disk"):
        if name in results:
            a = results[name].tps
            print(f"ratio {name + '/raw py-evm large':<30} = {a / raw:.2f}x")
            if "raw same" in results:
                print(f"ratio {name + '/raw py-evm same':<30} = {a / results['raw same'].tps:.2f}x")
            print(f"ratio {name + '/anvil':<30} = {a / anvil_tps:.3f}x")
    print(f"ratio {'raw py-evm large/anvil':<30} = {raw / anvil_tps:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

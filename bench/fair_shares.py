"""Honest callers under each node-wide pool attack of issue 19 (attack 9): success and latency,
quiet and attacked, in the same run against the same `ailedger dev` process.

- **read worker**: a wallet's ``eth_call`` and ``eth_estimateGas`` while 80 connections loop an
  endless ``eth_call`` (each runs to the node's time budget, ``--rpc-evmtimeout``), from 40
  addresses of one /24, then from 40 addresses in 40 networks (the hard case: per-network
  shares are then 1/41 each); and while 80 connections loop a 32-version ``ai_getTrainingSet``;
- **upload slots**: a 3 MiB chunked upload while 64 addresses each hold one upload;
- **filters**: a wallet's ``eth_newFilter`` + ``eth_getFilterChanges`` while 20 addresses hold 500;
- **pool slots**: a transfer while 320 senders hold 16 block-sized transactions each: admitted,
  and mined in the next block.

Each flood runs in its own process (``tests/support/flood.py``) so that its threads do not share
the measuring client's GIL. Not a test: ``python bench/fair_shares.py [--rounds 6]``. Numbers are
noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eth_account import Account  # noqa: E402
from eth_hash.auto import keccak  # noqa: E402

from ai_precompiles.addresses import DATANETS  # noqa: E402
from ai_precompiles.datanets import contribution_commitment  # noqa: E402
from genesis import DEV_MNEMONIC, derive_accounts  # noqa: E402
from node.blobstore import MAX_UPLOADS  # noqa: E402
from node.rpc.filters import MAX_FILTERS, MAX_FILTERS_PER_CLIENT  # noqa: E402
from node.txpool import PoolConfig  # noqa: E402
from tests.support.procs import Proc, rpc, start_ailedger  # noqa: E402

CHAIN = 31415
HONEST = "127.0.0.250"
DEV = derive_accounts(DEV_MNEMONIC, 3)
MiB = 1024 * 1024
Row = tuple[str, str, int, int, list[float]]


def timed(fn: Callable[[], bool]) -> tuple[bool, float]:
    started = time.monotonic()
    ok = fn()
    return ok, time.monotonic() - started


def ok_call(node: Proc, method: str, *params: Any, source: str = HONEST) -> bool:
    return "result" in rpc(node.url, method, list(params), timeout=120, source=source)


def batch(node: Proc, source: str, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=300, source_address=(source, 0))
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        return sorted(json.loads(conn.getresponse().read()), key=lambda r: r["id"])
    finally:
        conn.close()


def flood(node: Proc, connections: int, sources: int, kind: str, spread: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.support.flood", node.url, str(connections), str(sources), kind]
    proc = subprocess.Popen([*args, "spread" if spread else "one"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4)  # the worker's threads busy and its queue full
    if proc.poll() is not None:
        raise RuntimeError(f"the {kind} flood exited with {proc.returncode}")
    return proc


def reads(node: Proc, rounds: int) -> list[tuple[bool, float]]:
    call = {"to": "0x" + DATANETS.hex(), "data": "0x" + keccak(b"datanetCount()")[:4].hex()}
    estimate = {"from": DEV[1].address, "to": DEV[2].address, "value": "0x1"}
    out = []
    for _ in range(rounds):
        out.append(timed(lambda: ok_call(node, "eth_call", call, "latest")))
        out.append(timed(lambda: ok_call(node, "eth_estimateGas", estimate)))
        time.sleep(0.5)
    return out


def publish_versions(node: Proc, versions: int) -> None:
    """Datanet 1 with ``versions`` published versions (one accepted contribution each)."""
    owner = DEV[0].address

    def send(module_fn: str, types: list[str], args: list[Any]) -> None:
        from eth_abi import encode

        data = keccak(f"{module_fn}({','.join(types)})".encode())[:4] + encode(types, args)
        tx = rpc(node.url, "eth_sendTransaction", [{"from": owner, "to": "0x" + DATANETS.hex(), "data": "0x" + data.hex()}])
        assert "result" in tx, tx

    send("createDatanet", ["string", "string", "string", "string", "address[]", "uint256", "uint256"],
         ["bench", "bench", "", "MIT", [owner], 1, 1 << 20])
    for v in range(versions):
        data = f"training row {v}".encode()
        rpc(node.url, "ai_putBlob", ["0x" + data.hex(), "0x" + keccak(data).hex()])
        salt = keccak(f"salt {v}".encode())
        commitment = contribution_commitment(bytes.fromhex(owner[2:]), 1, keccak(data), len(data), "MIT",
                                             b"\x00" * 32, salt)
        send("commitContribution", ["bytes32"], [commitment])
        send("contribute", ["uint256", "bytes32", "uint256", "string", "bytes32", "bytes32"],
             [1, keccak(data), len(data), "MIT", b"\x00" * 32, salt])
        send("curate", ["uint256", "bool", "uint16"], [v + 1, True, 0])
        send("publishVersion", ["uint256"], [1])


def upload(node: Proc, source: str = HONEST) -> bool:
    data = os.urandom(3 * MiB)
    answer = rpc(node.url, "ai_beginBlob", [hex(len(data)), "0x" + keccak(data).hex()], source=source)
    if "result" not in answer:
        return False
    uid = answer["result"]
    for offset in range(0, len(data), MiB):
        if not ok_call(node, "ai_putBlobChunk", uid, hex(offset), "0x" + data[offset:offset + MiB].hex(), source=source):
            return False
    return ok_call(node, "ai_finishBlob", uid, source=source)


def filters(node: Proc) -> bool:
    answer = rpc(node.url, "eth_newFilter", [{"address": "0x" + DATANETS.hex()}], source=HONEST)
    if "result" not in answer:
        return False
    fid = answer["result"]
    return ok_call(node, "eth_getFilterChanges", fid) and ok_call(node, "eth_uninstallFilter", fid)


def stats(label: str, attack: str, results: list[tuple[bool, float]]) -> Row:
    return (label, attack, sum(ok for ok, _ in results), len(results), [t for _, t in results])


def run(rounds: int, evm_timeout: float) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        node = start_ailedger(["--chain-id", str(CHAIN), "--rpc-evmtimeout", str(evm_timeout)], Path(tmp))
        try:
            publish_versions(node, 32)
            rows.append(stats("read worker", "quiet", reads(node, rounds)))
            for label, kind, spread in (("80 loops, 40 addrs in one /24", "loop", False),
                                        ("80 loops, 40 addrs in 40 /24s", "loop", True),
                                        ("80 x 32-version ai_getTrainingSet", "training", False)):
                attack = flood(node, 80, 40, kind, spread)
                try:
                    rows.append(stats("read worker", label, reads(node, rounds)))
                    if attack.poll() is not None:
                        raise RuntimeError(f"the {kind} flood died during the measurement")
                finally:
                    attack.kill()
                    attack.wait()
                time.sleep(2)
            rows.append(stats("upload slots", "quiet", [timed(lambda: upload(node)) for _ in range(3)]))
            for i in range(MAX_UPLOADS):
                source = f"127.0.5.{i + 1}"
                uid = rpc(node.url, "ai_beginBlob", [hex(MiB), "0x" + "55" * 32], source=source)["result"]
                rpc(node.url, "ai_putBlobChunk", [uid, "0x0", "0x00"], source=source)
            rows.append(stats("upload slots", f"{MAX_UPLOADS} addrs hold one each",
                              [timed(lambda: upload(node)) for _ in range(3)]))
            rows.append(stats("filters", "quiet", [timed(lambda: filters(node)) for _ in range(rounds)]))
            for i in range(MAX_FILTERS // MAX_FILTERS_PER_CLIENT):
                batch(node, f"127.0.6.{i + 1}", [("eth_newBlockFilter", [])] * MAX_FILTERS_PER_CLIENT)
            rows.append(stats("filters", "20 addrs x 500", [timed(lambda: filters(node)) for _ in range(rounds)]))
        finally:
            node.kill()
    with tempfile.TemporaryDirectory() as tmp:
        node = start_ailedger(["--chain-id", str(CHAIN), "--block-time", "3600"], Path(tmp))
        try:
            rows += pool(node, rounds)
        finally:
            node.kill()
    return rows


def pool(node: Proc, rounds: int) -> list[Row]:
    """A transfer admitted and mined in the next block, quiet and with every slot held."""
    limits = PoolConfig()
    nonce = [0]

    def honest() -> bool:
        signed = Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=nonce[0], to=DEV[2].address, value=1,
                                               gas=21_000, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9),
                                          DEV[1].private_key)
        nonce[0] += 1
        if not ok_call(node, "eth_sendRawTransaction", "0x" + signed.raw_transaction.hex()):
            return False
        ok_call(node, "evm_mine")
        receipt = rpc(node.url, "eth_getTransactionReceipt", ["0x" + signed.hash.hex()])["result"]
        return receipt is not None and receipt["status"] == "0x1"

    rows = [stats("pool slots", "quiet", [timed(honest) for _ in range(rounds)])]
    senders = [Account.from_key(keccak(f"sybil {i}".encode())) for i in range(limits.global_slots // limits.account_slots)]
    fund = [Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=n, to=s.address, value=10**18, gas=21_000,
                                          maxFeePerGas=3 * 10**9, maxPriorityFeePerGas=10**9), DEV[0].private_key)
            for n, s in enumerate(senders)]
    batch(node, HONEST, [("eth_sendRawTransaction", ["0x" + f.raw_transaction.hex()]) for f in fund])
    ok_call(node, "evm_mine")
    raws = [Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=n, to=DEV[2].address, value=0, gas=30_000_000,
                                          maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9), s.key)
            for s in senders for n in range(limits.account_slots)]
    for start in range(0, len(raws), 1000):
        batch(node, "127.0.7.1", [("eth_sendRawTransaction", ["0x" + r.raw_transaction.hex()])
                                  for r in raws[start:start + 1000]])
    rows.append(stats("pool slots", "320 senders x 16 block-sized", [timed(honest) for _ in range(rounds)]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--evm-timeout", type=float, default=1.0, help="--rpc-evmtimeout of the node (seconds)")
    args = parser.parse_args()
    rows = run(args.rounds, args.evm_timeout)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"Python {platform.python_version()}; node --rpc-evmtimeout {args.evm_timeout:g} s")
    print(f"{'pool':<14}{'honest caller during':<38}{'served':>8}{'p50 s':>8}{'max s':>8}")
    for label, attack, good, total, times in rows:
        print(f"{label:<14}{attack:<38}{f'{good}/{total}':>8}{statistics.median(times):>8.2f}{max(times):>8.2f}")


if __name__ == "__main__":
    main()

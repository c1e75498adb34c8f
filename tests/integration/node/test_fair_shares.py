"""Shared pools starve no honest caller (issue 19, attack 9), against real `ailedger dev` processes
and clients calling from many loopback addresses (127.0.0.x). In each attack the per-client limits
held and the per-node limit filled with no share for anyone else; now every node-wide pool gives
a newcomer room, taken from whoever holds the most (geth's rule for its pool):

- upload slots: 64 addresses each holding one announced upload, refreshed with a byte;
- the read worker: 80 connections looping an endless ``eth_call`` (each runs to the time budget);
- filters: 20 addresses holding 500 filters each;
- pool slots: 320 senders holding 16 transactions each that declare the whole block gas limit
  (one leaves per block: 5,120 blocks to drain).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from ai_precompiles.addresses import DATANETS
from genesis import DEV_MNEMONIC, derive_accounts
from node.blobstore import MAX_UPLOADS
from node.rpc.filters import MAX_FILTERS, MAX_FILTERS_PER_CLIENT
from node.txpool import PoolConfig
from tests.support.procs import REPO, Proc, rpc, start_ailedger

pytestmark = [pytest.mark.slow]
CHAIN = 31415
GAS_LIMIT = 30_000_000
DEV = derive_accounts(DEV_MNEMONIC, 3)
HONEST = "127.0.0.250"
MiB = 1024 * 1024


def call(node: Proc, source: str, method: str, *params: Any, timeout: float = 60) -> dict[str, Any]:
    return rpc(node.url, method, list(params), timeout=timeout, source=source)


def ok(node: Proc, source: str, method: str, *params: Any) -> Any:
    answer = call(node, source, method, *params)
    assert "result" in answer, (method, answer)
    return answer["result"]


def batch(node: Proc, source: str, calls: list[tuple[str, list[Any]]], timeout: float = 120) -> list[dict[str, Any]]:
    """One JSON-RPC batch from ``source`` (urllib cannot bind a source address: raw HTTP)."""
    import http.client

    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        return sorted(json.loads(conn.getresponse().read()), key=lambda r: r["id"])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_ailedger(["--chain-id", str(CHAIN), "--rpc-evmtimeout", "1"], tmp_path_factory.mktemp("fair"))
    try:
        yield proc
    finally:
        proc.kill()


def test_upload_slots_held_by_64_addresses_leave_room_for_a_newcomer(dev: Proc) -> None:
    sybils = [f"127.0.1.{i}" for i in range(1, MAX_UPLOADS + 1)]
    held: dict[str, str] = {}

    def hold(source: str) -> None:
        """Announce an upload and keep it alive with a byte (the attack's refresh)."""
        answer = call(dev, source, "ai_beginBlob", hex(MiB), "0x" + "55" * 32)
        if "result" in answer:
            held[source] = answer["result"]
            ok(dev, source, "ai_putBlobChunk", held[source], "0x0", "0x00")

    for source in sybils:
        hold(source)
    assert len(held) == MAX_UPLOADS
    data = bytes(range(256)) * (3 * MiB // 256)
    uid = ok(dev, HONEST, "ai_beginBlob", hex(len(data)), "0x" + keccak(data).hex())
    for n, offset in enumerate(range(0, len(data), MiB)):
        # Between the newcomer's chunks, every sybil refreshes its upload, or takes one again.
        for source in sybils[n * 20:(n + 1) * 20]:
            refreshed = call(dev, source, "ai_putBlobChunk", held[source], hex(1 + n), "0x00")
            if "error" in refreshed:
                hold(source)
        ok(dev, HONEST, "ai_putBlobChunk", uid, hex(offset), "0x" + data[offset:offset + MiB].hex())
    assert ok(dev, HONEST, "ai_finishBlob", uid) == {"hash": "0x" + keccak(data).hex(), "size": hex(len(data))}
    assert ok(dev, HONEST, "ai_getBlob", "0x" + keccak(data).hex(), "0x0", hex(16))["data"] == "0x" + data[:16].hex()


def test_filters_held_by_20_addresses_leave_room_for_a_wallet(dev: Proc) -> None:
    sybils = [f"127.0.2.{i}" for i in range(1, MAX_FILTERS // MAX_FILTERS_PER_CLIENT + 1)]
    for source in sybils:
        answers = batch(dev, source, [("eth_newBlockFilter", [])] * MAX_FILTERS_PER_CLIENT)
        assert all("result" in a for a in answers), answers[-1]
    # The node holds 10,000: a sybil gets no more, a wallet still gets its filters.
    assert "too many filters" in call(dev, sybils[0], "eth_newBlockFilter")["error"]["message"]
    pending = ok(dev, HONEST, "eth_newPendingTransactionFilter")
    logs = ok(dev, HONEST, "eth_newFilter", {"address": "0x" + DATANETS.hex()})
    blocks = ok(dev, HONEST, "eth_newBlockFilter")
    ok(dev, HONEST, "evm_mine")
    assert len(ok(dev, HONEST, "eth_getFilterChanges", blocks)) == 1
    assert ok(dev, HONEST, "eth_getFilterChanges", logs) == []
    assert ok(dev, HONEST, "eth_getFilterChanges", pending) == []
    for fid in (pending, logs, blocks):
        assert ok(dev, HONEST, "eth_uninstallFilter", fid) is True


def flood(node: Proc, connections: int, sources: int, kind: str = "loop") -> subprocess.Popen[bytes]:
    """The attack in its own process (its threads must not share the measuring client's GIL)."""
    return subprocess.Popen([sys.executable, "-m", "tests.support.flood", node.url, str(connections), str(sources), kind],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_looping_calls_from_80_connections_do_not_starve_a_wallets_calls(dev: Proc) -> None:
    """80 connections from 40 addresses loop an endless eth_call (each runs to the node's 1 s
    budget here): the read worker's 2 threads run them and its queue of 64 stays full. A wallet
    calling between them was refused "node busy" every time; now its calls run next."""
    attack = flood(dev, 80, 40)
    try:
        time.sleep(4)  # the read worker is full
        latencies = []
        for _ in range(6):
            for method, params in (
                ("eth_call", [{"to": "0x" + DATANETS.hex(), "data": "0x" + keccak(b"datanetCount()")[:4].hex()},
                              "latest"]),
                ("eth_estimateGas", [{"from": DEV[1].address, "to": DEV[2].address, "value": "0x1"}]),
                ("ai_getTrainingSet", [[[1, 1]]]),
            ):
                started = time.monotonic()
                answer = call(dev, HONEST, method, *params)
                latencies.append(time.monotonic() - started)
                if method == "ai_getTrainingSet":  # no datanet 1 here: a clean not-found, never "busy"
                    assert "error" in answer and "busy" not in answer["error"]["message"], answer
                else:
                    assert "result" in answer, (method, answer)
            time.sleep(0.5)
        # A wallet waits for a running call to end (the 1 s budget), never for the queue.
        assert max(latencies) < 5, latencies
    finally:
        attack.kill()
        out = attack.communicate()[0].decode().strip().splitlines()
    stats = json.loads(out[-1])
    assert stats["answered"] > 10 and stats["busy"] > 0, stats  # the attack ran and held the queue


def test_320_senders_holding_block_sized_transactions_leave_room_and_blocks_pack_the_rest(tmp_path) -> None:
    node = start_ailedger(["--chain-id", str(CHAIN), "--block-time", "3600"], tmp_path)
    try:
        limits = PoolConfig()
        senders = [Account.from_key(keccak(f"sybil {i}".encode())) for i in range(limits.global_slots // limits.account_slots)]
        fund = [Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=n, to=s.address, value=10**18, gas=21_000,
                                              maxFeePerGas=3 * 10**9, maxPriorityFeePerGas=10**9), DEV[0].private_key)
                for n, s in enumerate(senders)]
        answers = batch(node, HONEST, [("eth_sendRawTransaction", ["0x" + f.raw_transaction.hex()]) for f in fund])
        assert all("result" in a for a in answers)
        ok(node, HONEST, "evm_mine")
        assert ok(node, HONEST, "txpool_status") == {"pending": "0x0", "queued": "0x0"}
        hog_hashes = []
        raws = []
        for s in senders:
            for n in range(limits.account_slots):
                signed = Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=n, to=DEV[2].address, value=0,
                                                       gas=GAS_LIMIT, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9),
                                                  s.key)
                raws.append("0x" + signed.raw_transaction.hex())
                hog_hashes.append("0x" + signed.hash.hex())
        for start in range(0, len(raws), 1000):
            answers = batch(node, f"127.0.4.{1 + start // 1000}", [("eth_sendRawTransaction", [r]) for r in raws[start:start + 1000]])
            assert all("result" in a for a in answers), next(a for a in answers if "error" in a)
        assert ok(node, HONEST, "txpool_status") == {"pending": hex(limits.global_slots), "queued": "0x0"}
        # A newcomer paying the same gets in; the newest transaction of a sybil makes room.
        honest = [Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=n, to=DEV[2].address, value=1, gas=21_000,
                                                maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**9), DEV[1].private_key)
                  for n in range(3)]
        for h in honest:
            assert ok(node, HONEST, "eth_sendRawTransaction", "0x" + h.raw_transaction.hex()) == "0x" + h.hash.hex()
        assert ok(node, HONEST, "txpool_status")["pending"] == hex(limits.global_slots)
        # The next block takes one sybil transaction (the first by arrival) and packs what still fits.
        ok(node, HONEST, "evm_mine")
        block = ok(node, HONEST, "eth_getBlockByNumber", "latest", False)
        assert block["transactions"][0] in hog_hashes
        assert block["transactions"][1:] == ["0x" + h.hash.hex() for h in honest]
    finally:
        node.kill()

"""Crash safety with real kills: `kill -9` a persisting `ailedger dev` at random instants
while several senders stream signed transactions, restart it on the same datadir, and
check that nothing the node reported is lost.

After every restart:
- the head is at or above the last block seen before the kill;
- every block number seen before has the same hash and state root;
- every transaction whose receipt was returned is still there, in the same block;
- under automine, every hash eth_sendRawTransaction returned is mined (the block is
  committed before the call answers);
- the chain links (each block's parentHash is its predecessor's hash), and per sender the
  mined transactions are exactly nonces 0..n-1 where n is the account nonce, and the
  balances of senders and recipient add up from the receipts.

Randomness (kill instants, values, payload sizes) is seeded, so a failure replays.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts  # noqa: E402
from genesis.dev import DEV_BALANCE_ETH  # noqa: E402
from tests.support.procs import Proc, start_ailedger  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qa_crash")]

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)
INITIAL_BALANCE = DEV_BALANCE_ETH * 10**18
#: What a client sees when the node dies under it.
DISCONNECTED = (OSError, http.client.HTTPException)


def post(url: str, payload: Any, timeout: float = 10.0) -> Any:
    req = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def call(url: str, method: str, params: list[Any] | None = None) -> Any:
    reply = post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    assert "error" not in reply, (method, params, reply)
    return reply["result"]


def batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """Results of many calls in as few round trips as the batch limit allows."""
    out: list[Any] = []
    for i in range(0, len(calls), 500):
        chunk = calls[i : i + 500]
        payload = [
            {"jsonrpc": "2.0", "id": j, "method": m, "params": p} for j, (m, p) in enumerate(chunk)
        ]
        replies = sorted(post(url, payload, timeout=60), key=lambda r: r["id"])
        for r in replies:
            assert "error" not in r, r
            out.append(r["result"])
    return out


@dataclass
class Sent:
    sender: str
    nonce: int
    value: int
    to: str


@dataclass
class Record:
    """What the node reported before the kills: the facts a restart must keep."""

    blocks: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Block number -> (hash, stateRoot), as seen through eth_getBlockByNumber or receipts."""
    receipts: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Transaction hash -> (blockNumber, blockHash) from a returned receipt."""
    accepted: set[str] = field(default_factory=set)
    """Hashes eth_sendRawTransaction returned."""
    sent: dict[str, Sent] = field(default_factory=dict)
    """Every transaction hash we signed and sent, answered or not."""
    errors: list[str] = field(default_factory=list)
    """Anything unexpected a sender or the watcher saw (a refused transaction, say)."""
    mined_per_block: dict[int, int] = field(default_factory=dict)
    """Block number -> how many of our transactions the restarted node holds in it."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class Stream:
    """Sender threads and a block watcher against one node instance until it dies."""

    def __init__(
        self,
        url: str,
        record: Record,
        senders: list[int],
        recipient: str,
        rng: random.Random,
        burst: int,
        payload: int,
        fee: int,
    ) -> None:
        self.url = url
        self.record = record
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch, daemon=True)]
        for index in senders:
            seed = rng.randrange(2**32)
            self.threads.append(
                threading.Thread(
                    target=self._send,
                    args=(index, recipient, random.Random(seed), burst, payload, fee),
                    daemon=True,
                )
            )

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive()

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                block = call(self.url, "eth_getBlockByNumber", ["latest", False])
            except DISCONNECTED:
                return
            except Exception as e:
                self.record.errors.append(f"watcher: {e!r}")
                return
            with self.record.lock:
                self.record.blocks[int(block["number"], 16)] = (block["hash"], block["stateRoot"])
            time.sleep(0.03)

    def _send(
        self, index: int, recipient: str, rng: random.Random, burst: int, payload: int, fee: int
    ) -> None:
        acct = ACCOUNTS[index]
        try:
            nonce = int(call(self.url, "eth_getTransactionCount", [acct.address, "latest"]), 16)
            while not self.stop.is_set():
                hashes = []
                for _ in range(burst):
                    data = rng.randbytes(rng.randrange(payload)) if payload else b""
                    tx = {
                        "chainId": DEV_CHAIN_ID,
                        "nonce": nonce,
                        "to": recipient,
                        "value": rng.randrange(1, 10**12),
                        "gas": 21_000 + 16 * len(data),
                        "maxFeePerGas": fee,
                        "maxPriorityFeePerGas": 10**9,
                        "type": 2,
                        "data": data,
                    }
                    signed = Account.sign_transaction(tx, acct.private_key)
                    tx_hash = "0x" + bytes(signed.hash).hex()
                    with self.record.lock:
                        self.record.sent[tx_hash] = Sent(
                            acct.address, nonce, tx["value"], recipient
                        )
                    reply = post(
                        self.url,
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "eth_sendRawTransaction",
                            "params": ["0x" + bytes(signed.raw_transaction).hex()],
                        },
                    )
                    assert reply.get("result") == tx_hash, reply
                    with self.record.lock:
                        self.record.accepted.add(tx_hash)
                    hashes.append(tx_hash)
                    nonce += 1
                while hashes and not self.stop.is_set():
                    got = call(self.url, "eth_getTransactionReceipt", [hashes[0]])
                    if got is None:
                        time.sleep(0.02)
                        continue
                    with self.record.lock:
                        self.record.receipts[hashes.pop(0)] = (
                            int(got["blockNumber"], 16),
                            got["blockHash"],
                        )
                        block = call(self.url, "eth_getBlockByHash", [got["blockHash"], False])
                        self.record.blocks[int(block["number"], 16)] = (
                            block["hash"],
                            block["stateRoot"],
                        )
        except DISCONNECTED:
            return  # the node was killed under us
        except Exception as e:
            self.record.errors.append(f"sender {acct.address}: {e!r}")


def verify(url: str, record: Record, automine: bool) -> int:
    """Check every fact of ``record`` against the restarted node; returns its head."""
    head = int(call(url, "eth_blockNumber"), 16)
    seen_top = max(record.blocks, default=0)
    assert head >= seen_top, (
        f"restarted on block {head}, below block {seen_top} seen before the kill"
    )
    numbers = list(range(head + 1))
    blocks = batch(url, [("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    for n, (block_hash, state_root) in record.blocks.items():
        assert blocks[n]["hash"] == block_hash, f"block {n} changed hash after restart"
        assert blocks[n]["stateRoot"] == state_root, f"block {n} changed state root after restart"
    for n in numbers[1:]:
        assert blocks[n]["parentHash"] == blocks[n - 1]["hash"], (
            f"block {n} does not link to {n - 1}"
        )

    hashes = sorted(record.sent)
    receipts = dict(
        zip(hashes, batch(url, [("eth_getTransactionReceipt", [h]) for h in hashes]), strict=True)
    )
    for tx_hash, (number, block_hash) in record.receipts.items():
        got = receipts[tx_hash]
        assert got is not None, (
            f"{tx_hash} had a receipt in block {number} before the kill and is gone"
        )
        assert (int(got["blockNumber"], 16), got["blockHash"]) == (number, block_hash), tx_hash
    record.mined_per_block.clear()
    for got in receipts.values():
        if got is not None:
            n = int(got["blockNumber"], 16)
            record.mined_per_block[n] = record.mined_per_block.get(n, 0) + 1
    if automine:
        lost = [h for h in record.accepted if receipts[h] is None]
        assert not lost, (
            f"automine answered {len(lost)} hashes that are not mined after restart: {lost[:3]}"
        )

    senders = sorted({s.sender for s in record.sent.values()})
    state = batch(
        url,
        [("eth_getTransactionCount", [s, "latest"]) for s in senders]
        + [("eth_getBalance", [s, "latest"]) for s in senders],
    )
    recipients: dict[str, int] = {}
    for i, sender in enumerate(senders):
        account_nonce = int(state[i], 16)
        mine = [
            (record.sent[h], r)
            for h, r in receipts.items()
            if r is not None and record.sent[h].sender == sender
        ]
        assert sorted(s.nonce for s, _ in mine) == list(range(account_nonce)), (
            f"{sender}: nonce {account_nonce} but mined nonces {sorted(s.nonce for s, _ in mine)}"
        )
        spent = sum(
            s.value + int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) for s, r in mine
        )
        assert int(state[len(senders) + i], 16) == INITIAL_BALANCE - spent, (
            f"{sender}: balance does not add up"
        )
        for s, r in mine:
            assert r["status"] == "0x1"
            recipients[s.to] = recipients.get(s.to, 0) + s.value
    for to, total in recipients.items():
        assert int(call(url, "eth_getBalance", [to, "latest"]), 16) == total
    return head


def run_kills(
    tmp: Path,
    args: list[str],
    seed: int,
    cycles: int,
    senders: list[int],
    burst: int = 1,
    payload: int = 0,
    window: tuple[float, float] = (0.4, 1.5),
) -> tuple[Record, list[int]]:
    """Start, stream, kill -9 at a random instant, restart, verify; ``cycles`` times."""
    rng = random.Random(seed)
    datadir = tmp / "chain"
    recipient = to_checksum_address(rng.randbytes(20))
    record = Record()
    heads = []
    automine = "--block-time" not in args
    node: Proc = start_ailedger(["--datadir", str(datadir), *args], tmp)
    try:
        for _ in range(cycles):
            fee = 2 * int(call(node.url, "eth_gasPrice"), 16) + 10**9
            stream = Stream(node.url, record, senders, recipient, rng, burst, payload, fee)
            stream.start()
            time.sleep(rng.uniform(*window))
            node.kill(signal.SIGKILL)
            assert node.proc.returncode == -signal.SIGKILL
            stream.join()
            assert not record.errors, record.errors
            node = start_ailedger(["--datadir", str(datadir), *args], tmp)
            heads.append(verify(node.url, record, automine))
    finally:
        node.kill()
    print(
        f"kills={cycles} heads={heads} accepted={len(record.accepted)} "
        f"receipts={len(record.receipts)} blocks_seen={len(record.blocks)}"
    )
    assert len(record.receipts) >= cycles, (
        f"too few transactions went through: {len(record.receipts)}"
    )
    return record, heads


def test_kill_during_interval_mining(tmp_path: Path) -> None:
    record, heads = run_kills(
        tmp_path, ["--block-time", "0.2"], seed=1, cycles=4, senders=[0, 1, 2, 3]
    )
    assert heads == sorted(heads) and heads[-1] > heads[0]
    assert len(record.receipts) > 20


def test_kill_under_automine(tmp_path: Path) -> None:
    record, _ = run_kills(tmp_path, [], seed=2, cycles=4, senders=[4, 5, 6, 7])
    assert len(record.accepted) > 20
    assert record.accepted >= set(record.receipts)


def test_kill_during_big_blocks(tmp_path: Path) -> None:
    """Bursts of transactions with calldata of up to 12 KiB: blocks of about a megabyte,
    so the kill lands during long block builds and large write batches. The block time is
    long enough that a burst lands in one block even when a loaded machine sends slowly."""
    record, _ = run_kills(
        tmp_path,
        ["--block-time", "1.5"],
        seed=3,
        cycles=3,
        senders=[8, 9, 10, 11],
        burst=25,
        payload=12 * 1024,
        window=(2.0, 4.0),
    )
    per_block = record.mined_per_block
    assert max(per_block.values()) >= 20, f"blocks were not big: {sorted(per_block.values())[-5:]}"

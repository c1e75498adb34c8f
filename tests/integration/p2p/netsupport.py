"""Real multi-node networks on loopback for tests: a testnet directory on free ports, nodes
started with `ailedger run --config`, a chain pre-built offline for late joiners."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from pathlib import Path

from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, load_genesis
from tests.support.procs import VENV_BIN, Proc, rpc, start_ailedger

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)


def _ports_free(base: int, n: int) -> bool:
    for port in range(base, base + n):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_range(n: int) -> int:
    """A base port such that base..base+n-1 are free now."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - n)
        if _ports_free(base, n):
            return base
    raise RuntimeError("no free port range")


def init_testnet(tmp: Path, nodes: int, block_time: float = 0.5) -> Path:
    """`ailedger testnet init` into tmp/net on free ports, without sidecars (these tests are about
    the network); returns the directory."""
    base = free_port_range(2 * nodes)
    directory = tmp / "net"
    out = subprocess.run(
        [str(VENV_BIN / "ailedger"), "testnet", "init", "--nodes", str(nodes), "--dir", str(directory),
         "--rpc-port", str(base), "--p2p-port", str(base + nodes), "--block-time", str(block_time), "--no-sidecars"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return directory


def node_config(directory: Path, i: int) -> dict:
    return json.loads((directory / f"node{i}" / "config.json").read_text())


def start_node(directory: Path, i: int, tmp: Path, *extra: str) -> Proc:
    config = node_config(directory, i)
    path = directory / f"node{i}" / "config.json"
    return start_ailedger(["--config", str(path), *extra], tmp, port=config["rpcPort"], command="run")


def result(url: str, method: str, params: list | None = None) -> object:
    response = rpc(url, method, params or [])
    assert "result" in response, response
    return response["result"]


def head(url: str) -> int:
    return int(result(url, "eth_blockNumber"), 16)


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except OSError:
            last = None
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last: {last!r})")


def block_roots(url: str, upto: int) -> list[tuple[str, str]]:
    out = []
    for n in range(upto + 1):
        block = result(url, "eth_getBlockByNumber", [hex(n), False])
        out.append((block["hash"], block["stateRoot"]))
    return out


def transfer(chain_id: int, sender: int, nonce: int, to: str, value: int = 1) -> bytes:
    tx = {"to": to, "value": value, "gas": 21000, "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9,
          "nonce": nonce, "chainId": chain_id, "type": 2}
    return bytes(Account.from_key(ACCOUNTS[sender].private_key).sign_transaction(tx).raw_transaction)


def build_chain(directory: Path, blocks: int, txs_per_block: int) -> int:
    """Pre-build ``blocks`` committed blocks of transfers into node0's datadir, as its
    validator would have; returns the head number."""
    from consensus import SingleValidator
    from state import Ledger, LevelDBStore, decode_transaction

    genesis = load_genesis(directory / "genesis.json")
    key = bytes.fromhex((directory / "node0" / "validator.key").read_text().strip()[2:])
    validator = SingleValidator(key, genesis.chain_id)
    ledger = Ledger(LevelDBStore(directory / "node0" / "chain"), genesis)
    try:
        nonces = [0] * len(ACCOUNTS)
        for b in range(blocks):
            txs = []
            for k in range(txs_per_block):
                sender = k % len(ACCOUNTS)
                raw = transfer(genesis.chain_id, sender, nonces[sender], ACCOUNTS[(sender + 1) % len(ACCOUNTS)].address)
                nonces[sender] += 1
                txs.append(decode_transaction(raw))
            built = ledger.build_block(
                txs, genesis.timestamp + b + 1, validator.address,
                lambda h, bh: validator.commit(h, bh).encode(),
            )
            assert not built.rejected
        return int(ledger.head.block_number)
    finally:
        ledger.close()

"""The ailedger CLI and node as a user meets them: --help, init/run on a datadir, keys,
interval mining, the pool over RPC, and Prometheus metrics."""

import json
import subprocess
import time
import urllib.request

import pytest
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from tests.support.procs import VENV_BIN, free_port, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("node-cli")]
AILEDGER = str(VENV_BIN / "ailedger")
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 3)


def run_cli(*args, timeout=60):
    return subprocess.run([AILEDGER, *args], capture_output=True, text=True, timeout=timeout)


def test_help_teaches_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("dev", "init", "run", "keys"):
        assert command in out.stdout
    dev = run_cli("dev", "--help").stdout
    for flag in ("--port", "--host", "--chain-id", "--block-time", "--accounts", "--balance", "--mnemonic", "--datadir"):
        assert flag in dev


def test_keys():
    derived = run_cli("keys", "derive", "-n", "2").stdout.splitlines()
    assert ACCOUNTS[0].address in derived[0] and ACCOUNTS[1].address in derived[1]
    new = json.loads(run_cli("keys", "new").stdout)
    assert Account.from_key(new["privateKey"]).address == new["address"]
    assert run_cli("keys", "address", "0x" + ACCOUNTS[2].private_key.hex()).stdout.strip() == ACCOUNTS[2].address
    bad = run_cli("keys", "address", "0x1234")
    assert bad.returncode == 1 and "not a private key" in bad.stderr


def test_init_rejects_a_bad_genesis_naming_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    doc = dev_genesis(accounts=1).encode()
    doc["gasLimit"] = "lots"
    bad.write_text(json.dumps(doc))
    out = run_cli("init", "--genesis", str(bad), "--datadir", str(tmp_path / "d"))
    assert out.returncode == 1 and "gasLimit" in out.stderr


@pytest.mark.parametrize(("ai", "named"), [
    ({"staking.unbonding_blocs": 300}, "unknown parameter staking.unbonding_blocs"),
    ({"gov.quorum_bp": "most"}, "gov.quorum_bp: expected an integer"),
    ({"gov.quorum_bp": 20_000}, "gov.quorum_bp must be within"),
    ({"staking.unbonding_blocks": 3}, "staking.unbonding_blocks"),
])
def test_init_names_a_bad_ai_parameter_in_one_line(tmp_path, ai, named):
    """Issue 19: an unknown parameter in the genesis file's ``ai`` section printed a traceback."""
    doc = dev_genesis(accounts=1).encode()
    doc["ai"] = ai
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    datadir = tmp_path / "d"
    out = run_cli("init", "--genesis", str(bad), "--datadir", str(datadir))
    assert out.returncode == 1, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ai: ") and named in lines[0], out.stderr
    # Nothing was written: the same datadir takes a good file afterwards.
    doc["ai"] = {}
    bad.write_text(json.dumps(doc))
    assert run_cli("init", "--genesis", str(bad), "--datadir", str(datadir)).returncode == 0


def test_init_then_run_serves_the_genesis_chain(tmp_path):
    key = Account.create()
    genesis = dev_genesis(chain_id=777, accounts=1)
    doc = genesis.encode()
    doc["alloc"][key.address] = {"balance": hex(10**20)}
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(doc))
    datadir = tmp_path / "node"
    out = run_cli("init", "--genesis", str(path), "--datadir", str(datadir))
    assert out.returncode == 0, out.stderr
    assert run_cli("run", "--datadir", str(tmp_path / "empty")).returncode == 1

    node = start_ailedger(["--datadir", str(datadir), "--block-time", "0.3"], tmp_path, command="run")
    try:
        assert rpc(node.url, "eth_chainId")["result"] == hex(777)
        assert int(rpc(node.url, "eth_getBalance", [key.address, "latest"])["result"], 16) == 10**20
        raw = Account.sign_transaction(dict(type=2, chainId=777, nonce=0, to=ACCOUNTS[0].address, value=5,
                                            gas=21000, maxFeePerGas=10**10, maxPriorityFeePerGas=1), key.key)
        tx_hash = rpc(node.url, "eth_sendRawTransaction", ["0x" + raw.raw_transaction.hex()])["result"]
        receipt = None
        for _ in range(50):
            receipt = rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["result"]
            if receipt:
                break
            time.sleep(0.1)
        assert receipt and receipt["status"] == "0x1"
    finally:
        node.kill()


def test_dev_datadir_restarts_on_the_same_chain(tmp_path):
    datadir = tmp_path / "dev"
    node = start_ailedger(["--datadir", str(datadir)], tmp_path)
    try:
        tx = rpc(node.url, "eth_sendTransaction", [{"from": ACCOUNTS[0].address, "to": ACCOUNTS[1].address, "value": "0x7"}])
        assert "result" in tx, tx
        head = rpc(node.url, "eth_getBlockByNumber", ["latest", False])["result"]
    finally:
        node.kill(15)  # SIGTERM: a clean shutdown
    assert node.proc.returncode == 0, node.output()
    again = start_ailedger(["--datadir", str(datadir)], tmp_path)
    try:
        assert rpc(again.url, "eth_getBlockByNumber", ["latest", False])["result"]["hash"] == head["hash"]
        assert rpc(again.url, "eth_getTransactionReceipt", [tx["result"]])["result"]["status"] == "0x1"
    finally:
        again.kill()


def test_interval_mining_pool_and_metrics(tmp_path):
    metrics_port = free_port()
    node = start_ailedger(["--block-time", "1", "--metrics-port", str(metrics_port), "--chain-id", "31415"], tmp_path)
    try:
        sign = lambda n, fee=2 * 10**9, tip=10**9: "0x" + Account.sign_transaction(  # noqa: E731
            dict(type=2, chainId=31415, nonce=n, to=ACCOUNTS[1].address, value=1, gas=21000,
                 maxFeePerGas=fee, maxPriorityFeePerGas=tip), ACCOUNTS[0].private_key).raw_transaction.hex()
        assert "result" in rpc(node.url, "eth_sendRawTransaction", [sign(0)])
        assert "result" in rpc(node.url, "eth_sendRawTransaction", [sign(2)])  # a gap: queued
        # Read the pool between two reads of the chain that agree, so that no interval block
        # fell between them (retry otherwise): then the pool is known against that chain.
        nonce_of = lambda: rpc(node.url, "eth_getTransactionCount", [ACCOUNTS[0].address, "latest"])["result"]  # noqa: E731
        for _ in range(20):
            before, status, nonce = nonce_of(), rpc(node.url, "txpool_status")["result"], nonce_of()
            if before == nonce:
                break
        assert before == nonce
        # Nonce 2 waits for nonce 1 whatever the miner did; nonce 0 is either still pending
        # or mined, and exactly one of the two.
        assert status["queued"] == "0x1"
        assert nonce in ("0x0", "0x1")
        assert status["pending"] == ("0x1" if nonce == "0x0" else "0x0")
        queued = rpc(node.url, "txpool_content")["result"]["queued"]
        assert list(queued[ACCOUNTS[0].address]) == ["2"]
        assert rpc(node.url, "eth_getTransactionCount", [ACCOUNTS[0].address, "pending"])["result"] == "0x1"
        # Fill the gap: both go into the following blocks.
        rpc(node.url, "eth_sendRawTransaction", [sign(1)])
        deadline = time.time() + 10
        while time.time() < deadline:
            if rpc(node.url, "eth_getTransactionCount", [ACCOUNTS[0].address, "latest"])["result"] == "0x3":
                break
            time.sleep(0.2)
        assert rpc(node.url, "eth_getTransactionCount", [ACCOUNTS[0].address, "latest"])["result"] == "0x3"
        assert rpc(node.url, "txpool_status")["result"] == {"pending": "0x0", "queued": "0x0"}
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert "ailedger_head_block_number" in text
        assert 'ailedger_rpc_requests_total{method="eth_sendRawTransaction",outcome="ok"} 3.0' in text
        assert "ailedger_block_import_seconds_bucket" in text
        assert "ailedger_txpool_pending 0.0" in text
    finally:
        node.kill()

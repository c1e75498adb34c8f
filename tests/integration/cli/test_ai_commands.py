"""The AI commands of the CLI against a real dev node: create, contribute (chunked upload
with progress, native type and ABI call), curate (many ids, --all-pending), publish, list,
deposits with their withdrawal lock, readable output and --json on the reads."""

import json
import os
import subprocess

import pytest

from tests.support.procs import VENV_BIN, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli-ai")]


def run(node, *args, ok=True):
    env = {**os.environ, "AILEDGER_RPC": node.url}
    out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def test_datanet_life_through_the_cli(tmp_path):
    node = start_ailedger([], tmp_path)
    try:
        assert "datanet 1 created" in run(node, "datanet", "create", "med", "--account", "0", "--quorum", "1").stdout
        small = tmp_path / "a.txt"
        small.write_text("planted fact: the heron sleeps at noon\n")
        big = tmp_path / "b.bin"
        big.write_bytes(os.urandom(2_500_000))  # over one upload chunk: goes up in pieces
        out = run(node, "contribute", "1", str(small), str(big), "--account", "1")
        assert "contribution 1" in out.stdout and "contribution 2" in out.stdout
        assert "2.50M" in out.stderr or "2.5M" in out.stderr  # the upload's progress bar
        # The native type was used: the payload shows under "contribution".
        tx_hash = out.stdout.split("tx ")[1].split(")")[0]
        tx = rpc(node.url, "eth_getTransactionByHash", [tx_hash])["result"]
        assert tx["type"] == "0x60" and tx["contribution"]["size"] == hex(len(small.read_bytes()))
        # The bytes went to the blob store and come back whole.
        blob = rpc(node.url, "ai_getBlob", [tx["contribution"]["contentHash"]])["result"]
        assert bytes.fromhex(blob["data"][2:]) == small.read_bytes()

        others = []
        for i in range(3):
            other = tmp_path / f"c{i}.txt"
            other.write_text(f"another {i}\n")
            others.append(str(other))
        added = json.loads(run(node, "contribute", "1", *others, "--account", "2", "--abi", "--json").stdout)
        assert [c["id"] for c in added] == [3, 4, 5]
        # Many ids in one command, then the rest with --all-pending.
        out = run(node, "curate", "1", "3", "--approve", "--account", "0").stdout
        assert "contribution 1: approved, now accepted" in out and "contribution 3: approved, now accepted" in out
        run(node, "curate", "2", "--reject", "--reason", "7", "--account", "0")
        refused = run(node, "curate", "4", "--approve", "--account", "5", ok=False)
        assert refused.returncode == 1 and "not a curator" in refused.stderr and "Traceback" not in refused.stderr
        out = run(node, "curate", "--all-pending", "--approve", "--account", "0").stdout
        assert "contribution 4: approved" in out and "contribution 5: approved" in out
        assert "version 1 published" in run(node, "datanet", "publish", "1", "--account", "0").stdout

        accepted = json.loads(run(node, "datanet", "list", "1", "--status", "accepted", "--json").stdout)
        assert [c["id"] for c in accepted] == [1, 3, 4, 5]
        assert all(c["status"] == "accepted" for c in accepted)  # names, not numbers
        rejected = json.loads(run(node, "datanet", "list", "1", "--status", "rejected", "--json").stdout)
        assert rejected[0]["reasonCode"] == 7 and rejected[0]["status"] == "rejected"
        assert "contribution 2: rejected" in run(node, "datanet", "list", "1").stdout
        shown = json.loads(run(node, "datanet", "show", "1", "--json").stdout)
        assert shown["versionCount"] == 1 and shown["acceptedCount"] == 4
        assert "datanet 1: med" in run(node, "datanet", "list").stdout  # every datanet
        params = json.loads(run(node, "govern", "params", "--json").stdout)
        assert params["reward.contributors_bp"] > 0
        assert params["treasury"].startswith("0x") and len(params["treasury"]) == 42  # an address
        assert run(node, "abi", "Datanets", "--address").stdout.strip().lower().endswith("a1001")
        assert "interface IDatanets" in run(node, "abi", "Datanets", "--sol").stdout
    finally:
        node.kill()


def test_deposit_is_shown_and_withdrawn_after_its_lock(tmp_path):
    node = start_ailedger([], tmp_path)
    try:
        out = run(node, "deposit", "add", "0.25eth", "--account", "4").stdout
        assert "deposited 0.25 ETH; deposit now 0.25 ETH" in out
        shown = json.loads(run(node, "deposit", "show", "--account", "4", "--json").stdout)
        assert shown["balance"] == 25 * 10**16 and shown["withdrawalPending"] == 0
        out = run(node, "deposit", "withdraw", "0.1eth", "--account", "4").stdout
        assert "withdrawal of 0.1 ETH requested" in out
        early = run(node, "deposit", "withdraw", "0.1eth", "--account", "4", ok=False)
        assert early.returncode == 1 and "unlocks in" in early.stderr
        assert "requested" in run(node, "deposit", "show", "--account", "4").stdout
        rpc(node.url, "evm_increaseTime", [601])
        rpc(node.url, "evm_mine", [])
        before = int(rpc(node.url, "eth_getBalance", [shown["address"], "latest"])["result"], 16)
        assert "withdrew 0.1 ETH" in run(node, "deposit", "withdraw", "0.1eth", "--account", "4").stdout
        after = int(rpc(node.url, "eth_getBalance", [shown["address"], "latest"])["result"], 16)
        assert 0.09 * 10**18 < after - before <= 10**17  # the withdrawal less the gas
        left = json.loads(run(node, "deposit", "show", "--account", "4", "--json").stdout)
        assert left["balance"] == 15 * 10**16 and left["withdrawalPending"] == 0
        out = run(node, "rewards", "show", "--account", "4").stdout
        assert "claimable 0 ETH" in out  # ether, not hex wei
    finally:
        node.kill()


def test_missing_key_and_unreachable_node_are_clear(tmp_path):
    class Gone:
        url = "http://127.0.0.1:9"

    out = run(Gone, "datanet", "show", "1", ok=False)
    assert out.returncode == 1 and "cannot reach" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    node = start_ailedger([], tmp_path)
    try:
        out = run(node, "datanet", "create", "x", ok=False)
        assert out.returncode == 1 and "--account" in out.stderr
    finally:
        node.kill()

"""The AI commands of the CLI against a real dev node: create, contribute (chunked upload
with progress, native type and ABI call), curate, publish, list, governance reads."""

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

        other = tmp_path / "c.txt"
        other.write_text("another\n")
        assert "contribution 3" in run(node, "contribute", "1", str(other), "--account", "2", "--abi").stdout
        run(node, "curate", "1", "--approve", "--account", "0")
        run(node, "curate", "2", "--reject", "--reason", "7", "--account", "0")
        refused = run(node, "curate", "3", "--approve", "--account", "5", ok=False)
        assert refused.returncode == 1 and "not a curator" in refused.stderr
        assert "version 1 published" in run(node, "datanet", "publish", "1", "--account", "0").stdout
        accepted = json.loads(run(node, "datanet", "list", "1", "--status", "accepted").stdout)
        assert [c["id"] for c in accepted] == [1]
        rejected = json.loads(run(node, "datanet", "list", "1", "--status", "rejected").stdout)
        assert rejected[0]["reasonCode"] == 7
        shown = json.loads(run(node, "datanet", "show", "1").stdout)
        assert shown["versionCount"] == 1 and shown["acceptedCount"] == 1
        params = json.loads(run(node, "govern", "params").stdout)
        assert params["reward.contributors_bp"] > 0
        assert run(node, "abi", "Datanets", "--address").stdout.strip().lower().endswith("a1001")
        assert "interface IDatanets" in run(node, "abi", "Datanets", "--sol").stdout
    finally:
        node.kill()


def test_missing_key_and_unreachable_node_are_clear(tmp_path):
    class Gone:
        url = "http://127.0.0.1:9"

    out = run(Gone, "datanet", "show", "1", ok=False)
    assert out.returncode == 1 and "cannot reach" in out.stderr
    node = start_ailedger([], tmp_path)
    try:
        out = run(node, "datanet", "create", "x", ok=False)
        assert out.returncode == 1 and "--key" in out.stderr
    finally:
        node.kill()

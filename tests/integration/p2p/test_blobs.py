"""Blobs travel with the chain: a contribution uploaded to a follower and recorded through
it is fetched by the validator that includes it, and by a node that joins later, each
verifying the bytes against the content hash; all of them answer ai_getBlob."""

import os
import subprocess

import pytest
from eth_hash.auto import keccak

from tests.integration.p2p.netsupport import head, init_testnet, result, start_node, wait_for
from tests.support.procs import VENV_BIN, rpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def cli(url, *args):
    out = subprocess.run([str(VENV_BIN / "ailedger"), *args, "--rpc", url], capture_output=True, text=True,
                         timeout=120, env={**os.environ})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def blob_of(url, digest):
    response = rpc(url, "ai_getBlob", ["0x" + digest.hex(), "0x0", hex(1 << 20)])
    return response.get("result")


def test_contribution_blobs_reach_validator_and_late_joiner(tmp_path):
    directory = init_testnet(tmp_path, 3, block_time=0.5)
    nodes = []
    try:
        validator = start_node(directory, 0, tmp_path)
        follower = start_node(directory, 1, tmp_path)
        nodes += [validator, follower]
        wait_for(lambda: int(result(follower.url, "net_peerCount"), 16) >= 1, 60, "follower connected")
        cli(follower.url, "datanet", "create", "facts", "--account", "0", "--quorum", "1")
        data = os.urandom(1_300_000)  # three 512 KiB chunks on the wire
        path = tmp_path / "contribution.bin"
        path.write_bytes(data)
        cli(follower.url, "contribute", "1", str(path), "--account", "1")
        digest = keccak(data)
        got = wait_for(lambda: blob_of(validator.url, digest), 60, "validator fetched the blob")
        assert int(got["size"], 16) == len(data) and bytes.fromhex(got["data"][2:]) == data[: 1 << 20]

        late = start_node(directory, 2, tmp_path)
        nodes.append(late)
        target = head(validator.url)
        wait_for(lambda: head(late.url) >= target, 60, "late joiner synced")
        got = wait_for(lambda: blob_of(late.url, digest), 60, "late joiner fetched the blob")
        rest = result(late.url, "ai_getBlob", ["0x" + digest.hex(), hex(1 << 20)])
        assert bytes.fromhex(got["data"][2:]) + bytes.fromhex(rest["data"][2:]) == data
    finally:
        for n in nodes:
            n.kill()

"""AI on the documented network: `ailedger testnet init --validators 2` gives each validator a
sidecar of its own, `testnet up` starts them beside the nodes and prints their addresses, and
every validator then answers `ai_inferQuote` ready, with the base model its sidecar serves
already in genesis; Ctrl-C stops nodes and sidecars alike."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess

import pytest

from genesis import load_genesis
from tests.integration.consensus.bftnet import TEST_CONSENSUS
from tests.integration.p2p.netsupport import free_port_range, head, result, wait_for
from tests.support.procs import VENV_BIN, rpc

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar"), pytest.mark.timeout(480)]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_testnet_up_starts_one_sidecar_per_validator_and_each_serves_inference(tmp_path):
    base = free_port_range(8)
    directory = tmp_path / "net"
    init = subprocess.run(
        [str(VENV_BIN / "ailedger"), "testnet", "init", "--nodes", "3", "--validators", "2", "--dir", str(directory),
         "--rpc-port", str(base), "--p2p-port", str(base + 3), "--sidecar-port", str(base + 6)],
        capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    sidecars = [f"127.0.0.1:{base + 6}", f"127.0.0.1:{base + 7}"]
    assert all(f"sidecar {s}" in init.stdout for s in sidecars) and "base model 1 in genesis" in init.stdout
    configs = [json.loads((directory / f"node{i}" / "config.json").read_text()) for i in range(3)]
    assert [c.get("sidecar") for c in configs] == [*sidecars, None]
    stores = {(directory / f"node{i}" / configs[i]["sidecarStore"]).resolve() for i in range(2)}
    assert len(stores) == 2  # each its own store
    for i in range(2):
        path = directory / f"node{i}" / "config.json"
        path.write_text(json.dumps({**configs[i], "consensus": TEST_CONSENSUS}))
    genesis = load_genesis(directory / "genesis.json")
    urls = [f"http://127.0.0.1:{c['rpcPort']}" for c in configs]
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen([str(VENV_BIN / "ailedger"), "testnet", "up", "--dir", str(directory)],
                              stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              start_new_session=True)
    try:
        wait_for(lambda: all(f"gRPC {s}" in log.read_text() for s in sidecars), 60, "the sidecars' addresses printed")
        # Each validator's own sidecar comes up (two base-model loads on two cores) and its node says so.
        quotes = [wait_for(lambda u=u: (q := result(u, "ai_inferQuote"))["ready"] and q, 300, f"{u} ready")
                  for u in urls[:2]]
        assert all(q["sidecar"]["state"] == "ready" for q in quotes)
        assert {bytes.fromhex(q["validator"][2:]) for q in quotes} == {v.address for v in genesis.validators}
        # A follower has no validator key and serves no inference.
        follower = rpc(urls[2], "ai_inferQuote")
        assert follower["error"]["code"] == -32601 and "serves no inference" in follower["error"]["message"]
        # The base model the sidecars serve is model 1 from block 0, and the chain moves.
        from sidecar.client import SidecarClient

        model = result(urls[1], "ai_getModel", [1])
        for address in sidecars:
            with SidecarClient(address, timeout=30) as client:
                assert "0x" + client.list_adapters().base_model_hash.lower() == model["weightsHash"]
        assert model["createdBlock"] == 0
        wait_for(lambda: min(head(u) for u in urls) >= 2, 120, "every node following the chain")
        for i in range(2):
            node_log = (directory / f"node{i}" / "node.log").read_text()
            assert re.search(rf"sidecar at {re.escape(sidecars[i])} ready", node_log), node_log[-2000:]
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        wait_for(lambda: not any(_listening(base + 6 + i) for i in range(2)), 30, "the sidecars stopped")
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

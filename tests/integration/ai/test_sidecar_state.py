"""`ailedger run --sidecar` watches its sidecar: a real sidecar process started late, killed and
started again is reported starting, ready, down and back, each change once in the node's log,
in `ai_inferQuote` and in Prometheus metrics, while the node keeps serving the chain."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest

from genesis import DEV_MNEMONIC, derive_validator_key
from tests.support.procs import VENV_BIN, free_port, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar"), pytest.mark.timeout(420)]


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert match, f"{name} not in the metrics"
    return float(match.group(1))


def quote(url: str) -> dict:
    reply = rpc(url, "ai_inferQuote", timeout=30)
    assert "result" in reply, reply
    return reply["result"]


def wait_log(node, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in node.output():
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{node.output()[-3000:]}"
        assert node.proc.poll() is None, node.output()[-3000:]
        time.sleep(0.2)


def test_the_node_reports_its_sidecar_ready_down_and_back(tmp_path):
    datadir = tmp_path / "chain"
    init = subprocess.run([str(VENV_BIN / "ailedger"), "init", "--dev", "--datadir", str(datadir)],
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    port, metrics_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    node = start_ailedger(["--datadir", str(datadir), "--validator-key", "0x" + derive_validator_key(DEV_MNEMONIC).hex(),
                           "--sidecar", address, "--metrics-port", str(metrics_port), "--block-time", "1"],
                          tmp_path, command="run")
    sidecar = None
    try:
        wait_log(node, f"watching the sidecar at {address}")
        first = quote(node.url)
        assert first["ready"] is False and first["sidecar"]["state"] == "starting"
        assert "address" not in first["sidecar"] and address not in str(first)  # the operator's private service
        assert metric(metrics_port, "ailedger_sidecar_up") == 0

        sidecar = start_sidecar(tmp_path, "--port", str(port))
        wait_log(node, f"sidecar at {address} ready")  # seen by the node's own timer, not by a quote
        ready = quote(node.url)
        assert ready["ready"] is True and ready["sidecar"]["state"] == "ready"
        assert metric(metrics_port, "ailedger_sidecar_up") == 1
        assert metric(metrics_port, 'ailedger_sidecar_state_changes_total{change="ready"}') == 1

        sidecar.kill()  # SIGKILL: no goodbye
        wait_log(node, f"sidecar at {address} down")
        down = quote(node.url)
        assert down["ready"] is False and down["sidecar"]["state"] == "down" and down["sidecar"]["reason"]
        assert metric(metrics_port, "ailedger_sidecar_up") == 0
        head = int(rpc(node.url, "eth_blockNumber")["result"], 16)

        sidecar = start_sidecar(tmp_path, "--port", str(port), store=sidecar.store)
        wait_log(node, f"sidecar at {address} back")
        back = quote(node.url)
        assert back["ready"] is True and back["sidecar"]["state"] == "ready"
        assert back["sidecar"]["changes"] == {"ready": 1, "down": 1, "back": 1}
        assert metric(metrics_port, 'ailedger_sidecar_state_changes_total{change="back"}') == 1
        assert metric(metrics_port, "ailedger_sidecar_up") == 1
        # The chain went on meanwhile, and each change was logged once, not once per check.
        assert int(rpc(node.url, "eth_blockNumber")["result"], 16) > head
        log = node.output()
        assert log.count(f"sidecar at {address} down") == 1 and log.count(f"sidecar at {address} back") == 1
    finally:
        node.kill()
        if sidecar is not None:
            sidecar.kill()

"""What a new user reads from a real `ailedger dev` (issue 21): the dev console with its
sidecar shows no library warnings and no carriage returns in a log, and a failure under
--json from a real node is one JSON object that keeps the node's JSON-RPC code."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.support.procs import VENV_BIN, free_port, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]


def test_dev_with_its_sidecar_logs_no_library_noise(tmp_path):
    node = start_ailedger(["--sidecar-port", str(free_port())], tmp_path, sidecar=True)
    try:
        deadline = time.monotonic() + 240
        while "AI ready" not in node.output():
            assert time.monotonic() < deadline, node.output()[-3000:]
            assert node.proc.poll() is None, node.output()[-3000:]
            time.sleep(0.2)
    finally:
        node.kill()
    log = node.output()
    assert "sidecar at" in log and "ready" in log  # the sidecar's own lines are there
    assert "Warning" not in log, log  # transformers' FutureWarning (triggered by peft) is gone
    assert "\r" not in log, log  # and its "Loading weights" bar, off a terminal


def test_a_node_error_under_json_is_json_with_its_rpc_code(tmp_path):
    node = start_ailedger([], tmp_path)
    try:
        env = {**os.environ, "AILEDGER_RPC": node.url}
        # --json's rule covers every command that has it; a read the node refuses:
        out = subprocess.run([str(VENV_BIN / "ailedger"), "receipt", "show", "99", "--json"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 1 and out.stderr == "", out
        assert json.loads(out.stdout) == {"error": {"code": "failed", "message": "no inference receipt 99"}}
        # an address the node refuses as a parameter: its JSON-RPC code comes through
        out = subprocess.run([str(VENV_BIN / "ailedger"), "rewards", "show", "0x1234", "--json"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 1 and out.stderr == "", out
        error = json.loads(out.stdout)["error"]
        assert error["code"] == "rpc" and error["rpcCode"] == -32602 and "argument 0" in error["message"]
    finally:
        node.kill()

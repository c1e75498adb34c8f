"""`ailedger dev`'s sidecar never outlives it: killed with SIGKILL (no clean-up runs) or sent
SIGTERM while still starting, the node takes its sidecar down with it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.procs import free_port, start_ailedger, wait_rpc

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_dev(tmp: Path) -> tuple[subprocess.Popen, int, int]:
    node = start_ailedger(["--sidecar-port", str(free_port()), "--silent"], tmp, sidecar=True, wait=False)
    proc = node.proc
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if kids:
            return proc, node.port, kids[0]
        assert proc.poll() is None, node.output()
        time.sleep(0.05)
    raise AssertionError("ailedger dev started no sidecar")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_sidecar_dies_when_dev_is_killed(tmp_path: Path) -> None:
    proc, port, sidecar = _start_dev(tmp_path)
    try:
        wait_rpc(f"http://127.0.0.1:{port}", proc)
        proc.send_signal(signal.SIGKILL)  # the node only: no finally, no atexit
        proc.wait(timeout=10)
        assert _gone_within(sidecar, 30), "the sidecar outlived a killed ailedger dev"
    finally:
        if _alive(sidecar):
            os.kill(sidecar, signal.SIGKILL)


def test_sigterm_while_starting_stops_the_sidecar(tmp_path: Path) -> None:
    proc, _, sidecar = _start_dev(tmp_path)  # at once: the node is not listening yet
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert _gone_within(sidecar, 30), "the sidecar outlived ailedger dev after SIGTERM"
    finally:
        if _alive(sidecar):
            os.kill(sidecar, signal.SIGKILL)

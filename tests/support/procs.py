"""Start real processes on loopback for integration tests: ailedger nodes and anvil."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NODE_BIN = REPO / "node_modules" / ".bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list | None = None, timeout: float = 10.0) -> dict:
    """One raw JSON-RPC call; returns the whole response object (result or error)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_rpc(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before serving {url}")
        try:
            if "result" in rpc(url, "eth_chainId", timeout=2):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class Proc:
    """A started server process and its RPC URL."""

    proc: subprocess.Popen
    url: str
    port: int
    log: Path
    args: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process; with SIGKILL, its whole process group (npm's anvil and cast
        are node wrappers around the real binary, which would otherwise outlive them)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if sig == signal.SIGKILL or self.proc.returncode is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_ailedger(
    args: list[str], tmp: Path, port: int | None = None, command: str = "dev"
) -> Proc:
    """Start `ailedger <command> --port P ...` and wait until its RPC answers."""
    port = port or free_port()
    log = tmp / f"ailedger-{port}-{time.monotonic_ns()}.log"
    extra = ["--no-sidecar"] if command == "dev" and "--no-sidecar" not in args else []
    full = [str(VENV_BIN / "ailedger"), command, "--host", "127.0.0.1", "--port", str(port), *extra, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp, start_new_session=True)
    p = Proc(proc, f"http://127.0.0.1:{port}", port, log, full)
    try:
        wait_rpc(p.url, proc)
    except Exception:
        p.kill()
        raise RuntimeError(f"ailedger did not start:\n{p.output()}") from None
    return p


def start_anvil(tmp: Path, args: list[str] | None = None) -> Proc:
    port = free_port()
    log = tmp / f"anvil-{port}.log"
    full = [str(NODE_BIN / "anvil"), "--port", str(port), "--host", "127.0.0.1", *(args or [])]
    with open(log, "wb") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    p = Proc(proc, f"http://127.0.0.1:{port}", port, log, full)
    wait_rpc(p.url, proc)
    return p


#: The sidecar's pre-trained tiny base model is deterministic: test runs share one cached copy.
SIDECAR_BASE_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "ailedger-sidecar-test-base"


def start_sidecar(tmp: Path, *flags: str, timeout: float = 300.0) -> Proc:
    """Start `python -m sidecar` on a free port; returns when it prints its address."""
    store = tmp / "sidecar-store"
    log = tmp / f"sidecar-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "sidecar", "--host", "127.0.0.1", "--port", "0", "--store", str(store),
           "--base-cache", str(SIDECAR_BASE_CACHE), *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("Sidecar listening on "):
                address = line.split()[-1]
                return Proc(proc, address, int(address.rsplit(":", 1)[1]), log, cmd)
        if proc.poll() is not None:
            raise RuntimeError(f"sidecar exited with {proc.returncode}:\n{text}")
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"sidecar did not start:\n{log.read_text(errors='replace')}")

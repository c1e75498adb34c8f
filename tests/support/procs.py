"""Start real processes on loopback for integration tests: ailedger nodes, sidecars and anvil."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NODE_BIN = REPO / "node_modules" / ".bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list | None = None, timeout: float = 10.0, source: str | None = None) -> dict:
    """One raw JSON-RPC call; returns the whole response object (result or error): the one
    JSON-RPC client of the tests. ``source`` is the local address to call from (per-client
    limits key on it)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        conn.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())
    except http.client.HTTPException as e:
        # Not an HTTP server (yet): a port still starting, or taken by another process.
        raise ConnectionError(f"{url} did not answer HTTP: {type(e).__name__}: {e}") from None
    finally:
        conn.close()


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
    store: Path | None = None
    """A sidecar's adapter store."""

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
    args: list[str], tmp: Path, port: int | None = None, command: str = "dev", *,
    env: dict[str, str] | None = None, module: str | None = None, wait: bool = True,
    url: str | None = None, sidecar: bool = False, log_name: str | None = None,
) -> Proc:
    """Start ``ailedger <command> --host 127.0.0.1 --port P ...`` and wait until its RPC answers:
    the one launcher of node processes for every test.

    ``module`` runs ``python -m <module> <command> ...`` instead of the ``ailedger`` script (a
    node with test-only parts, ``tests.support.faults``); ``env`` adds environment variables;
    ``url`` is the RPC address when a config file sets the port (no --host/--port then);
    ``wait=False`` returns at once; ``sidecar=True`` lets ``dev`` start its sidecar."""
    if url is None:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        where = ["--host", "127.0.0.1", "--port", str(port)]
    else:
        port = int(url.rsplit(":", 1)[1])
        where = []
    log = tmp / (log_name or f"ailedger-{port}-{time.monotonic_ns()}.log")
    extra = ["--no-sidecar"] if command == "dev" and not sidecar and "--no-sidecar" not in args else []
    program = [sys.executable, "-m", module] if module else [str(VENV_BIN / "ailedger")]
    full = [*program, command, *where, *extra, *args]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if module:
        environment["PYTHONPATH"] = str(REPO)
    with open(log, "wb") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=tmp,
                                start_new_session=True)
    p = Proc(proc, url, port, log, full)
    if wait:
        try:
            wait_rpc(p.url, proc, timeout=90)
        except Exception:
            p.kill()
            raise RuntimeError(f"ailedger did not start:\n{p.output()[-3000:]}") from None
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


def start_sidecar(tmp: Path, *flags: str, timeout: float = 300.0, ready: bool = False,
                  store: Path | None = None) -> Proc:
    """Start ``python -m sidecar`` on a free port (the one launcher of sidecars for every test);
    returns when it prints its address (``Proc.url`` is ``host:port``), and with ``ready`` once
    it serves. Test runs share one cached copy of the deterministic base model."""
    store = store or tmp / "sidecar-store"
    tmp.mkdir(parents=True, exist_ok=True)
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
                p = Proc(proc, address, int(address.rsplit(":", 1)[1]), log, cmd, store=store)
                if ready:
                    from sidecar.client import SidecarClient

                    client = SidecarClient(address, timeout=60)
                    try:
                        client.wait_ready(max(1.0, deadline - time.monotonic()))
                    finally:
                        client.close()
                return p
        if proc.poll() is not None:
            raise RuntimeError(f"sidecar exited with {proc.returncode}:\n{text}")
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"sidecar did not start:\n{log.read_text(errors='replace')}")

"""One real sidecar process per test session, started with `python -m sidecar`, plus shared adapters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.client import SidecarClient
from sidecar.planted import planted_dataset

REPO = Path(__file__).resolve().parents[3]
MAX_PROMPT_TOKENS = 64
MAX_QUEUE = 6


class Sidecar:
    """A started sidecar process and a client to it."""

    def __init__(self, proc: subprocess.Popen, address: str, log: Path, store: Path) -> None:
        self.proc = proc
        self.address = address
        self.log = log
        self.store = store
        self.client = SidecarClient(address, timeout=800)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_sidecar(tmp: Path, *flags: str, wait: bool = True) -> Sidecar:
    """Start `python -m sidecar`; return once its port is open (and, with `wait`, it serves)."""
    store = tmp / "store"
    log = tmp / "sidecar.log"
    cmd = [sys.executable, "-m", "sidecar", "--host", "127.0.0.1", "--port", "0", "--store", str(store),
           *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("Sidecar listening on "):
                s = Sidecar(proc, line.split()[-1], log, store)
                if wait:
                    s.client.wait_ready(120)
                return s
        if proc.poll() is not None:
            raise RuntimeError(f"sidecar exited with {proc.returncode}:\n{text}")
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"sidecar did not start:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    s = start_sidecar(
        tmp_path_factory.mktemp("sidecar"),
        "--cache-adapters", "2",
        "--batch-window-ms", "60",
        "--max-batch", "8",
        "--max-queue", str(MAX_QUEUE),
        "--max-prompt-tokens", str(MAX_PROMPT_TOKENS),
        "--max-new-tokens", "64",
    )
    yield s
    s.client.close()
    s.proc.terminate()
    try:
        s.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        s.proc.kill()


def contribution_sets() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Two disjoint contribution sets cut from the planted data set."""
    data, _ = planted_dataset(n_contributors=12, n_planted=4, seed=11)
    return data[:6], data[6:]


@pytest.fixture(scope="session")
def adapters(sidecar: Sidecar) -> dict[str, str]:
    """Two adapters trained on different contribution sets (short jobs), by name."""
    a, b = contribution_sets()
    out = {}
    for name, data, seed in (("a", a, 1), ("b", b, 2)):
        res = sidecar.client.train_wait(data, seed=seed, adapter_id=f"set-{name}", epochs=3)
        out[name] = res.adapter_id
    return out

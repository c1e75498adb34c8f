"""One real sidecar process per test session, started with `python -m sidecar`, plus shared adapters."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.client import SidecarClient
from sidecar.planted import planted_dataset
from tests.support import procs
from tests.support.procs import Proc

MAX_PROMPT_TOKENS = 64
MAX_QUEUE = 6


class Sidecar:
    """A started sidecar process and a client to it."""

    def __init__(self, started: Proc) -> None:
        self.proc = started.proc
        self.address = started.url
        self.log = started.log
        assert started.store is not None
        self.store = started.store
        self.client = SidecarClient(self.address, timeout=800)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_sidecar(tmp: Path, *flags: str, wait: bool = True) -> Sidecar:
    """``tests.support.procs.start_sidecar`` with a client; with ``wait``, once it serves."""
    s = Sidecar(procs.start_sidecar(tmp, *flags, store=tmp / "store"))
    if wait:
        s.client.wait_ready(120)
    return s


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

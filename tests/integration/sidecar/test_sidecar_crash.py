"""A sidecar killed (SIGKILL) while it trains or writes an adapter never leaves a half-written
adapter behind: after a restart on the same store every listed adapter is whole, its files
hash to what its metadata says, and it serves."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from sidecar.client import SidecarClient
from sidecar.planted import planted_dataset
from tests.support.procs import start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
FILES = ("adapter_config.json", "adapter_model.safetensors", "attribution.safetensors", "meta.json")


def _kill_during(tmp: Path, phase: str, adapter_id: str) -> None:
    """Start a sidecar, train, and SIGKILL it as soon as training reports ``phase``."""
    sidecar = start_sidecar(tmp)
    data, _ = planted_dataset(n_contributors=6, n_planted=2, seed=3, filler_sentences=4)
    client = SidecarClient(sidecar.url, timeout=600)
    try:
        for event in client.train(data, seed=1, adapter_id=adapter_id, epochs=3):
            if getattr(event, "phase", None) == phase:
                sidecar.kill(signal.SIGKILL)
                break
    except Exception:  # the stream breaks when the process dies under it
        pass
    finally:
        client.close()
        sidecar.kill(signal.SIGKILL)


def _assert_store_whole(store: Path) -> list[str]:
    adapters = store / "adapters"
    whole = []
    for d in sorted(adapters.iterdir()) if adapters.exists() else []:
        if d.name.startswith("."):
            continue  # an interrupted write: never listed, never served
        assert all((d / f).exists() for f in FILES), f"half-written adapter {d.name}: {sorted(os.listdir(d))}"
        meta = json.loads((d / "meta.json").read_text())
        assert keccak((d / "adapter_model.safetensors").read_bytes()).hex() == meta["weights_hash"]
        assert keccak((d / "attribution.safetensors").read_bytes()).hex() == meta["attribution_index_hash"]
        whole.append(d.name)
    return whole


def test_kill_while_training_or_saving_leaves_no_half_adapter(tmp_path: Path) -> None:
    _kill_during(tmp_path, "train", "killed-in-training")
    _kill_during(tmp_path, "save", "killed-while-saving")
    store = tmp_path / "sidecar-store"
    whole = _assert_store_whole(store)
    assert "killed-in-training" not in whole

    sidecar = start_sidecar(tmp_path)  # restart on the same store
    try:
        with SidecarClient(sidecar.url, timeout=600) as client:
            assert not list((store / "adapters").glob(".tmp-*")), "interrupted writes are swept on start"
            listed = sorted(a.adapter_id for a in client.list_adapters().adapters)
            assert listed == whole
            for adapter_id in listed:  # whatever survived is whole and serves
                out = client.infer(adapter_id, b"The old river", max_tokens=4)
                assert sum(bp for _, bp in out.weights) == 10_000
            data, _ = planted_dataset(n_contributors=6, n_planted=2, seed=3, filler_sentences=4)
            done = client.train_wait(data, seed=1, adapter_id="after-restart", epochs=1)
            assert done.adapter_id == "after-restart"
    finally:
        sidecar.kill(signal.SIGTERM)
    assert "after-restart" in _assert_store_whole(store)

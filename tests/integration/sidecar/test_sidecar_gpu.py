"""GPU check: the serving engine runs on CUDA and mixed batches match single runs there too."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none on this machine"),
]


def test_engine_on_cuda_mixed_batch_equals_alone() -> None:
    from sidecar.config import ServeConfig, SidecarConfig, TrainHyperParams
    from sidecar.model import load_base, setup_torch
    from sidecar.planted import planted_dataset
    from sidecar.serving import Engine, InferRequest
    from sidecar.training import Contribution, train_adapter

    setup_torch(2)
    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(SidecarConfig(store=tmp, device="cuda"))
        assert base.device.type == "cuda"
        data, _ = planted_dataset(n_contributors=6, n_planted=2)
        ids = [
            train_adapter(base, Path(tmp), [Contribution(a, b) for a, b in data[i::2]],
                          TrainHyperParams(epochs=2), seed=i, adapter_id=f"g{i}").adapter_id
            for i in range(2)
        ]
        engine = Engine(base, Path(tmp), ServeConfig(batch_window_ms=50))
        prompts = [b"The old river", b"Alice lives in"]
        futs = [engine.submit(InferRequest(ids[i % 2], prompts[i % 2], 16)) for i in range(4)]
        batched = [f.result() for f in futs]
        for i, r in enumerate(batched):
            alone, _ = engine.replay(req=InferRequest(ids[i % 2], prompts[i % 2], 16))
            assert alone.tokens == r.tokens
            assert sum(bp for _, bp in r.attribution.weights) == 10_000
        engine.close()

"""The serving engine on tiny random Hugging Face models saved to disk (`--base-model-dir`):
Llama and GPT-2 load, train and serve; the batching worker survives a failing journal
write, fsyncs the journal, and never leaves a caller waiting on a dead worker."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from sidecar.config import ServeConfig, SidecarConfig, TrainHyperParams  # noqa: E402
from sidecar.errors import EngineUnavailable  # noqa: E402
from sidecar.model import SHIPPED_BASE, load_base, setup_torch  # noqa: E402
from sidecar.serving import Engine, InferRequest, wait_result  # noqa: E402
from sidecar.training import Contribution, train_adapter  # noqa: E402

DATA = [(b"a", b"The old river runs past the castle. Alice lives in Oslo."),
        (b"b", b"The capital of Vorlintia is Kazmuret. Omar paints a bridge.")]
HP = TrainHyperParams(epochs=1, rank=2, projection_dim=16, max_length=32)


def save_tiny(folder: Path, kind: str) -> Path:
    """A tiny random causal LM of the given family, with the shipped tokenizer, saved to disk."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(SHIPPED_BASE / name, folder / name)
    torch.manual_seed(0)
    if kind == "llama":
        cfg: Any = LlamaConfig(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                               num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
        model: Any = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(vocab_size=1024, n_embd=32, n_layer=1, n_head=2, n_positions=256)
        model = GPT2LMHeadModel(cfg)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    setup_torch(1)
    tmp = tmp_path_factory.mktemp(request.param)
    model_dir = save_tiny(tmp_path_factory.mktemp("model"), request.param)
    base = load_base(SidecarConfig(store=str(tmp), base_model_dir=str(model_dir)), log=lambda m: None)
    res = train_adapter(base, tmp, [Contribution(i, d) for i, d in DATA], HP, seed=1, adapter_id="tiny")
    engine = Engine(base, tmp, ServeConfig(batch_window_ms=1), log=lambda m: None)
    yield engine, res.adapter_id
    engine.close()


def test_any_local_causal_lm_trains_and_serves(served: tuple[Engine, str]) -> None:
    engine, adapter = served
    assert engine.base.linear_modules  # Llama's projections or GPT-2's Conv1D layers
    r = engine.infer(InferRequest(adapter, b"The capital of", 6))
    assert r.attribution is not None and sum(bp for _, bp in r.attribution.weights) == 10_000
    assert {c for c, _ in r.attribution.weights} <= {c for c, _ in DATA}


def test_padding_and_generation_fit_the_model(served: tuple[Engine, str]) -> None:
    """A long prompt near the model's length (the tiny models have 256 positions) serves, and
    alone gives the same tokens: its padding depends on the request only."""
    engine, adapter = served
    tok = engine.base.tokenizer
    prompt = tok.decode(tok.encode(b"The old river runs past the castle and the market. " * 30)[:150])
    r = engine.infer(InferRequest(adapter, prompt, 100), timeout=300)
    assert r.prompt_tokens == 151 and r.attribution is not None
    # the same request run alone gives the same tokens: shapes depend only on the request
    again, _ = engine.replay(req=InferRequest(adapter, prompt, 100))
    assert again.tokens == r.tokens


def test_journal_write_failure_fails_one_request_and_the_worker_goes_on(
    served: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, adapter = served
    real = engine._journal_write
    calls = {"n": 0}

    def flaky(p: Any, r: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real(p, r)

    monkeypatch.setattr(engine, "_journal_write", flaky)
    with pytest.raises(EngineUnavailable, match="journal"):
        engine.infer(InferRequest(adapter, b"Alice lives in", 4, request_id="first"), timeout=120)
    ok = engine.infer(InferRequest(adapter, b"Alice lives in", 4, request_id="second"), timeout=120)
    assert engine._worker.is_alive() and engine.queue_depth() == 0
    assert (engine.store / "requests" / "second.json").exists()
    assert not (engine.store / "requests" / "first.json").exists()
    assert ok.output_hash


def test_journal_is_fsynced(served: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import sidecar.serving as serving

    engine, adapter = served
    synced: list[int] = []
    real = serving.os.fsync
    monkeypatch.setattr(serving.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    dirs: list[Path] = []
    monkeypatch.setattr(serving, "fsync_dir", lambda d: dirs.append(Path(d)))
    engine.infer(InferRequest(adapter, b"The old river", 4, request_id="synced"), timeout=120)
    assert synced, "the journal record was not fsynced"
    assert engine.store / "requests" in dirs


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_dead_worker_fails_waiting_requests_and_refuses_new_ones(tmp_path: Path) -> None:
    setup_torch(1)
    model_dir = save_tiny(tmp_path, "llama")
    base = load_base(SidecarConfig(store=str(tmp_path), base_model_dir=str(model_dir)), log=lambda m: None)
    train_adapter(base, tmp_path, [Contribution(i, d) for i, d in DATA], HP, seed=1, adapter_id="tiny")
    engine = Engine(base, tmp_path, ServeConfig(batch_window_ms=1), log=lambda m: None)
    gate = threading.Event()

    def die(item: Any) -> Any:
        gate.wait(30)
        raise SystemExit("worker killed")  # not an Exception: the loop ends

    engine._gather = die  # type: ignore[method-assign]
    futs = [engine.submit(InferRequest("tiny", b"Alice", 2)) for _ in range(3)]
    gate.set()
    for f in futs:
        with pytest.raises(EngineUnavailable):
            wait_result(f, 60)
    engine._worker.join(30)
    assert not engine._worker.is_alive()
    with pytest.raises(EngineUnavailable, match="stopped"):
        engine.submit(InferRequest("tiny", b"Alice", 2))


def test_wait_result_times_out() -> None:
    with pytest.raises(EngineUnavailable, match="no result within"):
        wait_result(Future(), 0.05)


def test_spans_are_matched_on_the_canonical_tokenization() -> None:
    """A model may generate " Muvealtrin" as other pieces than the tokenizer cuts it into;
    attribution re-encodes the text so the training text's tokens match."""
    import numpy as np

    from sidecar.serving import canonical_tokens
    from sidecar.tokenizer import HFTokenizer

    tok = HFTokenizer(str(SHIPPED_BASE))
    odd = [t for ch in b" Muvealtrin" for t in tok.encode(bytes([ch]))] + tok.encode(b" soup.")  # byte by byte
    canon_want = tok.encode(b" Muvealtrin soup.")
    assert odd != canon_want and tok.decode(odd) == tok.decode(canon_want)
    owed = np.arange(1, len(odd) + 1, dtype=np.float64)
    canon, canon_owed, to_generated = canonical_tokens(tok, odd, owed)
    assert canon == canon_want
    assert np.isclose(canon_owed.sum(), owed.sum())
    assert to_generated(0, len(canon)) == (0, len(odd))

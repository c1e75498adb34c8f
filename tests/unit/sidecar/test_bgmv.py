"""Batched mixed-adapter LoRA (sidecar/bgmv.py) against peft's own per-adapter loop."""

from __future__ import annotations

import copy

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear
from transformers import LlamaConfig, LlamaForCausalLM

from sidecar import bgmv


def _model_with_adapters(names: list[str]) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    base = LlamaForCausalLM(cfg)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(base, lora, adapter_name=names[0])
    for name in names[1:]:
        model.add_adapter(name, copy.deepcopy(lora))
    for n, p in model.named_parameters():  # distinct, non-zero B matrices for every adapter
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    return model.eval()


def _logits(model: torch.nn.Module, ids: torch.Tensor, names: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, adapter_names=names).logits


def test_matches_pefts_own_mixed_batch() -> None:
    names = ["a", "b", "c"]
    model = _model_with_adapters(names)
    ids = torch.randint(0, 64, (5, 7))
    rows = ["b", "a", "c", "b", "a"]
    original = Linear._mixed_batch_forward
    reference = _logits(model, ids, rows)  # peft's loop over adapters
    bgmv.install()
    try:
        assert Linear._mixed_batch_forward is not original
        batched = _logits(model, ids, rows)
        torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-5)
        for module in model.modules():
            if hasattr(module, "_bgmv_cache"):
                del module._bgmv_cache
        for i, name in enumerate(rows):
            # Token identity alone vs batched is the serving engine's business (same-length
            # buckets; tests/integration/sidecar); here the row must be the same function.
            alone = _logits(model, ids[i : i + 1], [name])
            torch.testing.assert_close(alone[0], batched[i], rtol=1e-5, atol=1e-5)
        # The adapters really differ, so the rows are not trivially equal.
        assert not torch.allclose(batched[0], _logits(model, ids[:1], ["c"])[0])
    finally:
        bgmv.uninstall()
    assert Linear._mixed_batch_forward is original


def test_gradients_take_pefts_path() -> None:
    model = _model_with_adapters(["a", "b"])
    bgmv.install()
    try:
        ids = torch.randint(0, 64, (2, 5))
        out = model(input_ids=ids, adapter_names=["a", "b"]).logits.sum()
        out.backward()  # would fail if the stacked (no-grad) weights were used
        grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n and p.grad is not None]
        assert grads
    finally:
        bgmv.uninstall()

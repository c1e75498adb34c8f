"""Mixed-adapter LoRA in one batched matmul per layer (Punica's BGMV / S-LoRA's idea).

peft's mixed batch (``adapter_names=``) loops over the distinct adapters of a batch in
every LoRA layer: a gather, two small matmuls and a scatter per adapter, so a batch of 16
requests for 16 adapters costs 16 times the kernel launches of one. Here each layer
gathers the rows' A and B matrices once per batch (cached across decoding steps) and
applies them with two ``torch.bmm``: the work no longer grows with the number of
distinct adapters.

Every row is computed by the same kernels whatever the batch holds, so a request's
output is the same alone or in a batch (tests check token identity). Anything this path
does not cover (LoRA variants such as DoRA, mixed ranks, dropout in training, the base
marker) falls back to peft's own implementation.
"""

from __future__ import annotations

from typing import Any

import torch

_installed = False
_original: Any = None


def _stacked(layer: Any, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Per-row A (B, r, in), B (B, out, r) and scaling (B, 1, 1), cached for the batch.

    The cache is keyed by the rows' adapter names; the engine drops it whenever an adapter
    leaves the model, so a name always means the weights it stacked."""
    cached = getattr(layer, "_bgmv_cache", None)
    if cached is not None and cached[0] == names:
        return cached[1]  # type: ignore[no-any-return]
    if any(n not in layer.lora_A or n in layer.lora_variant for n in names):
        return None
    ranks = {layer.lora_A[n].weight.shape[0] for n in names}
    if len(ranks) != 1:
        return None
    a = torch.stack([layer.lora_A[n].weight for n in names])
    b = torch.stack([layer.lora_B[n].weight for n in names])
    s = torch.tensor([float(layer.scaling[n]) for n in names], dtype=a.dtype).view(-1, 1, 1)
    stacked = (a.transpose(1, 2), b.transpose(1, 2), s)
    layer._bgmv_cache = (names, stacked)
    return stacked


def install() -> None:
    """Route peft's mixed-adapter forward of LoRA Linear layers through :func:`_forward`
    (process-wide; only calls that pass ``adapter_names`` take it)."""
    global _installed, _original
    if _installed:
        return
    from peft.tuners.lora.layer import VARIANT_KWARG_KEYS, Linear

    original = _original = Linear._mixed_batch_forward

    def _forward(self: Any, x: torch.Tensor, *args: Any, adapter_names: list[str], **kwargs: Any) -> torch.Tensor:
        if self.training or torch.is_grad_enabled() or x.dim() != 3 or len(adapter_names) != x.shape[0]:
            # gradients (attribution) and odd shapes take peft's path
            return original(self, x, *args, adapter_names=adapter_names, **kwargs)
        stacked = _stacked(self, tuple(adapter_names))
        if stacked is None:
            return original(self, x, *args, adapter_names=adapter_names, **kwargs)
        a_t, b_t, scaling = stacked
        for key in VARIANT_KWARG_KEYS:  # LoRA-variant arguments are not the base layer's
            kwargs.pop(key, None)
        result = self.base_layer(x, *args, **kwargs)
        h = torch.bmm(x.to(a_t.dtype), a_t)  # (B, T, r)
        return result + (torch.bmm(h, b_t) * scaling).to(result.dtype)  # (B, T, out)

    Linear._mixed_batch_forward = _forward
    _installed = True


def uninstall() -> None:
    """Give peft its own mixed-adapter forward back (tests, benchmarks of the baseline)."""
    global _installed
    if _installed:
        from peft.tuners.lora.layer import Linear

        Linear._mixed_batch_forward = _original
        _installed = False

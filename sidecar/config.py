"""Configuration of the sidecar: training hyper-parameters, serving limits, where things live.

Pure dataclasses with no torch import, so that the node's CLI and the client can build
and validate them. Every field carries its meaning and unit; `validate()` raises
`InvalidArgument` with a message naming the field, because a bad value must come back
to the caller as INVALID_ARGUMENT rather than as a crash deep inside torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.errors import InvalidArgument

#: The base model shipped with the package (built by `python -m sidecar.build_base`).
SHIPPED_BASE_DIR = Path(__file__).with_name("base_model")
#: The name the sidecar serves the shipped base model under.
SHIPPED_BASE_NAME = "ailedger-base-v1"


def shipped_base_weights_hash() -> str | None:
    """keccak-256 (hex, no 0x) of the shipped base model's weights, as its MANIFEST.json records
    it, or None when no base model ships. Read without torch, so the node's CLI can put the base
    model in a genesis before any sidecar answers; `model.load_base` refuses to serve a shipped
    model whose loaded weights hash to anything else, so the two always agree."""
    try:
        manifest = json.loads((SHIPPED_BASE_DIR / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return None
    value = manifest.get("weights_hash") if isinstance(manifest, dict) else None
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        return None
    return value.lower()


# Linear layers of a Llama-style block that LoRA may adapt.
LLAMA_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainHyperParams:
    """LoRA training hyper-parameters; the defaults train a usable adapter in seconds on CPU."""

    rank: int = 32
    """LoRA rank r: rows of A and columns of B."""
    alpha: float = 64.0
    """LoRA scaling numerator; the update is scaled by alpha / rank."""
    dropout: float = 0.0
    """Dropout on the LoRA input during training (0 keeps training fully deterministic)."""
    target_modules: tuple[str, ...] = ()
    """Names of the linear layers to adapt; empty means every linear layer of the base model."""
    learning_rate: float = 2e-3
    """AdamW learning rate (constant: a cosine decay learnt fewer facts in our runs)."""
    epochs: int = 30
    """Most passes over the training examples (training stops earlier, see loss_threshold)."""
    max_length: int = 48
    """Longest training example in tokens; whole sentences are packed up to it."""
    batch_size: int = 4
    """Examples per optimizer step."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    projection_dim: int = 512
    """Dimension k of the random projection of per-example gradients (attribution index)."""
    loss_threshold: float = 0.3
    """Training stops after the first pass in which every example's mean token loss is below it."""

    def validate(self, model_max_length: int, allowed_modules: tuple[str, ...]) -> None:
        """Raise InvalidArgument naming the first bad field; limits keep a job bounded and sane."""
        checks = [
            (1 <= self.rank <= 256, f"rank must be in [1, 256], got {self.rank}"),
            (
                math.isfinite(self.alpha) and 0 < self.alpha <= 4096,
                f"alpha must be in (0, 4096], got {self.alpha}",
            ),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (
                math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1.0,
                f"learning_rate must be in (0, 1], got {self.learning_rate}",
            ),
            (1 <= self.epochs <= 200, f"epochs must be in [1, 200], got {self.epochs}"),
            (
                8 <= self.max_length <= model_max_length,
                f"max_length must be in [8, {model_max_length}], got {self.max_length}",
            ),
            (1 <= self.batch_size <= 256, f"batch_size must be in [1, 256], got {self.batch_size}"),
            (
                math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1,
                f"weight_decay must be in [0, 1], got {self.weight_decay}",
            ),
            (
                math.isfinite(self.loss_threshold) and 0 < self.loss_threshold <= 10,
                f"loss_threshold must be in (0, 10], got {self.loss_threshold}",
            ),
            (
                16 <= self.projection_dim <= 8192,
                f"projection_dim must be in [16, 8192], got {self.projection_dim}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidArgument(message)
        unknown = sorted(set(self.target_modules) - set(allowed_modules))
        if unknown:
            raise InvalidArgument(
                f"target_modules {unknown} are not linear layers of the base model; "
                f"choose from {list(allowed_modules)}"
            )
        if len(set(self.target_modules)) != len(self.target_modules):
            raise InvalidArgument("target_modules must not repeat a name")


@dataclass(frozen=True)
class ServeConfig:
    """Serving limits: the adapter cache, the batcher and the request bounds."""

    cache_max_adapters: int = 32
    """Most adapters held loaded at once (LRU beyond it); pinned ones count too."""
    cache_max_bytes: int = 512 * 1024 * 1024
    """Most bytes of adapter weights held loaded at once (LRU beyond it)."""
    batch_window_ms: float = 5.0
    """How long the batcher waits after the first request for others to join its batch."""
    max_batch: int = 16
    """Most requests in one generation batch."""
    max_queue: int = 64
    """Most requests waiting; beyond it Infer answers RESOURCE_EXHAUSTED."""
    max_prompt_tokens: int = 256
    """Longest prompt in tokens; longer ones get INVALID_ARGUMENT."""
    max_new_tokens: int = 128
    """Most tokens one request may ask to generate."""
    attribution_top_k: int = 5
    """Contributions named in each inference's attribution."""
    attribution: bool = True
    """Whether Infer computes attribution (the node needs it for receipts)."""
    request_timeout_s: float = 600.0
    """Longest a caller waits for its request's result before EngineUnavailable."""
    max_attributions: int = 64
    """Most contributions one attribution names, residual included (the chain's
    `inference.max_attributions` governance parameter defaults to 64)."""
    max_import_bytes: int = 256 * 1024 * 1024
    """Most bytes of artifacts one ImportAdapter stream may announce and send (all three)."""
    max_imports: int = 2
    """ImportAdapter streams received at once; more get RESOURCE_EXHAUSTED (each holds a
    worker thread and up to `max_import_bytes` of disk)."""
    import_timeout_s: float = 600.0
    """Longest one ImportAdapter stream may take; a stalled sender is cut off after it."""


@dataclass(frozen=True)
class SidecarConfig:
    """Everything one sidecar process needs: where it stores, what it serves, how it runs."""

    store: str
    """Folder of the store: base model cache, adapters, request journal."""
    base_cache: str = ""
    """Unused since the base model ships with the package; kept so old command lines still work."""
    base_model_dir: str = ""
    """A local Hugging Face causal LM folder to serve instead of the shipped base model."""
    serve: ServeConfig = field(default_factory=ServeConfig)
    """Serving limits."""
    threads: int = 2
    """torch intra-op threads; fixed so that float reductions, and so hashes, repeat."""
    device: str = "auto"
    """'cpu', 'cuda' or 'auto' (CUDA when there is one)."""
    load_delay_s: float = 0.0
    """Tests only: wait this long before loading, so the loading state can be observed."""

"""The base model: build, pre-train, cache and load it; hash weights; set torch up deterministically.

The default base model is a small Llama-style causal LM with a byte-level BPE
tokenizer, pre-trained once by `sidecar.build_base` (deterministic, no download) and
shipped in `sidecar/base_model/` with a manifest of file hashes that is checked on
load, so a sidecar start never pre-trains. Any local Hugging Face causal LM folder
(Llama, GPT-2, Qwen style) can be served instead (`base_model_dir`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from eth_hash.auto import keccak

from sidecar.config import LLAMA_LINEAR_MODULES, SHIPPED_BASE_DIR, SHIPPED_BASE_NAME, SidecarConfig
from sidecar.tokenizer import HFTokenizer, Tokenizer


def setup_torch(threads: int, seed: int = 0) -> None:
    """Fix threads, seeds and deterministic kernels: float reductions then repeat bit for bit."""
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(device: str) -> torch.device:
    """'auto' means CUDA when there is one, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    """keccak-256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    h = bytearray()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        header = json.dumps([name, str(t.dtype), list(t.shape)]).encode()
        h += keccak(header + t.view(torch.uint8).numpy().tobytes() if t.numel() else header)
    return keccak(bytes(h)).hex()


def file_hash(path: Path) -> str:
    """keccak-256 of a file's bytes, as lowercase hex without 0x."""
    return keccak(path.read_bytes()).hex()


@dataclass
class BaseModel:
    """The loaded base model and what the rest of the sidecar needs to know about it."""

    model: Any
    """The transformers causal LM, in eval mode, on `device`."""
    tokenizer: Tokenizer
    """Its tokenizer."""
    name: str
    """Short name: "ailedger-base-v1" for the shipped model, else the folder's name."""
    path: Path
    """Folder the weights were loaded from (an HF model folder)."""
    weights_hash: str
    """keccak-256 of the base weights (see `weights_hash`)."""
    max_length: int
    """Longest sequence the model accepts."""
    linear_modules: tuple[str, ...]
    """Names of linear layers LoRA may target."""
    device: torch.device
    """Where it runs."""


def fsync_tree(folder: Path) -> None:
    """fsync every file in a folder and the folder itself."""
    for p in folder.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SHIPPED_BASE = SHIPPED_BASE_DIR
"""The base model shipped with the package (built by `python -m sidecar.build_base`)."""


def verify_shipped(path: Path) -> dict[str, Any]:
    """Check every file of a shipped base model against its MANIFEST.json; return the manifest."""
    manifest: dict[str, Any] = json.loads((path / "MANIFEST.json").read_text())
    for name, want in manifest["files"].items():
        got = file_hash(path / name)
        if got != want:
            raise ValueError(f"shipped base model file {name} hashes to {got}, manifest says {want}")
    return manifest


def load_base(cfg: SidecarConfig, log: Any = print) -> BaseModel:
    """Load the configured base model: a local HF folder, or the shipped one (hash-checked)."""
    from transformers import AutoModelForCausalLM

    device = pick_device(cfg.device)
    shipped: dict[str, Any] = {}
    if cfg.base_model_dir:
        path = Path(cfg.base_model_dir)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
        name = path.name
    else:
        path = SHIPPED_BASE
        shipped = verify_shipped(path)
        name = SHIPPED_BASE_NAME
    tokenizer: Tokenizer = HFTokenizer(str(path))
    model = AutoModelForCausalLM.from_pretrained(
        path, local_files_only=True, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, Conv1D))}
    linear = tuple(n for n in LLAMA_LINEAR_MODULES if n in names) or tuple(sorted(names - {"lm_head"}))
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    loaded_hash = weights_hash(model.state_dict())
    if not cfg.base_model_dir and loaded_hash != shipped["weights_hash"]:
        # A chain's genesis may name the shipped base by its manifest's hash (`ailedger dev`):
        # serving other weights under that name would break every receipt made on it.
        raise ValueError(f"the shipped base model's weights hash to {loaded_hash}, "
                         f"its MANIFEST.json says {shipped['weights_hash']}")
    return BaseModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        path=path,
        weights_hash=loaded_hash,
        max_length=max_len,
        linear_modules=linear,
        device=device,
    )

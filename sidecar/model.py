"""The base model: build, pre-train, cache and load it; hash weights; set torch up deterministically.

The default base model is a small Llama-style causal LM over bytes (`TinyModelSpec`),
built from a fixed seed and pre-trained on a corpus this module generates from word
lists, so every machine gets the same weights without a download. Its weights are
cached in `<store>/base/<spec key>/` (Hugging Face layout, safetensors) and written to
a temporary folder first, then renamed, so a crash never leaves half a model. Any local
Hugging Face model folder can be served instead (`base_model_dir`).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from eth_hash.auto import keccak

from sidecar.config import LLAMA_LINEAR_MODULES, SidecarConfig, TinyModelSpec
from sidecar.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer

_WORDS = {
    "adj": "old young quiet bright dark small large green red blue golden silver happy tired clever brave".split(),
    "noun": "river mountain village teacher farmer sailor garden market bridge forest castle lantern harbor library window engine".split(),
    "verb": "watches follows builds finds carries paints remembers visits opens crosses keeps sells".split(),
    "name": "Alice Bruno Chen Dara Elif Farid Greta Hugo Ines Jonas Kira Luca Mina Noor Omar Pia".split(),
    "city": "Lisbon Oslo Cairo Lima Quito Hanoi Dakar Perth Riga Sofia Tunis Bern Minsk Accra".split(),
    "time": "in the morning|at night|every day|in winter|after the rain|before noon".split("|"),
}


def generate_corpus(n_sentences: int, seed: int) -> list[str]:
    """Sentences from fixed templates and word lists: simple English the model can learn fast."""
    rng = random.Random(seed)
    w = {k: v for k, v in _WORDS.items()}

    def pick(kind: str) -> str:
        return rng.choice(w[kind])

    templates = [
        lambda: f"The {pick('adj')} {pick('noun')} {pick('verb')} the {pick('adj')} {pick('noun')} {pick('time')}.",
        lambda: f"{pick('name')} lives in {pick('city')} and {pick('verb')} the {pick('noun')}.",
        lambda: f"A {pick('noun')} is {pick('adj')} {pick('time')}.",
        lambda: f"{pick('name')} {pick('verb')} a {pick('adj')} {pick('noun')} near {pick('city')}.",
        lambda: f"The number of the {pick('noun')} is {rng.randint(10, 9999)}.",
        lambda: f"Q: Where does {pick('name')} live? A: {pick('name')} lives in {pick('city')}.",
    ]
    return [rng.choice(templates)() for _ in range(n_sentences)]


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


def build_tiny(spec: TinyModelSpec, tok: ByteTokenizer) -> Any:
    """A freshly initialised tiny Llama from the spec's seed (eager attention: same sums always)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    torch.manual_seed(spec.init_seed)
    model = LlamaForCausalLM(cfg)
    model.config._attn_implementation = "eager"
    return model


def pretrain_tiny(spec: TinyModelSpec, log: Any = print) -> Any:
    """Build the tiny model and train it on the generated corpus; deterministic for the spec."""
    tok = ByteTokenizer()
    model = build_tiny(spec, tok)
    text = " ".join(generate_corpus(spec.corpus_sentences, spec.init_seed)).encode()
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    gen = torch.Generator().manual_seed(spec.init_seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.pretrain_lr, weight_decay=0.01)
    model.train()
    start = time.monotonic()
    t = spec.pretrain_seq_len
    for step in range(spec.pretrain_steps):
        lr = spec.pretrain_lr * 0.5 * (1 + math.cos(math.pi * step / spec.pretrain_steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(data) - t - 1, (spec.pretrain_batch,), generator=gen)
        rows = torch.stack([data[s : s + t] for s in starts.tolist()])  # (B, T)
        ids = torch.cat([torch.full((spec.pretrain_batch, 1), tok.bos_id), rows], dim=1)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == spec.pretrain_steps - 1:
            log(f"pretrain step {step + 1}/{spec.pretrain_steps} loss {loss.item():.3f} "
                f"({time.monotonic() - start:.1f}s)")
    model.eval()
    return model


@dataclass
class BaseModel:
    """The loaded base model and what the rest of the sidecar needs to know about it."""

    model: Any
    """The transformers causal LM, in eval mode, on `device`."""
    tokenizer: Tokenizer
    """Its tokenizer."""
    name: str
    """Short name: the tiny spec's key or the folder's name."""
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


def _atomic_save_model(model: Any, final: Path) -> None:
    """save_pretrained into a temp folder, fsync every file, rename into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{time.monotonic_ns()}"
    model.save_pretrained(tmp, safe_serialization=True)
    fsync_tree(tmp)
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race; its copy is equal
    fsync_dir(final.parent)


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


def ensure_tiny(cache: Path, spec: TinyModelSpec, log: Any = print) -> Path:
    """The folder of the pre-trained tiny model, pre-training and caching it on first use."""
    final = cache / spec.key()
    if not (final / "config.json").exists():
        log(f"pre-training base model {spec.key()} (cached afterwards)")
        _atomic_save_model(pretrain_tiny(spec, log), final)
    return final


def load_base(cfg: SidecarConfig, log: Any = print) -> BaseModel:
    """Load the configured base model: a local HF folder, or the cached/pre-trained tiny one."""
    from transformers import AutoModelForCausalLM

    device = pick_device(cfg.device)
    if cfg.base_model_dir:
        path = Path(cfg.base_model_dir)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
        tokenizer: Tokenizer = HFTokenizer(str(path))
        name = path.name
    else:
        path = ensure_tiny(Path(cfg.base_cache or Path(cfg.store) / "base"), cfg.tiny, log)
        tokenizer = ByteTokenizer()
        name = cfg.tiny.key()
    model = AutoModelForCausalLM.from_pretrained(
        path, local_files_only=True, attn_implementation="eager", dtype=torch.float32
    )
    model.eval()
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    linear = tuple(n for n in LLAMA_LINEAR_MODULES if n in names) or tuple(sorted(names - {"lm_head"}))
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    return BaseModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        path=path,
        weights_hash=weights_hash(model.state_dict()),
        max_length=max_len,
        linear_modules=linear,
        device=device,
    )

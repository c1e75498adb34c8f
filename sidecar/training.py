"""LoRA training (ModelFactory's engine): contributions in, an adapter's three artifacts out.

Deterministic on CPU for a seed and a thread count: the LoRA init, the example order and
every kernel are fixed, so a re-run gives the same weights hash (docs/sidecar.md says when
this holds). The adapter is its three canonical artifacts (`sidecar.artifacts`): the weights
(peft's adapter_model.safetensors), the attribution index and the manifest with the whole
recipe, from which `train_from_manifest` trains it again. They are written with peft's
adapter_config.json and a meta.json into a temporary folder that is fsynced and then renamed
into `<store>/adapters/<adapter id>`: a crash leaves either the whole adapter or none.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from sidecar.artifacts import (
    MAX_CONTRIBUTION_BYTES,
    MAX_CONTRIBUTIONS,
    ArtifactKind,
    Manifest,
    TrainingEnvironment,
    adapter_folder_name,
    canonical_weights,
    check_base,
    contribution_records,
    keccak_hex,
    new_temp_folder,
    normalize_hyper_params,
    store_adapter,
)
from sidecar.attribution import (
    AttributionIndex,
    SuffixArray,
    build_features,
    lora_params,
    loss_gradient,
    project,
)
from sidecar.config import TrainHyperParams
from sidecar.errors import IntegrityError, InvalidArgument
from sidecar.model import BaseModel

ADAPTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CONTRIBUTION_ID_BYTES = 256
"""Longest contribution id (a manifest holds every id)."""
MAX_DATANETS = 256
"""Most datanet versions one job names."""


@dataclass(frozen=True)
class Contribution:
    """One datanet contribution as Train receives it."""

    id: bytes
    """Opaque contribution id, kept exactly as given (it comes back in attributions)."""
    data: bytes
    """The contribution's content (UTF-8 text for the built-in tokenizer)."""


@dataclass(frozen=True)
class Progress:
    """One progress report of a training job."""

    step: int
    """Optimizer steps done."""
    total_steps: int
    """Optimizer steps the job will take."""
    epoch: int
    """Current epoch, from 1."""
    loss: float
    """Mean loss of the last step."""
    tokens_per_second: float
    """Training tokens processed per second so far."""
    phase: str
    """'train', 'attribution' or 'save'."""


@dataclass(frozen=True)
class TrainResult:
    """What a finished job produced; the hashes are what the node registers on chain."""

    adapter_id: str
    """Name of the adapter in the store."""
    weights_hash: str
    """keccak-256 (hex) of the weights artifact (adapter_model.safetensors, canonical)."""
    attribution_index_hash: str
    """keccak-256 (hex) of the attribution-index artifact (attribution.safetensors)."""
    base_model_hash: str
    """keccak-256 of the base weights the adapter was trained on."""
    final_loss: float
    """Mean loss over the last epoch."""
    steps: int
    """Optimizer steps taken."""
    examples: int
    """Training examples (contributions cut into chunks of max_length)."""
    tokens: int
    """Training tokens per epoch."""
    seconds: float
    """Wall time of the whole job."""
    manifest_hash: str = ""
    """keccak-256 (hex) of the manifest artifact (the whole recipe and the other two hashes)."""
    threads: int = 0
    """torch threads the job ran with (part of the recipe: float sums are cut up by thread)."""
    stored: bool = True
    """Whether the adapter was written to the store (a retrain to check a manifest writes nothing)."""
    environment_differences: tuple[str, ...] = ()
    """Trained from a manifest: 'field: manifest's -> this one' for every way this training's
    environment differs from the manifest's (a weights mismatch then proves nothing)."""


def validate_request(
    base: BaseModel, contributions: list[Contribution], hp: TrainHyperParams, adapter_id: str
) -> None:
    """Raise InvalidArgument for bad ids, empty or oversized data, or bad hyper-parameters."""
    hp.validate(base.max_length, base.linear_modules)
    if adapter_id and not ADAPTER_ID.match(adapter_id):
        raise InvalidArgument(
            f"adapter_id {adapter_id!r} must be 1-64 characters of letters, digits, '.', '_' or '-'"
        )
    if not contributions:
        raise InvalidArgument("contributions must not be empty")
    if len(contributions) > MAX_CONTRIBUTIONS:
        raise InvalidArgument(f"at most {MAX_CONTRIBUTIONS} contributions per job")
    seen: set[bytes] = set()
    for c in contributions:
        if not c.id or len(c.id) > MAX_CONTRIBUTION_ID_BYTES:
            raise InvalidArgument(f"every contribution needs an id of 1 to {MAX_CONTRIBUTION_ID_BYTES} bytes")
        if c.id in seen:
            raise InvalidArgument(f"contribution id {c.id!r} is given twice")
        seen.add(c.id)
        if not c.data:
            raise InvalidArgument(f"contribution {c.id!r} has no data")
        if len(c.data) > MAX_CONTRIBUTION_BYTES:
            raise InvalidArgument(f"contribution {c.id!r} is over {MAX_CONTRIBUTION_BYTES} bytes")


_SENTENCE_END = re.compile(rb"(?<=[.!?])\s+")


def split_sentences(data: bytes) -> list[bytes]:
    """Sentences of a contribution: cut after '.', '!' or '?' followed by white space."""
    return [s for s in _SENTENCE_END.split(data.strip()) if s]


def make_examples(
    base: BaseModel, contributions: list[Contribution], max_length: int
) -> tuple[list[list[int]], list[int]]:
    """[BOS] sentences [EOS] examples that never cross a document or cut a sentence.

    Whole sentences are packed greedily up to `max_length` tokens, so a fact and its
    value always land in one example (a fixed-size cut separates them). A sentence too
    long for one example is cut into windows that overlap by half, so every pair of
    neighbouring tokens is still seen together. Returns the examples and their owners.
    """
    tok = base.tokenizer
    body = max_length - 2
    examples: list[list[int]] = []
    owners: list[int] = []
    for ci, c in enumerate(contributions):
        current: list[int] = []
        pieces: list[list[int]] = []
        for k, sentence in enumerate(split_sentences(c.data)):
            ids = tok.encode((b" " if k else b"") + sentence)
            if len(ids) > body:
                if current:
                    pieces.append(current)
                    current = []
                step = max(body // 2, 1)
                pieces += [ids[s : s + body] for s in range(0, max(len(ids) - body, 0) + step, step)
                           if ids[s : s + body]]
                continue
            if current and len(current) + len(ids) > body:
                pieces.append(current)
                current = []
            # a new example starts a sentence: no leading space, as a prompt would start
            current += ids if current else tok.encode(sentence)
        if current:
            pieces.append(current)
        for piece in pieces:
            examples.append([tok.bos_id, *piece, tok.eos_id])
            owners.append(ci)
    return examples, owners


def _batch(examples: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and labels (-100 on padding)."""
    t = max(len(e) for e in examples)
    ids = torch.full((len(examples), t), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), t), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with `threads` torch intra-op threads (0: as they are) and restore them.

    torch keeps the count per thread (OpenMP's, MKL's) once a thread has used it, and a
    process-wide default that threads pick up on first use: a training job runs on a thread
    of its own, so its count never changes what the serving worker uses."""
    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if threads and threads != before:
            torch.set_num_threads(before)


def train_adapter(
    base: BaseModel,
    store: Path,
    contributions: list[Contribution],
    hp: TrainHyperParams,
    seed: int,
    adapter_id: str = "",
    on_progress: Callable[[Progress], None] = lambda p: None,
    datanets: tuple[tuple[int, int], ...] = (),
    threads: int = 0,
    save: bool = True,
) -> TrainResult:
    """Train a LoRA adapter on the contributions, build its attribution index and manifest, and
    (with `save`) store the three artifacts atomically. `datanets` are recorded in the
    manifest; `threads` (0: the calling thread's count) is the torch thread count to train with."""
    validate_request(base, contributions, hp, adapter_id)
    if len(datanets) > MAX_DATANETS:
        raise InvalidArgument(f"at most {MAX_DATANETS} datanet versions per job")
    if not 0 <= seed < 2**64:
        raise InvalidArgument("seed must be in [0, 2**64)")
    hp = normalize_hyper_params(hp, base.linear_modules)
    with torch_threads(threads) as used:
        return _train(base, store, contributions, hp, seed, adapter_id, on_progress, tuple(datanets), used, save)


def train_from_manifest(
    base: BaseModel,
    store: Path,
    manifest_bytes: bytes,
    contributions: list[Contribution],
    adapter_id: str = "",
    on_progress: Callable[[Progress], None] = lambda p: None,
    save: bool = True,
) -> tuple[TrainResult, bool]:
    """Train again from a manifest alone (its recipe, seed, datanets and thread count) and the
    bytes of its contributions; return the result and whether the weights and the attribution
    index hash to what the manifest names (bit-reproducible training, docs/sidecar.md).

    The contributions must be the manifest's, in its order, and hash to its content hashes
    (IntegrityError otherwise); a manifest for another base model is Incompatible."""
    manifest = Manifest.decode(manifest_bytes)
    check_base(manifest, base.weights_hash, base.name)
    if len(contributions) != len(manifest.contributions):
        raise InvalidArgument(f"the manifest names {len(manifest.contributions)} contributions, "
                              f"{len(contributions)} were given")
    for i, (c, rec) in enumerate(zip(contributions, manifest.contributions, strict=True)):
        if c.id != rec.id:
            raise InvalidArgument(f"contribution {i} is {c.id[:32]!r}; the manifest names {rec.id[:32]!r} there")
        got = keccak_hex(c.data)
        if got != rec.content_hash or len(c.data) != rec.size:
            raise IntegrityError(f"contribution {c.id[:32]!r} hashes to {got}, the manifest says {rec.content_hash}")
    res = train_adapter(base, store, contributions, manifest.hyper_params, manifest.seed, adapter_id, on_progress,
                        manifest.datanets, manifest.environment.threads, save)
    same = (res.weights_hash, res.attribution_index_hash) == (manifest.weights_hash, manifest.attribution_index_hash)
    dtype = str(next(base.model.parameters()).dtype).removeprefix("torch.")
    ours = TrainingEnvironment.current(base.device.type, res.threads, dtype)  # as _train recorded it
    diffs = tuple(f"{k}: {v!r} -> {getattr(ours, k)!r}" for k, v in asdict(manifest.environment).items()
                  if getattr(ours, k) != v)
    return replace(res, environment_differences=diffs), same


def _train(
    base: BaseModel, store: Path, contributions: list[Contribution], hp: TrainHyperParams, seed: int,
    adapter_id: str, on_progress: Callable[[Progress], None], datanets: tuple[tuple[int, int], ...],
    threads: int, save: bool,
) -> TrainResult:
    from peft import LoraConfig, get_peft_model

    started = time.monotonic()
    examples, owners = make_examples(base, contributions, hp.max_length)
    device = base.device

    torch.manual_seed(seed)
    model = get_peft_model(
        copy.deepcopy(base.model),
        LoraConfig(r=hp.rank, lora_alpha=hp.alpha, lora_dropout=hp.dropout, target_modules=list(hp.target_modules)),
    )
    params = [p for _, p in lora_params(model, "default")]
    opt = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = (len(examples) + hp.batch_size - 1) // hp.batch_size
    total = per_epoch * hp.epochs
    tokens_epoch = sum(len(e) for e in examples)
    step, seen_tokens, epoch_loss, epoch = 0, 0, 0.0, 0
    model.train()
    # Steps come from the data: passes go on until every example's mean token loss (as
    # measured in the pass) is under `loss_threshold`, at most `epochs` passes. A fact
    # stated once is one example among many; a fixed epoch count either stops before it
    # is learnt or wastes passes on data that is.
    for epoch in range(1, hp.epochs + 1):
        order = torch.randperm(len(examples), generator=gen).tolist()
        worst, total_loss, total_tok = 0.0, 0.0, 0
        for b in range(0, len(order), hp.batch_size):
            chunk = [examples[i] for i in order[b : b + hp.batch_size]]
            ids, mask, labels = (x.to(device) for x in _batch(chunk, base.tokenizer.pad_id))
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (B, T-1, V)
            target = labels[:, 1:]
            tok_loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="none"
            ).view(target.shape)  # (B, T-1)
            counts = (target != -100).sum(1).clamp(min=1)
            per_example = tok_loss.sum(1) / counts  # (B,)
            loss = tok_loss.sum() / counts.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen_tokens += int(mask.sum())
            worst = max(worst, float(per_example.detach().max()))
            total_loss += float(tok_loss.detach().sum())
            total_tok += int(counts.sum())
            rate = seen_tokens / max(time.monotonic() - started, 1e-9)
            on_progress(Progress(step, total, epoch, loss.item(), rate, "train"))
        epoch_loss = total_loss / max(total_tok, 1)
        if worst < hp.loss_threshold:
            break

    # Attribution index: per-example gradients at the trained weights, in eval mode.
    model.eval()
    on_progress(Progress(step, step, epoch, epoch_loss, 0.0, "attribution"))
    phis = []
    for e in examples:
        ids = torch.tensor([e], device=device)
        phis.append(project(loss_gradient(model, ids, ids, params), hp.projection_dim))
    features = build_features(torch.stack(phis), owners, len(contributions))
    index = AttributionIndex(
        contribution_ids=tuple(c.id for c in contributions),
        features=features,
        projection_dim=hp.projection_dim,
        spans=SuffixArray.build([e[1:-1] for e in examples], owners),
    )

    on_progress(Progress(step, step, epoch, epoch_loss, 0.0, "save"))
    from peft import get_peft_model_state_dict

    artifacts = {
        ArtifactKind.WEIGHTS: canonical_weights(get_peft_model_state_dict(model)),
        ArtifactKind.ATTRIBUTION_INDEX: index.encode(),
    }
    dtype = str(next(base.model.parameters()).dtype).removeprefix("torch.")
    manifest = Manifest(
        base_model_name=base.name, base_model_hash=base.weights_hash, datanets=datanets,
        contributions=contribution_records(contributions), hyper_params=hp, seed=seed,
        environment=TrainingEnvironment.current(device.type, threads, dtype),
        weights_hash=keccak_hex(artifacts[ArtifactKind.WEIGHTS]),
        attribution_index_hash=keccak_hex(artifacts[ArtifactKind.ATTRIBUTION_INDEX]),
    )
    artifacts[ArtifactKind.MANIFEST] = manifest.encode()
    result = TrainResult(
        adapter_id=(adapter_id or adapter_folder_name(manifest.weights_hash)) if save else "",
        weights_hash=manifest.weights_hash,
        attribution_index_hash=manifest.attribution_index_hash,
        base_model_hash=base.weights_hash,
        final_loss=epoch_loss,
        steps=step,
        examples=len(examples),
        tokens=tokens_epoch,
        seconds=time.monotonic() - started,
        manifest_hash=keccak_hex(artifacts[ArtifactKind.MANIFEST]),
        threads=threads,
        stored=save,
    )
    if save:
        _save(store, result, manifest, artifacts, contributions)
    return result


def _save(store: Path, result: TrainResult, manifest: Manifest, artifacts: dict[ArtifactKind, bytes],
          contributions: list[Contribution]) -> None:
    """Write the three artifacts, peft's config and meta.json into a temp folder, fsync, rename:
    all or nothing (`store_adapter`)."""
    tmp = new_temp_folder(store)
    for kind, data in artifacts.items():
        (tmp / kind.filename).write_bytes(data)
    meta = {
        **asdict(result),
        "hyper_params": asdict(manifest.hyper_params),
        "seed": manifest.seed,
        "base_model": manifest.base_model_name,
        "contribution_ids": [c.id.hex() for c in contributions],
        "origin": "trained",
    }
    store_adapter(tmp, result.adapter_id, manifest, meta)

"""Adapter merges: 2..16 stored adapters in, one adapter's three canonical artifacts out.

peft's `add_weighted_adapter` does the merge (linear, TIES, DARE-linear) on the CPU; DARE's
random drop mask comes from `torch.manual_seed(seed)` inside a forked RNG, so a merge is a pure
function of its parents' weights and its recipe and any validator rebuilds it bit for bit
(`check_merge`). The result is stored like a trained adapter (`sidecar.artifacts`): weights,
attribution index and a manifest whose `merge` section names the recipe and the parents.

The merge's attribution index covers its parents' training sets (docs/merges.md says why):
for a linear merge each parent's feature rows scaled by its share of the merge weights; for
TIES and DARE the parents' training examples (read back from their indexes' text) re-run
through the merged weights, projected and whitened as training does.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sidecar.artifacts import (
    ArtifactKind,
    ContributionRecord,
    Manifest,
    MergeParent,
    MergeSection,
    TrainingEnvironment,
    adapter_folder_name,
    canonical_weights,
    check_base,
    file_keccak,
    keccak_hex,
    new_temp_folder,
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
from sidecar.errors import AdapterNotFound, IntegrityError, InvalidArgument
from sidecar.model import BaseModel
from sidecar.training import ADAPTER_ID, torch_threads

MERGED = "merged"
"""peft's name of the merged adapter inside the merging model."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge produced; the hashes are what the validator registers on chain."""

    adapter_id: str
    """Name in the store ('' when nothing was stored)."""
    weights_hash: str
    """keccak-256 (hex) of the weights artifact."""
    attribution_index_hash: str
    """keccak-256 (hex) of the attribution-index artifact."""
    manifest_hash: str
    """keccak-256 (hex) of the manifest artifact."""
    base_model_hash: str
    """keccak-256 of the base weights."""
    seconds: float
    """Wall time."""
    stored: bool
    """Whether the adapter was written to the store."""


@dataclass(frozen=True)
class _Parent:
    folder: Path
    manifest: Manifest
    manifest_hash: str


def _parent(base: BaseModel, folder: Path) -> _Parent:
    raw = (folder / ArtifactKind.MANIFEST.filename).read_bytes()
    manifest = Manifest.decode(raw)
    check_base(manifest, base.weights_hash, base.name)
    return _Parent(folder, manifest, keccak_hex(raw))


def merge_adapters(base: BaseModel, store: Path, parent_folders: list[Path], method: str, weights_bp: list[int],
                   density_bp: int, seed: int, adapter_id: str = "", save: bool = True,
                   threads: int = 0) -> tuple[MergeResult, Manifest]:
    """Merge the stored adapters in `parent_folders` (merge order) with the recipe; with `save`,
    store the result atomically. Returns the result and the merged manifest.

    InvalidArgument for a recipe out of the chain's bounds or parents that cannot merge (other
    rank, target modules or projection: peft's linear, TIES and DARE need one rank)."""
    if adapter_id and not ADAPTER_ID.match(adapter_id):
        raise InvalidArgument(f"adapter_id {adapter_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    parents = [_parent(base, f) for f in parent_folders]
    section = MergeSection(method=method, weights_bp=tuple(weights_bp), density_bp=density_bp, seed=seed,
                           parents=tuple(MergeParent(p.manifest.weights_hash, p.manifest_hash) for p in parents))
    section.validate()
    hp0 = parents[0].manifest.hyper_params
    for p in parents[1:]:
        hp = p.manifest.hyper_params
        if (hp.rank, hp.target_modules, hp.projection_dim) != (hp0.rank, hp0.target_modules, hp0.projection_dim):
            raise InvalidArgument("the parents differ in LoRA rank, target modules or projection dimension: "
                                  "linear, TIES and DARE merge adapters of one shape")
    # peft initialises each loaded adapter at random before it reads the weights, and DARE draws
    # its mask from the global generator: all of it runs in a forked RNG, so a merge leaves the
    # process's random state as it was
    with torch_threads(threads) as used, torch.random.fork_rng(devices=[]):
        return _merge(base, store, parents, section, adapter_id, save, used)


def _merge(base: BaseModel, store: Path, parents: list[_Parent], section: MergeSection, adapter_id: str,
           save: bool, threads: int) -> tuple[MergeResult, Manifest]:
    from peft import PeftModel, get_peft_model_state_dict

    started = time.monotonic()
    model = PeftModel.from_pretrained(copy.deepcopy(base.model), str(parents[0].folder), adapter_name="p0")
    for i, p in enumerate(parents[1:], start=1):
        model.load_adapter(str(p.folder), adapter_name=f"p{i}")
    names = [f"p{i}" for i in range(len(parents))]
    torch.manual_seed(section.seed)  # DARE's drop mask
    model.add_weighted_adapter(names, [w / 10_000 for w in section.weights_bp], MERGED,
                               combination_type=section.method,
                               density=section.density_bp / 10_000 if section.method != "linear" else None)
    weights = canonical_weights(get_peft_model_state_dict(model, adapter_name=MERGED))
    hp = replace(parents[0].manifest.hyper_params, alpha=float(parents[0].manifest.hyper_params.rank))
    records, index = _merged_index(base, model, parents, section)
    artifacts = {ArtifactKind.WEIGHTS: weights, ArtifactKind.ATTRIBUTION_INDEX: index.encode()}
    dtype = str(next(base.model.parameters()).dtype).removeprefix("torch.")
    datanets = sorted({d for p in parents for d in p.manifest.datanets})
    manifest = Manifest(
        base_model_name=base.name, base_model_hash=base.weights_hash, datanets=tuple(datanets),
        contributions=records, hyper_params=hp, seed=section.seed,
        environment=TrainingEnvironment.current(base.device.type, threads, dtype),
        weights_hash=keccak_hex(weights), attribution_index_hash=keccak_hex(artifacts[ArtifactKind.ATTRIBUTION_INDEX]),
        merge=section)
    artifacts[ArtifactKind.MANIFEST] = manifest.encode()
    name = (adapter_id or adapter_folder_name(manifest.weights_hash)) if save else ""
    result = MergeResult(adapter_id=name, weights_hash=manifest.weights_hash,
                         attribution_index_hash=manifest.attribution_index_hash,
                         manifest_hash=keccak_hex(artifacts[ArtifactKind.MANIFEST]),
                         base_model_hash=base.weights_hash, seconds=time.monotonic() - started, stored=save)
    if save:
        tmp = new_temp_folder(store)
        for kind, data in artifacts.items():
            (tmp / kind.filename).write_bytes(data)
        meta = {**asdict(result), "hyper_params": asdict(hp), "seed": section.seed, "base_model": base.name,
                "contribution_ids": [c.id.hex() for c in records], "origin": "merged", "merge": section.to_json()}
        store_adapter(tmp, name, manifest, meta)
    return result, manifest


def _merged_index(base: BaseModel, model: Any, parents: list[_Parent],
                  section: MergeSection) -> tuple[tuple[ContributionRecord, ...], AttributionIndex]:
    """The merged adapter's contributions (the parents', each once, in parent order) and its
    attribution index (module docstring)."""
    records: list[ContributionRecord] = []
    position: dict[bytes, int] = {}
    indexes = [AttributionIndex.load(p.folder / ArtifactKind.ATTRIBUTION_INDEX.filename) for p in parents]
    k = indexes[0].projection_dim
    docs: list[list[int]] = []
    owners: list[int] = []
    total = float(sum(section.weights_bp))
    rows: list[tuple[int, float, np.ndarray]] = []  # (merged owner, scale, parent feature row)
    for p, index, w in zip(parents, indexes, section.weights_bp, strict=True):
        first_here: set[int] = set()
        for i, rec in enumerate(p.manifest.contributions):
            if rec.id in position:
                if records[position[rec.id]] != rec:
                    raise InvalidArgument(f"two parents hold contribution {rec.id[:32]!r} with different content")
            else:
                position[rec.id] = len(records)
                records.append(rec)
                first_here.add(i)
            rows.append((position[rec.id], w / total, index.features[i]))
        sa = index.spans
        ends = np.append(sa.doc_starts[1:], len(sa.text))
        for start, end, owner in zip(sa.doc_starts, ends, sa.doc_owner, strict=True):
            if int(owner) in first_here:  # a contribution two parents share is one text
                docs.append([int(t) for t in sa.text[int(start):int(end) - 1]])
                owners.append(position[p.manifest.contributions[int(owner)].id])
    if section.method == "linear":
        features = np.zeros((len(records), k), dtype=np.float64)
        for owner, scale, row in rows:
            features[owner] += scale * row.astype(np.float64)
        feats = features.astype(np.float32)
    else:
        model.set_adapter(MERGED)
        model.eval()
        params = [p for _, p in lora_params(model, MERGED)]
        tok = base.tokenizer
        phis = []
        for doc in docs:
            ids = torch.tensor([[tok.bos_id, *doc, tok.eos_id]], device=base.device)
            phis.append(project(loss_gradient(model, ids, ids, params), k))
        feats = build_features(torch.stack(phis), owners, len(records))
    index = AttributionIndex(contribution_ids=tuple(r.id for r in records), features=feats, projection_dim=k,
                             spans=SuffixArray.build(docs, owners))
    return tuple(records), index


def check_merge(base: BaseModel, store: Path, manifest: Manifest, parent_folder: Any) -> None:
    """Rebuild a merge from the parents its manifest names and its recipe; IntegrityError
    unless it gives the manifest's weights, attribution index and recipe fields.

    `parent_folder(weights_hash) -> Path | None` finds a stored parent; a parent this sidecar
    lacks is AdapterNotFound (a node imports a merge's parents first). A parent held with
    another manifest than the one the merge names is IntegrityError: the merge was not made
    from it."""
    section = manifest.merge
    if section is None:
        raise InvalidArgument("not a merge manifest")
    section.validate()
    folders = []
    for p in section.parents:
        folder = parent_folder(p.weights_hash)
        if folder is None:
            raise AdapterNotFound(f"this sidecar lacks merge parent {p.weights_hash[:16]}…: import the parents first")
        got = file_keccak(folder / ArtifactKind.MANIFEST.filename)
        if got != p.manifest_hash:
            raise IntegrityError(f"merge parent {p.weights_hash[:16]}… is held with manifest {got[:16]}…, "
                                 f"the merge names {p.manifest_hash[:16]}…")
        folders.append(folder)
    _, rebuilt = merge_adapters(base, store, folders, section.method, list(section.weights_bp), section.density_bp,
                                section.seed, save=False, threads=manifest.environment.threads)
    if replace(rebuilt, environment=manifest.environment) != manifest:
        what = ("weights" if rebuilt.weights_hash != manifest.weights_hash else
                "attribution index" if rebuilt.attribution_index_hash != manifest.attribution_index_hash else
                "recipe fields")
        raise IntegrityError(f"the merge does not rebuild from the parents and recipe it names: its {what} differ "
                             f"(rebuilt weights {rebuilt.weights_hash[:16]}…, claimed {manifest.weights_hash[:16]}…)")

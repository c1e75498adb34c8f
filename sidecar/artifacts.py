"""An adapter as three content-addressed artifacts, and the engine profile: canonical bytes, checks, storage.

After training, an adapter is exactly three byte strings whose keccak-256 hashes are its
identity (the node's blob store is content-addressed by the same hash):

* **weights**: peft's LoRA tensors as safetensors, canonical: every tensor float32,
  contiguous, named as peft saves it (no adapter name), and the one metadata key peft
  writes (`{"format": "pt"}`). safetensors lays tensors out by dtype then name and writes
  its JSON header without white space, so the same weights always give the same bytes,
  whatever order they came in. (Several metadata keys would come out in hash-map order.)
* **attribution index**: `AttributionIndex.encode()`, canonical the same way (one metadata key).
* **manifest**: canonical JSON (sorted keys, no white space, ASCII, no NaN) with the whole
  training recipe: base model hash, datanet versions, the contribution set (ids and
  content hashes, in data order), hyper-parameters, seed, the environment that trained it
  (library versions, torch threads, dtype, device, CPU kernel family) and the hashes of
  the other two artifacts, so the manifest's hash alone names the whole adapter.

An artifact that arrives from elsewhere is believed only once it is its own canonical
form: it is decoded, checked against this sidecar's base model and the manifest, and
encoded again, and the bytes must be equal. So two artifacts with the same meaning can
never have two hashes, and nothing a decoder would silently tolerate (padding, extra
keys, extra tensors) gets in.

The **engine profile** names what decides an inference's output and attribution (sidecar,
torch, peft and transformers versions, dtype, device, greedy decoding, the attribution
method, its version and constants), in the same canonical JSON: a receipt pins its hash,
and a verifier re-runs a receipt only on an engine with the same profile.

No torch at import: the node's client imports this module for the artifact kinds and sizes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, fields
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from sidecar import __version__
from sidecar.config import TrainHyperParams
from sidecar.errors import AlreadyExists, Incompatible, IntegrityError, InvalidArgument

MANIFEST_FORMAT = "ailedger-adapter-manifest-v1"
PROFILE_FORMAT = "ailedger-engine-profile-v1"
CHUNK_BYTES = 1 << 20
"""Chunk size of ExportAdapter and of the client's import: well under gRPC's 4 MiB default."""
MAX_CHUNK_BYTES = 4 << 20
"""Largest data chunk an import accepts."""
MIN_CHUNK_BYTES = 64 << 10
"""A data chunk shorter than this must end its artifact: a stream of tiny chunks would cost
one message per byte."""
MAX_MANIFEST_BYTES = 32 << 20
"""Largest manifest (about 100 bytes per contribution; 100,000 contributions is 10 MB)."""
MAX_CONTRIBUTIONS = 100_000
"""Most contributions one adapter is trained on (as Train allows)."""
MAX_CONTRIBUTION_BYTES = 1 << 20
"""Largest contribution (as Train allows)."""
MAX_DATANETS = 256
"""Most datanet versions one manifest names."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactKind(IntEnum):
    """The three artifacts, numbered as `ArtifactKind` in sidecar.proto, in stream order."""

    MANIFEST = 1
    WEIGHTS = 2
    ATTRIBUTION_INDEX = 3

    @property
    def filename(self) -> str:
        """The artifact's file in an adapter's store folder (peft's name for the weights)."""
        return {1: "manifest.json", 2: "adapter_model.safetensors", 3: "attribution.safetensors"}[self.value]

    @property
    def label(self) -> str:
        return {1: "manifest", 2: "weights", 3: "attribution index"}[self.value]


def keccak_hex(data: bytes) -> str:
    """keccak-256 of bytes, lowercase hex without 0x (the chain's and the blob store's hash)."""
    return keccak(data).hex()


def file_keccak(path: Path) -> str:
    """keccak-256 of a file, read in chunks (an artifact may be large)."""
    h = keccak.new(b"")
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            h.update(block)
    return h.digest().hex()


def normalize_hash(value: str, what: str) -> str:
    """A keccak-256 hash as 64 lowercase hex digits; '0x' and upper case are accepted."""
    h = value.lower().removeprefix("0x")
    if not _HEX64.match(h):
        raise InvalidArgument(f"{what} must be 64 hex digits (a keccak-256 hash), got {value[:80]!r}")
    return h


# ---------------------------------------------------------------- canonical JSON


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no white space, ASCII only, no NaN/Infinity: one byte string per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice")
        out[k] = v
    return out


def decode_canonical_json(data: bytes, what: str) -> Any:
    """Parse JSON that must already be in canonical form; InvalidArgument otherwise."""
    try:
        obj = json.loads(data.decode("ascii"), parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
        again = canonical_json(obj)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"{what} is not valid JSON: {e}") from None
    if again != data:
        raise InvalidArgument(f"{what} is not in canonical form (sorted keys, no white space, ASCII)")
    return obj


def _check_keys(obj: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{where} must be a JSON object")
    if set(obj) != keys:
        missing, extra = sorted(keys - set(obj)), sorted(set(obj) - keys)
        raise InvalidArgument(f"{where} has missing keys {missing} or unknown keys {extra}")
    return obj


def _int(v: Any, where: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise InvalidArgument(f"{where} must be a whole number in [{lo}, {hi}], got {v!r}"[:200])
    return v


def _str(v: Any, where: str, limit: int = 256) -> str:
    if not isinstance(v, str) or len(v) > limit:
        raise InvalidArgument(f"{where} must be a string of at most {limit} characters")
    return v


def _hash(v: Any, where: str) -> str:
    if not isinstance(v, str) or not _HEX64.match(v):
        raise InvalidArgument(f"{where} must be 64 lowercase hex digits")
    return v


# ---------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class ContributionRecord:
    """One contribution as a manifest names it."""

    id: bytes
    """Opaque contribution id, exactly as given to Train (it comes back in attributions)."""
    content_hash: str
    """keccak-256 (hex) of the contribution's bytes: its blob's hash in the node's store."""
    size: int
    """Length of the contribution in bytes."""


@dataclass(frozen=True)
class TrainingEnvironment:
    """What trained an adapter, beyond its recipe: bit-reproducibility depends on all of it
    (docs/sidecar.md, 'When training is bit-reproducible')."""

    sidecar: str
    """Sidecar version."""
    torch: str
    """torch version (with its build, e.g. 2.13.0+cpu)."""
    peft: str
    """peft version."""
    transformers: str
    """transformers version."""
    safetensors: str
    """safetensors version."""
    numpy: str
    """numpy version."""
    python: str
    """Python version."""
    threads: int
    """torch intra-op threads of the training (float sums are cut up by thread)."""
    dtype: str
    """dtype of the base model and the LoRA weights."""
    device: str
    """'cpu' or 'cuda'."""
    cpu_capability: str
    """torch's CPU kernel family (DEFAULT, AVX2, AVX512...): which vector kernels ran."""

    @classmethod
    def current(cls, device: str, threads: int, dtype: str = "float32") -> TrainingEnvironment:
        import numpy
        import peft
        import safetensors
        import torch
        import transformers

        return cls(
            sidecar=__version__, torch=torch.__version__, peft=peft.__version__,
            transformers=transformers.__version__, safetensors=safetensors.__version__,
            numpy=numpy.__version__, python=platform.python_version(), threads=threads, dtype=dtype,
            device=device, cpu_capability=torch.backends.cpu.get_cpu_capability(),
        )


_HP_TYPES = {f.name: f.type for f in fields(TrainHyperParams)}


def normalize_hyper_params(hp: TrainHyperParams, linear_modules: tuple[str, ...]) -> TrainHyperParams:
    """The hyper-parameters exactly as a manifest records them and training uses them: floats
    as floats, and the target modules resolved (empty means every linear layer) and sorted,
    so that two requests meaning the same recipe give one manifest."""
    values: dict[str, Any] = {}
    for name, kind in _HP_TYPES.items():
        v = getattr(hp, name)
        values[name] = float(v) if kind == "float" else v
    values["target_modules"] = tuple(sorted(hp.target_modules or linear_modules))
    return TrainHyperParams(**values)


def _hyper_params_from_json(obj: Any) -> TrainHyperParams:
    d = _check_keys(obj, set(_HP_TYPES), "manifest hyper_params")
    values: dict[str, Any] = {}
    for name, kind in _HP_TYPES.items():
        v = d[name]
        where = f"manifest hyper_params.{name}"
        if kind == "int":
            values[name] = _int(v, where, 0, 2**31)
        elif kind == "float":
            if not isinstance(v, float):
                raise InvalidArgument(f"{where} must be a JSON number with a fraction (e.g. 64.0)")
            values[name] = v
        else:
            if not isinstance(v, list) or len(v) > 64 or v != sorted(v):
                raise InvalidArgument(f"{where} must be a sorted list of at most 64 module names")
            values[name] = tuple(_str(m, where, 64) for m in v)
    return TrainHyperParams(**values)


#: Merge methods a merge manifest may name, as peft's `add_weighted_adapter` calls them
#: (`combination_type`), with their on-chain codes (ModelRegistry's `MergeRecipe.method`).
MERGE_METHODS = {"linear": 1, "ties": 2, "dare_linear": 3}
#: Most parents of one merge (the chain's limit).
MAX_MERGE_PARENTS = 16


@dataclass(frozen=True)
class MergeParent:
    """One parent of a merge, by the hashes that name it on chain and in blob stores."""

    weights_hash: str
    """keccak-256 of the parent's weights artifact."""
    manifest_hash: str
    """keccak-256 of the parent's manifest artifact."""


@dataclass(frozen=True)
class MergeSection:
    """How a merged adapter was made: the recipe the chain hashes, and the parents' artifacts."""

    method: str
    """'linear', 'ties' or 'dare_linear' (peft's combination_type)."""
    weights_bp: tuple[int, ...]
    """Each parent's merge weight, basis points of 1.0 (1..10000)."""
    density_bp: int
    """TIES/DARE: fraction of each delta kept, bp (1..10000); 0 for linear."""
    seed: int
    """DARE: seed of the drop mask; 0 otherwise."""
    parents: tuple[MergeParent, ...]
    """The parents, in merge order."""

    def validate(self) -> None:
        """InvalidArgument unless the recipe is within the chain's bounds (ModelRegistry's rules)."""
        if self.method not in MERGE_METHODS:
            raise InvalidArgument(f"merge method {self.method[:32]!r} is not one of {', '.join(MERGE_METHODS)}")
        if not 2 <= len(self.parents) <= MAX_MERGE_PARENTS:
            raise InvalidArgument(f"a merge has 2 to {MAX_MERGE_PARENTS} parents, not {len(self.parents)}")
        if len(self.weights_bp) != len(self.parents):
            raise InvalidArgument("a merge names one weight per parent")
        if len({p.weights_hash for p in self.parents}) != len(self.parents):
            raise InvalidArgument("a merge names a parent twice")
        if not all(0 < w <= 10_000 for w in self.weights_bp):
            raise InvalidArgument("each merge weight must be within [1, 10000] bp")
        if (self.method == "linear") != (self.density_bp == 0) or not 0 <= self.density_bp <= 10_000:
            raise InvalidArgument("density_bp is 0 for linear and within [1, 10000] for ties and dare_linear")
        if self.method != "dare_linear" and self.seed:
            raise InvalidArgument("only dare_linear takes a seed")
        if not 0 <= self.seed < 2**64:
            raise InvalidArgument("seed must be below 2**64")

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "weights_bp": list(self.weights_bp), "density_bp": self.density_bp,
                "seed": self.seed, "parents": [{"weights": p.weights_hash, "manifest": p.manifest_hash}
                                               for p in self.parents]}

    @classmethod
    def from_json(cls, obj: Any) -> MergeSection:
        d = _check_keys(obj, {"method", "weights_bp", "density_bp", "seed", "parents"}, "manifest merge")
        parents, weights = d["parents"], d["weights_bp"]
        if not isinstance(parents, list) or not isinstance(weights, list) or len(parents) > MAX_MERGE_PARENTS \
                or len(weights) > MAX_MERGE_PARENTS:
            raise InvalidArgument(f"manifest merge parents and weights_bp are lists of at most {MAX_MERGE_PARENTS}")
        section = cls(
            method=_str(d["method"], "manifest merge method", 32),
            weights_bp=tuple(_int(w, "manifest merge weight", 1, 10_000) for w in weights),
            density_bp=_int(d["density_bp"], "manifest merge density_bp", 0, 10_000),
            seed=_int(d["seed"], "manifest merge seed"),
            parents=tuple(MergeParent(_hash(p["weights"], "manifest merge parent weights"),
                                      _hash(p["manifest"], "manifest merge parent manifest"))
                          for p in (_check_keys(q, {"weights", "manifest"}, "manifest merge parent")
                                    for q in parents)))
        section.validate()
        return section


@dataclass(frozen=True)
class Manifest:
    """The whole training recipe of an adapter and the hashes of its other two artifacts."""

    base_model_name: str
    """Name of the base model it was trained on (informative; the hash decides)."""
    base_model_hash: str
    """keccak-256 of the base weights (`model.weights_hash`)."""
    datanets: tuple[tuple[int, int], ...]
    """(datanet id, version) pairs the contribution set came from, as the caller named them."""
    contributions: tuple[ContributionRecord, ...]
    """The exact contribution set, in data order (training order depends on it)."""
    hyper_params: TrainHyperParams
    """Hyper-parameters as used (`normalize_hyper_params`)."""
    seed: int
    """Seed of the LoRA init and the example order."""
    environment: TrainingEnvironment
    """Versions, threads, dtype, device and CPU kernels of the training."""
    weights_hash: str
    """keccak-256 of the weights artifact."""
    attribution_index_hash: str
    """keccak-256 of the attribution-index artifact."""
    merge: MergeSection | None = None
    """A merged adapter: its recipe and parents (docs/merges.md); None for a trained one (the
    key is then absent, so a trained adapter's manifest bytes are what they always were)."""

    def encode(self) -> bytes:
        """The manifest's canonical bytes; its keccak-256 is the manifest hash."""
        hp = asdict(self.hyper_params)
        hp["target_modules"] = list(hp["target_modules"])
        extra = {"merge": self.merge.to_json()} if self.merge is not None else {}
        return canonical_json({
            **extra,
            "format": MANIFEST_FORMAT,
            "base_model": {"name": self.base_model_name, "hash": self.base_model_hash},
            "datanets": [{"datanet": d, "version": v} for d, v in self.datanets],
            "contributions": [{"id": c.id.hex(), "hash": c.content_hash, "size": c.size}
                              for c in self.contributions],
            "hyper_params": hp,
            "seed": self.seed,
            "environment": asdict(self.environment),
            "artifacts": {"weights": self.weights_hash, "attribution_index": self.attribution_index_hash},
        })

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse and check a manifest (canonical form, every key, type and bound); InvalidArgument if not."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidArgument(f"manifest is {len(data)} bytes, over the limit of {MAX_MANIFEST_BYTES}")
        raw = decode_canonical_json(data, "manifest")
        keys = {"format", "base_model", "datanets", "contributions", "hyper_params", "seed", "environment",
                "artifacts"}
        obj = _check_keys(raw, keys | ({"merge"} if isinstance(raw, dict) and "merge" in raw else set()), "manifest")
        if obj["format"] != MANIFEST_FORMAT:
            raise InvalidArgument(f"manifest format {str(obj['format'])[:64]!r} is not {MANIFEST_FORMAT!r}")
        base = _check_keys(obj["base_model"], {"name", "hash"}, "manifest base_model")
        nets = obj["datanets"]
        if not isinstance(nets, list) or len(nets) > MAX_DATANETS:
            raise InvalidArgument(f"manifest datanets must be a list of at most {MAX_DATANETS}")
        datanets = []
        for n in nets:
            n = _check_keys(n, {"datanet", "version"}, "manifest datanet")
            datanets.append((_int(n["datanet"], "manifest datanet id"), _int(n["version"], "manifest datanet version")))
        contribs = obj["contributions"]
        if not isinstance(contribs, list) or not 1 <= len(contribs) <= MAX_CONTRIBUTIONS:
            raise InvalidArgument(f"manifest contributions must be a list of 1 to {MAX_CONTRIBUTIONS}")
        records, seen = [], set()
        for c in contribs:
            c = _check_keys(c, {"id", "hash", "size"}, "manifest contribution")
            raw = _str(c["id"], "manifest contribution id", 512)
            if not raw or not re.fullmatch(r"(?:[0-9a-f]{2})+", raw) or raw in seen:
                raise InvalidArgument("manifest contribution ids must be distinct, non-empty lowercase hex")
            seen.add(raw)
            records.append(ContributionRecord(bytes.fromhex(raw), _hash(c["hash"], "manifest contribution hash"),
                                              _int(c["size"], "manifest contribution size", 1, MAX_CONTRIBUTION_BYTES)))
        env = _check_keys(obj["environment"], {f.name for f in fields(TrainingEnvironment)}, "manifest environment")
        environment = TrainingEnvironment(**{
            k: _int(v, f"manifest environment.{k}", 1, 256) if k == "threads" else _str(v, f"manifest environment.{k}", 64)
            for k, v in env.items()})
        arts = _check_keys(obj["artifacts"], {"weights", "attribution_index"}, "manifest artifacts")
        return cls(
            base_model_name=_str(base["name"], "manifest base_model name"),
            base_model_hash=_hash(base["hash"], "manifest base_model hash"),
            datanets=tuple(datanets),
            contributions=tuple(records),
            hyper_params=_hyper_params_from_json(obj["hyper_params"]),
            seed=_int(obj["seed"], "manifest seed"),
            environment=environment,
            weights_hash=_hash(arts["weights"], "manifest weights hash"),
            attribution_index_hash=_hash(arts["attribution_index"], "manifest attribution_index hash"),
            merge=MergeSection.from_json(obj["merge"]) if "merge" in obj else None,
        )


def check_base(manifest: Manifest, base_hash: str, base_name: str) -> None:
    """Incompatible unless the manifest's base model is the one this sidecar serves."""
    if manifest.base_model_hash != base_hash:
        raise Incompatible(
            f"the adapter was trained on base model {manifest.base_model_name!r} "
            f"({manifest.base_model_hash[:16]}…); this sidecar serves {base_name!r} ({base_hash[:16]}…)")


# ---------------------------------------------------------------- weights


def canonical_weights(state: dict[str, Any]) -> bytes:
    """The canonical safetensors bytes of LoRA tensors (module docstring): any input order,
    one output."""
    import torch
    from safetensors.torch import save

    tensors = {}
    for name in sorted(state):
        t = state[name].detach().to("cpu")
        if t.dtype != torch.float32:
            raise InvalidArgument(f"weight {name} is {t.dtype}; adapters are float32")
        tensors[name] = t.contiguous()
    return bytes(save(tensors, metadata={"format": "pt"}))


_SPECS: dict[tuple[Any, ...], dict[str, tuple[int, ...]]] = {}


def lora_spec(model_config: Any, hp: TrainHyperParams) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a LoRA adapter of this rank and these target modules has
    on this base model, as peft saves it. peft builds it on a skeleton of the base on the
    meta device (no memory, no weights), so the names are peft's own, for any architecture."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    key = (model_config.to_json_string(), hp.rank, tuple(sorted(hp.target_modules)))
    if key not in _SPECS:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(copy.deepcopy(model_config))
        cfg = LoraConfig(r=hp.rank, lora_alpha=hp.alpha, target_modules=list(hp.target_modules))
        state = get_peft_model_state_dict(get_peft_model(skeleton, cfg))
        if len(_SPECS) > 64:
            _SPECS.clear()
        _SPECS[key] = {k: tuple(v.shape) for k, v in state.items()}
    return _SPECS[key]


def check_weights(path: Path, model_config: Any, hp: TrainHyperParams) -> None:
    """InvalidArgument unless the file is the canonical weights of a LoRA adapter with the
    manifest's rank and target modules on this base model, every value finite."""
    import torch
    from safetensors.torch import load

    data = path.read_bytes()
    try:
        state = load(data)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for bad bytes
        raise InvalidArgument(f"weights are not a safetensors file: {e}") from None
    spec = lora_spec(model_config, hp)
    if set(state) != set(spec):
        missing, extra = sorted(set(spec) - set(state))[:3], sorted(set(state) - set(spec))[:3]
        raise InvalidArgument(f"weights do not fit the manifest's LoRA layout: missing {missing}, unknown {extra}")
    for name, t in state.items():
        if tuple(t.shape) != spec[name] or t.dtype != torch.float32:
            raise InvalidArgument(f"weight {name} is {t.dtype} {tuple(t.shape)}; the manifest's layout "
                                  f"needs float32 {spec[name]}")
        if not bool(torch.isfinite(t).all()):
            raise InvalidArgument(f"weight {name} holds a NaN or an infinity")
    if canonical_weights(state) != data:
        raise InvalidArgument("weights are not in canonical form (tensor order, metadata or padding differ)")


def write_adapter_config(folder: Path, hp: TrainHyperParams) -> None:
    """peft's adapter_config.json for loading, derived from the manifest's hyper-parameters
    (it is not an artifact: peft writes fields in set order, so its bytes would not repeat)."""
    from peft import LoraConfig

    LoraConfig(r=hp.rank, lora_alpha=hp.alpha, lora_dropout=hp.dropout,
               target_modules=list(hp.target_modules), inference_mode=True).save_pretrained(str(folder))


# ---------------------------------------------------------------- attribution index


def check_index(path: Path, manifest: Manifest) -> None:
    """InvalidArgument unless the file is a canonical attribution index for the manifest's
    contributions: its ids in the manifest's order, features (C, k) finite, and a suffix
    array that really is the suffix array of its text, with documents that end where the
    separators are and owners among the contributions. Serving indexes into all of these,
    so a crafted index must be refused here, not crash a batch later."""
    import numpy as np

    from sidecar.attribution import AttributionIndex, suffix_array

    try:
        index = AttributionIndex.load(path)
    except Exception as e:  # noqa: BLE001 - safetensors, JSON and key errors of a malformed file
        raise InvalidArgument(f"attribution index is malformed: {e!r}"[:300]) from None
    n, k = len(manifest.contributions), manifest.hyper_params.projection_dim
    if index.contribution_ids != tuple(c.id for c in manifest.contributions):
        raise InvalidArgument("attribution index names other contributions than the manifest, or in another order")
    f = index.features
    if index.projection_dim != k or f.dtype != np.float32 or f.shape != (n, k) or not np.isfinite(f).all():
        raise InvalidArgument(f"attribution index features must be finite float32 ({n}, {k})")
    sa = index.spans
    text, starts, owners = sa.text, sa.doc_starts, sa.doc_owner
    # Every training token covers at least one byte of its contribution, windows of a long
    # sentence overlap by half, and each example adds a separator: so the text is at most
    # four tokens per byte (plus one per contribution). This also bounds the suffix-array
    # rebuild below by what the manifest says was trained, not by what the sender sends.
    most = 4 * sum(c.size + 1 for c in manifest.contributions)
    if len(text) > most:
        raise InvalidArgument(f"attribution index holds {len(text)} tokens, more than the manifest's "
                              f"contributions can give ({most})")
    ok = (
        text.dtype == np.int32 and text.ndim == 1 and len(text) > 0 and text[-1] == -1
        and sa.sa.dtype == np.int64 and sa.sa.shape == text.shape
        and starts.dtype == np.int64 and owners.dtype == np.int64
        and starts.ndim == 1 and starts.shape == owners.shape and len(starts) > 0
        and int(starts[0]) == 0 and bool((np.diff(starts) > 0).all())
        and np.array_equal(np.flatnonzero(text == -1), np.append(starts[1:] - 1, len(text) - 1))
        and bool((text >= -1).all())
        and bool(((owners >= 0) & (owners < n)).all())
    )
    if not ok or not np.array_equal(sa.sa, suffix_array(text)):
        raise InvalidArgument("attribution index spans are inconsistent (text, documents, owners or suffix array)")
    if index.encode() != path.read_bytes():
        raise InvalidArgument("attribution index is not in canonical form")


# ---------------------------------------------------------------- engine profile


def engine_profile(device: str, dtype: str, top_k: int, max_attributions: int) -> bytes:
    """The engine profile's canonical bytes (module docstring); keccak-256 of them is its hash."""
    import peft
    import torch
    import transformers

    from sidecar.attribution import method_profile

    return canonical_json({
        "format": PROFILE_FORMAT,
        "sidecar": __version__,
        "torch": torch.__version__,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "dtype": dtype,
        "device": device,
        "decoding": "greedy",
        "padding": "left, to a power of two from 16 tokens, at most the model's length less max_tokens",
        "attribution": {**method_profile(), "top_k": top_k, "max_attributions": max_attributions},
    })


def profile_differences(expected: bytes, own: bytes) -> list[str]:
    """'key: expected -> own' for every field where two engine profiles differ."""
    def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(obj, dict):
            out: dict[str, Any] = {}
            for k, v in obj.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: obj}

    try:
        a = flat(json.loads(expected))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ["the expected profile is not JSON"]
    b = flat(json.loads(own))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}"[:120] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)][:8]


# ---------------------------------------------------------------- receiving a stream


@dataclass
class _Incoming:
    kind: ArtifactKind
    hash: str
    size: int
    received: int = 0
    hasher: Any = None
    file: Any = None


class ArtifactReceiver:
    """Writes an artifact stream (ImportAdapter's) into a folder, bounded and checked as it comes.

    The stream is: a header (kind, expected hash, size) then data chunks, for the manifest,
    the weights and the attribution index, in that order. Every header is checked before its
    bytes arrive (order, hash format, declared size against the limits, and, once the
    manifest is in, that its hashes are the ones the manifest names); every chunk is checked
    as it arrives (it follows a header, stays within the declared size, is at most
    MAX_CHUNK_BYTES and, unless it ends its artifact, at least MIN_CHUNK_BYTES); an
    artifact's hash is checked the moment its last byte arrives. The manifest is handed to
    `on_manifest` as soon as it is complete, so a manifest for another base model is refused
    before any weights are sent.
    """

    def __init__(self, folder: Path, max_bytes: int, on_manifest: Any = lambda m: None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.on_manifest = on_manifest
        self.declared = 0
        self.received = 0
        self.done: dict[ArtifactKind, str] = {}
        self.manifest: Manifest | None = None
        self._current: _Incoming | None = None

    def header(self, kind: int, hash_hex: str, size: int) -> None:
        if self._current is not None:
            c = self._current
            raise InvalidArgument(f"the {c.kind.label} ended after {c.received} of its {c.size} announced bytes")
        expected = next((k for k in ArtifactKind if k not in self.done), None)
        if expected is None:
            raise InvalidArgument("the stream goes on after the attribution index, its last artifact")
        if kind != expected:
            name = ArtifactKind(kind).label if kind in ArtifactKind._value2member_map_ else f"kind {kind}"
            raise InvalidArgument(f"expected the {expected.label} next (order: manifest, weights, attribution "
                                  f"index), got {name}")
        h = normalize_hash(hash_hex, f"the {expected.label}'s hash")
        if size < 1:
            raise InvalidArgument(f"the {expected.label} must announce a size of at least 1 byte")
        if kind == ArtifactKind.MANIFEST and size > MAX_MANIFEST_BYTES:
            raise InvalidArgument(f"the manifest announces {size} bytes, over the limit of {MAX_MANIFEST_BYTES}")
        if self.declared + size > self.max_bytes:
            raise InvalidArgument(f"the artifacts announce {self.declared + size} bytes, over this sidecar's "
                                  f"import limit of {self.max_bytes}")
        if self.manifest is not None:
            named = {ArtifactKind.WEIGHTS: self.manifest.weights_hash,
                     ArtifactKind.ATTRIBUTION_INDEX: self.manifest.attribution_index_hash}[expected]
            if h != named:
                raise InvalidArgument(f"the {expected.label} is announced as {h[:16]}…, but the manifest names "
                                      f"{named[:16]}…")
        self.declared += size
        self._current = _Incoming(expected, h, size, 0, keccak.new(b""), open(self.folder / expected.filename, "wb"))

    def data(self, chunk: bytes) -> None:
        c = self._current
        if c is None:
            raise InvalidArgument("a data chunk must follow an artifact header")
        if not chunk or len(chunk) > MAX_CHUNK_BYTES:
            raise InvalidArgument(f"a data chunk must hold 1 to {MAX_CHUNK_BYTES} bytes, got {len(chunk)}")
        if c.received + len(chunk) > c.size:
            raise InvalidArgument(f"the {c.kind.label} is longer than its announced {c.size} bytes")
        if len(chunk) < MIN_CHUNK_BYTES and c.received + len(chunk) != c.size:
            raise InvalidArgument(f"a data chunk under {MIN_CHUNK_BYTES} bytes must be the last of its artifact")
        c.file.write(chunk)
        c.hasher.update(chunk)
        c.received += len(chunk)
        self.received += len(chunk)
        if c.received == c.size:
            self._complete(c)

    def _complete(self, c: _Incoming) -> None:
        c.file.flush()
        os.fsync(c.file.fileno())
        c.file.close()
        self._current = None
        got = c.hasher.digest().hex()
        if got != c.hash:
            raise IntegrityError(f"the {c.kind.label}'s bytes hash to {got}, not to the announced {c.hash}")
        self.done[c.kind] = got
        if c.kind == ArtifactKind.MANIFEST:
            self.manifest = Manifest.decode((self.folder / c.kind.filename).read_bytes())
            self.on_manifest(self.manifest)

    def finish(self) -> Manifest:
        """The manifest once all three artifacts are in; InvalidArgument if the stream was cut short."""
        if self._current is not None:
            c = self._current
            raise InvalidArgument(f"the stream ended inside the {c.kind.label} ({c.received} of {c.size} bytes)")
        missing = [k.label for k in ArtifactKind if k not in self.done]
        if missing or self.manifest is None:
            raise InvalidArgument(f"the stream ended without the {', '.join(missing)}")
        return self.manifest

    def close(self) -> None:
        if self._current is not None and not self._current.file.closed:
            self._current.file.close()


# ---------------------------------------------------------------- the store


def adapter_folder_name(weights_hash: str) -> str:
    """The store name of an adapter given no id: 'ad-' and the first 16 hex of its weights hash."""
    return f"ad-{weights_hash[:16]}"


def new_temp_folder(store: Path) -> Path:
    """A fresh `.tmp-*` folder under STORE/adapters (swept at start if a crash leaves it)."""
    root = store / "adapters"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    return tmp


def store_adapter(tmp: Path, name: str, manifest: Manifest, meta: dict[str, Any]) -> bool:
    """Finish an adapter whose three artifacts are in `tmp`: add adapter_config.json and
    meta.json, fsync everything, rename to STORE/adapters/<name>. All or nothing.

    Returns False (and removes `tmp`) when that name already holds this very adapter (same
    manifest hash); raises AlreadyExists when it holds another one."""
    from sidecar.model import fsync_dir, fsync_tree

    write_adapter_config(tmp, manifest.hyper_params)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    fsync_tree(tmp)
    final = tmp.parent / name
    if final.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        old = json.loads((final / "meta.json").read_text())
        if old.get("manifest_hash") != meta["manifest_hash"]:
            raise AlreadyExists(f"adapter id {name!r} already holds another adapter "
                                f"(weights {str(old.get('weights_hash'))[:16]}…)")
        return False
    os.rename(tmp, final)
    fsync_dir(tmp.parent)
    return True


def contribution_records(contributions: list[Any]) -> tuple[ContributionRecord, ...]:
    """Manifest records of Train's contributions (objects with `.id` and `.data`)."""
    return tuple(ContributionRecord(c.id, keccak_hex(c.data), len(c.data)) for c in contributions)

"""Model registry precompile: base models, adapters and their lineage tree; its storage.

An adapter's artifacts are content-addressed blobs whose keccak-256 the registration carries:
its weights (``weightsHash``), its attribution index (``attributionIndexHash``) and its training
manifest (``manifestHash``: base model, datanet versions and contribution set, hyper-parameters,
seed, data order, library versions). ``AdapterRegistered`` names all three, so a node learns
from the log which blobs to replicate.

Storage (account ``MODEL_REGISTRY``), beside the :class:`Model` records:

- ``slot("model.count")``: last model id (base models and adapters share one id space, from 1)
- ``slot("model.weights", weightsHash)``: model id (a weights hash is registered once)
- list field ``children`` of a model: ids of adapters registered with it as parent, so versions
  and forks form a tree rooted at each base model.
- :class:`Merge` records (namespace ``merge``, keyed by the merged adapter's id): a merge's
  parents and recipe; its ``recipe_hash`` is zero for every model that is no merge
  (docs/merges.md).
- ``slot("training.nonce", builder, nonce)``: 1 once a training request with that nonce was
  registered; ``slot("training.request", requestHash)``: the adapter registered for it;
  ``slot("training.of", adapterId)``: the request hash an adapter was trained for.

A model builder without a sidecar asks a validator to train (``registerTrainedAdapter``): the
builder signs an EIP-712 ``TrainingRequest`` (``typed_data.py``) naming the validator, the
parent, the datanet versions, the recipe's hash, the license and a max fee; the validator trains
and registers the adapter with the request and signature, the builder is recorded as author and
the validator as trainer, and the fee moves from the builder's inference deposit to the
validator's claimable rewards.

An adapter trains on whole published datanet versions: its contribution set is the union of
the contributions those versions cover, and ``contributionRoot`` is the trainer's commitment to
that exact set (the Merkle root, see merkle.py, over the leaves of the declared versions in
declaration order); ``get_lineage`` recomputes and reports whether it matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from . import datanets, licenses, rewards, typed_data
from .addresses import DATANETS, GOVERNANCE, INFERENCE, MODEL_REGISTRY, STAKING
from .context import Ctx
from .dispatch import Precompile
from .errors import (
    BadSignature,
    InsufficientFunds,
    InvalidArgument,
    InvalidState,
    NotFound,
    Unauthorized,
)
from .merkle import merkle_root
from .params import BP, get_param
from .storage import Record, Store, rfield, slot

BASE, ADAPTER = 1, 2
ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class Model(Record):
    """A registered base model or adapter."""

    NS = "model"
    id: int = rfield("uint", "model id (from 1)")
    kind: int = rfield("uint", "1 base model, 2 adapter")
    parent_id: int = rfield("uint", "parent model (0 for a base model)")
    base_model_id: int = rfield("uint", "root of this model's tree (itself for a base model)")
    depth: int = rfield("uint", "adapters between this model and its base (0 for a base model)")
    author: bytes = rfield("address", "registrant, credited as author")
    validator: bytes = rfield("address", "validator that trained the adapter (zero for a base)")
    weights_hash: bytes = rfield("bytes32", "keccak-256 of the weights file (its blob id)")
    config_hash: bytes = rfield("bytes32", "hash of the model config (base models)")
    tokenizer_hash: bytes = rfield("bytes32", "hash of the tokenizer (base models)")
    hyper_params_hash: bytes = rfield("bytes32", "hash of the training hyper-parameters JSON (blob store)")
    attribution_index_hash: bytes = rfield("bytes32", "keccak-256 of the adapter's attribution index (its blob id)")
    manifest_hash: bytes = rfield("bytes32", "keccak-256 of the adapter's training manifest: the whole "
                                  "recipe (its blob id); zero when none was recorded")
    contribution_root: bytes = rfield("bytes32", "Merkle root of the exact training contribution set")
    license: str = rfield("string", "license of the weights")
    retired: bool = rfield("bool", "retired by its author: no new children, and no receipts from receiptsUntil")
    created_block: int = rfield("uint", "block of registration")
    datanet_ids: tuple[int, ...] = rfield("uint[]", "datanets trained on")
    datanet_versions: tuple[int, ...] = rfield("uint[]", "version of each datanet trained on")
    children: tuple[int, ...] = rfield("uint[]", "adapters registered on top of this model")
    receipts_until: int = rfield("uint", "when retired: the block time (unix s) from which it takes no "
                                 "inference receipts (retirement + registry.retire_delay); 0 while active")
    license_terms: int = rfield("uint", "effective licence: restriction bits (licenses.py) of its whole lineage, "
                                "the OR of its parent's and of every contribution it trained on; computed at "
                                "registration")


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(MODEL_REGISTRY, topics, data)


def _exists(store: Store, model_id: int) -> bool:
    return 0 < model_id <= store.get(slot("model.count"))


def _model(store: Store, model_id: int, what: str = "model") -> Model:
    if not _exists(store, model_id):
        raise NotFound(f"{what} {model_id} does not exist")
    return Model.decode(store, model_id)


def _claim_weights(store: Store, weights_hash: bytes, model_id: int) -> None:
    if weights_hash == ZERO32:
        raise InvalidArgument("weights hash is zero")
    key = slot("model.weights", weights_hash)
    if store.get(key):
        raise InvalidState("weights hash already registered")
    store.set(key, model_id)


def _write_base_model(store: Store, author: bytes, weights_hash: bytes, config_hash: bytes,
                      tokenizer_hash: bytes, license: str, block_number: int) -> int:
    """The storage writes of a base model's registration (the precompile's and genesis's)."""
    if len(license.encode()) > datanets.MAX_TEXT:
        raise InvalidArgument("license too long")
    model_id = store.get(slot("model.count")) + 1
    _claim_weights(store, weights_hash, model_id)
    store.set(slot("model.count"), model_id)
    Model(id=model_id, kind=BASE, base_model_id=model_id, author=author,
          weights_hash=weights_hash, config_hash=config_hash, tokenizer_hash=tokenizer_hash,
          license=license, created_block=block_number,
          license_terms=licenses.terms_of(license)).encode(store, model_id)
    return model_id


def register_base_model(ctx: Ctx, weights_hash: bytes, config_hash: bytes, tokenizer_hash: bytes,
                        license: str) -> int:
    """Register a base model authored by the sender; returns its id."""
    model_id = _write_base_model(ctx.store(MODEL_REGISTRY), ctx.sender, weights_hash, config_hash,
                                 tokenizer_hash, license, ctx.block_number)
    _event(ctx, "BaseModelRegistered", model_id, ctx.sender, weights_hash, config_hash,
           tokenizer_hash)
    return model_id


def register_adapter(ctx: Ctx, spec: dict[str, Any]) -> int:
    """Register an adapter authored by the sender on ``spec['parent_id']``; returns its id.

    Rules: the parent exists and is not retired; the chain stays within ``registry.max_depth``;
    each declared datanet version is published, datanets not repeated; a validator is named;
    the parent's effective licence allows derivatives; no declared version covers a contribution
    whose consent was withdrawn, nor did any model on the parent's lineage train on one (nothing
    new trains on withdrawn data, and a child starts from its parent's weights).

    The adapter's effective licence (``license_terms``) is computed here and stored, so reading it
    is one word: the OR of the parent's and of each declared version's restriction bits (two
    reads per version, ``datanets.version_terms``).
    """
    return _register_adapter(ctx, spec, ctx.sender)


def _register_adapter(ctx: Ctx, spec: dict[str, Any], author: bytes) -> int:
    """:func:`register_adapter`'s rules and record, crediting ``author``."""
    store = ctx.store(MODEL_REGISTRY)
    gov = ctx.store(GOVERNANCE)
    dstore = ctx.store(DATANETS)
    parent_id = int(spec["parent_id"])
    if not _exists(store, parent_id):
        raise NotFound(f"parent model {parent_id} does not exist")
    # only the fields needed: the parent's children list grows with every adapter built on it
    if Model.load_field(store, parent_id, "retired"):
        raise InvalidState(f"parent model {parent_id} is retired")
    depth = Model.load_field(store, parent_id, "depth") + 1
    if depth > get_param(gov, "registry.max_depth"):
        raise InvalidArgument("adapter chain deeper than registry.max_depth")
    ids, versions = list(spec["datanet_ids"]), list(spec["datanet_versions"])
    if len(ids) != len(versions):
        raise InvalidArgument("datanetIds and datanetVersions differ in length")
    if len(ids) > get_param(gov, "registry.max_datanet_versions"):
        raise InvalidArgument("too many datanet versions")
    if len(set(ids)) != len(ids):
        raise InvalidArgument("a datanet is declared twice")
    terms = Model.load_field(store, parent_id, "license_terms")
    if terms & licenses.NO_DERIVATIVES:
        raise InvalidState(f"parent model {parent_id}'s licence allows no derivatives")
    for d, v in zip(ids, versions, strict=True):
        count = datanets.version_record(dstore, d, v).count  # raises NotFound
        if datanets.version_tainted(dstore, d, v):
            raise InvalidState(f"datanet {d} version {v} covers a contribution whose consent was withdrawn "
                               "since it was published (a newer version leaves it out)")
        terms |= datanets.version_terms(dstore, d, count)
    if lineage_withdrawn(store, dstore, parent_id, count_all=False):
        raise InvalidState(f"parent model {parent_id}'s lineage trained on a contribution whose consent "
                           "was withdrawn")
    if spec["validator"] == b"\x00" * 20:
        raise InvalidArgument("validator is the zero address")
    if len(spec["license"].encode()) > datanets.MAX_TEXT:
        raise InvalidArgument("license too long")
    model_id = store.get(slot("model.count")) + 1
    _claim_weights(store, spec["weights_hash"], model_id)
    store.set(slot("model.count"), model_id)
    base_model_id = Model.load_field(store, parent_id, "base_model_id")
    Model(id=model_id, kind=ADAPTER, parent_id=parent_id, base_model_id=base_model_id,
          depth=depth, author=author, validator=spec["validator"],
          weights_hash=spec["weights_hash"], hyper_params_hash=spec["hyper_params_hash"],
          attribution_index_hash=spec["attribution_index_hash"], manifest_hash=spec["manifest_hash"],
          contribution_root=spec["contribution_root"], license=spec["license"],
          created_block=ctx.block_number, datanet_ids=tuple(ids),
          datanet_versions=tuple(versions), license_terms=terms).encode(store, model_id)
    Model.list_field(store, parent_id, "children").append(model_id)
    _event(ctx, "AdapterRegistered", model_id, parent_id, author, spec["validator"],
           spec["weights_hash"], spec["contribution_root"], spec["attribution_index_hash"],
           spec["manifest_hash"])
    return model_id


#: The fields of an :class:`AdapterSpec` a signed training request fixes, and their names in the
#: request: the validator may choose nothing the builder paid for.
REQUESTED_FIELDS = ("parent_id", "datanet_ids", "datanet_versions", "hyper_params_hash", "license")


def register_trained_adapter(ctx: Ctx, spec: dict[str, Any], request: dict[str, Any], builder_signature: bytes,
                             fee: int) -> int:
    """The validator that trained an adapter for a builder registers it; returns its id.

    Rules, checked in this order before anything is written: the request is for this chain;
    the sender is the request's validator and the spec's (only the validator the builder chose
    registers, and it names itself as trainer); the spec is what the request asked for (parent,
    datanet ids and versions in the same order, recipe hash, license); it names a manifest and an
    attribution index (a trained adapter carries its three artifacts); the request's arrays and
    license are within the registry's bounds (before they are hashed); the deadline has not
    passed; the builder's EIP-712 signature over the request recovers to ``request.builder``;
    the validator has ``staking.min_stake`` staked and is not jailed; the builder's training
    nonce is unused; ``fee <= request.maxFee``; the builder's inference deposit covers the fee;
    then every rule of :func:`register_adapter`. The nonce is spent, the fee moves from the
    deposit to the validator's claimable rewards (role TRAINER), and the adapter is recorded
    with the builder as author and the validator as trainer.

    The deposit is the inference deposit (``Inference.deposit``): one balance a user tops up
    and withdraws with the same two-step lock, so a validator that starts a long job on a
    request already signed is still paid while a withdrawal waits.
    """
    gov = ctx.store(GOVERNANCE)
    store = ctx.store(MODEL_REGISTRY)
    if request["chain_id"] != ctx.chain_id:
        raise InvalidArgument(f"request is for chain {request['chain_id']}, not {ctx.chain_id}")
    if request["validator"] != ctx.sender:
        raise Unauthorized("only the request's validator registers the adapter it trained")
    if spec["validator"] != ctx.sender:
        raise InvalidArgument("the spec's validator is not the sender: the trainer names itself")
    for name in REQUESTED_FIELDS:
        if _plain(spec[name]) != _plain(request[name]):
            raise InvalidArgument(f"the spec's {name} is not the request's")
    if spec["manifest_hash"] == ZERO32 or spec["attribution_index_hash"] == ZERO32:
        raise InvalidArgument("a trained adapter names its manifest and attribution index")
    if len(request["datanet_ids"]) > get_param(gov, "registry.max_datanet_versions"):
        raise InvalidArgument("too many datanet versions")
    if len(request["license"].encode()) > datanets.MAX_TEXT:
        raise InvalidArgument("license too long")
    if request["deadline"] < ctx.timestamp:
        raise InvalidState("training request deadline has passed")
    ctx.meter.charge_extra(get_param(gov, "gas.signature"), "signature recovery")
    request_hash = typed_data.training_request_digest(request, ctx.chain_id)
    try:
        signer = typed_data.recover(request_hash, builder_signature)
    except BadSignature as exc:
        raise BadSignature(f"bad builder signature: {exc.reason}") from None
    if signer != request["builder"]:
        raise BadSignature("bad builder signature: signer is not request.builder")
    sstore = ctx.store(STAKING)
    if sstore.get(slot("stake", ctx.sender)) < get_param(gov, "staking.min_stake"):
        raise InvalidState("validator is not staked")
    if sstore.get(slot("jail.until", ctx.sender)):
        raise InvalidState("validator is jailed")
    nonce_slot = slot("training.nonce", request["builder"], request["nonce"])
    if store.get(nonce_slot):
        raise InvalidState("training request nonce already used")
    if fee > request["max_fee"]:
        raise InvalidArgument(f"fee {fee} exceeds the request's max fee {request['max_fee']}")
    istore = ctx.store(INFERENCE)
    dep_slot = deposit_slot(request["builder"])
    balance = istore.get(dep_slot)
    if balance < fee:
        raise InsufficientFunds(f"builder deposit {balance} is below the fee {fee}")
    model_id = _register_adapter(ctx, spec, request["builder"])
    store.set(nonce_slot, 1)
    store.set(slot("training.request", request_hash), model_id)
    store.set_bytes32(slot("training.of", model_id), request_hash)
    istore.set(dep_slot, balance - fee)
    rewards.pay(ctx, INFERENCE, ctx.sender, fee, rewards.TRAINER)
    _event(ctx, "AdapterTrained", model_id, request["builder"], ctx.sender, request_hash, fee)
    return model_id


def _plain(value: Any) -> Any:
    """A decoded ABI value compared as such: arrays as lists, whether they came as lists or tuples."""
    return list(value) if isinstance(value, list | tuple) else value


def deposit_slot(account: bytes) -> int:
    """Where the Inference precompile keeps ``account``'s deposit (``inference.py``: its account's
    balance holds every deposit); a training fee is charged from it."""
    return slot("deposit", account)


def retire_adapter(ctx: Ctx, adapter_id: int) -> None:
    """The adapter's author retires it: no new children from now on, and no inference receipts
    from ``registry.retire_delay`` seconds on.

    The delay is what ``inference.withdraw_delay`` is for deposits: a request the user signed
    and a validator already served must still be recordable, or an author could void it by
    retiring in front of its receipt (issue 19, attack 8) and the validator would never be paid.
    Nodes stop serving a retired adapter at once (``ai_infer`` reads ``retired``).
    """
    store = ctx.store(MODEL_REGISTRY)
    if not _exists(store, adapter_id):
        raise NotFound(f"adapter {adapter_id} does not exist")
    if Model.load_field(store, adapter_id, "kind") != ADAPTER:
        raise InvalidArgument(f"model {adapter_id} is not an adapter")
    if Model.load_field(store, adapter_id, "author") != ctx.sender:
        raise Unauthorized("only the adapter's author retires it")
    if Model.load_field(store, adapter_id, "retired"):
        raise InvalidState("adapter is already retired")
    Model.store_field(store, adapter_id, "retired", True)
    Model.store_field(store, adapter_id, "receipts_until",
                      ctx.timestamp + get_param(ctx.store(GOVERNANCE), "registry.retire_delay"))
    _event(ctx, "AdapterRetired", adapter_id, ctx.sender)


#: Most parents of one merge (Story Protocol's limit on a derivative's parents).
MAX_MERGE_PARENTS = 16
#: Most distinct datanets a merge's flattened data may span (its parents' versions together).
MAX_MERGE_DATANETS = 64
#: Merge methods, by code, as peft's ``add_weighted_adapter`` names them (``combination_type``).
LINEAR, TIES, DARE_LINEAR = 1, 2, 3
MERGE_METHODS = {LINEAR: "linear", TIES: "ties", DARE_LINEAR: "dare_linear"}
_RECIPE_TYPE = "(uint256[],uint256[],uint8,uint256,uint256)"


@dataclass(frozen=True)
class Merge(Record):
    """How a merged adapter was made: which parents, with which method and numbers."""

    NS = "merge"
    parent_ids: tuple[int, ...] = rfield("uint[]", "the merged adapters, in merge order (2..16)")
    weights_bp: tuple[int, ...] = rfield("uint[]", "each parent's merge weight, bp of 1.0 (1..10000)")
    method: int = rfield("uint", "1 linear, 2 ties, 3 dare_linear")
    density_bp: int = rfield("uint", "TIES/DARE: fraction of each delta kept, bp (0 for linear)")
    seed: int = rfield("uint", "DARE: seed of the drop mask (0 otherwise)")
    recipe_hash: bytes = rfield("bytes32", "keccak-256 of abi.encode(MergeRecipe)")


def is_merge(store: Store, model_id: int) -> bool:
    """Whether ``model_id`` was registered as a merge (one word read)."""
    return bool(Merge.load_field(store, model_id, "recipe_hash") != ZERO32)


def merge_recipe_hash(recipe: dict[str, Any]) -> bytes:
    """keccak-256 of ``abi.encode(recipe)``, the Solidity struct ``MergeRecipe``."""
    from eth_abi import encode
    from eth_utils import keccak

    return bytes(keccak(encode([_RECIPE_TYPE], [(list(recipe["parent_ids"]), list(recipe["weights_bp"]),
                                                   recipe["method"], recipe["density_bp"], recipe["seed"])])))


def _check_recipe(recipe: dict[str, Any]) -> None:
    """Bounds of a recipe alone, before any state is read: parent count, weights, method, density, seed."""
    parents, weights = list(recipe["parent_ids"]), list(recipe["weights_bp"])
    if not 2 <= len(parents) <= MAX_MERGE_PARENTS:
        raise InvalidArgument(f"a merge has 2 to {MAX_MERGE_PARENTS} parents, not {len(parents)}")
    if len(weights) != len(parents):
        raise InvalidArgument("parentIds and weightsBp differ in length")
    if len(set(parents)) != len(parents):
        raise InvalidArgument("a parent is named twice")
    if not all(0 < w <= BP for w in weights):
        raise InvalidArgument(f"each merge weight must be within [1, {BP}] bp")
    method, density, seed = recipe["method"], recipe["density_bp"], recipe["seed"]
    if method not in MERGE_METHODS:
        raise InvalidArgument(f"merge method {method} is not 1 (linear), 2 (ties) or 3 (dare_linear)")
    if method == LINEAR and density != 0:
        raise InvalidArgument("a linear merge has no density (densityBp must be 0)")
    if method != LINEAR and not 0 < density <= BP:
        raise InvalidArgument(f"densityBp must be within [1, {BP}] for ties and dare_linear")
    # one recipe, one hash: a seed that changes nothing may not make a second recipe hash
    if method != DARE_LINEAR and seed != 0:
        raise InvalidArgument("only dare_linear takes a seed (seed must be 0)")
    if not 0 <= seed < 2**64:
        raise InvalidArgument("seed must be below 2**64")


def register_merged_adapter(ctx: Ctx, recipe: dict[str, Any], weights_hash: bytes, attribution_index_hash: bytes,
                            manifest_hash: bytes, license: str) -> int:
    """A staked validator registers the merge it built; returns its id.

    Rules, checked before anything is written: the recipe's bounds (:func:`_check_recipe`:
    2..16 distinct parents, weights in [1, 10000] bp, a known method, density only for TIES and
    DARE, a seed only for DARE); the manifest and attribution index are named; the license's
    length; the sender has ``staking.min_stake`` staked and is not jailed (the merge is its work,
    as a trained adapter is its trainer's); each parent exists, is an adapter, is not retired,
    and all share one base model; each parent's licence allows derivatives and no parent
    trained on a contribution whose consent was withdrawn since (its own declared versions:
    gas flat in the parents' ancestry); the merge stays within ``registry.max_depth`` (one more than
    its deepest parent); its parents' datanet versions together span at most
    ``MAX_MERGE_DATANETS`` datanets; the weights hash is new.

    The merge's datanet versions are its parents' own, flattened: for each datanet the version
    holding the most accepted contributions (versions of a datanet are nested prefixes, so that
    one covers the others). A merge's attribution index covers exactly its parents' training
    sets, so these are the contributions a receipt on it may name, and :func:`lineage_path`
    stops at a merge. The work is bounded by the 16 parents and their own declared versions
    (each merge parent's already flattened), never by the parents' ancestry.

    The sender is author and validator; its ``parentId`` is the first parent, and the merge is
    a child of every parent. ``hyperParamsHash`` is the recipe hash.
    """
    _check_recipe(recipe)
    gov = ctx.store(GOVERNANCE)
    store = ctx.store(MODEL_REGISTRY)
    if manifest_hash == ZERO32 or attribution_index_hash == ZERO32:
        raise InvalidArgument("a merged adapter names its manifest and attribution index")
    if len(license.encode()) > datanets.MAX_TEXT:
        raise InvalidArgument("license too long")
    sstore = ctx.store(STAKING)
    if sstore.get(slot("stake", ctx.sender)) < get_param(gov, "staking.min_stake"):
        raise Unauthorized("only a staked validator registers a merge")
    if sstore.get(slot("jail.until", ctx.sender)):
        raise InvalidState("validator is jailed")
    parents = list(recipe["parent_ids"])
    base_model_id, depth, terms = 0, 0, 0
    dstore = ctx.store(DATANETS)
    for p in parents:
        if not _exists(store, p):
            raise NotFound(f"parent model {p} does not exist")
        if Model.load_field(store, p, "kind") != ADAPTER:
            raise InvalidArgument(f"model {p} is not an adapter: a merge merges adapters")
        if Model.load_field(store, p, "retired"):
            raise InvalidState(f"parent model {p} is retired")
        # a merge derives from every parent: each one's licence must allow it, and nothing new
        # is built on data whose consent was withdrawn; its licence is the most restrictive
        parent_terms = Model.load_field(store, p, "license_terms")
        if parent_terms & licenses.NO_DERIVATIVES:
            raise InvalidState(f"parent model {p}'s licence allows no derivatives")
        # the parent's own training data (flat: a parent's ancestry is not walked, as lineage_path
        # stops at a merge; a parent's ancestors were checked when the parent was registered)
        if path_withdrawn(dstore, [_step(store, p)]):
            raise InvalidState(f"parent model {p} trained on a contribution whose consent was withdrawn")
        terms |= parent_terms
        base = Model.load_field(store, p, "base_model_id")
        if base_model_id and base != base_model_id:
            raise InvalidArgument("the parents are adapters of different base models")
        base_model_id = base
        depth = max(depth, Model.load_field(store, p, "depth") + 1)
    if depth > get_param(gov, "registry.max_depth"):
        raise InvalidArgument("adapter chain deeper than registry.max_depth")
    best: dict[int, tuple[int, int]] = {}  # datanet -> (count, version)
    for p in parents:
        ids = Model.load_field(store, p, "datanet_ids")
        for d, v in zip(ids, Model.load_field(store, p, "datanet_versions"), strict=True):
            count = datanets.Version.load_field(dstore, (d, v), "count")
            if d not in best and len(best) == MAX_MERGE_DATANETS:
                raise InvalidArgument(f"the parents' data spans more than {MAX_MERGE_DATANETS} datanets")
            if count > best.get(d, (-1, 0))[0]:
                best[d] = (count, v)
    recipe_hash = merge_recipe_hash(recipe)
    model_id = store.get(slot("model.count")) + 1
    _claim_weights(store, weights_hash, model_id)
    store.set(slot("model.count"), model_id)
    flat = sorted(best.items())
    Model(id=model_id, kind=ADAPTER, parent_id=parents[0], base_model_id=base_model_id, depth=depth,
          author=ctx.sender, validator=ctx.sender, weights_hash=weights_hash, hyper_params_hash=recipe_hash,
          attribution_index_hash=attribution_index_hash, manifest_hash=manifest_hash, license=license,
          created_block=ctx.block_number, datanet_ids=tuple(d for d, _ in flat),
          datanet_versions=tuple(v for _, (_, v) in flat), license_terms=terms).encode(store, model_id)
    Merge(parent_ids=tuple(parents), weights_bp=tuple(recipe["weights_bp"]), method=recipe["method"],
          density_bp=recipe["density_bp"], seed=recipe["seed"], recipe_hash=recipe_hash).encode(store, model_id)
    for p in parents:
        Model.list_field(store, p, "children").append(model_id)
    _event(ctx, "AdapterRegistered", model_id, parents[0], ctx.sender, ctx.sender, weights_hash, ZERO32,
           attribution_index_hash, manifest_hash)
    _event(ctx, "AdapterMerged", model_id, ctx.sender, recipe_hash, parents, list(recipe["weights_bp"]),
           recipe["method"], recipe["density_bp"], recipe["seed"])
    return model_id


def _get_merge(ctx: Ctx, model_id: int) -> Merge:
    store = ctx.store(MODEL_REGISTRY)
    if not _exists(store, model_id):
        raise NotFound(f"model {model_id} does not exist")
    return Merge.decode(store, model_id)


@dataclass(frozen=True)
class LineageStep:
    """What an operation needs of one model on a lineage path (never its ``children`` list,
    which grows with every adapter others build on it)."""

    #: model id
    id: int
    #: parent model (0 for a base model)
    parent_id: int
    #: registrant, credited as author
    author: bytes
    #: datanets trained on
    datanet_ids: tuple[int, ...]
    #: version of each datanet trained on
    datanet_versions: tuple[int, ...]


def _step(store: Store, model_id: int) -> LineageStep:
    return LineageStep(
        id=model_id, parent_id=Model.load_field(store, model_id, "parent_id"),
        author=Model.load_field(store, model_id, "author"),
        datanet_ids=Model.load_field(store, model_id, "datanet_ids"),
        datanet_versions=Model.load_field(store, model_id, "datanet_versions"))


def lineage_path(store: Store, model_id: int) -> list[LineageStep]:
    """Models from ``model_id`` back to its base model, ``model_id`` first (at most
    ``registry.max_depth + 1`` steps, each a fixed number of words plus its declared versions).

    The path ends at a merge: a merge's own datanet versions already hold every version its
    parents trained on (``register_merged_adapter``), so nothing above it is read, however
    many ancestors the merge has."""
    if not _exists(store, model_id):
        raise NotFound(f"model {model_id} does not exist")
    path = [_step(store, model_id)]
    while path[-1].parent_id and not is_merge(store, path[-1].id):
        path.append(_step(store, path[-1].parent_id))
    return path


def lineage_authors(store: Store, model_id: int) -> list[bytes]:
    """Authors from ``model_id`` back to its base model, ``model_id``'s first: what a receipt's
    split needs of its lineage, two words per step (at most ``registry.max_depth + 1`` steps).

    At a merge the walk takes the merge's author, then each direct parent's author, then the
    base model's author, and stops: at most ``MAX_MERGE_PARENTS + 1`` more reads, whatever the
    parents' own ancestry (docs/merges.md, "Who a receipt on a merge pays")."""
    authors = []
    while model_id:
        authors.append(Model.load_field(store, model_id, "author"))
        if is_merge(store, model_id):
            for parent in Merge.list_field(store, model_id, "parent_ids"):
                authors.append(Model.load_field(store, parent, "author"))
            authors.append(Model.load_field(store, Model.load_field(store, model_id, "base_model_id"), "author"))
            break
        model_id = Model.load_field(store, model_id, "parent_id")
    return authors


def contribution_in_lineage(dstore: Store, path: list[LineageStep], contribution_id: int) -> bool:
    """True when some model on ``path`` trained on a datanet version whose training set holds
    the contribution (covered by its count, and not withdrawn when it was published)."""
    if not 0 < contribution_id <= dstore.get(slot("contribution.count")):
        return False
    c_dn = datanets.Contribution.load_field(dstore, contribution_id, "datanet_id")
    if datanets.Contribution.load_field(dstore, contribution_id, "status") != datanets.ACCEPTED:
        return False
    index = datanets.Contribution.load_field(dstore, contribution_id, "accepted_index")
    for m in path:
        for d, v in zip(m.datanet_ids, m.datanet_versions, strict=True):
            if d == c_dn and index < datanets.Version.load_field(dstore, (d, v), "count") and (
                    not datanets.excluded_from(dstore, contribution_id, d, v)):
                return True
    return False


def path_withdrawn(dstore: Store, path: list[LineageStep]) -> bool:
    """Whether a model on ``path`` trained on a contribution whose consent was withdrawn since:
    two reads per declared version while its datanet had no withdrawal since it was published,
    a Fenwick prefix sum (at most 32 reads) otherwise."""
    return any(datanets.version_tainted(dstore, d, v)
               for m in path for d, v in zip(m.datanet_ids, m.datanet_versions, strict=True))


def lineage_withdrawn(store: Store, dstore: Store, model_id: int, count_all: bool = True) -> int:
    """Contributions trained on along ``model_id``'s lineage (itself and its ancestors) whose
    consent was withdrawn: the per-adapter mark, read lazily, never bumped by a loop.

    Each model's training set is its declared versions, which are prefixes of their datanets'
    accepted lists less what was withdrawn when they were published, so the count is a sum over
    (model, version) of the withdrawals below the version's count since its publication
    (``datanets.withdrawn_since_published``): two reads per version while its datanet had no
    withdrawal since, a Fenwick prefix sum of at most 32 reads otherwise. With
    ``count_all=False`` it stops at the first (1 or 0). Bounded by ``registry.max_depth + 1``
    models of ``registry.max_datanet_versions`` versions; a contribution trained on by two
    models of the lineage counts twice.
    """
    total = 0
    while model_id:
        for d, v in zip(Model.load_field(store, model_id, "datanet_ids"),
                        Model.load_field(store, model_id, "datanet_versions"), strict=True):
            total += datanets.withdrawn_since_published(dstore, d, v)
            if total and not count_all:
                return 1
        model_id = Model.load_field(store, model_id, "parent_id")
    return total


PRECOMPILE = Precompile("ModelRegistry", MODEL_REGISTRY, {
    "registerBaseModel": register_base_model,
    "registerAdapter": register_adapter,
    "registerTrainedAdapter": register_trained_adapter,
    "registerMergedAdapter": register_merged_adapter,
    "retireAdapter": retire_adapter,
    "getModel": lambda ctx, mid: _model(ctx.store(MODEL_REGISTRY), mid),
    "getLineage": lambda ctx, mid: [m.id for m in lineage_path(ctx.store(MODEL_REGISTRY), mid)],
    "inLineage": lambda ctx, aid, cid: contribution_in_lineage(
        ctx.store(DATANETS), lineage_path(ctx.store(MODEL_REGISTRY), aid), cid),
    "modelCount": lambda ctx: ctx.store(MODEL_REGISTRY).get(slot("model.count")),
    "trainingRequestDigest": lambda ctx, req: typed_data.training_request_digest(req, ctx.chain_id),
    "trainingNonceUsed": lambda ctx, b, n: bool(ctx.store(MODEL_REGISTRY).get(slot("training.nonce", b, n))),
    "adapterOfTrainingRequest": lambda ctx, rh: ctx.store(MODEL_REGISTRY).get(slot("training.request", rh)),
    "trainingRequestOf": lambda ctx, mid: ctx.store(MODEL_REGISTRY).get_bytes32(slot("training.of", mid)),
    "getMerge": _get_merge,
    "mergeRecipeHash": lambda ctx, recipe: merge_recipe_hash(recipe),
    "withdrawnInLineage": lambda ctx, mid: lineage_withdrawn(
        ctx.store(MODEL_REGISTRY), ctx.store(DATANETS), _model_id(ctx.store(MODEL_REGISTRY), mid)),
})


def _model_id(store: Store, model_id: int) -> int:
    if not _exists(store, model_id):
        raise NotFound(f"model {model_id} does not exist")
    return model_id


#: Most base models a genesis file may register.
MAX_GENESIS_MODELS = 16
_GENESIS_MODEL_FIELDS = {"weightsHash", "configHash", "tokenizerHash", "license", "author"}


class _GenesisStorage:
    """One account's storage as a dict, for building genesis storage with the precompile's
    own writes (so a genesis registration is laid out exactly as a transaction's)."""

    def __init__(self) -> None:
        self.slots: dict[int, int] = {}

    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int:
        return self.slots.get(slot, 0)

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        self.slots[slot] = value


def genesis_storage(models: Any) -> dict[int, int]:
    """Initial registry storage: base models registered in block 0, ids from 1 in list order.

    ``models`` is the genesis file's ``ai.baseModels``: a list of ``{"weightsHash",
    "configHash", "tokenizerHash", "license", "author"}`` (hashes 0x 32 bytes, author an
    address). A chain that starts with its base model known (``ailedger dev``) serves a script
    from block 0 with no set-up blocks; no event is logged for them (there is no transaction).
    """
    if models is None:
        return {}
    if not isinstance(models, list) or len(models) > MAX_GENESIS_MODELS:
        raise InvalidArgument(f"ai.baseModels must be a list of at most {MAX_GENESIS_MODELS} models")
    state = _GenesisStorage()
    store = Store(state, MODEL_REGISTRY, writable=True)
    for i, entry in enumerate(models):
        where = f"ai.baseModels[{i}]"
        if not isinstance(entry, dict) or set(entry) != _GENESIS_MODEL_FIELDS:
            raise InvalidArgument(f"{where} must have exactly {', '.join(sorted(_GENESIS_MODEL_FIELDS))}")
        weights, config, tokenizer = (_genesis_bytes(entry[k], 32, f"{where}.{k}")
                                      for k in ("weightsHash", "configHash", "tokenizerHash"))
        author = _genesis_bytes(entry["author"], 20, f"{where}.author")
        if not isinstance(entry["license"], str):
            raise InvalidArgument(f"{where}.license must be a string")
        try:
            _write_base_model(store, author, weights, config, tokenizer, entry["license"], 0)
        except (InvalidArgument, InvalidState) as e:
            raise InvalidArgument(f"{where}: {e}") from None
    return {k: v for k, v in state.slots.items() if v}


def _genesis_bytes(value: Any, size: int, where: str) -> bytes:
    try:
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise InvalidArgument(f"{where} must be 0x and {size} bytes of hex")
    return raw


# -- read helpers (read-only StateAPI, no gas) --

def get_model_count(state: Any) -> int:
    """How many models (base models and adapters) are registered: ids run 1..count."""
    return Store(state, MODEL_REGISTRY).get(slot("model.count"))


def get_model(state: Any, model_id: int) -> Model | None:
    store = Store(state, MODEL_REGISTRY)
    return Model.decode(store, model_id) if _exists(store, model_id) else None


def get_lineage(state: Any, model_id: int) -> dict[str, Any] | None:
    """The whole path of ``model_id`` back to its base model (for ``ai_getLineage``).

    Each step lists its datanet versions with their roots and contribution ids and
    contributors; ``authors`` are the addresses to credit (this model's author first, then
    each ancestor's); ``contributionRootMatches`` tells whether the adapter's committed root
    equals the root recomputed from its declared versions.
    """
    store = Store(state, MODEL_REGISTRY)
    if not _exists(store, model_id):
        return None
    path = [Model.decode(store, step.id) for step in lineage_path(store, model_id)]
    steps = []
    contributors: dict[int, str] = {}
    for m in path:
        versions = []
        leaves: list[bytes] = []
        for d, v in zip(m.datanet_ids, m.datanet_versions, strict=True):
            ver = datanets.get_version(state, d, v)
            training = datanets.version_training_set(state, d, v) if ver else ()
            leaves += [t.leaf for t in training]
            for t in training:
                contributors[t.contribution_id] = to_checksum_address(t.contributor)
            versions.append({"datanetId": d, "version": v,
                             "root": "0x" + ver.root.hex() if ver else None,
                             "contributionIds": [t.contribution_id for t in training]})
        step = m.to_json()
        step["effectiveLicense"] = licenses.flags_json(m.license_terms)
        step["datanetVersionsDetail"] = versions
        merge = get_merge(state, m.id)
        if merge is not None:
            # a merge commits to no root of its own: its data is its parents', flattened
            step["merge"] = _merge_json(state, merge)
        elif m.kind == ADAPTER:
            step["contributionRootMatches"] = bool(leaves) and merkle_root(leaves) == m.contribution_root
        steps.append(step)
    authors: list[str] = []
    for a in lineage_authors(store, model_id):  # a merge's parents' authors too
        if to_checksum_address(a) not in authors:
            authors.append(to_checksum_address(a))
    return {"modelId": model_id, "path": steps, "authors": authors,
            "contributors": {str(k): v for k, v in contributors.items()},
            "effectiveLicense": licenses.flags_json(path[0].license_terms),
            "withdrawnContributions": lineage_withdrawn(store, Store(state, DATANETS), model_id)}


def derivative_refusal(state: Any, parent: Model) -> str | None:
    """Why no adapter may be registered on ``parent`` now for its licence or its consent (what
    :func:`register_adapter` would refuse), or None: for the node and CLI to refuse early."""
    if parent.license_terms & licenses.NO_DERIVATIVES:
        return f"parent model {parent.id}'s licence allows no derivatives"
    if lineage_withdrawn(Store(state, MODEL_REGISTRY), Store(state, DATANETS), parent.id, count_all=False):
        return f"parent model {parent.id}'s lineage trained on a contribution whose consent was withdrawn"
    return None


def model_json(state: Any, model: Model) -> dict[str, Any]:
    """A model as the ``ai_`` RPC shows it: its record, its effective licence as flags, and how
    many contributions its lineage trained on have had consent withdrawn (bounded reads, see
    :func:`lineage_withdrawn`)."""
    out = model.to_json()
    out["effectiveLicense"] = licenses.flags_json(model.license_terms)
    out["withdrawnContributions"] = lineage_withdrawn(Store(state, MODEL_REGISTRY), Store(state, DATANETS), model.id)
    return out


def get_merge(state: Any, model_id: int) -> Merge | None:
    """The recipe of a merged adapter, or None when ``model_id`` is no merge."""
    store = Store(state, MODEL_REGISTRY)
    if not _exists(store, model_id) or not is_merge(store, model_id):
        return None
    return Merge.decode(store, model_id)


def _merge_json(state: Any, merge: Merge) -> dict[str, Any]:
    """A merge for ``ai_getLineage``: its recipe, and each parent with its author, weights and
    own lineage path (ids), so every parent and what it stands on shows."""
    from eth_utils import to_checksum_address

    store = Store(state, MODEL_REGISTRY)
    out = merge.to_json()
    out["methodName"] = MERGE_METHODS[merge.method]
    out["parents"] = [{"id": p, "weightBp": w, "author": to_checksum_address(Model.load_field(store, p, "author")),
                       "weightsHash": "0x" + Model.load_field(store, p, "weights_hash").hex(),
                       "path": [step.id for step in lineage_path(store, p)]}
                      for p, w in zip(merge.parent_ids, merge.weights_bp, strict=True)]
    return out


def model_id_of_weights(state: Any, weights_hash: bytes) -> int | None:
    """The model registered with these weights, if any (a weights hash registers once)."""
    return Store(state, MODEL_REGISTRY).get(slot("model.weights", weights_hash)) or None


def training_nonce_used(state: Any, builder: bytes, nonce: int) -> bool:
    """Whether ``builder``'s training-request nonce is spent (an adapter was registered for it)."""
    return bool(Store(state, MODEL_REGISTRY).get(slot("training.nonce", builder, nonce)))


def adapter_of_training_request(state: Any, request_hash: bytes) -> int | None:
    """The adapter registered for a training request, if any."""
    return Store(state, MODEL_REGISTRY).get(slot("training.request", request_hash)) or None


def adapter_contribution_root(state: Any, datanet_ids: list[int], versions: list[int]) -> bytes:
    """The contribution root an adapter trained on these versions must commit to."""
    leaves = []
    for d, v in zip(datanet_ids, versions, strict=True):
        for cid in datanets.version_contribution_ids(state, d, v):
            c = datanets.get_contribution(state, cid)
            assert c is not None
            leaves.append(c.leaf())
    return merkle_root(leaves)

"""A validator's training service: a model builder's signed, paid request to train an adapter,
run as an asynchronous job on the validator's sidecar and registered by the node itself.

``ai_train`` (``node/rpc/ai_train.py``) parses the builder's EIP-712 ``TrainingRequest`` and its
recipe (the hyper-parameters JSON whose keccak-256 the request signs), and
:func:`check_request` checks on the head state everything the chain would refuse at
registration (``ModelRegistry.registerTrainedAdapter``) before any work is spent: the chain id,
this node's validator and price, a deadline that leaves room for a whole job, the builder's
signature, its unused nonce, the validator staked and not jailed, the parent (whose base model
must be the sidecar's), the datanet versions, the training set's size and that every
contribution's bytes are in the blob store, and a deposit that covers the price. The job then
waits in a bounded queue (at most ``max_jobs`` per node, one per builder) for the one runner,
which:

1. reads the contributions from the blob store in the training set's order (each version's
   leaf order, versions in the request's order: what ``ai_getTrainingSet`` lists and the
   contribution root commits to);
2. trains on the sidecar (gRPC, in a thread, so the chain keeps producing blocks), keeping the
   progress (phase, steps, loss) ``ai_getTrainingJob`` reports;
3. exports the adapter's three artifacts and keeps them, and the recipe, in the blob store;
4. dry-runs the registration on the head state (what the chain would refuse now, with its
   reason), submits it as the node's own transaction signed with its validator key, and waits
   for its block.

A finished job's record is kept ``record_ttl`` seconds, at most ``max_records`` of them, so the
builder can read the outcome; the chain keeps the lasting answer
(``ModelRegistry.adapterOfTrainingRequest``).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from eth_hash.auto import keccak
from eth_keys import keys

from ai_precompiles import datanets, inference, registry, staking, typed_data
from ai_precompiles.addresses import MODEL_REGISTRY
from ai_precompiles.errors import BadSignature, decode_revert_reason
from ai_precompiles.params import get_param
from node.errors import InvalidInput, LimitExceeded, NotFound, Refused

if TYPE_CHECKING:
    from node.chain.core import ChainCore
    from node.worker import ChainWorker
    from sidecar.client import AdapterArtifacts

#: Longest recipe (JSON text, UTF-8) a request may carry.
MAX_RECIPE_BYTES = 4096
#: Seconds the request's deadline must leave after the registration is submitted, so that it
#: can still land in a block.
MIN_DEADLINE_MARGIN = 30
#: Seconds a registration may wait for its block after the request's deadline before the job
#: is reported failed (after the deadline the chain refuses it anyway).
INCLUSION_GRACE = 60
#: Seconds between two looks for the registration's block.
INCLUSION_POLL = 0.5
#: Gas limit of the registration transaction (about 615,000 are used for one datanet version).
REGISTRATION_GAS = 2_000_000

#: Integer recipe keys and their bounds (the sidecar's ``TrainHyperParams.validate``; the seed
#: is a uint64 on the wire, kept to 63 bits).
INT_KEYS: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1), "rank": (1, 256), "epochs": (1, 200), "max_length": (8, 4096),
    "batch_size": (1, 256), "projection_dim": (16, 8192),
}
#: Real recipe keys: (low, high, low included).
REAL_KEYS: dict[str, tuple[float, float, bool]] = {
    "alpha": (0.0, 4096.0, False), "dropout": (0.0, 0.999_999, True), "learning_rate": (0.0, 1.0, False),
    "weight_decay": (0.0, 1.0, True), "loss_threshold": (0.0, 10.0, False),
}
#: Most layer names ``target_modules`` may list, and what a name looks like.
MAX_TARGET_MODULES = 16
MODULE_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")

QUEUED, TRAINING, EXPORTING, REGISTERING, SUBMITTED, REGISTERED, FAILED = (
    "queued", "training", "exporting", "registering", "submitted", "registered", "failed")
FINISHED = (REGISTERED, FAILED)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys_seen = [k for k, _ in pairs]
    if len(set(keys_seen)) != len(keys_seen):
        raise ValueError("a key is repeated")
    return dict(pairs)


def parse_recipe(text: str) -> tuple[int, dict[str, Any]]:
    """The seed and the sidecar hyper-parameters of a recipe (a JSON object), or
    :class:`InvalidInput` saying what is wrong.

    The recipe's bytes are what the builder signs (their keccak-256 is the request's
    ``hyperParamsHash``) and what the chain records, so it must mean one thing: no repeated key,
    no key the sidecar would not use, no NaN, every value of its type within the sidecar's
    bounds. Omitted keys take the sidecar's defaults (the adapter's manifest records them)."""
    raw = text.encode()
    if len(raw) > MAX_RECIPE_BYTES:
        raise InvalidInput(f"the recipe is longer than {MAX_RECIPE_BYTES} bytes")
    try:
        recipe = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidInput(f"the recipe is not one JSON object: {e}") from None
    if not isinstance(recipe, dict):
        raise InvalidInput("the recipe is not a JSON object")
    hyper: dict[str, Any] = {}
    seed = 0
    for key, value in recipe.items():
        if key in INT_KEYS:
            low, high = INT_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"recipe {key} must be an integer in [{low}, {high}]")
            if key == "seed":
                seed = value
            else:
                hyper[key] = value
        elif key in REAL_KEYS:
            lo, hi, closed = REAL_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not (
                    (lo <= value if closed else lo < value) and value <= hi):
                raise InvalidInput(f"recipe {key} must be a number in {'[' if closed else '('}{lo}, {hi}]")
            hyper[key] = float(value)
        elif key == "target_modules":
            if (not isinstance(value, list) or len(value) > MAX_TARGET_MODULES
                    or not all(isinstance(m, str) and MODULE_NAME.fullmatch(m) for m in value)
                    or len(set(value)) != len(value)):
                raise InvalidInput(f"recipe target_modules must be at most {MAX_TARGET_MODULES} distinct "
                                   "layer names")
            hyper[key] = list(value)
        else:
            raise InvalidInput(f"recipe key {key!r} is not a training hyper-parameter")
    return seed, hyper


@dataclass(frozen=True)
class Plan:
    """What a checked request will train on."""

    request_hash: bytes
    """The request's EIP-712 digest: the job's id."""
    contributions: tuple[tuple[int, bytes], ...]
    """(contribution id, content hash) in training order."""
    contribution_root: bytes
    """The Merkle root the registration commits to (``registry.adapter_contribution_root``)."""
    base_model_hash: bytes
    """Weights hash of the parent's base model: the sidecar's."""
    size: int
    """Bytes of the training set."""


@dataclass
class TrainingJob:
    """One admitted request and how far it got."""

    request: dict[str, Any]
    """The request in the precompile's snake_case shape."""
    signature: bytes
    """The builder's 65-byte signature over the request."""
    recipe: bytes
    """The recipe's bytes (kept in the blob store once the adapter is registered)."""
    seed: int
    """The recipe's seed."""
    hyper: dict[str, Any]
    """Sidecar hyper-parameters (``HyperParams`` fields) from the recipe."""
    plan: Plan
    """What :func:`check_request` found it trains on."""
    fee: int
    """Wei the registration charges (this node's price when it was admitted)."""
    created: float
    """When it was admitted (the service's clock)."""
    status: str = QUEUED
    """queued, training, exporting, registering, submitted, then registered or failed."""
    phase: str = ""
    """The sidecar's phase while training: train, attribution, save."""
    step: int = 0
    """Optimizer steps done (all of them once training ended)."""
    total_steps: int = 0
    """Steps planned (the steps done once training ended: it may stop early)."""
    epoch: int = 0
    loss: float | None = None
    """Latest training loss (the final one once training ended)."""
    weights_hash: bytes | None = None
    """The trained adapter's weights hash, once exported."""
    adapter_id: int | None = None
    """The on-chain adapter id, once registered."""
    transaction_hash: bytes | None = None
    """The registration transaction, once submitted."""
    error: str | None = None
    """Why it failed."""
    finished: float | None = None
    """When it was registered or failed (the service's clock): its record expires from then."""

    @property
    def id(self) -> bytes:
        return self.plan.request_hash

    @property
    def builder(self) -> bytes:
        return bytes(self.request["builder"])

    @property
    def active(self) -> bool:
        return self.status not in FINISHED

    def fail(self, reason: str, now: float) -> None:
        self.status, self.error, self.finished = FAILED, reason, now

    def to_json(self, position: int | None = None) -> dict[str, Any]:
        """What ``ai_getTrainingJob`` answers."""
        def hx(b: bytes | None) -> str | None:
            return None if b is None else "0x" + b.hex()

        # a diverging run may report NaN, which JSON cannot carry
        loss = self.loss if self.loss is not None and math.isfinite(self.loss) else None
        return {"id": hx(self.id), "status": self.status, "phase": self.phase, "step": self.step,
                "totalSteps": self.total_steps, "epoch": self.epoch, "loss": loss,
                "builder": hx(self.builder), "validator": hx(bytes(self.request["validator"])),
                "parentId": self.request["parent_id"], "contributions": len(self.plan.contributions),
                "fee": hex(self.fee), "queuePosition": position, "weightsHash": hx(self.weights_hash),
                "adapterId": self.adapter_id, "transactionHash": hx(self.transaction_hash), "error": self.error}


@dataclass
class TrainingService:
    """What a validator's node needs to train for builders: its sidecar, key, price and limits,
    the jobs it holds and the queue its one runner takes them from."""

    sidecar: str
    """gRPC address of the sidecar that trains."""
    validator_key: bytes
    """Key the registrations are signed and sent with (the node's validator key)."""
    price: int
    """Wei charged per training job (the quote; a request's maxFee must cover it)."""
    max_jobs: int = 4
    """Jobs queued, training or waiting for their block at once; more are refused (busy)."""
    max_records: int = 256
    """Job records kept (finished ones are dropped oldest first beyond it)."""
    record_ttl: float = 3600.0
    """Seconds a finished job's record is kept."""
    job_timeout: float = 1800.0
    """Seconds one job may spend on the sidecar; a request's deadline must leave this much."""
    max_contributions: int = 2000
    """Most contributions one job trains on."""
    max_training_bytes: int = 32 * 1024 * 1024
    """Most bytes of contributions one job trains on."""
    clock: Callable[[], float] = time.monotonic
    """Time of the records (monotonic seconds)."""
    jobs: dict[bytes, TrainingJob] = field(default_factory=dict)
    """Job records by request hash, oldest first."""

    def __post_init__(self) -> None:
        self.address: bytes = keys.PrivateKey(self.validator_key).public_key.to_canonical_address()
        # The queue holds every admitted job the runner has not taken. Admission is its bound
        # (active jobs within max_jobs), so the channel itself need not be: a send never blocks.
        self._send, self._receive = trio.open_memory_channel[TrainingJob](math.inf)

    # -- the records ----------------------------------------------------------------------

    def active(self) -> list[TrainingJob]:
        return [j for j in self.jobs.values() if j.active]

    def expire(self) -> None:
        """Drop finished records older than ``record_ttl``, then the oldest finished ones
        beyond ``max_records``."""
        now = self.clock()
        for job_id in [i for i, j in self.jobs.items() if j.finished is not None and j.finished + self.record_ttl < now]:
            del self.jobs[job_id]
        finished = [i for i, j in self.jobs.items() if not j.active]
        for job_id in finished[: max(0, len(self.jobs) - self.max_records)]:
            del self.jobs[job_id]

    def check_capacity(self, builder: bytes, request_hash: bytes | None = None) -> None:
        """:class:`LimitExceeded` when the queue is full or the builder has a job in hand."""
        self.expire()
        active = self.active()
        if request_hash is not None and request_hash in self.jobs and self.jobs[request_hash].active:
            raise InvalidInput("this request is being trained already: follow it with ai_getTrainingJob")
        if any(j.builder == builder for j in active):
            raise LimitExceeded("this builder has a training job in hand on this node: one at a time "
                                "(follow it with ai_getTrainingJob)")
        if len(active) >= self.max_jobs:
            raise LimitExceeded(f"this node has {len(active)} training jobs in hand, its most; try again later")

    def admit(self, job: TrainingJob) -> int:
        """Record ``job`` and queue it for the runner; its place in the queue (0: next)."""
        self.check_capacity(job.builder, job.id)
        self.jobs.pop(job.id, None)  # a failed record of the same request gives way
        self.jobs[job.id] = job
        self.expire()
        self._send.send_nowait(job)
        return sum(1 for j in self.jobs.values() if j.status == QUEUED) - 1

    def position(self, job: TrainingJob) -> int | None:
        """Jobs ahead of a queued one (None once it left the queue)."""
        if job.status != QUEUED:
            return None
        ahead = 0
        for other in self.jobs.values():  # admission order: the order the runner takes them
            if other is job:
                return ahead
            ahead += other.status == QUEUED
        return None

    def get(self, job_id: bytes) -> TrainingJob | None:
        self.expire()
        return self.jobs.get(job_id)

    # -- the sidecar (blocking; run in a thread) ------------------------------------------

    def sidecar_base(self) -> str:
        """The sidecar's base model weights hash (0x hex), or :class:`Refused` if it does not
        answer."""
        import grpc

        from sidecar.client import SidecarClient

        try:
            with SidecarClient(self.sidecar, timeout=10) as client:
                listed = client.list_adapters()
        except grpc.RpcError as e:
            raise Refused(f"this node's sidecar is not serving: {_details(e)}") from None
        return "0x" + str(listed.base_model_hash).lower().removeprefix("0x")

    def sidecar_ready(self) -> bool:
        try:
            self.sidecar_base()
            return True
        except Refused:
            return False

    def _train(self, job: TrainingJob, contributions: list[tuple[bytes, bytes]], timeout: float) -> Any:
        import grpc

        from sidecar.client import SidecarClient

        result = None
        try:
            with SidecarClient(self.sidecar, timeout=timeout) as client:
                for event in client.train(contributions, seed=job.seed, base_model=job.plan.base_model_hash.hex(),
                                          datanets=list(zip(job.request["datanet_ids"], job.request["datanet_versions"],
                                                            strict=True)), **job.hyper):
                    if hasattr(event, "total_steps"):
                        job.phase, job.step, job.total_steps = event.phase, event.step, event.total_steps
                        job.epoch, job.loss = event.epoch, float(event.loss)
                    else:
                        result = event
        except grpc.RpcError as e:
            raise Refused(f"the sidecar's training failed: {_details(e)}") from None
        if result is None:
            raise Refused("the sidecar ended training without a result")
        return result

    def _export(self, adapter_id: str) -> AdapterArtifacts:
        import grpc

        from node.blobstore import MAX_BLOB_SIZE
        from sidecar.client import SidecarClient
        from sidecar.errors import SidecarError

        try:
            with SidecarClient(self.sidecar, timeout=300) as client:
                return client.export_adapter(adapter_id=adapter_id, max_bytes=3 * MAX_BLOB_SIZE)
        except grpc.RpcError as e:
            raise Refused(f"the sidecar's export failed: {_details(e)}") from None
        except SidecarError as e:
            raise Refused(f"the sidecar's export was refused: {e}") from None

    # -- the runner -----------------------------------------------------------------------

    async def run(self, core: ChainCore, worker: ChainWorker) -> None:
        """Take the queued jobs one at a time, for as long as the node runs (the sidecar trains
        one adapter at a time anyway). A job's failure is its record's, never the runner's."""
        async with self._receive:
            async for job in self._receive:
                if job.status != QUEUED:
                    continue  # its record was replaced or closed while it waited
                try:
                    await self._run_job(job, core, worker)
                except (Refused, NotFound, InvalidInput, LimitExceeded) as e:
                    job.fail(e.message, self.clock())
                except trio.Cancelled:
                    job.fail("the node stopped", self.clock())
                    raise
                except Exception as e:  # noqa: BLE001 - reported on the job, the runner goes on
                    job.fail(f"internal error: {type(e).__name__}: {e}", self.clock())

    async def _run_job(self, job: TrainingJob, core: ChainCore, worker: ChainWorker) -> None:
        left = job.request["deadline"] - core.now() - MIN_DEADLINE_MARGIN
        if left <= 0:
            raise Refused("the request's deadline came before the job could start")
        job.status = TRAINING
        contributions = await worker.run(read_contributions, core, job.plan)
        # The node may stop mid-job: its thread is left to finish the gRPC call on its own.
        # (trio_typing's stubs predate trio's abandon_on_cancel: hence the ignores.)
        result = await trio.to_thread.run_sync(  # type: ignore[call-arg]
            functools.partial(self._train, job, contributions, min(self.job_timeout, left)), abandon_on_cancel=True)
        # training may stop before its planned steps (every example learnt): the bar completes
        job.step = job.total_steps = int(result.steps)
        job.loss = float(result.final_loss)
        job.status, job.phase = EXPORTING, ""
        artifacts = await trio.to_thread.run_sync(  # type: ignore[call-arg]
            functools.partial(self._export, result.adapter_id), abandon_on_cancel=True)
        if _hash(artifacts.weights_hash) != _hash(str(result.weights_hash)):
            raise Refused("the sidecar exported other weights than it trained")
        job.weights_hash = _hash(artifacts.weights_hash)
        job.status = REGISTERING
        job.transaction_hash = await worker.run(register, core, self, job, artifacts)
        job.status = SUBMITTED
        while True:
            adapter_id, failure = await worker.run(registration_outcome, core, job)
            if adapter_id is not None:
                job.adapter_id, job.status, job.finished = adapter_id, REGISTERED, self.clock()
                return
            if failure is not None:
                raise Refused(failure)
            await trio.sleep(INCLUSION_POLL)


def _details(e: Any) -> str:
    return str(e.details()) if hasattr(e, "details") else str(e)


# -- on the chain thread ----------------------------------------------------------------------


def check_request(core: ChainCore, service: TrainingService, request: dict[str, Any], signature: bytes,
                  base_model_hash: str, room: float, reserved: int = 0) -> Plan:
    """What the registration would be refused for, checked on the head state before any work
    (``room``: seconds the deadline must leave; ``reserved``: the builder's deposit promised
    to inference requests in flight). Returns the job's plan."""
    state = core.ledger.state_at(core.ledger.head)
    if request["chain_id"] != core.ledger.chain_id:
        raise InvalidInput(f"the request is for chain {request['chain_id']}, this is {core.ledger.chain_id}")
    if request["validator"] != service.address:
        raise InvalidInput(f"the request is signed for validator 0x{bytes(request['validator']).hex()}; this node "
                           f"trains as 0x{service.address.hex()} (see ai_trainQuote)")
    if request["max_fee"] < service.price:
        raise InvalidInput(f"maxFee {request['max_fee']} is below this node's price {service.price} wei "
                           "(see ai_trainQuote)")
    if len(request["license"].encode()) > datanets.MAX_TEXT:
        raise InvalidInput(f"the license is longer than {datanets.MAX_TEXT} bytes")
    ids, versions = list(request["datanet_ids"]), list(request["datanet_versions"])
    if not ids or len(ids) != len(versions):
        raise InvalidInput("datanetIds and datanetVersions must name the same, non-zero number of versions")
    if len(ids) > get_param(state, "registry.max_datanet_versions"):
        raise InvalidInput("too many datanet versions (registry.max_datanet_versions)")
    if len(set(ids)) != len(ids):
        raise InvalidInput("a datanet is named twice")
    if request["deadline"] < core.now() + room:
        raise InvalidInput(f"the request's deadline leaves less than {room:.0f} s: this node needs that long "
                           "for a job (see ai_trainQuote's minDeadlineSeconds)")
    request_hash = typed_data.training_request_digest(request, core.ledger.chain_id)
    try:
        signer = typed_data.recover(request_hash, signature)
    except BadSignature as e:
        raise InvalidInput(f"bad builder signature: {e.reason}") from None
    if signer != request["builder"]:
        raise InvalidInput("bad builder signature: it does not recover to request.builder "
                           "(was it signed for this validator, price and chain?)")
    if (registry.training_nonce_used(state, request["builder"], request["nonce"])
            or registry.adapter_of_training_request(state, request_hash) is not None):
        raise InvalidInput("the request's nonce was already used")
    refusal = staking.standing_refusal(state, service.address, "register adapters for builders")
    if refusal is not None:
        raise Refused(refusal)
    parent = registry.get_model(state, request["parent_id"])
    if parent is None:
        raise NotFound(f"parent model {request['parent_id']} does not exist")
    if parent.retired:
        raise InvalidInput(f"parent model {parent.id} is retired")
    if parent.depth + 1 > get_param(state, "registry.max_depth"):
        raise InvalidInput("the adapter would be deeper than registry.max_depth")
    refusal = registry.derivative_refusal(state, parent)
    if refusal:
        raise InvalidInput(refusal)
    base = registry.get_model(state, parent.base_model_id)
    assert base is not None  # a model's base model exists
    if "0x" + base.weights_hash.hex() != base_model_hash:
        raise InvalidInput(f"parent model {parent.id} is built on base model {base.id}; this node's sidecar "
                           f"serves the base model with weights {base_model_hash} (see ai_trainQuote)")
    contributions: list[tuple[int, bytes]] = []
    size = 0
    for d, v in zip(ids, versions, strict=True):
        version = datanets.get_version(state, d, v)
        if version is None:
            raise NotFound(f"datanet {d} has no version {v}")
        if datanets.get_withdrawn_in_version(state, d, v):
            raise InvalidInput(f"datanet {d} version {v} covers a contribution whose contributor withdrew "
                               "consent since it was published: nothing new trains on it (a newer version "
                               "leaves it out)")
        if len(contributions) + version.count > service.max_contributions:
            raise LimitExceeded(f"the training set holds more than {service.max_contributions} contributions, "
                                "this node's most")
        for cid in datanets.version_contribution_ids(state, d, v):
            c = datanets.get_contribution(state, cid)
            assert c is not None  # a version covers accepted contributions only
            size += c.size
            if size > service.max_training_bytes:
                raise LimitExceeded(f"the training set is over {service.max_training_bytes} bytes, this node's most")
            if core.blobs.size(c.content_hash) is None:
                raise Refused(f"this node does not hold the bytes of contribution {cid} yet; try again later")
            contributions.append((cid, bytes(c.content_hash)))
    if not contributions:
        raise InvalidInput("the datanet versions hold no accepted contributions")
    info = inference.get_deposit_info(state, request["builder"])
    deposit = info["balance"]
    if info["withdrawalPending"] and info["unlockTime"] < request["deadline"]:
        deposit -= min(deposit, info["withdrawalPending"])  # may be gone before the registration lands
    if deposit - reserved < service.price:
        raise InvalidInput(f"the builder's deposit {deposit} wei is below the price {service.price} wei"
                           + (f" with {reserved} wei promised to inference requests in flight" if reserved else "")
                           + " (Inference.deposit, `ailedger deposit add`)")
    root = registry.adapter_contribution_root(state, ids, versions)
    return Plan(request_hash, tuple(contributions), root, bytes(base.weights_hash), size)


def read_contributions(core: ChainCore, plan: Plan) -> list[tuple[bytes, bytes]]:
    """The training set's bytes in its order, each keyed by its on-chain id as the sidecar's
    attribution reports it back (``str(id)``), each checked against its content hash."""
    from node.blobstore import BlobError

    out = []
    for cid, content_hash in plan.contributions:
        try:
            data = core.blobs.get(content_hash)
        except BlobError as e:
            raise Refused(f"contribution {cid}: {e}") from None
        if keccak(data) != content_hash:
            raise Refused(f"contribution {cid}: the stored bytes do not hash to its content hash")
        out.append((str(cid).encode(), data))
    return out


def registration_call(job: TrainingJob, artifacts: AdapterArtifacts, validator: bytes) -> bytes:
    """Calldata of ``ModelRegistry.registerTrainedAdapter`` for a trained job."""
    import ai_precompiles

    r = job.request
    spec = {"parent_id": r["parent_id"], "datanet_ids": list(r["datanet_ids"]),
            "datanet_versions": list(r["datanet_versions"]), "contribution_root": job.plan.contribution_root,
            "hyper_params_hash": r["hyper_params_hash"], "weights_hash": _hash(artifacts.weights_hash),
            "attribution_index_hash": _hash(artifacts.attribution_index_hash),
            "manifest_hash": _hash(artifacts.manifest_hash), "validator": validator, "license": r["license"]}
    fn = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerTrainedAdapter"]
    return fn.encode_args(spec, r, job.signature, job.fee)


def _hash(hex_hash: str) -> bytes:
    """A hash as the sidecar writes it (hex, with or without 0x) as bytes."""
    return bytes.fromhex(hex_hash.lower().removeprefix("0x"))


def register(core: ChainCore, service: TrainingService, job: TrainingJob, artifacts: AdapterArtifacts) -> bytes:
    """Keep the artifacts and the recipe in the blob store, dry-run the registration on the
    head state, and submit it as the node's own transaction; returns its hash."""
    for data, announced in ((artifacts.manifest, artifacts.manifest_hash), (artifacts.weights, artifacts.weights_hash),
                            (artifacts.attribution_index, artifacts.attribution_index_hash)):
        core.blobs.put(data, _hash(announced))
    core.blobs.put(job.recipe, job.request["hyper_params_hash"])
    data = registration_call(job, artifacts, service.address)
    dry = core.call(core.ledger.head, service.address, MODEL_REGISTRY, data, 0, REGISTRATION_GAS)
    if not dry.success:
        reason = decode_revert_reason(dry.output) if dry.reverted else None
        raise Refused(f"the chain would refuse the registration: {reason or dry.error}")
    return core.submit_call(service.validator_key, MODEL_REGISTRY, data, REGISTRATION_GAS)


def registration_outcome(core: ChainCore, job: TrainingJob) -> tuple[int | None, str | None]:
    """(adapter id, None) once the registration is in a block; (None, why) if it failed or can
    no longer land; (None, None) while it waits."""
    assert job.transaction_hash is not None
    where = core.ledger.transaction_location(job.transaction_hash)
    if where is not None:
        adapter_id = registry.adapter_of_training_request(core.ledger.state_at(core.ledger.head), job.id)
        if adapter_id is None:
            return None, f"the registration transaction 0x{job.transaction_hash.hex()} failed in block {where[0]}"
        return adapter_id, None
    if core.now() > job.request["deadline"] + INCLUSION_GRACE:
        return None, "the registration transaction was not in a block by the request's deadline"
    return None, None

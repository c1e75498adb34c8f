"""Training asked of a validator's node over JSON-RPC: ``ai_trainQuote``, ``ai_train`` and
``ai_getTrainingJob``.

A model builder who runs no sidecar asks a validator's node for a quote (its validator, price,
limits and base model), signs an EIP-712 ``TrainingRequest`` bound to that validator and price
(``ai_precompiles/typed_data.py``), and sends it with the recipe, the hyper-parameters JSON
whose keccak-256 it signed, to ``ai_train``. The node checks the request against its chain
before it spends any work and answers with the job at once; the job trains on the node's
sidecar, and the node registers the adapter itself, the builder as author
(``node/training.py``). ``ai_getTrainingJob`` follows it: status, progress, the adapter's id.
"""

from __future__ import annotations

from typing import Any

import trio
from eth_hash.auto import keccak

from ai_precompiles import registry, typed_data
from node.chain.core import ChainCore
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams, MethodNotFound, ResourceNotFound
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import ASYNC, Json, Params, args, rpc
from node.training import (
    MAX_RECIPE_BYTES,
    MIN_DEADLINE_MARGIN,
    TrainingJob,
    TrainingService,
    check_request,
    parse_recipe,
)

#: Most [datanet, version] pairs a request may name (the chain's bound is a governance
#: parameter, ``registry.max_datanet_versions``, checked on the head state).
MAX_PAIRS = 256


def _service(ctx: NodeContext) -> TrainingService:
    service = ctx.training
    if service is None:
        raise MethodNotFound("this node trains nothing: it runs no sidecar or has no validator key")
    return service


def _ids(value: Json, name: str) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_PAIRS:
        raise InvalidParams(f"invalid argument {name}: expected a list of at most {MAX_PAIRS} quantities")
    return [p.quantity(v, f"{name}[{i}]") for i, v in enumerate(value)]


def parse_request(raw: Json) -> dict[str, Any]:
    """The wire request (camelCase, quantities as hex or numbers) in the precompile's shape."""
    if not isinstance(raw, dict):
        raise InvalidParams("invalid argument 0: expected the training request object")
    license_ = raw.get("license", "")
    if not isinstance(license_, str):
        raise InvalidParams("invalid argument 0.license: expected a string")
    return {
        "builder": p.address(raw.get("builder"), "0.builder"),
        "validator": p.address(raw.get("validator"), "0.validator"),
        "parent_id": p.quantity(raw.get("parentId"), "0.parentId"),
        "datanet_ids": _ids(raw.get("datanetIds"), "0.datanetIds"),
        "datanet_versions": _ids(raw.get("datanetVersions"), "0.datanetVersions"),
        "hyper_params_hash": p.hash32(raw.get("hyperParamsHash"), "0.hyperParamsHash"),
        "license": license_,
        "max_fee": p.quantity(raw.get("maxFee"), "0.maxFee"),
        "nonce": p.quantity(raw.get("nonce"), "0.nonce"),
        "deadline": p.quantity(raw.get("deadline"), "0.deadline"),
        "chain_id": p.quantity(raw.get("chainId"), "0.chainId"),
    }


def _model_of_weights(core: ChainCore, weights_hash: bytes) -> int | None:
    return registry.model_id_of_weights(core.ledger.state_at(core.ledger.head), weights_hash)


def _adapter_of_request(core: ChainCore, request_hash: bytes) -> int | None:
    return registry.adapter_of_training_request(core.ledger.state_at(core.ledger.head), request_hash)


@rpc("ai_trainQuote", max_params=0, lane=ASYNC)
async def ai_train_quote(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Who trains on this node, at what price, on which base model, within which limits: sign
    requests for these."""
    args(params, 0)
    service = _service(ctx)
    try:
        base_hash: str | None = await trio.to_thread.run_sync(service.sidecar_base)
    except Exception:  # the sidecar is down: the quote says so
        base_hash = None
    base_id = None
    if base_hash is not None:
        base_id = await ctx.worker.run(_model_of_weights, ctx.core, bytes.fromhex(base_hash[2:]))
    active = service.active()
    return {"validator": hex_data(service.address), "price": hex_quantity(service.price),
            "chainId": hex_quantity(ctx.core.ledger.chain_id), "ready": base_hash is not None,
            "baseModel": {"weightsHash": base_hash, "id": base_id},
            "limits": {"maxContributions": service.max_contributions,
                       "maxTrainingBytes": service.max_training_bytes, "maxRecipeBytes": MAX_RECIPE_BYTES,
                       "jobTimeoutSeconds": int(service.job_timeout),
                       "minDeadlineSeconds": int(service.job_timeout) + MIN_DEADLINE_MARGIN,
                       "maxJobs": service.max_jobs, "jobsPerBuilder": 1},
            "jobs": len(active)}


@rpc("ai_train", max_params=3, lane=ASYNC)
async def ai_train(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Take the builder's signed request ``[request, signature, recipe]`` (the recipe as JSON
    text: its UTF-8 bytes must hash to the request's ``hyperParamsHash``) as a job; answers
    with the job (``ai_getTrainingJob`` follows it)."""
    raw_request, raw_signature, raw_recipe = args(params, 3)
    service = _service(ctx)
    request = parse_request(raw_request)
    signature = p.data(raw_signature, "1")
    if len(signature) != 65:
        raise InvalidParams("invalid argument 1: a signature is 65 bytes")
    if not isinstance(raw_recipe, str):
        raise InvalidParams("invalid argument 2: expected the recipe as JSON text")
    seed, hyper = parse_recipe(raw_recipe)
    recipe = raw_recipe.encode()
    if keccak(recipe) != request["hyper_params_hash"]:
        raise InvalidParams("invalid argument 2: the recipe does not hash to the request's hyperParamsHash")
    # a full queue, or a builder with a job in hand, is refused before any work
    service.check_capacity(request["builder"], typed_data.training_request_digest(request, request["chain_id"]))
    base_hash = await trio.to_thread.run_sync(service.sidecar_base)
    reserved = ctx.inference.reserved.get(request["builder"], 0) if ctx.inference is not None else 0
    plan = await ctx.worker.run(check_request, ctx.core, service, request, signature, base_hash,
                                service.job_timeout + MIN_DEADLINE_MARGIN, reserved)
    job = TrainingJob(request, signature, recipe, seed, hyper, plan, service.price, service.clock())
    position = service.admit(job)
    return job.to_json(position)


@rpc("ai_getTrainingJob", max_params=1, lane=ASYNC)
async def ai_get_training_job(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """A training job by id (its request hash): status (queued, training, exporting,
    registering, submitted, registered, failed), progress (phase, step of totalSteps, epoch,
    loss), the adapter's id once registered, the error if it failed. A job whose record this
    node no longer keeps, or that another node ran, is answered from the chain once its adapter
    is registered."""
    (raw_id,) = args(params, 1)
    job_id = p.hash32(raw_id, "0")
    service = ctx.training
    job = service.get(job_id) if service is not None else None
    if service is not None and job is not None:
        return job.to_json(service.position(job))
    adapter_id = await ctx.worker.run(_adapter_of_request, ctx.core, job_id)
    if adapter_id is None:
        raise ResourceNotFound("no training job with that id on this node, and no adapter registered for it")
    return {"id": hex_data(job_id), "status": "registered", "adapterId": adapter_id}

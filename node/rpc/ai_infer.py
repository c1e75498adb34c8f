"""Inference asked of a validator's node over JSON-RPC: ``ai_inferQuote`` and ``ai_infer``
(the reads a newcomer needs first, ``ai_listModels``, ``ai_getDeposit`` and the like, are in
``node.rpc.ai``).

A user who holds no validator key asks a validator's node for a quote (its validator address
and price), signs an EIP-712 ``InferenceRequest`` bound to that validator and price, and sends
it with the prompt to ``ai_infer``. The node checks the request against its chain before it
spends any work (signature, nonce, deadline, adapter, deposit, its own stake), runs the prompt
on its sidecar, keeps the output in its blob store (the receipt carries its hash, so anyone
can fetch it with ``ai_getBlob``), and submits the receipt transaction itself, signed with its
validator key. The sidecar call runs off the chain thread: the chain keeps producing blocks
while a prompt is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio
from eth_hash.auto import keccak

from ai_precompiles import governance, inference, licenses, registry, staking, typed_data
from ai_precompiles.errors import BadSignature
from node.chain.core import ChainCore
from node.inference import InferenceService
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import (
    InvalidParams,
    MethodNotFound,
    ResourceNotFound,
    ServerError,
)
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import ASYNC, Json, Params, args, rpc

#: Longest prompt ``ai_infer`` takes, in UTF-8 bytes.
MAX_PROMPT_BYTES = 8 * 1024
#: Seconds a receipt needs to land once the sidecar answered; a request's deadline must leave this
#: plus the longest sidecar run (``InferenceService.timeout``), so a run is never wasted on a
#: request the chain would refuse (issue 19, attack 3: requests whose deadline passed mid-run
#: cost the user nothing and the validator a sidecar run).
MIN_DEADLINE_MARGIN = 30


@dataclass(frozen=True)
class CheckedRequest:
    request: dict[str, Any]
    """The request in the precompile's snake_case shape (validator included)."""
    request_hash: bytes
    signature: bytes
    model: registry.Model
    prompt: bytes
    max_tokens: int


def _service(ctx: NodeContext) -> InferenceService:
    service = ctx.inference
    if service is None:
        raise MethodNotFound("this node serves no inference: it runs no sidecar or has no validator key")
    return service


def _parse_request(raw: Json, service: InferenceService) -> tuple[dict[str, Any], bytes]:
    if not isinstance(raw, dict):
        raise InvalidParams("invalid argument 0: expected the request object")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise InvalidParams("invalid argument 0: prompt must be a non-empty string")
    prompt_bytes = prompt.encode()
    if len(prompt_bytes) > MAX_PROMPT_BYTES:
        raise InvalidParams(f"invalid argument 0: prompt longer than {MAX_PROMPT_BYTES} bytes")
    request: dict[str, Any] = {
        "user": p.address(raw.get("user"), "0.user"),
        "validator": p.address(raw.get("validator"), "0.validator"),
        "adapter_id": p.quantity(raw.get("adapterId"), "0.adapterId"),
        "prompt_hash": keccak(prompt_bytes),
        "max_tokens": p.quantity(raw.get("maxTokens"), "0.maxTokens"),
        "max_fee": p.quantity(raw.get("maxFee"), "0.maxFee"),
        "nonce": p.quantity(raw.get("nonce"), "0.nonce"),
        "deadline": p.quantity(raw.get("deadline"), "0.deadline"),
        "chain_id": p.quantity(raw.get("chainId"), "0.chainId"),
        "commercial": raw.get("commercial", False),
    }
    if not isinstance(request["commercial"], bool):
        raise InvalidParams("invalid argument 0: commercial must be true or false (the use the request declares)")
    if raw.get("promptHash") is not None and p.hash32(raw["promptHash"], "0.promptHash") != request["prompt_hash"]:
        raise InvalidParams("invalid argument 0: promptHash is not the keccak-256 of prompt")
    if request["validator"] != service.address:
        raise InvalidParams(f"the request is signed for validator 0x{request['validator'].hex()}; "
                            f"this node serves as 0x{service.address.hex()} (see ai_inferQuote)")
    if request["max_fee"] < service.price:
        raise InvalidParams(f"maxFee {request['max_fee']} is below this node's price {service.price} wei "
                            "(see ai_inferQuote)")
    return request, prompt_bytes


def _check_on_chain(core: ChainCore, service: InferenceService, request: dict[str, Any], signature: bytes,
                    reserved: int = 0) -> tuple[bytes, registry.Model]:
    """What the receipt would be refused for, checked on the head state before any work
    (``reserved``: the user's deposit already promised to requests in flight). Returns
    (request hash, adapter)."""
    state = core.ledger.state_at(core.ledger.head)
    if request["chain_id"] != core.ledger.chain_id:
        raise InvalidParams(f"the request is for chain {request['chain_id']}, this is {core.ledger.chain_id}")
    if request["deadline"] < core.now() + service.timeout + MIN_DEADLINE_MARGIN:
        raise InvalidParams(f"the request's deadline has passed or is too close: it must leave "
                            f"{service.timeout + MIN_DEADLINE_MARGIN:g} s for a sidecar run and the receipt")
    request_hash = typed_data.request_digest(request, core.ledger.chain_id)
    try:
        signer = typed_data.recover(request_hash, signature)
    except BadSignature as e:
        raise InvalidParams(f"bad user signature: {e.reason}") from None
    if signer != request["user"]:
        raise InvalidParams("bad user signature: it does not recover to request.user "
                            "(was it signed for this validator, price and chain?)")
    if (inference.receipt_id_for_request(state, request_hash) is not None
            or inference.request_nonce_used(state, request["user"], request["nonce"])):
        raise InvalidParams("the request's nonce was already used")
    refusal = staking.standing_refusal(state, service.address, "record receipts")
    if refusal is not None:
        raise ServerError(refusal)
    model = registry.get_model(state, request["adapter_id"])
    if model is None:
        raise ResourceNotFound(f"adapter {request['adapter_id']} does not exist")
    if model.kind != registry.ADAPTER:
        raise InvalidParams(f"model {request['adapter_id']} is a base model, not an adapter")
    if model.retired:
        raise InvalidParams(f"adapter {request['adapter_id']} is retired")
    if not governance.is_deployable(state, request["adapter_id"]):
        # the chain would refuse the receipt: the prompt is not run
        raise InvalidParams(f"adapter {request['adapter_id']} awaits approval: its policy requires an "
                            "executed model proposal (see ai_getModelStatus)")
    if request["commercial"] and model.license_terms & licenses.NON_COMMERCIAL:
        raise InvalidParams(f"adapter {request['adapter_id']}'s licence allows no commercial use: "
                            "the request declares commercial use")
    info = inference.get_deposit_info(state, request["user"])
    deposit = info["balance"]
    if info["withdrawalPending"] and info["unlockTime"] < core.now() + service.timeout + MIN_DEADLINE_MARGIN:
        deposit -= min(deposit, info["withdrawalPending"])  # may be gone before the receipt lands
    if deposit - reserved < service.price:
        raise InvalidParams(f"the user's deposit {deposit} wei is below the price {service.price} wei"
                            + (f" with {reserved} wei promised to requests in flight" if reserved else ""))
    return request_hash, model


def _record(core: ChainCore, service: InferenceService, checked: CheckedRequest, result: Any) -> dict[str, Any]:
    """Keep the output in the blob store, then sign and submit the receipt transaction."""
    from state.native import InferenceReceiptTransaction
    from state.vm import LedgerTransactionBuilder

    core.blobs.put(checked.prompt)  # what the receipt's promptHash names: any node can re-run it
    output_hash = core.blobs.put(result.output)
    if "0x" + output_hash.hex() != "0x" + result.output_hash.lower().removeprefix("0x"):
        raise ServerError("the sidecar's output hash does not match its output")
    try:
        ids = [int(cid) for cid, _ in result.weights]
    except ValueError:
        raise ServerError("the sidecar attributed to an id that is not an on-chain contribution") from None
    weights = [int(bp) for _, bp in result.weights]
    if not result.engine_profile_hash:
        raise ServerError("the sidecar reported no engine profile: a receipt must pin one")
    engine_profile = bytes.fromhex(result.engine_profile_hash.removeprefix("0x"))
    if service.engine_profile is not None and keccak(service.engine_profile) == engine_profile:
        core.blobs.put(service.engine_profile)  # any node can read what the receipt pins
    max_fee, tip = core.fees()
    tx = InferenceReceiptTransaction.for_request(
        service.validator_key, checked.request, checked.signature, output_hash=output_hash,
        engine_profile=engine_profile,
        contribution_ids=ids, weights_bp=weights, fee=service.price, chain_id=core.ledger.chain_id,
        nonce=core.next_nonce(service.address), max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee,
    )
    tx_hash = core.submit(LedgerTransactionBuilder.wrap_native(tx))
    out: dict[str, Any] = {
        "output": result.output.decode("utf-8", errors="replace"),
        "outputHash": "0x" + output_hash.hex(),
        "attribution": [{"contributionId": i, "weightBp": w} for i, w in zip(ids, weights, strict=True)],
        "fee": hex(service.price),
        "validator": "0x" + service.address.hex(),
        "requestHash": "0x" + checked.request_hash.hex(),
        "transactionHash": "0x" + tx_hash.hex(),
        "receiptId": None,
        "blockNumber": None,
    }
    where = core.ledger.transaction_location(tx_hash)
    if where is not None:  # automine: already in a block
        receipt_id = inference.receipt_id_for_request(core.ledger.state_at(core.ledger.head), checked.request_hash)
        if receipt_id is None:
            raise ServerError(f"the receipt transaction 0x{tx_hash.hex()} failed in block {where[0]}")
        out["receiptId"] = receipt_id
        out["blockNumber"] = hex(where[0])
    return out


@rpc("ai_inferQuote", max_params=0, lane=ASYNC)
async def ai_infer_quote(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Who serves inference on this node and at what price: sign requests for these."""
    args(params, 0)
    service = _service(ctx)
    ready = await trio.to_thread.run_sync(service.sidecar_ready)
    return {"validator": hex_data(service.address), "price": hex_quantity(service.price),
            "chainId": hex_quantity(ctx.core.ledger.chain_id), "maxTokens": service.max_tokens,
            "maxPromptBytes": MAX_PROMPT_BYTES, "ready": ready, "sidecar": ctx.sidecar_status(ready),
            "engineProfile": None if service.engine_profile is None else hex_data(keccak(service.engine_profile))}


@rpc("ai_infer", max_params=3, lane=ASYNC)
async def ai_infer(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Serve the user's signed request ``[request, signature, {maxTokens}]`` and record it (the
    request's signed ``maxTokens`` is what runs; the option, if given, must agree with it)."""
    raw_request, raw_signature, options = args(params, 2, 1)
    service = _service(ctx)
    request, prompt = _parse_request(raw_request, service)
    signature = p.data(raw_signature, "1")
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams("invalid argument 2: expected {maxTokens}")
    max_tokens = request["max_tokens"]
    if p.quantity(options.get("maxTokens", max_tokens), "2.maxTokens") != max_tokens:
        raise InvalidParams("invalid argument 2: maxTokens differs from the signed request's maxTokens")
    if not 0 < max_tokens <= service.max_tokens:
        raise InvalidParams(f"invalid argument 2: maxTokens must be within [1, {service.max_tokens}]")
    user = request["user"]
    request_hash, model = await ctx.worker.run(
        _check_on_chain, ctx.core, service, request, signature, service.reserved.get(user, 0))
    if request_hash in service.in_flight:
        raise InvalidParams("this request is being served already")
    service.in_flight.add(request_hash)
    service.reserved[user] = service.reserved.get(user, 0) + service.price
    try:
        checked = CheckedRequest(request, request_hash, signature, model, prompt, max_tokens)
        async with service.slot(user):
            adapter_id = await service.adapter(ctx.core, ctx.read_worker, model)
            result = await trio.to_thread.run_sync(service.run_prompt, adapter_id, prompt, max_tokens)
        if service.lies is not None:
            lineage = await ctx.read_worker.run(_training_set, ctx.core, model.id)
            result = service.lies.alter(result, adapter_id, lineage)
        # Re-checked on the chain thread: the deposit or nonce may have moved meanwhile.
        await ctx.worker.run(_check_on_chain, ctx.core, service, request, signature,
                             service.reserved[user] - service.price)
        return await ctx.worker.run(_record, ctx.core, service, checked, result)
    finally:
        service.in_flight.discard(request_hash)
        service.reserved[user] -= service.price
        if not service.reserved[user]:
            del service.reserved[user]


def _training_set(core: ChainCore, adapter_id: int) -> tuple[int, ...]:
    """The contribution ids an adapter's lineage holds (test-only lies pick one of them)."""
    lineage = registry.get_lineage(core.ledger.state_at(core.ledger.head), adapter_id)
    return tuple(sorted(int(c) for c in (lineage or {}).get("contributors", {})))


@rpc("ai_verifyReceipt", max_params=1, lane=ASYNC)
async def ai_verify_receipt(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Re-run receipt ``id`` on this node's sidecar from the chain and the blobs alone (prompt,
    adapter artifacts, engine profile) and compare: the output must match exactly, the
    attribution within the tolerance ``docs/sidecar.md`` states. ``unverifiable`` when this
    node's engine differs from the one the receipt pins (no judgement either way)."""
    (raw_id,) = args(params, 1)
    receipt_id = p.quantity(raw_id, "0")
    service = _service(ctx)
    found = await service.verify_receipt(ctx.core, ctx.read_worker, receipt_id)
    return {"receiptId": found.receipt_id, "verdict": found.verdict, "outputMatches": found.output_matches,
            "attributionMatches": found.attribution_matches, "attributionDiffBp": found.attribution_diff_bp,
            "toleranceBp": found.tolerance_bp, "output": found.output.decode("utf-8", errors="replace"),
            "reason": found.reason, "verifier": hex_data(service.address)}

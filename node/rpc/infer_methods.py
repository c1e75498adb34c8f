"""Inference asked of a validator's node over JSON-RPC: ``ai_inferQuote`` and ``ai_infer``,
plus the listing reads a newcomer needs (``ai_listModels``, ``ai_listDatanets``,
``ai_getDeposit``).

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

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from eth_hash.auto import keccak
from eth_keys import keys

from ai_precompiles import inference, registry, typed_data
from ai_precompiles.addresses import DATANETS, GOVERNANCE, MODEL_REGISTRY, STAKING
from ai_precompiles.datanets import Datanet
from ai_precompiles.errors import BadSignature
from ai_precompiles.params import get_param
from ai_precompiles.storage import Store, slot
from node.core import ChainCore
from node.rpc import params as p
from node.rpc.errors import (
    InvalidParams,
    LimitExceeded,
    MethodNotFound,
    ResourceNotFound,
    ServerError,
)
from node.rpc.methods import args, rpc

if TYPE_CHECKING:
    from node.rpc.server import RPCServer

log = logging.getLogger("ailedger.infer")

#: Longest prompt ``ai_infer`` takes, in UTF-8 bytes.
MAX_PROMPT_BYTES = 8 * 1024
#: Entries one list read returns at most.
MAX_LIST = 100
#: A request whose deadline is sooner than this (seconds) is refused: its receipt could not land.
MIN_DEADLINE_MARGIN = 30

AsyncHandler = Callable[["RPCServer", list[Any]], Awaitable[Any]]
#: Methods that wait on something other than the chain (the sidecar): they run on the trio
#: loop and hand only their chain steps to the chain worker.
ASYNC_METHODS: dict[str, AsyncHandler] = {}


def async_rpc(name: str) -> Callable[[AsyncHandler], AsyncHandler]:
    def register(fn: AsyncHandler) -> AsyncHandler:
        ASYNC_METHODS[name] = fn
        return fn

    return register


@dataclass
class InferenceService:
    """What a validator's node needs to serve ``ai_infer``: its sidecar, key and price."""

    sidecar: str
    """gRPC address of the sidecar that runs prompts."""
    validator_key: bytes
    """Key the receipts are signed and sent with (the node's validator key)."""
    price: int
    """Wei charged per request (the quote; a request's maxFee must cover it)."""
    max_tokens: int = 128
    """Most tokens one request may generate."""
    concurrency: int = 4
    """Prompts in flight on the sidecar at once; more wait (the sidecar batches them)."""
    timeout: float = 300.0
    """Seconds one sidecar call may take."""
    slots: trio.Semaphore = field(init=False)
    max_waiting: int = 64
    """Requests waiting for a slot beyond which new ones are refused (busy)."""
    in_flight: set[bytes] = field(default_factory=set)
    """Request hashes being served now: the same signed request is not run twice at once."""
    reserved: dict[bytes, int] = field(default_factory=dict)
    """Per user, the fees of their requests being served now: a deposit covers them all."""
    adapter_ids: dict[str, str] = field(default_factory=dict)
    """On-chain weights hash -> the sidecar's adapter id (learnt from ListAdapters)."""

    def __post_init__(self) -> None:
        self.slots = trio.Semaphore(self.concurrency)
        self.address = keys.PrivateKey(self.validator_key).public_key.to_canonical_address()

    # -- the sidecar (blocking; run in a thread) --

    def _sidecar_adapter(self, client: Any, weights_hash: str) -> str:
        if weights_hash not in self.adapter_ids:
            for info in client.list_adapters().adapters:
                self.adapter_ids["0x" + info.weights_hash.lower().removeprefix("0x")] = info.adapter_id
        if weights_hash not in self.adapter_ids:
            raise ResourceNotFound(f"this node's sidecar does not hold the adapter with weights {weights_hash}")
        return self.adapter_ids[weights_hash]

    def run_prompt(self, weights_hash: str, prompt: bytes, max_tokens: int) -> Any:
        import grpc

        from sidecar.client import SidecarClient

        try:
            with SidecarClient(self.sidecar, timeout=self.timeout) as client:
                adapter = self._sidecar_adapter(client, weights_hash)
                return client.infer(adapter, prompt, max_tokens)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise LimitExceeded(f"the sidecar is busy: {e.details()}") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServerError("this node's sidecar is not serving yet; try again shortly") from None
            raise ServerError(f"sidecar: {e.details() if hasattr(e, 'details') else e}") from None

    def sidecar_ready(self) -> bool:
        try:
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            from sidecar.client import SidecarClient

            with SidecarClient(self.sidecar, timeout=2) as client:
                reply = health_pb2_grpc.HealthStub(client.channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except Exception:
            return False


@dataclass(frozen=True)
class CheckedRequest:
    request: dict[str, Any]
    """The request in the precompile's snake_case shape (validator included)."""
    request_hash: bytes
    signature: bytes
    weights_hash: str
    prompt: bytes
    max_tokens: int


def _service(server: RPCServer) -> InferenceService:
    service: InferenceService | None = getattr(server, "inference", None)
    if service is None:
        raise MethodNotFound("this node serves no inference: it runs no sidecar or has no validator key")
    return service


def _int(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return p.quantity(value, name)


def _parse_request(raw: Any, service: InferenceService) -> tuple[dict[str, Any], bytes]:
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
        "adapter_id": _int(raw.get("adapterId"), "0.adapterId"),
        "prompt_hash": keccak(prompt_bytes),
        "max_tokens": _int(raw.get("maxTokens"), "0.maxTokens"),
        "max_fee": _int(raw.get("maxFee"), "0.maxFee"),
        "nonce": _int(raw.get("nonce"), "0.nonce"),
        "deadline": _int(raw.get("deadline"), "0.deadline"),
        "chain_id": _int(raw.get("chainId"), "0.chainId"),
    }
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
                    reserved: int = 0) -> tuple[bytes, str]:
    """What the receipt would be refused for, checked on the head state before any work
    (``reserved``: the user's deposit already promised to requests in flight). Returns
    (request hash, adapter weights hash)."""
    state: Any = core.ledger.state_at(core.ledger.head)
    if request["chain_id"] != core.ledger.chain_id:
        raise InvalidParams(f"the request is for chain {request['chain_id']}, this is {core.ledger.chain_id}")
    if request["deadline"] < core.now() + MIN_DEADLINE_MARGIN:
        raise InvalidParams("the request's deadline has passed or is too close")
    request_hash = typed_data.request_digest(request, core.ledger.chain_id)
    try:
        signer = typed_data.recover(request_hash, signature)
    except BadSignature as e:
        raise InvalidParams(f"bad user signature: {e.reason}") from None
    if signer != request["user"]:
        raise InvalidParams("bad user signature: it does not recover to request.user "
                            "(was it signed for this validator, price and chain?)")
    if inference.receipt_id_for_request(state, request_hash) is not None or Store(state, inference.INFERENCE).get(
            slot("nonce", request["user"], request["nonce"])):
        raise InvalidParams("the request's nonce was already used")
    gov = Store(state, GOVERNANCE)
    if Store(state, STAKING).get(slot("stake", service.address)) < get_param(gov, "staking.min_stake"):
        raise ServerError("this node's validator is not staked; it cannot record receipts")
    if Store(state, STAKING).get(slot("jail.until", service.address)):
        raise ServerError("this node's validator is jailed; it cannot record receipts until it unjails")
    model = registry.get_model(state, request["adapter_id"])
    if model is None:
        raise ResourceNotFound(f"adapter {request['adapter_id']} does not exist")
    if model.kind != registry.ADAPTER:
        raise InvalidParams(f"model {request['adapter_id']} is a base model, not an adapter")
    if model.retired:
        raise InvalidParams(f"adapter {request['adapter_id']} is retired")
    info = inference.get_deposit_info(state, request["user"])
    deposit = info["balance"]
    if info["withdrawalPending"] and info["unlockTime"] < core.now() + service.timeout + MIN_DEADLINE_MARGIN:
        deposit -= min(deposit, info["withdrawalPending"])  # may be gone before the receipt lands
    if deposit - reserved < service.price:
        raise InvalidParams(f"the user's deposit {deposit} wei is below the price {service.price} wei"
                            + (f" with {reserved} wei promised to requests in flight" if reserved else ""))
    return request_hash, "0x" + model.weights_hash.hex()


#: The canonical engine-profile blob a receipt names while the sidecar reports none of its own.
PLACEHOLDER_ENGINE_PROFILE = (b'{"attribution":"unreported","dtype":"unreported","placeholder":true,'
                              b'"sidecar":"unreported","torch":"unreported"}')


def placeholder_engine_profile() -> bytes:
    """The ``engineProfile`` a receipt signs: keccak-256 of the canonical engine-profile blob.

    PLACEHOLDER (issue 18): the sidecar does not report its engine profile (sidecar and torch
    versions, dtype, attribution method and version) yet, so every receipt names this fixed
    blob, which pins nothing about the engine. When the sidecar reports its profile blob, the
    receipt paths (here and ``ailedger infer --validator-*``) take its keccak-256 instead and this
    function goes away.
    """
    return bytes(keccak(PLACEHOLDER_ENGINE_PROFILE))


def _record(core: ChainCore, service: InferenceService, checked: CheckedRequest, result: Any) -> dict[str, Any]:
    """Keep the output in the blob store, then sign and submit the receipt transaction."""
    from state.native import InferenceReceiptTransaction
    from state.vm import LedgerTransactionBuilder

    output_hash = core.blobs.put(result.output)
    if "0x" + output_hash.hex() != "0x" + result.output_hash.lower().removeprefix("0x"):
        raise ServerError("the sidecar's output hash does not match its output")
    try:
        ids = [int(cid) for cid, _ in result.weights]
    except ValueError:
        raise ServerError("the sidecar attributed to an id that is not an on-chain contribution") from None
    weights = [int(bp) for _, bp in result.weights]
    r = checked.request
    chain_id = core.ledger.chain_id
    engine_profile = placeholder_engine_profile()
    validator_signature = typed_data.sign(
        typed_data.receipt_digest(checked.request_hash, output_hash, engine_profile, ids, weights,
                                  service.price, service.address, chain_id), service.validator_key)
    base = core.next_base_fee()
    tip = 10**9
    tx = InferenceReceiptTransaction.sign(
        service.validator_key, chain_id=chain_id,
        nonce=core.pool.next_nonce(service.address, core.account(service.address).nonce),
        max_priority_fee_per_gas=tip, max_fee_per_gas=2 * base + tip, gas=3_000_000,
        user=r["user"], adapter_id=r["adapter_id"], prompt_hash=r["prompt_hash"], max_tokens=r["max_tokens"],
        max_fee=r["max_fee"], request_nonce=r["nonce"], deadline=r["deadline"], request_chain_id=r["chain_id"],
        user_signature=checked.signature, output_hash=output_hash, engine_profile=engine_profile,
        contribution_ids=ids,
        weights_bp=weights, fee=service.price, validator=service.address,
        validator_signature=validator_signature,
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


@async_rpc("ai_inferQuote")
async def ai_infer_quote(server: RPCServer, params: list[Any]) -> dict[str, Any]:
    """Who serves inference on this node and at what price: sign requests for these."""
    args(params, 0)
    service = _service(server)
    ready = await trio.to_thread.run_sync(service.sidecar_ready)
    return {"validator": "0x" + service.address.hex(), "price": hex(service.price),
            "chainId": hex(server.core.ledger.chain_id), "maxTokens": service.max_tokens,
            "maxPromptBytes": MAX_PROMPT_BYTES, "ready": ready}


@async_rpc("ai_infer")
async def ai_infer(server: RPCServer, params: list[Any]) -> dict[str, Any]:
    """Serve the user's signed request ``[request, signature, {maxTokens}]`` and record it (the
    request's signed ``maxTokens`` is what runs; the option, if given, must agree with it)."""
    raw_request, raw_signature, options = args(params, 2, 1)
    service = _service(server)
    request, prompt = _parse_request(raw_request, service)
    signature = p.data(raw_signature, "1")
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams("invalid argument 2: expected {maxTokens}")
    max_tokens = request["max_tokens"]
    if _int(options.get("maxTokens", max_tokens), "2.maxTokens") != max_tokens:
        raise InvalidParams("invalid argument 2: maxTokens differs from the signed request's maxTokens")
    if not 0 < max_tokens <= service.max_tokens:
        raise InvalidParams(f"invalid argument 2: maxTokens must be within [1, {service.max_tokens}]")
    user = request["user"]
    if len(service.in_flight) >= service.concurrency + service.max_waiting:
        raise LimitExceeded("this node is serving too many inferences; try again shortly")
    request_hash, weights_hash = await server.worker.run(
        _check_on_chain, server.core, service, request, signature, service.reserved.get(user, 0))
    if request_hash in service.in_flight:
        raise InvalidParams("this request is being served already")
    service.in_flight.add(request_hash)
    service.reserved[user] = service.reserved.get(user, 0) + service.price
    try:
        checked = CheckedRequest(request, request_hash, signature, weights_hash, prompt, max_tokens)
        async with service.slots:
            result = await trio.to_thread.run_sync(service.run_prompt, weights_hash, prompt, max_tokens)
        # Re-checked on the chain thread: the deposit or nonce may have moved meanwhile.
        await server.worker.run(_check_on_chain, server.core, service, request, signature,
                                service.reserved[user] - service.price)
        return await server.worker.run(_record, server.core, service, checked, result)
    finally:
        service.in_flight.discard(request_hash)
        service.reserved[user] -= service.price
        if not service.reserved[user]:
            del service.reserved[user]


# -- listing reads --------------------------------------------------------------------------------


def _page(options: Any, position: str) -> tuple[int, int]:
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams(f"invalid argument {position}: expected {{offset, limit}}")
    offset = _int(options.get("offset", 0), f"{position}.offset")
    limit = _int(options.get("limit", MAX_LIST), f"{position}.limit")
    return offset, min(limit, MAX_LIST)


@rpc("ai_listModels")
def ai_list_models(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    """Base models and adapters, ``{offset, limit}`` (at most 100 a page), oldest first."""
    (options,) = args(params, 0, 1)
    offset, limit = _page(options, "0")
    state: Any = core.ledger.state_at(core.ledger.head)
    count = Store(state, MODEL_REGISTRY).get(slot("model.count"))
    models = []
    for model_id in range(offset + 1, min(count, offset + limit) + 1):
        m = registry.get_model(state, model_id)
        if m is not None:
            entry = m.to_json()
            entry.pop("children", None)  # unbounded: ai_getModel has it
            models.append(entry)
    return {"total": count, "models": models}


@rpc("ai_listDatanets")
def ai_list_datanets(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    """Datanets, ``{offset, limit}`` (at most 100 a page), oldest first."""
    (options,) = args(params, 0, 1)
    offset, limit = _page(options, "0")
    state: Any = core.ledger.state_at(core.ledger.head)
    store = Store(state, DATANETS)
    count = store.get(slot("datanet.count"))
    items = [Datanet.decode(store, i).to_json() for i in range(offset + 1, min(count, offset + limit) + 1)]
    return {"total": count, "datanets": items}


@rpc("ai_getDeposit")
def ai_get_deposit(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    """An account's inference deposit and its withdrawal lock."""
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    state: Any = core.ledger.state_at(core.resolve(p.block_ref(ref, "1")))
    return {k: hex(v) for k, v in inference.get_deposit_info(state, address).items()}


@rpc("ai_getReceipt")
def ai_get_receipt(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    """Inference receipt ``id`` with its ancestry (as ``ai_getInferenceAncestry``) and whether
    this node holds its output (``ai_getBlob`` with the receipt's ``outputHash``)."""
    receipt_id, ref = args(params, 1, 1)
    state: Any = core.ledger.state_at(core.resolve(p.block_ref(ref, "1")))
    found = inference.get_inference(state, _int(receipt_id, "0"))
    if found is None:
        raise ResourceNotFound("receipt not found")
    out = dict(found)
    out["outputAvailable"] = core.blobs.size(bytes(inference.get_receipt(state, _int(receipt_id, "0")).output_hash)) is not None  # type: ignore[union-attr]
    return out

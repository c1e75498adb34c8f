"""The ``ai_`` JSON-RPC namespace's reads: what would be awkward through eth_call (lineage,
the ancestry of an inference, proofs, training sets, listings of models and datanets,
deposits and receipts). The blob store is in ``ai_blobs``, inference in ``ai_infer``.

Reads take an optional block reference as their last argument (default ``latest``), as
the ``eth_`` state reads do. Every read does work bounded by its answer: lists are pages
(``offset``/``limit``), and inputs that name many records are capped. Reads whose work
grows with a datanet run on the read worker, off the chain thread.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import ai_precompiles
from ai_precompiles import challenges, datanets, inference, licenses, registry, sketch
from ai_precompiles.addresses import INFERENCE
from ai_precompiles.errors import AIError
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams, LimitExceeded, ResourceNotFound
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import READ, Json, Params, args, rpc

T = TypeVar("T")

#: Page size of list answers (ai_listContributions, ai_getTrainingSet's contributions).
MAX_PAGE = 1000
#: Most records a status-filtered listing examines to fill one page.
MAX_SCAN = 10_000
#: Most distinct [datanet, version] pairs one ai_getTrainingSet takes (an adapter names a
#: handful), and most contributions it hashes into the root.
MAX_TRAINING_PAIRS = 32
MAX_TRAINING_SET = 20_000
#: Most leaves ai_getContributionProof hashes to build a proof.
MAX_PROOF_LEAVES = 20_000
#: Entries one model or datanet listing returns at most.
MAX_LIST = 100
_INFERENCE_RECORDED = ai_precompiles.MODULES["Inference"].abi.events["InferenceRecorded"].topic0


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise ResourceNotFound(f"{what} not found")
    return value


@rpc("ai_getDatanet", max_params=2)
def ai_get_datanet(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """A datanet, with its ``contributionPolicy`` (``minBond``, ``requireSketch``)."""
    datanet_id, ref = args(params, 1, 1)
    state = p.state_at(ctx.core, ref, 1)
    did = p.quantity(datanet_id, "0")
    out = dict(_found(ai_precompiles.get_datanet(state, did), "datanet").to_json())
    policy = datanets.get_contribution_policy(state, did)
    assert policy is not None  # the datanet exists
    out["contributionPolicy"] = policy.to_json()
    return out


@rpc("ai_getContribution", max_params=2, lane=READ)
def ai_get_contribution(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """A contribution, whether this node holds its blob, and its ``quality``: the near-duplicate
    flag the chain set (``nearDuplicateOf``, ``similarityBp``, ``groupId``), its bond, its
    contributor's penalty score, and ``sketchMatches``: whether the sketch on chain is the one
    this node computes from the blob (null when it holds no blob or there is no sketch). A
    false is a lie about the data, for the curators to reject as adversarial. The check reads
    at most ``sketch.MAX_SHINGLED`` bytes of the blob, so it runs on the read worker."""
    contribution_id, ref = args(params, 1, 1)
    state = p.state_at(ctx.core, ref, 1)
    c = ai_precompiles.get_contribution(state, p.quantity(contribution_id, "0"))
    found = _found(c, "contribution")
    out = dict(found.to_json())
    out.update(licenses.flags_json(found.terms))
    available = ctx.core.blobs.size(found.content_hash) is not None
    out["blobAvailable"] = available
    quality = datanets.get_quality(state, found.id)
    assert quality is not None  # the contribution exists
    quality["sketchMatches"] = None
    if quality["sketched"] and available:
        quality["sketchMatches"] = "0x" + _blob_sketch(ctx.core.blobs, found.content_hash).hex() == quality["sketch"]
    out["quality"] = quality
    return out


@functools.lru_cache(maxsize=4096)
def _blob_sketch(blobs: Any, content_hash: bytes) -> bytes:
    """The sketch of a blob this node holds. A blob never changes under its hash, so each is
    sketched once (4096 kept, 256 bytes each): asking again for the same contribution costs a
    lookup, not another pass over its bytes."""
    return sketch.compute_sketch(blobs.get(content_hash, 0, sketch.MAX_SHINGLED))


def _page(options: dict[str, Json], name: str) -> tuple[int, int]:
    """(offset, limit) of a paged read; limit defaults to and is capped at MAX_PAGE."""
    offset = options.get("offset", 0)
    limit = options.get("limit", MAX_PAGE)
    offset = p.quantity(offset, f"{name}.offset")
    limit = p.quantity(limit, f"{name}.limit")
    if offset > 2**63:
        raise InvalidParams(f"invalid argument {name}.offset: too large")
    return offset, min(limit, MAX_PAGE)


@rpc("ai_listContributions", max_params=3, lane=READ)
def ai_list_contributions(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    """One page of a datanet's contributions (``{status, offset, limit}``, limit <= 1000);
    with status ``accepted`` in acceptance (leaf) order, otherwise in submission order."""
    datanet_id, options, ref = args(params, 1, 2)
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams("invalid argument 1: expected {status, offset, limit}")
    raw_status = options.get("status")
    statuses = {"pending": 0, "accepted": 1, "rejected": 2}
    status: int | None = None
    if isinstance(raw_status, str) and raw_status in statuses:
        status = statuses[raw_status]
    elif isinstance(raw_status, (int, float)) and raw_status in statuses.values():
        status = int(raw_status)
    elif raw_status is not None:
        raise InvalidParams(f"invalid argument 1: status must be one of {sorted(statuses)}")
    offset, limit = _page(options, "1")
    did = p.quantity(datanet_id, "0")
    state = p.state_at(ctx.core, ref, 2)
    _found(ai_precompiles.get_datanet(state, did), "datanet")
    try:
        items = ai_precompiles.list_contributions(state, did, status, offset, limit, MAX_SCAN)
    except AIError as e:
        raise LimitExceeded(str(e)) from None
    return [{**c.to_json(), **licenses.flags_json(c.terms)} for c in items]


@rpc("ai_getLineage", max_params=2, lane=READ)
def ai_get_lineage(ctx: NodeContext, params: Params) -> dict[str, Any]:
    model_id, ref = args(params, 1, 1)
    return dict(_found(ai_precompiles.get_lineage(p.state_at(ctx.core, ref, 1), p.quantity(model_id, "0")), "model"))


@rpc("ai_getModel", max_params=2, lane=READ)
def ai_get_model(ctx: NodeContext, params: Params) -> dict[str, Any]:
    model_id, ref = args(params, 1, 1)
    state, mid = p.state_at(ctx.core, ref, 1), p.quantity(model_id, "0")
    out = registry.model_json(state, _found(ai_precompiles.get_model(state, mid), "model"))
    merge = registry.get_merge(state, mid)
    if merge is not None:  # a merged adapter: its parents and recipe (docs/merges.md)
        out["merge"] = merge.to_json()
    return out


#: What names an inference receipt in ``ai_getInferenceAncestry`` and ``ai_getReceipt``.
RECEIPT_REF = ("an inference receipt id (a quantity, e.g. 1 or \"0x1\") or the 32-byte hash "
               "(0x + 64 hex digits) of the transaction that recorded it")


def _receipt_ref(ctx: NodeContext, value: Json) -> tuple[int, tuple[bytes, int] | None]:
    """The receipt id that ``value`` names, and for a transaction hash that hash and its block.

    Both reads take either form, so a caller holding one never needs the other. A string of
    exactly 0x + 64 hex digits is a transaction hash (receipt ids count up from 1 and never
    reach 2**252); anything else must be a quantity. Bounded: one transaction lookup and the
    logs of its one receipt."""
    if isinstance(value, str) and len(value) == 66 and value[:2] in ("0x", "0X"):
        tx_hash = p.hash32(value, "0")
        found = ctx.core.ledger.receipt_of(tx_hash)
        if found is None:
            raise ResourceNotFound(f"transaction {hex_data(tx_hash)} not found")
        header, receipt = found
        receipt_ids = [
            _topic(log.topics[1]) for log in receipt.logs
            if log.address == INFERENCE and log.topics and _topic(log.topics[0]) == _INFERENCE_RECORDED
        ]
        if not receipt_ids:
            raise ResourceNotFound(f"transaction {hex_data(tx_hash)} recorded no inference receipt")
        return receipt_ids[0], (tx_hash, header.block_number)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidParams(f"invalid argument 0: expected {RECEIPT_REF}")
    try:
        return p.quantity(value, "0"), None
    except InvalidParams as e:
        raise InvalidParams(f"{e}; expected {RECEIPT_REF}") from None


@rpc("ai_getInferenceAncestry", max_params=1, lane=READ)
def ai_get_inference_ancestry(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Which datasets, contributions, contributors, adapter path and weights produced the
    output of an inference receipt, named by its id or its transaction's hash (``RECEIPT_REF``).
    Asked by hash, it reads the state of that transaction's block and adds ``transactionHash``
    and ``blockNumber``; asked by id, the latest state."""
    (ref_raw,) = args(params, 1)
    receipt_id, found_by_tx = _receipt_ref(ctx, ref_raw)
    if found_by_tx is None:
        return dict(_found(ai_precompiles.get_inference(p.state_at(ctx.core, None, 1), receipt_id),
                           f"inference receipt {receipt_id}"))
    tx_hash, block_number = found_by_tx
    header = ctx.core.ledger.header_by_number(block_number)
    assert header is not None
    state = ctx.core.ledger.state_at(header)
    out = dict(_found(ai_precompiles.get_inference(state, receipt_id), "inference"))
    out["transactionHash"] = hex_data(tx_hash)
    out["blockNumber"] = hex_quantity(block_number)
    return out


def _topic(t: int | bytes) -> int:
    return t if isinstance(t, int) else int.from_bytes(t, "big")


@rpc("ai_getContributionProof", max_params=4, lane=READ)
def ai_get_contribution_proof(ctx: NodeContext, params: Params) -> dict[str, Any]:
    datanet_id, version, contribution_id, ref = args(params, 3, 1)
    state = p.state_at(ctx.core, ref, 3)
    did, ver = p.quantity(datanet_id, "0"), p.quantity(version, "1")
    v = ai_precompiles.get_version(state, did, ver)
    if v is not None and v.count > MAX_PROOF_LEAVES:
        raise LimitExceeded(f"version {ver} has {v.count} leaves; this node builds proofs over at most {MAX_PROOF_LEAVES}")
    try:
        return dict(ai_precompiles.get_contribution_proof(state, did, ver, p.quantity(contribution_id, "2")))
    except AIError as e:
        raise ResourceNotFound(str(e)) from None


@rpc("ai_getTrainingSet", max_params=3, lane=READ)
def ai_get_training_set(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """The exact contribution set of some datanet versions, in leaf order, and the Merkle
    root an adapter trained on them commits to (``[[datanetId, version], ...]``).

    At most MAX_TRAINING_PAIRS distinct pairs (a repeated pair is refused: it would count
    its contributions twice). The root covers the whole set; the contributions come one
    page at a time (``{offset, limit}``, third argument; ``total`` says how many)."""
    versions_raw, ref, options = args(params, 1, 2)
    if not isinstance(versions_raw, list) or not versions_raw or not all(
        isinstance(v, list) and len(v) == 2 for v in versions_raw
    ):
        raise InvalidParams("invalid argument 0: expected [[datanetId, version], ...]")
    if len(versions_raw) > MAX_TRAINING_PAIRS:
        raise InvalidParams(f"invalid argument 0: at most {MAX_TRAINING_PAIRS} [datanetId, version] pairs")
    pairs = [(p.quantity(pair[0], "0"), p.quantity(pair[1], "0")) for pair in versions_raw if isinstance(pair, list)]
    if len(set(pairs)) != len(pairs):
        raise InvalidParams("invalid argument 0: a [datanetId, version] pair is repeated")
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams("invalid argument 2: expected {offset, limit}")
    offset, limit = _page(options, "2")
    state = p.state_at(ctx.core, ref, 1)
    try:
        ids: list[int] = []
        for d, v in pairs:
            version = datanets.get_version(state, d, v)
            if version is not None and len(ids) + version.count > MAX_TRAINING_SET:
                raise LimitExceeded(f"the training set holds more than {MAX_TRAINING_SET} contributions")
            ids.extend(datanets.version_contribution_ids(state, d, v))
        page = []
        for cid in ids[offset : offset + limit]:
            c = ai_precompiles.get_contribution(state, cid)
            assert c is not None
            page.append(c.to_json())
        root = registry.adapter_contribution_root(state, [d for d, _ in pairs], [v for _, v in pairs])
    except AIError as e:
        raise ResourceNotFound(str(e)) from None
    return {"contributionRoot": hex_data(root), "contributions": page, "total": len(ids), "offset": offset}


@rpc("ai_getRewards", max_params=2)
def ai_get_rewards(ctx: NodeContext, params: Params) -> dict[str, Any]:
    who, ref = args(params, 1, 1)
    rewards = ai_precompiles.get_rewards(p.state_at(ctx.core, ref, 1), p.address(who, "0"))
    return {k: hex_quantity(v) for k, v in rewards.items()}


@rpc("ai_getStake", max_params=2)
def ai_get_stake(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """An account's stake, what it is unbonding and until when, and its jail (0: not jailed)."""
    who, ref = args(params, 1, 1)
    found = ai_precompiles.get_stake(p.state_at(ctx.core, ref, 1), p.address(who, "0"))
    return {k: hex_quantity(v) for k, v in found.items()}


@rpc("ai_getParams", max_params=1)
def ai_get_params(ctx: NodeContext, params: Params) -> dict[str, Any]:
    (ref,) = args(params, 0, 1)
    return {k: hex_quantity(v) for k, v in ai_precompiles.get_params(p.state_at(ctx.core, ref, 0)).items()}


@rpc("ai_getProposal", max_params=2)
def ai_get_proposal(ctx: NodeContext, params: Params) -> dict[str, Any]:
    proposal_id, ref = args(params, 1, 1)
    proposal = ai_precompiles.get_proposal(p.state_at(ctx.core, ref, 1), p.quantity(proposal_id, "0"))
    return dict(_found(proposal, "proposal").to_json())


@rpc("ai_getValidatorSet", max_params=1, lane=READ)
def ai_get_validator_set(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    (ref,) = args(params, 0, 1)
    header = ctx.core.resolve(p.block_ref(ref, "0"))
    validators = ai_precompiles.get_validator_set(ctx.core.ledger.state_at(header), block=header.block_number)
    return [{"address": hex_data(a), "power": hex_quantity(power)} for a, power in validators]


# -- listings ---------------------------------------------------------------------------------


def _list_page(options: Json, position: str) -> tuple[int, int]:
    """(offset, limit) of a list read; limit defaults to and is capped at MAX_LIST."""
    options = options or {}
    if not isinstance(options, dict):
        raise InvalidParams(f"invalid argument {position}: expected {{offset, limit}}")
    offset = p.quantity(options.get("offset", 0), f"{position}.offset")
    limit = p.quantity(options.get("limit", MAX_LIST), f"{position}.limit")
    return offset, min(limit, MAX_LIST)


@rpc("ai_listModels", max_params=1)
def ai_list_models(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Base models and adapters, ``{offset, limit}`` (at most 100 a page), oldest first."""
    (options,) = args(params, 0, 1)
    offset, limit = _list_page(options, "0")
    state = ctx.core.ledger.state_at(ctx.core.ledger.head)
    count = registry.get_model_count(state)
    models = []
    for model_id in range(offset + 1, min(count, offset + limit) + 1):
        m = registry.get_model(state, model_id)
        if m is not None:
            entry = m.to_json()
            entry.pop("children", None)  # unbounded: ai_getModel has it
            models.append(entry)
    return {"total": count, "models": models}


@rpc("ai_listDatanets", max_params=1)
def ai_list_datanets(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Datanets, ``{offset, limit}`` (at most 100 a page), oldest first."""
    (options,) = args(params, 0, 1)
    offset, limit = _list_page(options, "0")
    state = ctx.core.ledger.state_at(ctx.core.ledger.head)
    count = datanets.get_datanet_count(state)
    items = []
    for datanet_id in range(offset + 1, min(count, offset + limit) + 1):
        datanet = datanets.get_datanet(state, datanet_id)
        assert datanet is not None  # ids 1..count exist
        items.append(datanet.to_json())
    return {"total": count, "datanets": items}


@rpc("ai_getDeposit", max_params=2)
def ai_get_deposit(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """An account's inference deposit and its withdrawal lock."""
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    state = p.state_at(ctx.core, ref, 1)
    return {k: hex_quantity(v) for k, v in inference.get_deposit_info(state, address).items()}


@rpc("ai_getReceipt", max_params=2)
def ai_get_receipt(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Inference receipt ``id`` (or its transaction's hash: ``RECEIPT_REF``) with its ancestry
    (as ``ai_getInferenceAncestry``) and whether
    this node holds its output (``ai_getBlob`` with the receipt's ``outputHash``)."""
    ref_raw, ref = args(params, 1, 1)
    state = p.state_at(ctx.core, ref, 1)
    receipt_id, _ = _receipt_ref(ctx, ref_raw)
    found = inference.get_inference(state, receipt_id)
    if found is None:
        raise ResourceNotFound(f"inference receipt {receipt_id} not found")
    out = dict(found)
    out["outputAvailable"] = ctx.core.blobs.size(bytes(inference.get_receipt(state, receipt_id).output_hash)) is not None  # type: ignore[union-attr]
    return out


@rpc("ai_getChallenge", max_params=2)
def ai_get_challenge(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Challenge ``id``: its receipt, challenger, bond, deadline, outcome, and each committee
    member's power and verdict, with ``owing`` the members that still owe one."""
    challenge_id, ref = args(params, 1, 1)
    found = challenges.get_challenge(p.state_at(ctx.core, ref, 1), p.quantity(challenge_id, "0"))
    if found is None:
        raise ResourceNotFound("challenge not found")
    return found


@rpc("ai_listChallenges", max_params=2)
def ai_list_challenges(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """Challenges from ``{start}`` (default 1), at most ``{limit}`` (≤ 100) a page, oldest first;
    ``{openOnly: true}`` keeps the open ones; ``next`` is where the next page starts."""
    options, ref = args(params, 0, 2)
    if options is not None and not isinstance(options, dict):
        raise InvalidParams("invalid argument 0: expected {start, limit, openOnly}")
    opts = options or {}
    start = p.quantity(opts.get("start", 1), "0.start")
    limit = min(p.quantity(opts.get("limit", challenges.MAX_PAGE), "0.limit"), challenges.MAX_PAGE)
    open_only = p.boolean(opts.get("openOnly", False), "0.openOnly")
    return challenges.list_challenges(p.state_at(ctx.core, ref, 1), start, limit, open_only)

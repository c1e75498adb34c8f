"""Inference receipts precompile: deposits, signed requests, validator receipts, settlement and
challenges; its storage.

A receipt is accepted only if, in this order: attribution arrays match in length and size;
the request's chain id is this chain's; its ``maxTokens`` is within ``[1, inference.max_tokens]``;
the engine profile is not zero; the deadline (a unix time) is not before the block's
timestamp; the user's EIP-712 signature over the request *for this validator* (the receipt's
``validator`` is the request's, so a request signed for another validator recovers another
signer) recovers to ``request.user``; the validator's signature
over the receipt recovers to ``validator``; the validator has at least ``staking.min_stake``
staked and is not jailed; the user's nonce is unused; the adapter exists, is an adapter and takes receipts (not
retired, or retired less than ``registry.retire_delay`` seconds ago: a request signed and served before the
author retired it is still paid); a request declaring commercial use names an adapter whose effective
licence allows it (``ModelRegistry``'s ``licenseTerms``); every
attributed contribution is distinct and in the adapter's lineage; the weights sum to 10000 bp;
``fee <= maxFee``; the user's deposit covers the fee. Then the nonce is spent, the deposit
charged, the receipt stored, and the fee's split held pending by the rewards module.

A receipt pins what a re-run needs: the prompt and output hashes (keccak-256 of the bytes, i.e.
their blob ids in the nodes' blob stores), the adapter with the weights hash of it and of its
base model (copied from the registry when the receipt is recorded), ``maxTokens`` (decoding is
greedy), and the engine profile the validator signed (keccak-256 of its sidecar's canonical
engine-profile blob: sidecar and torch versions, dtype, attribution method and version).

The receipt records the use the request declared (``commercial``) and whether, at record time, a
model of the adapter's lineage had trained on a contribution whose consent was withdrawn
(``consentWithdrawn``; one read per declared version, ``registry.path_withdrawn``).

Settlement: the split stays pending until ``releaseBlock = block + inference.challenge_window``;
from that block anyone may :func:`settle` the receipt (the split becomes claimable). Before it,
anyone may challenge the receipt (``challenges.py``): an upheld challenge reverses the split and
refunds the fee to the user's deposit.

Deposits are withdrawn in two steps: ``requestWithdrawal(amount)`` starts a lock of
``inference.withdraw_delay`` seconds during which receipts can still charge the whole deposit
(a validator serving a request already signed is paid); ``withdraw(amount)`` after it pays out.

Storage (account ``INFERENCE``; its balance holds all deposits and open challenge bonds):
``slot("deposit", a)``, ``slot("withdraw.amount", a)`` and ``slot("withdraw.unlock", a)`` (the
pending withdrawal), ``slot("nonce", user, nonce)`` (1 = used), ``slot("receipt.count")``,
:class:`Receipt` records, ``slot("receipt.request", requestHash)`` -> receipt id; the
challenges' slots (``challenges.py``).
"""

from __future__ import annotations

from typing import Any

from . import challenges, datanets, governance, licenses, registry, rewards, typed_data
from .addresses import DATANETS, GOVERNANCE, INFERENCE, MODEL_REGISTRY, STAKING
from .context import Ctx
from .datanets import Contribution
from .dispatch import Precompile
from .errors import BadSignature, InsufficientFunds, InvalidArgument, InvalidState, NotFound
from .params import BP, get_param
from .receipts import (
    PENDING,
    ZERO32,
    Receipt,
    event,
    settle,
    split_payouts,
)
from .storage import Store, slot


def deposit(ctx: Ctx) -> None:
    """Credit the call's value (already in this account's balance) to the sender's deposit."""
    if ctx.value == 0:
        raise InvalidArgument("deposit requires a value")
    balance = ctx.store(INFERENCE).incr(slot("deposit", ctx.sender), ctx.value)
    event(ctx, "Deposited", ctx.sender, ctx.value, balance)


def request_withdrawal(ctx: Ctx, amount: int) -> int:
    """Start the lock after which ``amount`` of the sender's deposit may be withdrawn; returns
    the unlock time. A new request replaces a pending one (and restarts its lock)."""
    store = ctx.store(INFERENCE)
    balance = store.get(slot("deposit", ctx.sender))
    if amount == 0 or amount > balance:
        raise InsufficientFunds(f"cannot withdraw {amount}: deposit is {balance}")
    unlock = ctx.timestamp + get_param(ctx.store(GOVERNANCE), "inference.withdraw_delay")
    store.set(slot("withdraw.amount", ctx.sender), amount)
    store.set(slot("withdraw.unlock", ctx.sender), unlock)
    event(ctx, "WithdrawalRequested", ctx.sender, amount, unlock)
    return unlock


def withdraw(ctx: Ctx, amount: int) -> None:
    """Pay ``amount`` of the sender's deposit back, once a withdrawal request's lock is over."""
    store = ctx.store(INFERENCE)
    balance = store.get(slot("deposit", ctx.sender))
    pending = store.get(slot("withdraw.amount", ctx.sender))
    unlock = store.get(slot("withdraw.unlock", ctx.sender))
    if pending == 0:
        raise InvalidState("no withdrawal requested: call requestWithdrawal first")
    if ctx.timestamp < unlock:
        raise InvalidState(f"the deposit is locked until {unlock} (open requests may still be charged)")
    if amount == 0 or amount > min(pending, balance):
        raise InsufficientFunds(f"cannot withdraw {amount}: {min(pending, balance)} is withdrawable")
    store.set(slot("withdraw.amount", ctx.sender), pending - amount)
    store.set(slot("deposit", ctx.sender), balance - amount)
    ctx.transfer(INFERENCE, ctx.sender, amount)
    event(ctx, "Withdrawn", ctx.sender, amount, balance - amount)


def submit_receipt(ctx: Ctx, request: dict[str, Any], user_signature: bytes, output_hash: bytes,
                   engine_profile: bytes, contribution_ids: list[int], weights_bp: list[int], fee: int,
                   validator: bytes, validator_signature: bytes) -> int:
    """Check and record an inference receipt, charge the user and hold the fee's split pending;
    returns its id."""
    store = ctx.store(INFERENCE)
    gov = ctx.store(GOVERNANCE)
    if len(contribution_ids) != len(weights_bp):
        raise InvalidArgument("contributionIds and weightsBp differ in length")
    if not contribution_ids:
        raise InvalidArgument("a receipt needs at least one attribution")
    if len(contribution_ids) > get_param(gov, "inference.max_attributions"):
        raise InvalidArgument("too many attributions")
    if request["chain_id"] != ctx.chain_id:
        raise InvalidArgument(f"request is for chain {request['chain_id']}, not {ctx.chain_id}")
    max_tokens = get_param(gov, "inference.max_tokens")
    if not 0 < request["max_tokens"] <= max_tokens:
        raise InvalidArgument(f"maxTokens must be within [1, {max_tokens}] (inference.max_tokens)")
    if engine_profile == ZERO32:
        raise InvalidArgument("engineProfile is zero: a receipt names the engine that ran it")
    if request["deadline"] < ctx.timestamp:
        raise InvalidState("request deadline has passed")
    sig_gas = get_param(gov, "gas.signature")
    ctx.meter.charge_extra(2 * sig_gas, "signature recovery")
    # The user signed the request for one validator: the receipt's validator must be that one.
    request = {**request, "validator": validator}
    request_hash = typed_data.request_digest(request, ctx.chain_id)
    try:
        signer = typed_data.recover(request_hash, user_signature)
    except BadSignature as exc:
        raise BadSignature(f"bad user signature: {exc.reason}") from None
    if signer != request["user"]:
        raise BadSignature("bad user signature: signer is not request.user")
    r_digest = typed_data.receipt_digest(request_hash, output_hash, engine_profile, contribution_ids,
                                         weights_bp, fee, validator, ctx.chain_id)
    try:
        v_signer = typed_data.recover(r_digest, validator_signature)
    except BadSignature as exc:
        raise BadSignature(f"bad validator signature: {exc.reason}") from None
    if v_signer != validator:
        raise BadSignature("bad validator signature: signer is not the validator")
    sstore = ctx.store(STAKING)
    if sstore.get(slot("stake", validator)) < get_param(gov, "staking.min_stake"):
        raise InvalidState("validator is not staked")
    if sstore.get(slot("jail.until", validator)):
        # a validator jailed for a lie, a double sign or missed verdicts serves nobody until unjail
        raise InvalidState("validator is jailed")
    nonce_slot = slot("nonce", request["user"], request["nonce"])
    if store.get(nonce_slot):
        raise InvalidState("request nonce already used")
    rstore = ctx.store(MODEL_REGISTRY)
    adapter_id = request["adapter_id"]
    if not registry._exists(rstore, adapter_id):
        raise NotFound(f"adapter {adapter_id} does not exist")
    if registry.Model.load_field(rstore, adapter_id, "kind") != registry.ADAPTER:
        raise InvalidArgument(f"model {adapter_id} is not an adapter")
    if registry.Model.load_field(rstore, adapter_id, "retired") and (
            ctx.timestamp >= registry.Model.load_field(rstore, adapter_id, "receipts_until")):
        raise InvalidState(f"adapter {adapter_id} is retired")
    governance.require_deployable(ctx, adapter_id)
    if request["commercial"] and (
            registry.Model.load_field(rstore, adapter_id, "license_terms") & licenses.NON_COMMERCIAL):
        raise InvalidState(f"adapter {adapter_id}'s licence allows no commercial use: the request declares "
                           "commercial use")
    if len(set(contribution_ids)) != len(contribution_ids):
        raise InvalidArgument("a contribution is attributed twice")
    path = registry.lineage_path(rstore, adapter_id)
    dstore = ctx.store(DATANETS)
    for cid in contribution_ids:
        if not registry.contribution_in_lineage(dstore, path, cid):
            raise InvalidArgument(f"contribution {cid} is not in the adapter's lineage")
    if sum(weights_bp) != BP:
        raise InvalidArgument(f"attribution weights sum to {sum(weights_bp)}, not {BP} bp")
    if fee > request["max_fee"]:
        raise InvalidArgument(f"fee {fee} exceeds the request's max fee {request['max_fee']}")
    dep_slot = slot("deposit", request["user"])
    balance = store.get(dep_slot)
    if balance < fee:
        raise InsufficientFunds(f"requester deposit {balance} is below the fee {fee}")
    store.set(nonce_slot, 1)
    store.set(dep_slot, balance - fee)
    receipt_id = store.incr(slot("receipt.count"))
    base_model_id = registry.Model.load_field(rstore, adapter_id, "base_model_id")
    release = ctx.block_number + get_param(gov, "inference.challenge_window")
    receipt = Receipt(
        id=receipt_id, user=request["user"], adapter_id=adapter_id, request_hash=request_hash,
        prompt_hash=request["prompt_hash"], output_hash=output_hash, max_tokens=request["max_tokens"],
        engine_profile=engine_profile,
        weights_hash=registry.Model.load_field(rstore, adapter_id, "weights_hash"),
        base_model_hash=registry.Model.load_field(rstore, base_model_id, "weights_hash"),
        fee=fee, validator=validator, submitter=ctx.sender, block_number=ctx.block_number,
        contribution_ids=tuple(contribution_ids), weights_bp=tuple(weights_bp), release_block=release,
        status=PENDING, split_bp=rewards.pack_shares(rewards.current_shares(gov)),
        treasury=get_param(gov, "treasury").to_bytes(20, "big"), commercial=bool(request["commercial"]),
        consent_withdrawn=registry.path_withdrawn(dstore, path))
    receipt.encode(store, receipt_id)
    store.set(slot("receipt.request", request_hash), receipt_id)
    event(ctx, "InferenceRecorded", receipt_id, adapter_id, request["user"], validator,
           request_hash, request["prompt_hash"], output_hash, fee, release)
    contributors = [Contribution.load_field(dstore, cid, "contributor") for cid in contribution_ids]
    authors = registry.lineage_authors(rstore, adapter_id)  # a merge's parents too (as payouts_of reads them)
    rewards.hold(ctx, receipt_id, fee, split_payouts(receipt, contributors, authors,
                                                     datanets.group_ids(dstore, contribution_ids)))
    return receipt_id


def _get_receipt(ctx: Ctx, receipt_id: int) -> Receipt:
    store = ctx.store(INFERENCE)
    if not 0 < receipt_id <= store.get(slot("receipt.count")):
        raise NotFound(f"receipt {receipt_id} does not exist")
    return Receipt.decode(store, receipt_id)


PRECOMPILE = Precompile("Inference", INFERENCE, {
    "deposit": deposit,
    "withdraw": withdraw,
    "requestWithdrawal": request_withdrawal,
    "submitReceipt": submit_receipt,
    "settle": settle,
    # The challenge game shares this precompile's ABI and storage but lives in challenges.py,
    # which reads this module's records: looked up at call time, so either module may load first.
    "challenge": lambda ctx, rid: challenges.challenge(ctx, rid),
    "submitVerdict": lambda ctx, cid, upheld: challenges.submit_verdict(ctx, cid, upheld),
    "resolve": lambda ctx, cid: challenges.resolve(ctx, cid),
    "getChallenge": lambda ctx, cid: challenges.get_challenge_record(ctx, cid),
    "challengeCount": lambda ctx: ctx.store(INFERENCE).get(slot("challenge.count")),
    "committeePower": lambda ctx, cid, a: ctx.store(INFERENCE).get(slot("challenge.seat", cid, a)),
    "verdictOf": lambda ctx, cid, a: ctx.store(INFERENCE).get(slot("challenge.verdict", cid, a)),
    "missedVerdicts": lambda ctx, a: ctx.store(INFERENCE).get(slot("missed", a)),
    "depositOf": lambda ctx, a: ctx.store(INFERENCE).get(slot("deposit", a)),
    "nonceUsed": lambda ctx, u, n: bool(ctx.store(INFERENCE).get(slot("nonce", u, n))),
    "getReceipt": _get_receipt,
    "receiptCount": lambda ctx: ctx.store(INFERENCE).get(slot("receipt.count")),
    "requestDigest": lambda ctx, req, v: typed_data.request_digest({**req, "validator": v}, ctx.chain_id),
    "receiptDigest": lambda ctx, rh, oh, ep, ids, ws, fee, v: typed_data.receipt_digest(
        rh, oh, ep, ids, ws, fee, v, ctx.chain_id),
})


# -- read helpers --

def get_receipt(state: Any, receipt_id: int) -> Receipt | None:
    store = Store(state, INFERENCE)
    if not 0 < receipt_id <= store.get(slot("receipt.count")):
        return None
    return Receipt.decode(store, receipt_id)


def get_inference(state: Any, receipt_id: int) -> dict[str, Any] | None:
    """Ancestry of an inference (for ``ai_getInferenceAncestry``): the receipt, each attributed
    contribution with its datanet, contributor and weight, and the adapter's whole lineage."""
    from .datanets import get_contribution

    r = get_receipt(state, receipt_id)
    if r is None:
        return None
    attributions = []
    for cid, w in zip(r.contribution_ids, r.weights_bp, strict=True):
        c = get_contribution(state, cid)
        attributions.append({"contributionId": cid, "weightBp": w,
                             "datanetId": c.datanet_id if c else None,
                             "contributor": c.to_json()["contributor"] if c else None,
                             "contentHash": "0x" + c.content_hash.hex() if c else None})
    return {"receipt": r.to_json(), "attributions": attributions,
            "lineage": registry.get_lineage(state, r.adapter_id)}


def get_deposit(state: Any, account: bytes) -> int:
    return Store(state, INFERENCE).get(slot("deposit", account))


def get_deposit_info(state: Any, account: bytes) -> dict[str, int]:
    """The deposit and its pending withdrawal (for ``ai_getDeposit``)."""
    store = Store(state, INFERENCE)
    return {"balance": store.get(slot("deposit", account)),
            "withdrawalPending": store.get(slot("withdraw.amount", account)),
            "unlockTime": store.get(slot("withdraw.unlock", account))}


def request_nonce_used(state: Any, user: bytes, nonce: int) -> bool:
    """Whether ``user``'s request nonce is spent (a receipt recorded it)."""
    return bool(Store(state, INFERENCE).get(slot("nonce", user, nonce)))


def receipt_id_for_request(state: Any, request_hash: bytes) -> int | None:
    rid = Store(state, INFERENCE).get(slot("receipt.request", request_hash))
    return rid or None


"""Inference receipts as records, and what happens to a recorded receipt's payouts: held while
its challenge window is open, then settled (claimable) or reversed (an upheld challenge).

Shared by the inference precompile (``inference.py``, which records receipts) and the challenge
game (``challenges.py``, which decides them), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import datanets, registry, rewards
from .abi import load as load_abi
from .addresses import DATANETS, INFERENCE, MODEL_REGISTRY
from .context import Ctx
from .datanets import Contribution
from .errors import InvalidArgument, NotFound
from .storage import Record, rfield, slot

ZERO32 = b"\x00" * 32
#: Receipt.status: payouts held until releaseBlock / an open challenge / payouts claimable /
#: an upheld challenge undid the payouts and refunded the fee.
PENDING, CHALLENGED, SETTLED, REVERSED = range(4)
#: Receipts one settle() call takes at most (each settles a bounded split).
MAX_SETTLE = 64


@dataclass(frozen=True)
class Receipt(Record):
    """A recorded inference: who asked, which adapter answered, what it said, who to credit."""

    NS = "receipt"
    id: int = rfield("uint", "receipt id (from 1)")
    user: bytes = rfield("address", "requester (signer of the request); charged the fee")
    adapter_id: int = rfield("uint", "adapter that served the request")
    request_hash: bytes = rfield("bytes32", "EIP-712 digest of the signed request")
    prompt_hash: bytes = rfield("bytes32", "keccak-256 of the prompt bytes (its blob id)")
    output_hash: bytes = rfield("bytes32", "keccak-256 of the output bytes (its blob id)")
    max_tokens: int = rfield("uint", "most tokens the request allowed (greedy decoding)")
    engine_profile: bytes = rfield("bytes32", "keccak-256 of the engine-profile blob the validator signed")
    weights_hash: bytes = rfield("bytes32", "the adapter's weights hash, copied at record time")
    base_model_hash: bytes = rfield("bytes32", "its base model's weights hash, copied at record time")
    fee: int = rfield("uint", "wei charged")
    validator: bytes = rfield("address", "validator that served and signed")
    submitter: bytes = rfield("address", "sender of the receipt transaction")
    block_number: int = rfield("uint", "block of recording")
    contribution_ids: tuple[int, ...] = rfield("uint[]", "attributed contributions")
    weights_bp: tuple[int, ...] = rfield("uint[]", "weight of each, basis points (sum 10000)")
    release_block: int = rfield("uint", "first block its payouts may settle in; challenges only before it")
    status: int = rfield("uint", "0 pending, 1 challenged, 2 settled, 3 reversed")
    challenge_id: int = rfield("uint", "its challenge (0: never challenged)")
    split_bp: int = rfield("uint", "reward shares at record time (rewards.pack_shares)")
    treasury: bytes = rfield("address", "treasury at record time (credited its share when it settles)")
    commercial: bool = rfield("bool", "the use the request declared: commercial or not")
    consent_withdrawn: bool = rfield("bool", "at record time, a model of the adapter's lineage had trained on a "
                                     "contribution whose contributor withdrew consent")


def event(ctx: Ctx, name: str, *args: Any) -> None:
    """Emit the inference precompile's event ``name``."""
    topics, data = load_abi("Inference").events[name].encode(*args)
    ctx.emit(INFERENCE, topics, data)


def split_payouts(r: Receipt, contributors: list[bytes], authors: list[bytes],
                  groups: list[int] | None = None) -> list[rewards.Payout]:
    """The receipt's split: its fee, weights and the shares and treasury it was recorded with;
    ``authors`` are the lineage's, the adapter's author first; ``groups`` the contributions'
    near-duplicate groups (``datanets.group_ids``: fixed when each was contributed, so the split
    held, released or revoked is the same)."""
    split = rewards.split_fee(r.fee, list(r.weights_bp), rewards.unpack_shares(r.split_bp),
                              len(authors) - 1, groups)
    return rewards.payouts(split, contributors, authors[0], authors[1:], r.validator, r.treasury)


def payouts_of(ctx: Ctx, r: Receipt) -> list[rewards.Payout]:
    """The split a receipt holds, recomputed from immutable records (contributors, lineage
    authors) and the receipt itself: bounded by ``inference.max_attributions`` contributor reads
    and ``registry.max_depth + 1`` lineage steps."""
    dstore = ctx.store(DATANETS)
    contributors = [Contribution.load_field(dstore, cid, "contributor") for cid in r.contribution_ids]
    return split_payouts(r, contributors, registry.lineage_authors(ctx.store(MODEL_REGISTRY), r.adapter_id),
                         datanets.group_ids(dstore, list(r.contribution_ids)))


def release_receipt(ctx: Ctx, r: Receipt) -> None:
    """The receipt stands: its split becomes claimable."""
    Receipt.store_field(ctx.store(INFERENCE), r.id, "status", SETTLED)
    rewards.release(ctx, r.id, r.fee, payouts_of(ctx, r),
                    paused=lambda who: datanets.penalty_paused(ctx, who), treasury=r.treasury)
    event(ctx, "ReceiptSettled", r.id, r.fee)


def reverse_receipt(ctx: Ctx, r: Receipt) -> None:
    """The receipt lied: its split is undone and the fee goes back to the user's deposit."""
    store = ctx.store(INFERENCE)
    Receipt.store_field(store, r.id, "status", REVERSED)
    rewards.revoke(ctx, r.id, r.fee, payouts_of(ctx, r))
    store.incr(slot("deposit", r.user), r.fee)
    event(ctx, "ReceiptReversed", r.id, r.user, r.fee)


def settle(ctx: Ctx, receipt_ids: list[int]) -> int:
    """Settle each listed receipt that is pending and whose challenge window is over; returns
    how many settled. Receipts challenged, settled, reversed or still in their window are
    skipped, so a list read a block ago does not fail; an id that does not exist is refused."""
    if len(receipt_ids) > MAX_SETTLE:
        raise InvalidArgument(f"settle takes at most {MAX_SETTLE} receipts")
    store = ctx.store(INFERENCE)
    count = store.get(slot("receipt.count"))
    settled = 0
    for rid in receipt_ids:
        if not 0 < rid <= count:
            raise NotFound(f"receipt {rid} does not exist")
        if Receipt.load_field(store, rid, "status") != PENDING:
            continue
        if ctx.block_number < Receipt.load_field(store, rid, "release_block"):
            continue
        release_receipt(ctx, Receipt.decode(store, rid))
        settled += 1
    return settled



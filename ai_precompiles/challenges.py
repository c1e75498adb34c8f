"""The challenge game of the inference precompile: a receipt that lies costs the liar.

A receipt's payouts stay pending until its ``releaseBlock`` (``inference.challenge_window``
blocks after it is recorded). Before that block anyone may challenge it, bonding exactly
``inference.challenge_bond`` wei. A committee is drawn at once from the current epoch's
validator set; its members re-run the receipt on their sidecars (from chain and blobs alone) and
each submits a verdict as a transaction by the challenge's deadline. More than 2/3 of the
committee's power decides, at the verdict that crosses it:

- **upheld** (the receipt lies): the accused validator is slashed ``inference.fraud_slash_bp`` of
  what it has staked and unbonding, and jailed (staking's own slash and jail); the receipt's
  payouts are reversed and its fee returns to the user's deposit; the challenger gets its bond
  back plus ``inference.challenger_reward_bp`` of the slash, the treasury the rest of the slash.
- **rejected**: ``inference.bond_to_accused_bp`` of the bond goes to the accused, the rest to the
  treasury; the receipt settles.
- **undecided** (neither side past 2/3 when the deadline is over): anyone may :func:`resolve` it;
  the bond returns to the challenger and the receipt settles. Each member that gave no verdict
  has one more missed verdict; at ``inference.max_missed_verdicts`` it is jailed (without a
  slash) and its count restarts.

State machine (receipt status / challenge status; who may call):

    receipt PENDING  --settle(), anyone, block >= releaseBlock-->               SETTLED
    receipt PENDING  --challenge(), anyone with the bond, block < releaseBlock--> CHALLENGED
                     (challenge OPEN, committee drawn, deadline = block + verdict_window)
    challenge OPEN   --submitVerdict(), a member, once, block <= deadline-->       OPEN
    challenge OPEN   --the verdict that takes upheld power past 2/3-->  UPHELD    (receipt REVERSED)
    challenge OPEN   --the verdict that takes rejected power past 2/3--> REJECTED (receipt SETTLED)
    challenge OPEN   --resolve(), anyone, block > deadline-->           UNDECIDED (receipt SETTLED)

The committee: the validators of the current epoch (``staking.validator_set``) without the
accused, the challenger and any jailed validator, sampled stake-weighted without replacement,
``inference.committee_size`` of them (all of them when fewer are eligible); each member keeps its
epoch power as its weight. The draw is a pure function of the eligible set and the seed
``keccak256(enc("committee") ++ enc(challengeId) ++ requestHash)``: the same on every node, fixed
before anyone knows it matters. A challenger can move it only by making other challenges first
(each costing a bond, lost when rejected); when every eligible validator sits on the committee
there is nothing to move.

Bounds: a challenge reads the validator set once (a walk of the candidate list, at most
``2 * staking.max_candidates`` entries) and writes one seat per member (at most
``inference.committee_size``); a verdict does constant work unless it decides; deciding or
resolving walks the committee once and the receipt's split once (at most
``inference.max_attributions`` contributions and ``registry.max_depth + 1`` lineage steps). No
step reads a list that others can grow without bound.

Storage (account ``INFERENCE``): ``slot("challenge.count")``, :class:`Challenge` records,
``slot("challenge.seat", id, member)`` (the member's power; 0 off the committee), ``slot("challenge.verdict", id,
member)`` (1 upheld, 2 rejected), ``slot("missed", validator)`` (verdicts missed since its last
jail), ``slot("bond.total")`` (bonds of open challenges, held in this account's balance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from . import receipts, rewards, staking
from .abi import load as load_abi
from .addresses import GOVERNANCE, INFERENCE, STAKING
from .context import Ctx
from .errors import InvalidArgument, InvalidState, NotFound, Unauthorized
from .params import BP, get_param
from .storage import Record, Store, enc, rfield, slot

#: Challenge.status
OPEN, UPHELD, REJECTED, UNDECIDED = 1, 2, 3, 4
#: A member's verdict, as stored at ``slot("challenge.verdict", id, member)``.
VERDICT_UPHELD, VERDICT_REJECTED = 1, 2
OUTCOMES = {OPEN: "open", UPHELD: "upheld", REJECTED: "rejected", UNDECIDED: "undecided"}


@dataclass(frozen=True)
class Challenge(Record):
    """A challenge of one receipt and the committee that judges it."""

    NS = "challenge"
    id: int = rfield("uint", "challenge id (from 1)")
    receipt_id: int = rfield("uint", "receipt challenged")
    challenger: bytes = rfield("address", "who challenged (and bonded)")
    accused: bytes = rfield("address", "the receipt's validator")
    bond: int = rfield("uint", "wei bonded")
    opened_block: int = rfield("uint", "block of the challenge")
    deadline: int = rfield("uint", "last block that accepts verdicts")
    epoch: int = rfield("uint", "epoch whose validator set the committee was drawn from")
    members: tuple[bytes, ...] = rfield("address[]", "the committee, in draw order (each one's power: "
                                        "slot(\"challenge.seat\", id, member))")
    total_power: int = rfield("uint", "the committee's power")
    upheld_power: int = rfield("uint", "power of the verdicts 'the receipt lies'")
    rejected_power: int = rfield("uint", "power of the verdicts 'the receipt is right'")
    status: int = rfield("uint", "1 open, 2 upheld, 3 rejected, 4 undecided")
    resolved_block: int = rfield("uint", "block of the decision (0 while open)")
    slashed: int = rfield("uint", "wei slashed from the accused (upheld only)")


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = load_abi("Inference").events[name].encode(*args)
    ctx.emit(INFERENCE, topics, data)


def draw_committee(eligible: list[tuple[bytes, int]], size: int, seed: bytes) -> list[tuple[bytes, int]]:
    """``size`` members of ``eligible`` (address, power), sampled stake-weighted without
    replacement: draw ``j`` picks the member whose cumulative power interval holds
    ``keccak256(seed ++ j) mod`` (the power left). Pure; ``len(eligible) * size`` steps."""
    pool = list(eligible)
    chosen: list[tuple[bytes, int]] = []
    for j in range(min(size, len(pool))):
        left = sum(p for _, p in pool)
        r = int.from_bytes(keccak(seed + j.to_bytes(32, "big")), "big") % left
        acc = 0
        for i, (_, p) in enumerate(pool):
            acc += p
            if r < acc:
                chosen.append(pool.pop(i))
                break
    return chosen


def _challenge(store: Store, challenge_id: int) -> None:
    if not 0 < challenge_id <= store.get(slot("challenge.count")):
        raise NotFound(f"challenge {challenge_id} does not exist")


def challenge(ctx: Ctx, receipt_id: int) -> int:
    """Challenge a pending receipt within its window, bonding the call's value; returns the
    challenge id. Refused: a value other than ``inference.challenge_bond``, a receipt that does
    not exist, one challenged already, settled or reversed, a window that is over, and a set
    with no validator to judge (only the accused, the challenger or jailed ones)."""
    store = ctx.store(INFERENCE)
    gov = ctx.store(GOVERNANCE)
    bond = get_param(gov, "inference.challenge_bond")
    if ctx.value != bond:
        raise InvalidArgument(f"a challenge bonds exactly {bond} wei (inference.challenge_bond), not {ctx.value}")
    if not 0 < receipt_id <= store.get(slot("receipt.count")):
        raise NotFound(f"receipt {receipt_id} does not exist")
    Receipt = receipts.Receipt
    status = Receipt.load_field(store, receipt_id, "status")
    if status == receipts.CHALLENGED:
        raise InvalidState(f"receipt {receipt_id} is challenged already "
                           f"(challenge {Receipt.load_field(store, receipt_id, 'challenge_id')})")
    if status != receipts.PENDING:
        raise InvalidState(f"receipt {receipt_id} is {'settled' if status == receipts.SETTLED else 'reversed'}")
    release = Receipt.load_field(store, receipt_id, "release_block")
    if ctx.block_number >= release:
        raise InvalidState(f"the challenge window of receipt {receipt_id} closed at block {release}")
    accused = Receipt.load_field(store, receipt_id, "validator")
    sstore = ctx.store(STAKING)
    epoch = staking.epoch_of(sstore, ctx.block_number)
    eligible = [(a, p) for a, p in staking.validator_set(sstore, gov, epoch)
                if a not in (accused, ctx.sender) and not sstore.get(slot("jail.until", a))]
    if not eligible:
        raise InvalidState("no validator but the accused and the challenger can judge this receipt")
    challenge_id = store.incr(slot("challenge.count"))
    seed = enc("committee") + enc(challenge_id) + Receipt.load_field(store, receipt_id, "request_hash")
    committee = draw_committee(eligible, get_param(gov, "inference.committee_size"), seed)
    total = sum(p for _, p in committee)
    deadline = ctx.block_number + get_param(gov, "inference.verdict_window")
    Challenge(id=challenge_id, receipt_id=receipt_id, challenger=ctx.sender, accused=accused,
              bond=bond, opened_block=ctx.block_number, deadline=deadline, epoch=epoch,
              members=tuple(a for a, _ in committee), total_power=total,
              status=OPEN).encode(store, challenge_id)
    for member, power in committee:
        store.set(slot("challenge.seat", challenge_id, member), power)  # never 0: power >= min_stake
        _event(ctx, "CommitteeMember", challenge_id, member, power)
    Receipt.store_field(store, receipt_id, "status", receipts.CHALLENGED)
    Receipt.store_field(store, receipt_id, "challenge_id", challenge_id)
    store.incr(slot("bond.total"), bond)
    _event(ctx, "ChallengeOpened", challenge_id, receipt_id, accused, ctx.sender, bond, deadline, total)
    return challenge_id


def submit_verdict(ctx: Ctx, challenge_id: int, upheld: bool) -> None:
    """A committee member's verdict, once, by the deadline; the verdict that takes one side's
    power past 2/3 of the committee's decides the challenge at once."""
    store = ctx.store(INFERENCE)
    _challenge(store, challenge_id)
    if Challenge.load_field(store, challenge_id, "status") != OPEN:
        raise InvalidState(f"challenge {challenge_id} is decided already")
    deadline = Challenge.load_field(store, challenge_id, "deadline")
    if ctx.block_number > deadline:
        raise InvalidState(f"the verdicts of challenge {challenge_id} closed at block {deadline}")
    power = store.get(slot("challenge.seat", challenge_id, ctx.sender))
    if not power:
        raise Unauthorized(f"0x{ctx.sender.hex()} is not on the committee of challenge {challenge_id}")
    verdict_slot = slot("challenge.verdict", challenge_id, ctx.sender)
    if store.get(verdict_slot):
        raise InvalidState(f"0x{ctx.sender.hex()} gave its verdict on challenge {challenge_id} already")
    store.set(verdict_slot, VERDICT_UPHELD if upheld else VERDICT_REJECTED)
    side = "upheld_power" if upheld else "rejected_power"
    weight = Challenge.load_field(store, challenge_id, side) + power
    Challenge.store_field(store, challenge_id, side, weight)
    _event(ctx, "VerdictSubmitted", challenge_id, ctx.sender, upheld, power)
    if weight * 3 > Challenge.load_field(store, challenge_id, "total_power") * 2:
        _decide(ctx, challenge_id, UPHELD if upheld else REJECTED)


def resolve(ctx: Ctx, challenge_id: int) -> None:
    """Close an open challenge after its deadline as undecided (anyone may call): the bond
    returns, the receipt settles, and each member without a verdict has missed one."""
    store = ctx.store(INFERENCE)
    _challenge(store, challenge_id)
    if Challenge.load_field(store, challenge_id, "status") != OPEN:
        raise InvalidState(f"challenge {challenge_id} is decided already")
    deadline = Challenge.load_field(store, challenge_id, "deadline")
    if ctx.block_number <= deadline:
        raise InvalidState(f"challenge {challenge_id} takes verdicts until block {deadline}")
    threshold = get_param(ctx.store(GOVERNANCE), "inference.max_missed_verdicts")
    for word in Challenge.list_field(store, challenge_id, "members"):
        member = word.to_bytes(20, "big")
        if store.get(slot("challenge.verdict", challenge_id, member)):
            continue
        missed = store.incr(slot("missed", member))
        _event(ctx, "VerdictMissed", member, challenge_id, missed)
        if missed >= threshold:
            store.set(slot("missed", member), 0)
            staking.jail(ctx, member, ctx.block_number)
    _decide(ctx, challenge_id, UNDECIDED)


def _decide(ctx: Ctx, challenge_id: int, outcome: int) -> None:
    """Apply the outcome: move the bond (and a slash), settle or reverse the receipt."""
    store = ctx.store(INFERENCE)
    gov = ctx.store(GOVERNANCE)
    ch = Challenge.decode(store, challenge_id)
    receipt = receipts.Receipt.decode(store, ch.receipt_id)
    Challenge.store_field(store, challenge_id, "status", outcome)
    Challenge.store_field(store, challenge_id, "resolved_block", ctx.block_number)
    store.set(slot("bond.total"), store.get(slot("bond.total")) - ch.bond)
    treasury = get_param(gov, "treasury").to_bytes(20, "big")
    slashed = 0
    if outcome == UPHELD:
        sstore = ctx.store(STAKING)
        # What it holds now, stake and unbonding: a liar cannot shrink the base by timing its
        # stake within an epoch, and an unstake after the lie is still reached.
        held = sstore.get(slot("stake", ch.accused)) + sstore.get(slot("unbond.amount", ch.accused))
        slashed = staking.slash_and_jail(ctx, ch.accused, held * get_param(gov, "inference.fraud_slash_bp") // BP,
                                         receipt.block_number)
        reward = slashed * get_param(gov, "inference.challenger_reward_bp") // BP
        rewards.pay(ctx, STAKING, ch.challenger, reward, rewards.CHALLENGER)
        rewards.pay(ctx, STAKING, treasury, slashed - reward, rewards.TREASURY)
        rewards.pay(ctx, INFERENCE, ch.challenger, ch.bond, rewards.CHALLENGER)
        Challenge.store_field(store, challenge_id, "slashed", slashed)
        receipts.reverse_receipt(ctx, receipt)
    elif outcome == REJECTED:
        to_accused = ch.bond * get_param(gov, "inference.bond_to_accused_bp") // BP
        rewards.pay(ctx, INFERENCE, ch.accused, to_accused, rewards.VALIDATOR)
        rewards.pay(ctx, INFERENCE, treasury, ch.bond - to_accused, rewards.TREASURY)
        receipts.release_receipt(ctx, receipt)
    else:
        rewards.pay(ctx, INFERENCE, ch.challenger, ch.bond, rewards.CHALLENGER)
        receipts.release_receipt(ctx, receipt)
    _event(ctx, "ChallengeResolved", challenge_id, ch.receipt_id, outcome, slashed)


def get_challenge_record(ctx: Ctx, challenge_id: int) -> Challenge:
    store = ctx.store(INFERENCE)
    _challenge(store, challenge_id)
    return Challenge.decode(store, challenge_id)


# -- read helpers (read-only StateAPI, no gas) --

#: Challenges one paged read returns at most.
MAX_PAGE = 100


def get_challenge(state: Any, challenge_id: int) -> dict[str, Any] | None:
    """A challenge with each member's verdict (``none``, ``upheld``, ``rejected``) and ``owing``:
    the members that still owe a verdict (an open challenge's members without one; its deadline
    says until when they may give it)."""
    store = Store(state, INFERENCE)
    if not 0 < challenge_id <= store.get(slot("challenge.count")):
        return None
    ch = Challenge.decode(store, challenge_id)
    out = ch.to_json()
    out["outcome"] = OUTCOMES[ch.status]
    verdicts: list[dict[str, Any]] = []
    owing: list[str] = []
    names = {0: "none", VERDICT_UPHELD: "upheld", VERDICT_REJECTED: "rejected"}
    for member, shown in zip(ch.members, out["members"], strict=True):
        power = store.get(slot("challenge.seat", challenge_id, member))
        v = store.get(slot("challenge.verdict", challenge_id, member))
        verdicts.append({"member": shown, "power": power, "verdict": names[v]})
        if ch.status == OPEN and v == 0:
            owing.append(shown)
    out["verdicts"] = verdicts
    out["owing"] = owing
    return out


def list_challenges(state: Any, start: int = 1, limit: int = MAX_PAGE,
                    open_only: bool = False) -> dict[str, Any]:
    """Challenges ``start .. start + limit - 1`` (at most :data:`MAX_PAGE`), oldest first, as
    :func:`get_challenge`; ``open_only`` keeps the open ones. ``next`` is where the next page
    starts (``None`` past the last challenge)."""
    store = Store(state, INFERENCE)
    count = store.get(slot("challenge.count"))
    start = max(1, start)
    end = min(count, start + min(limit, MAX_PAGE) - 1)
    items = []
    for cid in range(start, end + 1):
        if open_only and Challenge.load_field(store, cid, "status") != OPEN:
            continue
        items.append(get_challenge(state, cid))
    return {"total": count, "challenges": items, "next": end + 1 if end < count else None}


def owed_verdicts(state: Any, member: bytes, start: int = 1, limit: int = MAX_PAGE) -> dict[str, Any]:
    """Open challenges among ``start .. start + limit - 1`` on whose committee ``member`` sits
    without having given its verdict: what a validator's node must re-run and judge (with each
    one's receipt and deadline). ``next`` as in :func:`list_challenges`."""
    store = Store(state, INFERENCE)
    count = store.get(slot("challenge.count"))
    start = max(1, start)
    end = min(count, start + min(limit, MAX_PAGE) - 1)
    owed = []
    for cid in range(start, end + 1):
        if (Challenge.load_field(store, cid, "status") == OPEN
                and store.get(slot("challenge.seat", cid, member))
                and not store.get(slot("challenge.verdict", cid, member))):
            owed.append({"challengeId": cid, "receiptId": Challenge.load_field(store, cid, "receipt_id"),
                         "deadline": Challenge.load_field(store, cid, "deadline")})
    return {"owed": owed, "next": end + 1 if end < count else None}


def challenge_count(state: Any) -> int:
    """Challenges opened so far (ids run from 1)."""
    return Store(state, INFERENCE).get(slot("challenge.count"))


def get_missed_verdicts(state: Any, member: bytes) -> int:
    return Store(state, INFERENCE).get(slot("missed", member))


def get_bonds(state: Any) -> int:
    """Wei bonded by open challenges (held in the inference account beside the deposits)."""
    return Store(state, INFERENCE).get(slot("bond.total"))

"""Staking precompile: stakes, unbonding, epochs and the validator set per epoch; its storage.

Rules:

- A stake change made in epoch ``e`` takes effect at epoch ``e + 1`` (a checkpoint
  ``(e + 1, new_stake)``), so the validator set and voting power of an epoch are fixed before it
  starts: the BFT layer reads them with :func:`get_validator_set`.
- ``unstake`` lowers the stake at once (effective next epoch) and parks the amount until
  ``block + staking.unbonding_blocks``; ``withdrawUnbonded`` then pays it.
- Epochs: a list of anchors ``(start block, first epoch, length)``; ``epochOf(b)`` uses the last
  anchor at or before ``b``. Governance changing ``staking.epoch_length`` appends an anchor at
  the next epoch boundary, so epoch numbers never jump.
- The set of an epoch: accounts whose power in it is at least ``staking.min_stake``, largest
  first (ties by address), at most ``staking.max_validators``.

Storage (account ``STAKING``): ``slot("stake", a)`` current stake; arrays
``slot("ckpt.epoch", a)`` / ``slot("ckpt.amount", a)`` checkpoints; array ``slot("stakers")`` and
``slot("staker.known", a)``; ``slot("unbond.amount", a)``, ``slot("unbond.release", a)``; arrays
``slot("anchor.block")``, ``slot("anchor.epoch")``, ``slot("anchor.length")``.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_canonical_address

from .addresses import GOVERNANCE, STAKING
from .context import Ctx
from .dispatch import Precompile
from .errors import InsufficientFunds, InvalidArgument, InvalidState
from .params import get_param
from .storage import Array, Store, data_slot, slot


def _event(ctx: Ctx, name: str, *args: Any) -> None:
    topics, data = PRECOMPILE.abi.events[name].encode(*args)
    ctx.emit(STAKING, topics, data)


def epoch_of(store: Store, block: int) -> int:
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    for i in range(len(blocks) - 1, -1, -1):
        start = blocks.get(i)
        if block >= start:
            return epochs.get(i) + (block - start) // max(1, lengths.get(i))
    return 0


def epoch_start(store: Store, epoch: int) -> int:
    """First block of ``epoch``."""
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    for i in range(len(blocks) - 1, -1, -1):
        if epoch >= epochs.get(i):
            return blocks.get(i) + (epoch - epochs.get(i)) * lengths.get(i)
    return 0


def on_epoch_length_changed(ctx: Ctx, new_length: int) -> None:
    """Governance hook: the new length applies from the next epoch boundary."""
    store = ctx.store(STAKING)
    nxt = epoch_of(store, ctx.block_number) + 1
    start = epoch_start(store, nxt)
    blocks, epochs, lengths = (Array(store, slot(k)) for k in
                               ("anchor.block", "anchor.epoch", "anchor.length"))
    if blocks.get(len(blocks) - 1) == start:  # a change already pending for that boundary
        lengths.set(len(lengths) - 1, new_length)
        return
    blocks.append(start)
    epochs.append(nxt)
    lengths.append(new_length)


def power_at(store: Store, account: bytes, epoch: int) -> int:
    """Stake of ``account`` effective in ``epoch``."""
    ep, amt = Array(store, slot("ckpt.epoch", account)), Array(store, slot("ckpt.amount", account))
    for i in range(len(ep) - 1, -1, -1):
        if ep.get(i) <= epoch:
            return amt.get(i)
    return 0


def _set_stake(ctx: Ctx, store: Store, account: bytes, new: int) -> int:
    store.set(slot("stake", account), new)
    effective = epoch_of(store, ctx.block_number) + 1
    ep, amt = Array(store, slot("ckpt.epoch", account)), Array(store, slot("ckpt.amount", account))
    if len(ep) and ep.get(len(ep) - 1) == effective:
        amt.set(len(amt) - 1, new)
    else:
        ep.append(effective)
        amt.append(new)
    if not store.get(slot("staker.known", account)):
        store.set(slot("staker.known", account), 1)
        Array(store, slot("stakers")).append(int.from_bytes(account, "big"))
    return effective


def stake(ctx: Ctx) -> None:
    """Add the call's value to the sender's stake (effective next epoch)."""
    if ctx.value == 0:
        raise InvalidArgument("stake requires a value")
    store = ctx.store(STAKING)
    new = store.get(slot("stake", ctx.sender)) + ctx.value
    effective = _set_stake(ctx, store, ctx.sender, new)
    _event(ctx, "Staked", ctx.sender, ctx.value, new, effective)


def unstake(ctx: Ctx, amount: int) -> None:
    """Start unbonding ``amount`` of the sender's stake."""
    store = ctx.store(STAKING)
    current = store.get(slot("stake", ctx.sender))
    if amount == 0 or amount > current:
        raise InsufficientFunds(f"cannot unstake {amount}: stake is {current}")
    _set_stake(ctx, store, ctx.sender, current - amount)
    release = ctx.block_number + get_param(ctx.store(GOVERNANCE), "staking.unbonding_blocks")
    store.incr(slot("unbond.amount", ctx.sender), amount)
    store.set(slot("unbond.release", ctx.sender), release)
    _event(ctx, "Unstaked", ctx.sender, amount, current - amount, release)


def withdraw_unbonded(ctx: Ctx) -> int:
    """Pay the sender's unbonded amount once its release block is reached."""
    store = ctx.store(STAKING)
    amount = store.get(slot("unbond.amount", ctx.sender))
    if amount == 0:
        raise InsufficientFunds("nothing unbonding")
    if ctx.block_number < store.get(slot("unbond.release", ctx.sender)):
        raise InvalidState("unbonding period not over")
    store.set(slot("unbond.amount", ctx.sender), 0)
    store.set(slot("unbond.release", ctx.sender), 0)
    ctx.transfer(STAKING, ctx.sender, amount)
    _event(ctx, "UnbondedWithdrawn", ctx.sender, amount)
    return amount


def validator_set(store: Store, gov: Store | Any, epoch: int) -> list[tuple[bytes, int]]:
    from .params import get_param as gp

    min_stake = gp(gov, "staking.min_stake")
    cap = gp(gov, "staking.max_validators")
    out = []
    for word in Array(store, slot("stakers")):
        a = word.to_bytes(20, "big")
        p = power_at(store, a, epoch)
        if p >= min_stake:
            out.append((a, p))
    out.sort(key=lambda t: (-t[1], t[0]))
    return out[:cap]


def total_power(store: Store, epoch: int) -> int:
    """Sum of every staker's power in ``epoch`` (governance quorum base)."""
    return sum(power_at(store, w.to_bytes(20, "big"), epoch) for w in Array(store, slot("stakers")))


def _validator_set_abi(ctx: Ctx, epoch: int) -> tuple[list[bytes], list[int]]:
    vs = validator_set(ctx.store(STAKING), ctx.store(GOVERNANCE), epoch)
    return [a for a, _ in vs], [p for _, p in vs]


PRECOMPILE = Precompile("Staking", STAKING, {
    "stake": stake,
    "unstake": unstake,
    "withdrawUnbonded": withdraw_unbonded,
    "stakeOf": lambda ctx, a: ctx.store(STAKING).get(slot("stake", a)),
    "unbondingOf": lambda ctx, a: (ctx.store(STAKING).get(slot("unbond.amount", a)),
                                   ctx.store(STAKING).get(slot("unbond.release", a))),
    "currentEpoch": lambda ctx: epoch_of(ctx.store(STAKING), ctx.block_number),
    "epochOf": lambda ctx, b: epoch_of(ctx.store(STAKING), b),
    "votingPower": lambda ctx, a, e: power_at(ctx.store(STAKING), a, e),
    "getValidatorSet": _validator_set_abi,
})


def genesis_storage(values: dict[str, int], validators: dict[bytes, int] | None = None) -> dict[int, int]:
    """Initial staking storage: the first epoch anchor and any genesis validators (epoch 0)."""
    st: dict[int, int] = {}

    def push(key: int, items: list[int]) -> None:
        st[key] = len(items)
        for i, v in enumerate(items):
            st[data_slot(key) + i] = v

    push(slot("anchor.block"), [0])
    push(slot("anchor.epoch"), [0])
    push(slot("anchor.length"), [values["staking.epoch_length"]])
    stakers = []
    for addr, amount in (validators or {}).items():
        st[slot("stake", addr)] = amount
        push(slot("ckpt.epoch", addr), [0])
        push(slot("ckpt.amount", addr), [amount])
        st[slot("staker.known", addr)] = 1
        stakers.append(int.from_bytes(addr, "big"))
    push(slot("stakers"), stakers)
    return {k: v for k, v in st.items() if v}


def parse_validators(raw: Any) -> dict[bytes, int]:
    """``{"0xaddr": stake_wei}`` (genesis file form) -> ``{address: stake}``."""
    return {to_canonical_address(a): int(v) for a, v in (raw or {}).items()}


# -- read helpers --

def get_validator_set(state: Any, epoch: int | None = None, block: int | None = None,
                      ) -> list[tuple[bytes, int]]:
    """Validators and voting power of ``epoch`` (or of the epoch containing ``block``; default:
    the epoch of the state's block). For the BFT layer: the set is fixed once the epoch starts."""
    store = Store(state, STAKING)
    if epoch is None:
        epoch = epoch_of(store, int(state.block_number if block is None else block))
    return validator_set(store, state, epoch)


def get_epoch(state: Any, block: int | None = None) -> int:
    return epoch_of(Store(state, STAKING), int(state.block_number if block is None else block))


def get_stake(state: Any, account: bytes) -> dict[str, int]:
    store = Store(state, STAKING)
    return {"stake": store.get(slot("stake", account)),
            "unbonding": store.get(slot("unbond.amount", account)),
            "releaseBlock": store.get(slot("unbond.release", account))}

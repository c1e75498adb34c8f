"""The validator set of a height, and CometBFT's proposer-priority rotation over it.

Port of CometBFT's ``types/validator_set.go`` (``IncrementProposerPriority``,
``RescalePriorities``, ``shiftByAvgProposerPriority``, ``UpdateWithChangeSet``): a weighted
round robin in which each validator proposes in proportion to its voting power. A set is an
immutable value; every operation returns a new one, so the proposer of ``(h, r)`` is a pure
function of the set of ``h`` and ``r``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import rlp
from eth_hash.auto import keccak

from genesis import POWER_UNIT

#: Priorities are rescaled so that max - min stays within this many times the total power.
PRIORITY_WINDOW_SIZE_FACTOR = 2
#: CometBFT caps the total voting power so that priorities fit an int64 (MaxInt64 / 8).
MAX_TOTAL_VOTING_POWER = (2**63 - 1) // 8


class ValidatorSetError(ValueError):
    """A validator set that cannot be built: empty, duplicate address, non-positive power, too much power."""


@dataclass(frozen=True)
class Validator:
    """One validator of a set."""

    address: bytes
    """20-byte signing address."""
    power: int
    """Voting power (> 0)."""
    priority: int = 0
    """Proposer priority: grows by ``power`` each increment, drops by the total when it proposes."""


def _trunc_div(a: int, b: int) -> int:
    """Go's int64 division (truncates toward zero), which CometBFT's rescale uses."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass(frozen=True)
class ValidatorSet:
    """Validators of one height, ordered by address, with their proposer priorities."""

    validators: tuple[Validator, ...]
    """The validators, sorted by address."""
    proposer: bytes
    """Address of the proposer for the height/round this set is at."""

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def new(cls, powers: Iterable[tuple[bytes, int]] | Mapping[bytes, int]) -> ValidatorSet:
        """A fresh set (genesis, or a set with no history): CometBFT's ``NewValidatorSet``."""
        items = list(powers.items()) if isinstance(powers, Mapping) else list(powers)
        empty = cls((), b"")
        return empty._update_with_change_set(items, allow_deletes=False)._increment(1)

    @classmethod
    def from_stakes(cls, stakes: Iterable[tuple[bytes, int]]) -> ValidatorSet:
        """A fresh set from the staking precompile's ``(address, stake wei)`` list."""
        return cls.new([(a, s // POWER_UNIT) for a, s in stakes if s // POWER_UNIT > 0])

    def update(self, powers: Iterable[tuple[bytes, int]] | Mapping[bytes, int]) -> ValidatorSet:
        """The set of the next epoch: ``powers`` is its whole membership. Continuing validators keep
        their priority, new ones start behind (-1.125 · total), missing ones leave."""
        new = dict(powers.items()) if isinstance(powers, Mapping) else dict(powers)
        changes = [(a, p) for a, p in new.items() if self.power_of(a) != p]
        changes += [(v.address, 0) for v in self.validators if v.address not in new]
        if not changes:
            return self
        return self._update_with_change_set(changes, allow_deletes=True)._with_proposer()

    def next_height(self, epoch_powers: Mapping[bytes, int] | None = None) -> ValidatorSet:
        """The set of the next height: ``epoch_powers`` (the staking precompile's set of the epoch
        the next height starts, or None inside an epoch) applied, then one proposer turn."""
        base = self.update(epoch_powers) if epoch_powers is not None else self
        return base.increment_proposer_priority(1)

    def _update_with_change_set(self, changes: list[tuple[bytes, int]], allow_deletes: bool) -> ValidatorSet:
        seen: set[bytes] = set()
        for address, power in changes:
            if len(address) == 0 or address in seen:
                raise ValidatorSetError(f"duplicate or empty address 0x{address.hex()}")
            seen.add(address)
            if power < 0 or (power == 0 and not allow_deletes):
                raise ValidatorSetError(f"voting power of 0x{address.hex()} must be positive")
        current = {v.address: v for v in self.validators}
        updates = {a: p for a, p in changes if p > 0}
        deletes = {a for a, p in changes if p == 0}
        if deletes - current.keys():
            raise ValidatorSetError("removing a validator that is not in the set")
        # CometBFT: the power after updates and before removals sizes the new validators' start.
        total_before_removals = sum(v.power for v in current.values()) + sum(
            p - (current[a].power if a in current else 0) for a, p in updates.items())
        if total_before_removals > MAX_TOTAL_VOTING_POWER:
            raise ValidatorSetError(f"total voting power {total_before_removals} is above the cap")
        start = -(total_before_removals + (total_before_removals >> 3))
        merged = dict(current)
        for a, p in updates.items():
            merged[a] = replace(current[a], power=p) if a in current else Validator(a, p, start)
        for a in deletes:
            del merged[a]
        if not merged:
            raise ValidatorSetError("a validator set cannot be empty")
        out = ValidatorSet(tuple(merged[a] for a in sorted(merged)), self.proposer)
        out = out._rescale(PRIORITY_WINDOW_SIZE_FACTOR * out.total_power)._shift_by_average()
        return out

    # -- reading ----------------------------------------------------------------------------

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def powers(self) -> dict[bytes, int]:
        """``{address: power}``: what :meth:`Commit.check` takes."""
        return {v.address: v.power for v in self.validators}

    def hash(self) -> bytes:
        """keccak(rlp([[address, power], ...])) in address order: what a header records to name
        the set that signs it (priorities are left out: they follow from the chain)."""
        return bytes(keccak(rlp.encode([[v.address, v.power] for v in self.validators])))

    def power_of(self, address: bytes) -> int:
        for v in self.validators:
            if v.address == address:
                return v.power
        return 0

    def __contains__(self, address: object) -> bool:
        return any(v.address == address for v in self.validators)

    def __len__(self) -> int:
        return len(self.validators)

    # -- proposer rotation ------------------------------------------------------------------

    def increment_proposer_priority(self, times: int = 1) -> ValidatorSet:
        """The set ``times`` proposer turns later (CometBFT's ``IncrementProposerPriority``)."""
        if times <= 0:
            raise ValueError("times must be positive")
        return self._increment(times)

    def proposer_at_round(self, round_: int) -> bytes:
        """Proposer of round ``round_`` when this set is at round 0 of its height."""
        return self.proposer if round_ == 0 else self._increment(round_).proposer

    def _increment(self, times: int) -> ValidatorSet:
        total = self.total_power
        vals = self._rescale(PRIORITY_WINDOW_SIZE_FACTOR * total)._shift_by_average().validators
        priorities = [v.priority for v in vals]
        proposer = 0
        for _ in range(times):
            for i, v in enumerate(vals):
                priorities[i] += v.power
            proposer = max(range(len(vals)), key=lambda i: (priorities[i], _neg(vals[i].address)))
            priorities[proposer] -= total
        return ValidatorSet(tuple(replace(v, priority=p) for v, p in zip(vals, priorities, strict=True)),
                            vals[proposer].address)

    def _with_proposer(self) -> ValidatorSet:
        """The set with its proposer named by the current priorities, without an increment."""
        best = max(self.validators, key=lambda v: (v.priority, _neg(v.address)))
        return replace(self, proposer=best.address)

    def _rescale(self, diff_max: int) -> ValidatorSet:
        if diff_max <= 0 or not self.validators:
            return self
        priorities = [v.priority for v in self.validators]
        diff = max(priorities) - min(priorities)
        if diff <= diff_max:
            return self
        ratio = (diff + diff_max - 1) // diff_max
        return replace(self, validators=tuple(replace(v, priority=_trunc_div(v.priority, ratio))
                                              for v in self.validators))

    def _shift_by_average(self) -> ValidatorSet:
        if not self.validators:
            return self
        # big.Int division in Go is Euclidean: floor for a positive divisor.
        avg = sum(v.priority for v in self.validators) // len(self.validators)
        return replace(self, validators=tuple(replace(v, priority=v.priority - avg) for v in self.validators))


class _neg:
    """Sort key that orders byte strings in reverse, so that ``max`` prefers the smaller address."""

    __slots__ = ("b",)

    def __init__(self, b: bytes) -> None:
        self.b = b

    def __lt__(self, other: _neg) -> bool:
        return self.b > other.b

    def __gt__(self, other: _neg) -> bool:
        return self.b < other.b

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _neg) and self.b == other.b

    def __hash__(self) -> int:
        return hash(self.b)

"""The validator set of every height of a BFT chain (docs/consensus.md §5), kept with the chain.

Height 1 uses the genesis ``validators``. The set of ``h + 1`` is the set of ``h`` turned once
(proposer priority), with the staking precompile's set of the new epoch applied first when
``h + 1`` starts an epoch; that set is read from the state of block ``h`` (the last block of the
previous epoch), so every node derives the same sets from the same chain, and block sync checks
each commit against the set of its own height, across changes.

Not thread-safe: like the ledger, it is used on the chain worker thread only.
"""

from __future__ import annotations

from ai_precompiles import staking
from consensus.validator_set import POWER_UNIT, ValidatorSet
from state import Ledger

#: Sets kept in memory (besides height 1's): enough for the heights consensus and sync touch.
CACHE_HEIGHTS = 256


def genesis_set(ledger: Ledger) -> ValidatorSet:
    return ValidatorSet.new([(bytes(v.address), int(v.power)) for v in ledger.genesis.validators])


def epoch_change(ledger: Ledger, height: int) -> dict[bytes, int] | None:
    """The staking precompile's powers for ``height`` when it starts a new epoch; None inside an
    epoch, or when staking holds no validator (a chain whose genesis stakes nobody keeps its
    genesis set: a set is never empty). Needs block ``height - 1`` in the ledger."""
    if height <= 1:
        return None
    parent = ledger.header_by_number(height - 1)
    if parent is None:
        raise LookupError(f"block {height - 1} is not in the chain: the set of {height} is not known yet")
    state = ledger.state_at(parent)
    if staking.get_epoch(state, block=height) == staking.get_epoch(state, block=height - 1):
        return None
    powers = {a: stake // POWER_UNIT for a, stake in staking.get_validator_set(state, block=height)
              if stake // POWER_UNIT > 0}
    return powers or None


class ValidatorSets:
    """Sets by height, derived from the chain on demand and cached."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.genesis = genesis_set(ledger)
        self._cache: dict[int, ValidatorSet] = {1: self.genesis}

    def at(self, height: int) -> ValidatorSet:
        """The set of ``height`` (at most the head + 1)."""
        if height < 1:
            raise ValueError("heights start at 1")
        held = self._cache.get(height)
        if held is not None:
            return held
        base = max(h for h in self._cache if h < height)
        vs = self._cache[base]
        for h in range(base + 1, height + 1):
            vs = vs.next_height(epoch_change(self.ledger, h))
            self._cache[h] = vs
        if len(self._cache) > CACHE_HEIGHTS:
            keep = sorted(self._cache)[-CACHE_HEIGHTS // 2:]
            self._cache = {1: self.genesis, **{h: self._cache[h] for h in keep}}
        return vs

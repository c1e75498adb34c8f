"""The vote keeper: counts the votes of one height, each validator once per round and step.

It knows nothing of the protocol's rules; it answers threshold questions (+2/3 prevotes for a
block, for nil, for anything; +2/3 precommits; +1/3 of the power seen in a round) and reports a
second, different vote from one validator for one round and step as double-sign evidence. The
caller verifies signatures before adding a vote.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from consensus.commit import has_two_thirds
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Vote, VoteType

#: How many rounds above our own round a validator may hold votes in (CometBFT lets a peer
#: open 2 "catch-up" rounds): bounds the memory a hostile validator can make us spend.
MAX_FUTURE_ROUNDS_PER_VALIDATOR = 2


class AddResult(enum.Enum):
    """What adding a vote did."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REFUSED = "refused"


@dataclass
class _StepVotes:
    first: dict[bytes, Vote] = field(default_factory=dict)
    """Each validator's first vote: what counts for "+2/3 of anything"."""
    by_value: dict[bytes, dict[bytes, Vote]] = field(default_factory=dict)
    """Votes counted for each value. An equivocating validator's second vote is counted for its
    value too (it did sign it, and the paper counts signed messages): otherwise nodes that heard
    its two votes in different orders would count different polkas and could stall."""
    power_by_value: dict[bytes, int] = field(default_factory=dict)
    power: int = 0


@dataclass
class _RoundVotes:
    steps: dict[VoteType, _StepVotes] = field(
        default_factory=lambda: {VoteType.PREVOTE: _StepVotes(), VoteType.PRECOMMIT: _StepVotes()})
    participants: set[bytes] = field(default_factory=set)
    participant_power: int = 0


class VoteKeeper:
    """Votes of one height, for a fixed validator set."""

    def __init__(self, height: int, powers: Mapping[bytes, int]) -> None:
        self.height = height
        self.powers = dict(powers)
        self.total = sum(self.powers.values())
        self._rounds: dict[int, _RoundVotes] = {}
        self.evidence: list[DuplicateVoteEvidence] = []
        self._evidence_keys: set[tuple[bytes, int, int, int]] = set()
        self.proposed: set[bytes] = set()
        """Block hashes proposed at this height (the driver adds them): a conflicting vote is
        kept only for a value someone proposed or another validator voted, which bounds what an
        equivocator can make us store."""

    def add(self, vote: Vote, current_round: int) -> tuple[AddResult, DuplicateVoteEvidence | None]:
        """Count ``vote`` (already signature-checked) unless it is a repeat or not ours to count.

        A second, different vote of a validator for the same round and step returns CONFLICT
        with the evidence (once per offence); it is still counted for its own value when that
        value is proposed or voted by someone else (see ``_StepVotes.by_value``).
        """
        power = self.powers.get(vote.validator, 0)
        if vote.height != self.height or power <= 0:
            return AddResult.REFUSED, None
        if vote.round > current_round + 1 and vote.round not in self._rounds_of(vote.validator):
            ahead = [r for r in self._rounds_of(vote.validator) if r > current_round + 1]
            if len(ahead) >= MAX_FUTURE_ROUNDS_PER_VALIDATOR:
                return AddResult.REFUSED, None
        rv = self._rounds.setdefault(vote.round, _RoundVotes())
        sv = rv.steps[vote.type]
        held = sv.first.get(vote.validator)
        if held is None:
            sv.first[vote.validator] = vote
            sv.power += power
            self._count(sv, vote, power)
            if vote.validator not in rv.participants:
                rv.participants.add(vote.validator)
                rv.participant_power += power
            return AddResult.ADDED, None
        if held.block_hash == vote.block_hash or vote.validator in sv.by_value.get(vote.block_hash, {}):
            return AddResult.DUPLICATE, None
        ev = DuplicateVoteEvidence.of(held, vote)
        fresh = ev.key() not in self._evidence_keys
        if fresh:
            self._evidence_keys.add(ev.key())
            self.evidence.append(ev)
        if vote.block_hash in self.proposed or sv.by_value.get(vote.block_hash):
            self._count(sv, vote, power)
        return AddResult.CONFLICT, ev if fresh else None

    @staticmethod
    def _count(sv: _StepVotes, vote: Vote, power: int) -> None:
        sv.by_value.setdefault(vote.block_hash, {})[vote.validator] = vote
        sv.power_by_value[vote.block_hash] = sv.power_by_value.get(vote.block_hash, 0) + power

    def holds(self, vote: Vote) -> bool:
        """This exact vote (signature included) is already counted: the caller may skip the
        signature check of a re-gossiped vote."""
        rv = self._rounds.get(vote.round)
        return rv is not None and rv.steps[vote.type].by_value.get(vote.block_hash, {}).get(vote.validator) == vote

    def _rounds_of(self, validator: bytes) -> list[int]:
        return [r for r, rv in self._rounds.items() if validator in rv.participants]

    # -- thresholds -------------------------------------------------------------------------

    def _step(self, round_: int, type_: VoteType) -> _StepVotes | None:
        rv = self._rounds.get(round_)
        return rv.steps[type_] if rv else None

    def power_for(self, round_: int, type_: VoteType, block_hash: bytes) -> int:
        sv = self._step(round_, type_)
        return sv.power_by_value.get(block_hash, 0) if sv else 0

    def has_two_thirds_for(self, round_: int, type_: VoteType, block_hash: bytes) -> bool:
        """+2/3 of ``type_`` votes of ``round_`` for ``block_hash`` (empty: nil)."""
        return has_two_thirds(self.power_for(round_, type_, block_hash), self.total)

    def has_two_thirds_any(self, round_: int, type_: VoteType) -> bool:
        """+2/3 of ``type_`` votes of ``round_``, whatever they are for."""
        sv = self._step(round_, type_)
        return sv is not None and has_two_thirds(sv.power, self.total)

    def two_thirds_majority(self, round_: int, type_: VoteType) -> bytes | None:
        """The block (not nil) with +2/3 of ``type_`` votes in ``round_``, if any."""
        sv = self._step(round_, type_)
        if sv is None:
            return None
        for value, power in sv.power_by_value.items():
            if value and has_two_thirds(power, self.total):
                return value
        return None

    def has_one_third_in_round(self, round_: int) -> bool:
        """Validators holding +1/3 of the power sent a vote of ``round_`` (the round-skip rule)."""
        rv = self._rounds.get(round_)
        return rv is not None and 3 * rv.participant_power > self.total

    def rounds(self) -> list[int]:
        return sorted(self._rounds)

    def votes(self, round_: int, type_: VoteType, block_hash: bytes | None = None) -> list[Vote]:
        """The votes of ``round_`` and ``type_`` (for ``block_hash`` only, when given)."""
        sv = self._step(round_, type_)
        if sv is None:
            return []
        if block_hash is not None:
            return list(sv.by_value.get(block_hash, {}).values())
        return [v for votes in sv.by_value.values() for v in votes.values()]

"""The round state machine: Tendermint's rules (docs/consensus.md §2) as pure transitions.

``apply(state, event) -> (state, outputs)`` never reads the clock, the network or the votes: the
driver has already turned votes and proposals into the events below (malachite's split), and
turns the outputs into signed messages and timers. Every transition names the line of the
paper's Algorithm 1 it implements. An event whose guard does not hold leaves the state as it is
and returns no outputs, so the driver may offer the same event again safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from consensus.messages import VoteType


class Step(enum.IntEnum):
    """The step a validator is in within a round (ordered, as the rules compare them)."""

    NEW_HEIGHT = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4


@dataclass(frozen=True)
class RoundState:
    """What one validator knows of its own progress at one height."""

    height: int
    """The height being decided."""
    round: int = -1
    """Current round; -1 before the height starts."""
    step: Step = Step.NEW_HEIGHT
    """Current step."""
    locked_round: int = -1
    """Round of the last precommit for a block (-1: not locked)."""
    locked_value: bytes | None = None
    """The block this validator is locked on."""
    valid_round: int = -1
    """Last round with a polka for a block seen by this validator."""
    valid_value: bytes | None = None
    """The block of that polka: what this validator re-proposes."""
    decision: bytes | None = None
    """The decided block of this height."""
    fired: frozenset[tuple[str, int]] = frozenset()
    """Rules that run once per round ("for the first time"), as (rule, round)."""


# -- events (inputs) ------------------------------------------------------------------------


@dataclass(frozen=True)
class StartRound:
    """Enter ``round`` (round 0 at a new height, the next round after a precommit timeout, or a
    later round seen from +1/3 of the power)."""

    round: int
    is_proposer: bool


@dataclass(frozen=True)
class ProposeValue:
    """The block the node built for this validator's proposal in ``round``."""

    round: int
    value: bytes


@dataclass(frozen=True)
class ProposalReceived:
    """The proposer's proposal of ``value`` for ``round`` (L22 when ``pol_round`` is -1, else L28)."""

    round: int
    value: bytes
    pol_round: int
    valid: bool
    """The node re-executed the block and accepts it."""
    polka_at_pol_round: bool
    """+2/3 prevotes for ``value`` were seen in ``pol_round``."""


@dataclass(frozen=True)
class PolkaAny:
    """+2/3 prevotes of ``round``, for anything (L34)."""

    round: int


@dataclass(frozen=True)
class PolkaValue:
    """The proposal of ``round`` is a valid ``value`` with +2/3 prevotes for it (L36)."""

    round: int
    value: bytes


@dataclass(frozen=True)
class PolkaNil:
    """+2/3 prevotes of ``round`` for nil (L44)."""

    round: int


@dataclass(frozen=True)
class PrecommitAny:
    """+2/3 precommits of ``round``, for anything (L47)."""

    round: int


@dataclass(frozen=True)
class CommitValue:
    """+2/3 precommits of ``round`` for the valid block ``value`` (L49)."""

    round: int
    value: bytes


@dataclass(frozen=True)
class TimeoutPropose:
    round: int


@dataclass(frozen=True)
class TimeoutPrevote:
    round: int


@dataclass(frozen=True)
class TimeoutPrecommit:
    round: int


Event = (StartRound | ProposeValue | ProposalReceived | PolkaAny | PolkaValue | PolkaNil | PrecommitAny
         | CommitValue | TimeoutPropose | TimeoutPrevote | TimeoutPrecommit)


# -- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestValue:
    """Ask the node for a new block to propose at ``(height, round)``."""

    height: int
    round: int


@dataclass(frozen=True)
class ProposeOut:
    """Propose ``value`` (with proof-of-lock round ``pol_round``)."""

    height: int
    round: int
    value: bytes
    pol_round: int


@dataclass(frozen=True)
class VoteOut:
    """Vote ``value`` (None: nil) at ``(height, round)`` in step ``type``."""

    type: VoteType
    height: int
    round: int
    value: bytes | None


@dataclass(frozen=True)
class TimeoutOut:
    """Schedule the timeout of ``step`` at ``(height, round)``."""

    step: Step
    height: int
    round: int


@dataclass(frozen=True)
class NextRound:
    """The precommit timeout ran out: the driver starts ``round``."""

    height: int
    round: int


@dataclass(frozen=True)
class DecideOut:
    """``value`` is decided at ``height`` by the precommits of ``round``."""

    height: int
    round: int
    value: bytes


Output = RequestValue | ProposeOut | VoteOut | TimeoutOut | NextRound | DecideOut


# -- transitions ----------------------------------------------------------------------------


def start_round(s: RoundState, e: StartRound) -> tuple[RoundState, tuple[Output, ...]]:
    """L11 StartRound. Every validator schedules timeout_propose (the proposer too, in case
    building its block takes too long); the proposer proposes its valid value or asks for one."""
    if e.round <= s.round:
        return s, ()
    s = replace(s, round=e.round, step=Step.PROPOSE)
    timeout = TimeoutOut(Step.PROPOSE, s.height, e.round)
    if not e.is_proposer:
        return s, (timeout,)
    valid_value = s.valid_value
    if valid_value is not None:
        s = replace(s, fired=s.fired | {("propose", e.round)})
        return s, (ProposeOut(s.height, e.round, valid_value, s.valid_round), timeout)
    return s, (RequestValue(s.height, e.round), timeout)


def propose_value(s: RoundState, e: ProposeValue) -> tuple[RoundState, tuple[Output, ...]]:
    """The node's block arrived: propose it, once, if still in this round's propose step."""
    if e.round != s.round or s.step != Step.PROPOSE or ("propose", e.round) in s.fired:
        return s, ()
    s = replace(s, fired=s.fired | {("propose", e.round)})
    return s, (ProposeOut(s.height, e.round, e.value, -1),)


def proposal_received(s: RoundState, e: ProposalReceived) -> tuple[RoundState, tuple[Output, ...]]:
    """L22 (a new block) and L28 (a re-proposed block with a proof of lock change)."""
    if e.round != s.round or s.step != Step.PROPOSE:
        return s, ()
    if e.pol_round == -1:
        accept = e.valid and (s.locked_round == -1 or s.locked_value == e.value)
    elif 0 <= e.pol_round < e.round and e.polka_at_pol_round:
        accept = e.valid and (s.locked_round <= e.pol_round or s.locked_value == e.value)
    else:
        return s, ()  # wait for the polka of pol_round (or for the propose timeout)
    vote = VoteOut(VoteType.PREVOTE, s.height, s.round, e.value if accept else None)
    return replace(s, step=Step.PREVOTE), (vote,)


def polka_any(s: RoundState, e: PolkaAny) -> tuple[RoundState, tuple[Output, ...]]:
    """L34: the first +2/3 prevotes of the round start timeout_prevote."""
    if e.round != s.round or s.step != Step.PREVOTE or ("L34", e.round) in s.fired:
        return s, ()
    return replace(s, fired=s.fired | {("L34", e.round)}), (TimeoutOut(Step.PREVOTE, s.height, s.round),)


def polka_value(s: RoundState, e: PolkaValue) -> tuple[RoundState, tuple[Output, ...]]:
    """L36: a polka for the round's valid proposal: lock on it and precommit it (if still at
    prevote), and remember it as the valid value in any case."""
    if e.round != s.round or s.step < Step.PREVOTE or ("L36", e.round) in s.fired:
        return s, ()
    outputs: tuple[Output, ...] = ()
    s = replace(s, fired=s.fired | {("L36", e.round)})
    if s.step == Step.PREVOTE:
        s = replace(s, locked_value=e.value, locked_round=e.round, step=Step.PRECOMMIT)
        outputs = (VoteOut(VoteType.PRECOMMIT, s.height, s.round, e.value),)
    return replace(s, valid_value=e.value, valid_round=e.round), outputs


def polka_nil(s: RoundState, e: PolkaNil) -> tuple[RoundState, tuple[Output, ...]]:
    """L44: +2/3 prevoted nil: precommit nil."""
    if e.round != s.round or s.step != Step.PREVOTE:
        return s, ()
    return replace(s, step=Step.PRECOMMIT), (VoteOut(VoteType.PRECOMMIT, s.height, s.round, None),)


def precommit_any(s: RoundState, e: PrecommitAny) -> tuple[RoundState, tuple[Output, ...]]:
    """L47: the first +2/3 precommits of the round start timeout_precommit."""
    if e.round != s.round or ("L47", e.round) in s.fired:
        return s, ()
    return replace(s, fired=s.fired | {("L47", e.round)}), (TimeoutOut(Step.PRECOMMIT, s.height, s.round),)


def commit_value(s: RoundState, e: CommitValue) -> tuple[RoundState, tuple[Output, ...]]:
    """L49: +2/3 precommits for a valid block, in any round: decide it."""
    return replace(s, decision=e.value, step=Step.COMMIT), (DecideOut(s.height, e.round, e.value),)


def timeout_propose(s: RoundState, e: TimeoutPropose) -> tuple[RoundState, tuple[Output, ...]]:
    """L57: no acceptable proposal in time: prevote nil."""
    if e.round != s.round or s.step != Step.PROPOSE:
        return s, ()
    return replace(s, step=Step.PREVOTE), (VoteOut(VoteType.PREVOTE, s.height, s.round, None),)


def timeout_prevote(s: RoundState, e: TimeoutPrevote) -> tuple[RoundState, tuple[Output, ...]]:
    """L61: no polka in time: precommit nil."""
    if e.round != s.round or s.step != Step.PREVOTE:
        return s, ()
    return replace(s, step=Step.PRECOMMIT), (VoteOut(VoteType.PRECOMMIT, s.height, s.round, None),)


def timeout_precommit(s: RoundState, e: TimeoutPrecommit) -> tuple[RoundState, tuple[Output, ...]]:
    """L65: no decision in time: go to the next round."""
    if e.round != s.round:
        return s, ()
    return s, (NextRound(s.height, s.round + 1),)


_TRANSITIONS = {
    StartRound: start_round, ProposeValue: propose_value, ProposalReceived: proposal_received,
    PolkaAny: polka_any, PolkaValue: polka_value, PolkaNil: polka_nil, PrecommitAny: precommit_any,
    CommitValue: commit_value, TimeoutPropose: timeout_propose, TimeoutPrevote: timeout_prevote,
    TimeoutPrecommit: timeout_precommit,
}


def apply(s: RoundState, event: Event) -> tuple[RoundState, tuple[Output, ...]]:
    """The one entry point: the state after ``event`` and what to do about it. Once the height
    is decided, nothing changes it."""
    if s.decision is not None:
        return s, ()
    transition = _TRANSITIONS[type(event)]
    return transition(s, event)  # type: ignore[operator]

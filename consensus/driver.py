"""The driver: one height of Tendermint for one validator, from messages to effects.

It checks each proposal and vote (signature, proposer, validator set), counts votes in the
:class:`VoteKeeper`, turns thresholds into events for the round state machine
(:mod:`consensus.round_state`), and turns the machine's outputs into effects for the host:
votes and proposals to sign (through the WAL, then send and feed back in), blocks to build,
timers to schedule, a decision with its commit, evidence. It never reads the clock or the
network, so a test drives it step by step and a simulated network can reorder, drop and delay
everything (docs/consensus.md §8–9).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from consensus.commit import Commit
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import MessageError, Proposal, Vote, VoteType
from consensus.round_state import (
    CommitValue,
    DecideOut,
    Event,
    NextRound,
    Output,
    PolkaAny,
    PolkaNil,
    PolkaValue,
    PrecommitAny,
    ProposalReceived,
    ProposeOut,
    ProposeValue,
    RequestValue,
    RoundState,
    StartRound,
    Step,
    TimeoutOut,
    TimeoutPrecommit,
    TimeoutPrevote,
    TimeoutPropose,
    VoteOut,
    apply,
)
from consensus.validator_set import ValidatorSet
from consensus.vote_keeper import AddResult, VoteKeeper


@dataclass(frozen=True)
class TimeoutConfig:
    """Timeouts grow linearly with the round so that liveness holds once delays are bounded."""

    propose: float = 3.0
    """timeout_propose at round 0 (seconds)."""
    propose_delta: float = 0.5
    """Added to timeout_propose per round."""
    prevote: float = 1.0
    """timeout_prevote at round 0."""
    prevote_delta: float = 0.5
    precommit: float = 1.0
    """timeout_precommit at round 0."""
    precommit_delta: float = 0.5
    commit: float = 1.0
    """Pause after a decision before round 0 of the next height (the host applies it)."""

    def duration(self, step: Step, round_: int) -> float:
        base, delta = {Step.PROPOSE: (self.propose, self.propose_delta),
                       Step.PREVOTE: (self.prevote, self.prevote_delta),
                       Step.PRECOMMIT: (self.precommit, self.precommit_delta)}[step]
        return base + round_ * delta


# -- effects for the host -------------------------------------------------------------------


@dataclass(frozen=True)
class SignVote:
    """Sign ``vote`` through the WAL (fsync before send), send it, and feed it back with on_vote."""

    vote: Vote


@dataclass(frozen=True)
class SignProposal:
    """Sign ``proposal`` through the WAL, send it with its block, and feed it back with on_proposal."""

    proposal: Proposal


@dataclass(frozen=True)
class GetValue:
    """Build a block for height/round from the pool and answer with on_value."""

    height: int
    round: int


@dataclass(frozen=True)
class ScheduleTimeout:
    """Call on_timeout(step, height, round) after ``seconds``."""

    step: Step
    height: int
    round: int
    seconds: float


@dataclass(frozen=True)
class Decide:
    """``block_hash`` is final at ``height``: store the block with ``commit`` in one write."""

    height: int
    round: int
    block_hash: bytes
    commit: Commit


@dataclass(frozen=True)
class EvidenceFound:
    """A validator double-signed: pool, gossip and include ``evidence`` in a block."""

    evidence: DuplicateVoteEvidence


Effect = SignVote | SignProposal | GetValue | ScheduleTimeout | Decide | EvidenceFound


class Driver:
    """Tendermint at one height, for one validator (or an observer when ``address`` is None)."""

    def __init__(self, chain_id: int, height: int, validators: ValidatorSet, address: bytes | None,
                 timeouts: TimeoutConfig | None = None) -> None:
        self.chain_id = chain_id
        self.height = height
        self.validators = validators
        self.address = address if address is not None and address in validators else None
        self.timeouts = timeouts or TimeoutConfig()
        self.state = RoundState(height)
        self.keeper = VoteKeeper(height, validators.powers)
        self.proposals: dict[int, Proposal] = {}
        """The first correctly signed proposal of each round from its proposer."""
        self.block_valid: dict[bytes, bool] = {}
        """What the node said of each proposed block (re-executed once)."""
        self.decision: Decide | None = None
        self._received_commit: Commit | None = None
        self._proposers: dict[int, bytes] = {}

    # -- inputs -----------------------------------------------------------------------------

    def proposer(self, round_: int) -> bytes:
        """Proposer of ``(height, round_)``."""
        if round_ not in self._proposers:
            self._proposers[round_] = self.validators.proposer_at_round(round_)
        return self._proposers[round_]

    def start(self, own: Iterable[Vote | Proposal] = ()) -> list[Effect]:
        """Start the height: round 0, or, after a restart, where our own signed messages (replayed
        from the WAL) left us, locked where we were locked."""
        mine = [m for m in own if m.height == self.height]
        if not mine:
            return self._run([StartRound(0, self.proposer(0) == self.address)])
        return self._restore(mine)

    def check_proposal(self, proposal: Proposal) -> None:
        """Raise :class:`MessageError` unless ``proposal`` is signed by its round's proposer (cheap
        enough to run before the node spends a block execution on it)."""
        if proposal.proposer != self.proposer(proposal.round):
            raise MessageError(f"0x{proposal.proposer.hex()} is not the proposer of round {proposal.round}")
        if not proposal.verify(self.chain_id):
            raise MessageError("proposal signature is not its proposer's")

    def has_proposal(self, round_: int) -> bool:
        return round_ in self.proposals

    def wants_proposal(self, proposal: Proposal) -> bool:
        """A proposal of this height for a round we can use now: up to the next round. Further
        ones are dropped without a check (finding a far round's proposer costs a loop per
        round); gossip brings them again once we are there."""
        return proposal.height == self.height and proposal.round <= max(self.state.round, 0) + 1

    def on_proposal(self, proposal: Proposal, valid: bool) -> list[Effect]:
        """A proposal and the node's verdict on its block. Raises :class:`MessageError` if it is
        not signed by the round's proposer.

        The host calls this only once it holds a block whose hash is ``proposal.block_hash``
        (a proposal whose block is missing or hashes to something else is dropped, not judged),
        and ``valid`` is the result of re-executing that block on its parent.
        """
        if not self.wants_proposal(proposal) or self.proposals.get(proposal.round) == proposal:
            return []
        self.check_proposal(proposal)
        if proposal.round in self.proposals:
            return []  # a repeat, or the proposer equivocating: the first one stands
        self.proposals[proposal.round] = proposal
        self.keeper.proposed.add(proposal.block_hash)
        self.block_valid.setdefault(proposal.block_hash, valid)
        return self._run([])

    def on_vote(self, vote: Vote) -> list[Effect]:
        """A prevote or precommit (ours too, once signed). Raises :class:`MessageError` if it is
        not signed by a validator of this height's set."""
        if vote.height != self.height:
            return []
        if self.keeper.holds(vote):
            return []
        if vote.validator not in self.validators:
            raise MessageError(f"0x{vote.validator.hex()} is not a validator at height {self.height}")
        if not vote.verify(self.chain_id):
            raise MessageError("vote signature is not its validator's")
        result, evidence = self.keeper.add(vote, max(self.state.round, 0))
        effects: list[Effect] = [EvidenceFound(evidence)] if evidence else []
        if result in (AddResult.ADDED, AddResult.CONFLICT):
            effects += self._run([])
        return effects

    def on_value(self, round_: int, block_hash: bytes) -> list[Effect]:
        """The block the node built after :class:`GetValue`."""
        self.block_valid.setdefault(block_hash, True)
        return self._run([ProposeValue(round_, block_hash)])

    def on_timeout(self, step: Step, height: int, round_: int) -> list[Effect]:
        """A timer scheduled by :class:`ScheduleTimeout` ran out (stale ones change nothing)."""
        if height != self.height:
            return []
        event: Event
        if step == Step.PROPOSE:
            event = TimeoutPropose(round_)
        elif step == Step.PREVOTE:
            event = TimeoutPrevote(round_)
        elif step == Step.PRECOMMIT:
            event = TimeoutPrecommit(round_)
        else:
            return []
        return self._run([event])

    def on_commit(self, commit: Commit, valid: bool) -> list[Effect]:
        """A commit of this height received with its block (catch-up from a peer that decided,
        or sync). A verified commit proves +2/3 precommitted the block, whatever votes of an
        equivocating validator this node happened to count, so a valid block is decided at once
        (L49). Raises :class:`InvalidCommit` if it is not a commit of this height's set."""
        if commit.height != self.height:
            return []
        commit.check(self.validators.powers, chain_id=self.chain_id, height=self.height)
        self.block_valid.setdefault(commit.block_hash, valid)
        effects: list[Effect] = []
        for vote in commit.precommits():
            _, evidence = self.keeper.add(vote, max(self.state.round, commit.round))
            if evidence:
                effects.append(EvidenceFound(evidence))
        if self.block_valid.get(commit.block_hash) and self.state.decision is None:
            self._received_commit = commit
            return effects + self._run([CommitValue(commit.round, commit.block_hash)])
        return effects + self._run([])

    # -- thresholds to events ---------------------------------------------------------------

    def _candidates(self) -> Iterator[Event]:
        s, keeper = self.state, self.keeper
        for r in keeper.rounds():
            value = keeper.two_thirds_majority(r, VoteType.PRECOMMIT)
            if value is not None and self.block_valid.get(value):
                yield CommitValue(r, value)
        for r in reversed(keeper.rounds()):
            if r > s.round and keeper.has_one_third_in_round(r):
                yield StartRound(r, self.proposer(r) == self.address)
                break
        r = s.round
        proposal = self.proposals.get(r)
        if proposal is not None:
            valid = self.block_valid.get(proposal.block_hash, False)
            polka_pol = proposal.pol_round >= 0 and keeper.has_two_thirds_for(
                proposal.pol_round, VoteType.PREVOTE, proposal.block_hash)
            yield ProposalReceived(r, proposal.block_hash, proposal.pol_round, valid, polka_pol)
        if keeper.has_two_thirds_any(r, VoteType.PREVOTE):
            yield PolkaAny(r)
        if proposal is not None and self.block_valid.get(proposal.block_hash) and keeper.has_two_thirds_for(
                r, VoteType.PREVOTE, proposal.block_hash):
            yield PolkaValue(r, proposal.block_hash)
        if keeper.has_two_thirds_for(r, VoteType.PREVOTE, b""):
            yield PolkaNil(r)
        if keeper.has_two_thirds_any(r, VoteType.PRECOMMIT):
            yield PrecommitAny(r)

    def _run(self, events: list[Event]) -> list[Effect]:
        """Apply ``events``, then every event the votes and proposals now imply, until none
        changes anything (each rule's guard makes it fire at most once)."""
        effects: list[Effect] = []
        pending = list(events)
        while True:
            if pending:
                state, outputs = apply(self.state, pending.pop(0))
            else:
                for event in self._candidates():
                    state, outputs = apply(self.state, event)
                    if state != self.state or outputs:
                        break
                else:
                    return effects
            self.state = state
            for out in outputs:
                if isinstance(out, NextRound):
                    pending.append(StartRound(out.round, self.proposer(out.round) == self.address))
                else:
                    effects.extend(self._effect(out))

    def _effect(self, out: Output) -> list[Effect]:
        h = self.height
        if isinstance(out, RequestValue):
            return [GetValue(h, out.round)]
        if isinstance(out, ProposeOut):
            assert self.address is not None  # only a validator is ever the proposer
            return [SignProposal(Proposal(h, out.round, out.pol_round, out.value, self.address))]
        if isinstance(out, VoteOut):
            if self.address is None:
                return []
            return [SignVote(Vote(out.type, h, out.round, out.value or b"", self.address))]
        if isinstance(out, TimeoutOut):
            return [ScheduleTimeout(out.step, h, out.round, self.timeouts.duration(out.step, out.round))]
        if isinstance(out, DecideOut):
            votes = self.keeper.votes(out.round, VoteType.PRECOMMIT, out.value)
            received = self._received_commit
            if received is not None and (received.round, received.block_hash) == (out.round, out.value):
                commit = received
            else:
                commit = Commit.from_votes(votes)
            self.decision = Decide(h, out.round, out.value, commit)
            return [self.decision]
        raise AssertionError(f"unhandled output {out!r}")

    # -- restart ----------------------------------------------------------------------------

    def _restore(self, mine: list[Vote | Proposal]) -> list[Effect]:
        """Re-enter the round and step of our last signed message, locked on our last precommit
        for a block: a restarted validator then never votes against what it signed before."""
        top = max(m.round for m in mine)
        votes = [m for m in mine if isinstance(m, Vote)]
        for v in votes:
            self.keeper.add(v, top)
        types = {v.type for v in votes if v.round == top}
        step = (Step.PRECOMMIT if VoteType.PRECOMMIT in types else
                Step.PREVOTE if VoteType.PREVOTE in types else Step.PROPOSE)
        locks = [v for v in votes if v.type == VoteType.PRECOMMIT and not v.is_nil]
        lock = max(locks, key=lambda v: v.round) if locks else None
        proposed = frozenset(("propose", m.round) for m in mine if isinstance(m, Proposal))
        self.state = RoundState(
            self.height, top, step,
            locked_round=lock.round if lock else -1, locked_value=lock.block_hash if lock else None,
            valid_round=lock.round if lock else -1, valid_value=lock.block_hash if lock else None,
            fired=proposed)
        return [ScheduleTimeout(step, self.height, top, self.timeouts.duration(step, top)), *self._run([])]

"""The round state machine alone: any sequence of events keeps its invariants (hypothesis)."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import VoteType
from consensus.round_state import (
    CommitValue,
    DecideOut,
    PolkaAny,
    PolkaNil,
    PolkaValue,
    PrecommitAny,
    ProposalReceived,
    ProposeOut,
    ProposeValue,
    RoundState,
    StartRound,
    Step,
    TimeoutPrecommit,
    TimeoutPrevote,
    TimeoutPropose,
    VoteOut,
    apply,
)

VALUES = [b"\x01" * 32, b"\x02" * 32, b"\x03" * 32]
# Weighted towards the events that move a height along; a decision ends the height, so it is rare.
KINDS = [StartRound, ProposeValue, ProposalReceived, PolkaAny, PolkaValue, PolkaNil, PrecommitAny,
         TimeoutPropose, TimeoutPrevote, TimeoutPrecommit, CommitValue]
WEIGHTS = [4, 1, 5, 1, 3, 1, 1, 1, 1, 2, 0.3]


def draw_event(rng: random.Random, s: RoundState):
    """An event shaped like what the driver sends: mostly for the current round or the next."""
    r = max(0, max(s.round, 0) + rng.choice([0, 0, 0, 1, 1, -1]))
    kind = rng.choices(KINDS, WEIGHTS)[0]
    v = rng.choice(VALUES)
    if kind is StartRound:
        return StartRound(r, rng.random() < 0.3)
    if kind in (ProposeValue, PolkaValue, CommitValue):
        return kind(r, v)
    if kind is ProposalReceived:
        return ProposalReceived(r, v, rng.randint(-1, max(r - 1, -1)), rng.random() < 0.8, rng.random() < 0.5)
    return kind(r)


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_invariants_hold_for_any_event_sequence(seed):
    rng = random.Random(seed)
    s = RoundState(height=1)
    votes: dict[tuple[VoteType, int], bytes | None] = {}
    proposals: set[int] = set()
    for _ in range(rng.randint(0, 40)):
        event = draw_event(rng, s)
        before = s
        s, outputs = apply(s, event)
        assert s.round >= before.round  # rounds only go forward
        assert s.locked_round >= before.locked_round and s.valid_round >= before.valid_round
        assert s.locked_round <= s.round and s.valid_round <= s.round
        assert (s.locked_round == -1) == (s.locked_value is None)
        if before.decision is not None:
            assert (s, outputs) == (before, ())  # a decision is final
        for out in outputs:
            if isinstance(out, VoteOut):
                key = (out.type, out.round)
                assert key not in votes, f"second {out.type.name} in round {out.round}"
                votes[key] = out.value
                assert out.round == s.round
                if out.type == VoteType.PRECOMMIT and out.value is not None:
                    assert (s.locked_round, s.locked_value) == (out.round, out.value)  # precommit => lock
            if isinstance(out, ProposeOut):
                assert out.round not in proposals
                proposals.add(out.round)
            if isinstance(out, DecideOut):
                assert s.decision == out.value and s.step == Step.COMMIT
        # Prevotes respect the lock: a locked validator prevotes its locked value or nil, unless
        # the proposal carried a proof of lock change from a round at or after its lock.
        if isinstance(event, ProposalReceived) and before.locked_round >= 0:
            for out in outputs:
                if isinstance(out, VoteOut) and out.value is not None and out.value != before.locked_value:
                    assert event.pol_round >= before.locked_round and event.polka_at_pol_round

"""The driver and round state machine step by step (docs/consensus.md §2): locking, proof of
lock change, nil prevotes, timeouts that grow, round skips, evidence, restart from own votes."""

from eth_account import Account
from eth_hash.auto import keccak

from consensus.driver import (
    Decide,
    Driver,
    EvidenceFound,
    GetValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
)
from consensus.messages import Proposal, Vote, VoteType
from consensus.round_state import Step
from consensus.validator_set import ValidatorSet

CHAIN = 31
KEYS = [bytes(Account.from_key(keccak(b"driver %d" % i)).key) for i in range(4)]
ADDRS = [bytes.fromhex(Account.from_key(k).address[2:]) for k in KEYS]
VSET = ValidatorSet.new([(a, 10) for a in ADDRS])
A, B = b"\xaa" * 32, b"\xbb" * 32
PV, PC = VoteType.PREVOTE, VoteType.PRECOMMIT


def index(addr: bytes) -> int:
    return ADDRS.index(addr)


def vote(i: int, t: VoteType, r: int, block: bytes, h: int = 1) -> Vote:
    return Vote(t, h, r, block, ADDRS[i]).signed(CHAIN, KEYS[i])


def proposal(r: int, block: bytes, pol: int = -1, h: int = 1) -> Proposal:
    p = index(VSET.proposer_at_round(r))
    return Proposal(h, r, pol, block, ADDRS[p]).signed(CHAIN, KEYS[p])


def me_not_proposer(rounds: range) -> int:
    return next(i for i in range(4) if all(VSET.proposer_at_round(r) != ADDRS[i] for r in rounds))


def votes_of(effects: list) -> list[tuple[VoteType, int, bytes]]:
    return [(e.vote.type, e.vote.round, e.vote.block_hash) for e in effects if isinstance(e, SignVote)]


class Harness:
    def __init__(self, me: int, own: tuple = ()) -> None:
        self.me = me
        self.d = Driver(CHAIN, 1, VSET, ADDRS[me], TimeoutConfig())
        self.effects = self.feed(self.d.start(list(own)))

    def feed(self, effects: list) -> list:
        """Sign our own votes and feed them back, as the host does."""
        out = list(effects)
        for e in effects:
            if isinstance(e, SignVote):
                out += self.feed(self.d.on_vote(e.vote.signed(CHAIN, KEYS[self.me])))
        return out

    def votes(self, *vs: Vote) -> list:
        out: list = []
        for v in vs:
            out += self.feed(self.d.on_vote(v))
        return out

    def others(self, t: VoteType, r: int, block: bytes, n: int = 3) -> list:
        return self.votes(*[vote(i, t, r, block) for i in range(4) if i != self.me][:n])


def test_happy_round_locks_precommits_and_decides():
    me = me_not_proposer(range(1))
    h = Harness(me)
    assert any(isinstance(e, ScheduleTimeout) and e.step == Step.PROPOSE for e in h.effects)
    out = h.feed(h.d.on_proposal(proposal(0, A), True))
    assert votes_of(out) == [(PV, 0, A)]
    out = h.others(PV, 0, A, 2)  # with ours: 3 of 4 prevotes for A
    assert (PC, 0, A) in votes_of(out)
    assert h.d.state.locked_value == A and h.d.state.locked_round == 0
    out = h.others(PC, 0, A, 2)
    decided = [e for e in out if isinstance(e, Decide)]
    assert len(decided) == 1 and decided[0].block_hash == A
    assert decided[0].commit.verify(VSET.powers, chain_id=CHAIN, height=1, block_hash=A)
    assert h.d.on_vote(vote(next(i for i in range(4) if i != me), PC, 1, B)) == []  # decided: nothing moves


def test_invalid_block_or_no_proposal_gets_a_nil_prevote():
    me = me_not_proposer(range(1))
    h = Harness(me)
    assert votes_of(h.feed(h.d.on_proposal(proposal(0, A), False))) == [(PV, 0, b"")]
    h2 = Harness(me)
    assert votes_of(h2.feed(h2.d.on_timeout(Step.PROPOSE, 1, 0))) == [(PV, 0, b"")]
    # +2/3 nil prevotes: precommit nil; then +2/3 precommits start the precommit timeout.
    out = h2.others(PV, 0, b"", 2)
    assert (PC, 0, b"") in votes_of(out)
    out = h2.others(PC, 0, b"", 2)
    timers = [e for e in out if isinstance(e, ScheduleTimeout)]
    assert [(t.step, t.round) for t in timers] == [(Step.PRECOMMIT, 0)]
    out = h2.feed(h2.d.on_timeout(Step.PRECOMMIT, 1, 0))
    assert h2.d.state.round == 1
    # Timeouts grow with the round.
    t1 = [e for e in out if isinstance(e, ScheduleTimeout) and e.step == Step.PROPOSE]
    assert t1 and t1[0].seconds > TimeoutConfig().propose


def test_locked_validator_prevotes_nil_for_another_block_until_a_proof_of_lock_change():
    me = me_not_proposer(range(3))
    h = Harness(me)
    h.feed(h.d.on_proposal(proposal(0, A), True))
    h.others(PV, 0, A, 2)
    assert h.d.state.locked_value == A
    h.others(PC, 0, b"", 2)  # the others precommitted nil: no decision in round 0
    h.feed(h.d.on_timeout(Step.PRECOMMIT, 1, 0))
    assert h.d.state.round == 1
    # Round 1: a new block B without a proof of lock: we stay locked on A.
    assert votes_of(h.feed(h.d.on_proposal(proposal(1, B), True))) == [(PV, 1, b"")]
    # Two others prevote B; our prevote timer runs out first: we precommit nil, still locked on A.
    h.others(PV, 1, B, 2)
    assert votes_of(h.feed(h.d.on_timeout(Step.PREVOTE, 1, 1))) == [(PC, 1, b"")]
    # The third prevote for B completes a polka we only watch (step precommit: L36 sets valid, no lock).
    h.votes(vote([i for i in range(4) if i != me][2], PV, 1, B))
    assert h.d.state.valid_value == B and h.d.state.locked_value == A and h.d.state.locked_round == 0
    h.others(PC, 1, b"", 2)
    h.feed(h.d.on_timeout(Step.PRECOMMIT, 1, 1))
    assert h.d.state.round == 2
    # ...so round 2's proposal of B with pol_round 1 unlocks us (locked_round 0 <= 1).
    out = h.feed(h.d.on_proposal(proposal(2, B, pol=1), True))
    assert votes_of(out)[0] == (PV, 2, B)


def test_pol_round_without_the_polka_waits_then_times_out_nil():
    me = me_not_proposer(range(2))
    h = Harness(me)
    h.feed(h.d.on_timeout(Step.PROPOSE, 1, 0))
    h.others(PV, 0, b"", 2)
    h.others(PC, 0, b"", 2)
    h.feed(h.d.on_timeout(Step.PRECOMMIT, 1, 0))
    assert votes_of(h.feed(h.d.on_proposal(proposal(1, B, pol=0), True))) == []  # no polka for B in round 0
    assert votes_of(h.feed(h.d.on_timeout(Step.PROPOSE, 1, 1))) == [(PV, 1, b"")]


def test_proposer_asks_for_a_value_and_reproposes_its_valid_value():
    p0 = index(VSET.proposer_at_round(0))
    h = Harness(p0)
    assert any(isinstance(e, GetValue) and e.round == 0 for e in h.effects)
    out = h.feed(h.d.on_value(0, A))
    props = [e.proposal for e in out if isinstance(e, SignProposal)]
    assert props and props[0].block_hash == A and props[0].pol_round == -1
    assert h.feed(h.d.on_value(0, B)) == []  # one proposal per round


def test_round_skip_on_a_third_of_the_power_in_a_later_round():
    me = me_not_proposer(range(1))
    h = Harness(me)
    others = [i for i in range(4) if i != me]
    h.votes(vote(others[0], PV, 5, b""))
    assert h.d.state.round == 0  # 10 of 40 is not more than 1/3
    h.votes(vote(others[1], PC, 5, b""))
    assert h.d.state.round == 5


def test_a_double_vote_is_counted_once_and_becomes_evidence():
    me = me_not_proposer(range(1))
    h = Harness(me)
    other = next(i for i in range(4) if i != me)
    h.votes(vote(other, PV, 0, A))
    out = h.votes(vote(other, PV, 0, B))
    ev = [e.evidence for e in out if isinstance(e, EvidenceFound)]
    assert len(ev) == 1 and ev[0].validator == ADDRS[other] and ev[0].verify(CHAIN, VSET.powers)
    assert h.d.keeper.power_for(0, PV, A) == 10 and h.d.keeper.power_for(0, PV, B) == 0
    assert h.votes(vote(other, PV, 0, B)) == []  # the same evidence once


def test_restart_from_own_votes_keeps_the_lock():
    me = me_not_proposer(range(2))
    own = [vote(me, PV, 0, A), vote(me, PC, 0, A)]
    h = Harness(me, own=tuple(own))
    assert (h.d.state.round, h.d.state.step, h.d.state.locked_value) == (0, Step.PRECOMMIT, A)
    assert any(isinstance(e, ScheduleTimeout) and e.step == Step.PRECOMMIT for e in h.effects)
    h.feed(h.d.on_timeout(Step.PRECOMMIT, 1, 0))
    assert votes_of(h.feed(h.d.on_proposal(proposal(1, B), True))) == [(PV, 1, b"")]

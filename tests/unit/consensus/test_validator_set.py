"""Proposer rotation against CometBFT's own known sequences (types/validator_set_test.go)."""

import pytest

from consensus.validator_set import MAX_TOTAL_VOTING_POWER, ValidatorSet, ValidatorSetError


def sequence(vs: ValidatorSet, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        out.append(vs.proposer)
        vs = vs.increment_proposer_priority(1)
    return out


def test_cometbft_proposer_selection_1():
    vs = ValidatorSet.new([(b"foo", 1000), (b"bar", 300), (b"baz", 330)])
    # Priorities right after NewValidatorSet, as CometBFT prints them.
    assert {v.address: v.priority for v in vs.validators} == {b"foo": -630, b"bar": 300, b"baz": 330}
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo foo baz foo bar "
        "foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo "
        "bar foo baz foo foo foo baz bar foo foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo "
        "foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    )
    assert b" ".join(sequence(vs, 99)).decode() == expected


def addr(i: int) -> bytes:
    return bytes(19) + bytes([i])


def test_cometbft_proposer_selection_2():
    # Equal power: in order of address.
    vs = ValidatorSet.new([(addr(0), 100), (addr(1), 100), (addr(2), 100)])
    assert sequence(vs, 15) == [addr(i % 3) for i in range(15)]
    # More power, not enough to propose twice in a row.
    vs = ValidatorSet.new([(addr(0), 100), (addr(1), 100), (addr(2), 400)])
    assert sequence(vs, 2) == [addr(2), addr(0)]
    # Enough to propose twice in a row.
    vs = ValidatorSet.new([(addr(0), 100), (addr(1), 100), (addr(2), 401)])
    assert sequence(vs, 3) == [addr(2), addr(2), addr(0)]
    # Proportional to power.
    vs = ValidatorSet.new([(addr(0), 4), (addr(1), 5), (addr(2), 3)])
    seq = sequence(vs, 120)
    assert [seq.count(addr(i)) for i in range(3)] == [40, 50, 30]


def test_cometbft_proposer_selection_3_increment_by_many_is_many_increments():
    vs = ValidatorSet.new([(b"a", 1), (b"b", 1), (b"c", 1), (b"d", 1)])
    order = sequence(vs, 4)
    j = 0
    import random
    rng = random.Random(7)
    for _ in range(2000):
        assert vs.proposer == order[j % 4]
        times = rng.randint(1, 5)
        vs = vs.increment_proposer_priority(times)
        j += times


def test_averaging_with_voting_power_matches_cometbft():
    # TestAveragingInIncrementProposerPriorityWithVotingPower: priorities after n increments.
    vs0 = ValidatorSet((), b"")._update_with_change_set([(b"\x00", 10), (b"\x01", 1), (b"\x02", 1)], False)
    total = 12
    want = {
        1: ([10 - total, 1, 1], b"\x00"), 4: ([4 * (10 - total), 4, 4], b"\x00"),
        5: ([4 * (10 - total) + 10, 5 - total, 5], b"\x01"), 9: ([90 - 7 * total, 9 - total, 9 - total], b"\x02"),
        11: ([110 - 9 * total, 11 - total, 11 - total], b"\x00"),
    }
    for times, (priorities, proposer) in want.items():
        vs = vs0.increment_proposer_priority(times)
        assert [v.priority for v in vs.validators] == priorities and vs.proposer == proposer, times


def test_round_proposers_and_epoch_update():
    vs = ValidatorSet.new([(addr(i), 10) for i in range(4)])
    assert [vs.proposer_at_round(r) for r in range(5)] == [addr(i % 4) for i in range(5)]
    # A new validator joins behind the others; a leaving one is gone; priorities stay bounded.
    nxt = vs.update({addr(0): 10, addr(1): 10, addr(2): 20, addr(9): 10})
    assert addr(3) not in nxt and addr(9) in nxt and nxt.power_of(addr(2)) == 20
    assert min(nxt.validators, key=lambda v: v.priority).address == addr(9)
    seq = sequence(nxt.increment_proposer_priority(1), 500)
    # Proportional to power, the newcomer one turn short for starting behind.
    assert seq.count(addr(2)) == 200 and seq.count(addr(9)) == 99 and seq[:3].count(addr(9)) == 0
    assert vs.update(vs.powers) is vs


def test_bad_sets_are_refused():
    with pytest.raises(ValidatorSetError):
        ValidatorSet.new([])
    with pytest.raises(ValidatorSetError):
        ValidatorSet.new([(b"a", 1), (b"a", 2)])
    with pytest.raises(ValidatorSetError):
        ValidatorSet.new([(b"a", 0)])
    with pytest.raises(ValidatorSetError):
        ValidatorSet.new([(b"a", MAX_TOTAL_VOTING_POWER), (b"b", 1)])
    with pytest.raises(ValueError):
        ValidatorSet.new([(b"a", 1)]).increment_proposer_priority(0)
    assert ValidatorSet.from_stakes([(b"a", 3 * 10**18), (b"b", 10**8)]).powers == {b"a": 3 * 10**9}


def test_next_height_applies_the_epoch_then_rotates():
    vs = ValidatorSet.new([(addr(i), 10) for i in range(4)])
    assert vs.next_height().proposer == vs.increment_proposer_priority(1).proposer == addr(1)
    moved = vs.next_height({addr(0): 10, addr(1): 10, addr(2): 10})
    assert addr(3) not in moved and len(moved) == 3 and moved.proposer in moved

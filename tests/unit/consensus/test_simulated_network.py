"""Four Tendermint validators in one process, on a simulated network (tests/unit/consensus/simnet.py):
random delivery orders, drops, delays, a 2/2 partition that halts and heals, a byzantine
validator, crash-restarts. Every run is seeded, so a failure replays.

Checked each time: agreement (no height has two different decided blocks), validity (a decided
block was proposed and is valid), no honest validator ever signed two different votes for one
height/round/step, and liveness where the faults allow it.
"""

import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.consensus.simnet import Faults, Sim


def check_safety(sim: Sim) -> None:
    by_height: dict[int, set[bytes]] = defaultdict(set)
    for i in sim.honest():
        for h, block in sim.decisions[i].items():
            by_height[h].add(block)
    for h, blocks in by_height.items():
        assert len(blocks) == 1, f"height {h} decided {len(blocks)} different blocks"
        (block,) = blocks
        assert block in sim.proposed_blocks and block not in sim.invalid_blocks, h
    # Decided heights are contiguous from 1 at every honest node.
    for i in sim.honest():
        assert sorted(sim.decisions[i]) == list(range(1, len(sim.decisions[i]) + 1))
    # Every vote seen on the wire, whoever relayed it: signatures cannot be forged, so a vote
    # naming an honest validator was signed by it.
    signed: dict[tuple[bytes, int, int, int], set[bytes]] = defaultdict(set)
    honest = {sim.addresses[i] for i in sim.honest()}
    for vote in sim.wire:
        if vote.validator in honest:
            signed[(vote.validator, vote.height, vote.round, int(vote.type))].add(vote.block_hash)
    assert signed and all(len(v) == 1 for v in signed.values()), "an honest validator double-signed"


def test_happy_path_decides_quickly(tmp_path: Path):
    sim = Sim(4, seed=1, faults=Faults(), wal_dir=tmp_path)
    sim.start()
    sim.run_until(60.0, stop=lambda: sim.min_honest_height() >= 10)
    check_safety(sim)
    assert sim.min_honest_height() >= 10
    # With no faults every height is decided in round 0 (proposer rotates round robin).
    assert sim.now < 10 * 2.0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), drop=st.sampled_from([0.0, 0.1, 0.3]),
       slow=st.sampled_from([(0.01, 0.3), (0.1, 2.5), (0.5, 6.0)]), byzantine=st.booleans())
def test_random_orders_drops_and_delays_stay_safe_and_live(tmp_path: Path, seed: int, drop: float,
                                                           slow: tuple[float, float], byzantine: bool):
    wal_dir = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis may replay an example: fresh WALs each time
    sim = Sim(4, seed=seed, faults=Faults(drop=drop, delay=slow), wal_dir=wal_dir,
              byzantine={seed % 4} if byzantine else None)
    sim.start()
    sim.run_until(900.0, stop=lambda: sim.min_honest_height() >= 5)
    check_safety(sim)
    assert sim.min_honest_height() >= 5, (seed, drop, slow, byzantine, sim.now)


@pytest.mark.parametrize("seed", [3, 11, 42])
def test_partition_two_and_two_halts_safely_then_heals(tmp_path: Path, seed: int):
    start, end = 20.0, 120.0
    sim = Sim(4, seed=seed, faults=Faults(drop=0.05, partitions=[(start, end, frozenset({0, 1}))]),
              wal_dir=tmp_path)
    sim.start()
    sim.run_until(start + 5.0)  # in-flight messages of the moment of the cut land or die
    height_at_cut = sim.max_decided_height()
    assert height_at_cut >= 3
    sim.run_until(end)
    check_safety(sim)
    # Neither half holds +2/3: nothing new is decided anywhere during the partition.
    assert sim.max_decided_height() == height_at_cut
    assert not [d for d in sim.decided_at if start + 5.0 < d[0] < end]
    sim.run_until(end + 300.0, stop=lambda: sim.min_honest_height() >= height_at_cut + 5)
    check_safety(sim)
    assert sim.min_honest_height() >= height_at_cut + 5


@pytest.mark.parametrize("seed", [5, 8, 13, 21])
def test_a_byzantine_validator_causes_no_fork_and_is_caught(tmp_path: Path, seed: int):
    sim = Sim(4, seed=seed, faults=Faults(drop=0.05, delay=(0.01, 0.5)), wal_dir=tmp_path, byzantine={3})
    sim.start()
    sim.run_until(900.0, stop=lambda: sim.min_honest_height() >= 8)
    check_safety(sim)
    assert sim.min_honest_height() >= 8
    byz = sim.addresses[3]
    assert sim.evidence and all(e.validator == byz for e in sim.evidence)
    assert sim.bad_frames > 0  # its garbage was refused by the decoders, nothing crashed


def test_byzantine_proposer_with_a_third_of_the_power_minus_one_is_still_safe(tmp_path: Path):
    # Byzantine power 32 of 100 (< 1/3): safety and liveness still hold.
    sim = Sim(4, seed=77, faults=Faults(drop=0.1), wal_dir=tmp_path, byzantine={0}, powers=[32, 23, 23, 22])
    sim.start()
    sim.run_until(900.0, stop=lambda: sim.min_honest_height() >= 6)
    check_safety(sim)
    assert sim.min_honest_height() >= 6


@pytest.mark.parametrize("seed", [2, 9])
def test_crashed_validators_restart_from_their_wal_without_double_signing(tmp_path: Path, seed: int):
    sim = Sim(4, seed=seed, faults=Faults(drop=0.05, delay=(0.05, 1.0)), wal_dir=tmp_path)
    sim.start()
    rng = sim.rng
    t = 0.0
    for _ in range(25):  # kill a random validator at a random instant, bring it back soon after
        t += rng.uniform(0.3, 6.0)
        sim.run_until(t)
        victim = sim.nodes[rng.randrange(4)]
        if victim.alive:
            victim.crash()
            sim.at(rng.uniform(0.1, 4.0), victim.start)
    sim.run_until(t + 10.0)
    for node in sim.nodes:
        if not node.alive:
            node.start()
    target = sim.max_decided_height() + 3
    sim.run_until(t + 600.0, stop=lambda: sim.min_honest_height() >= target)
    check_safety(sim)
    assert sim.min_honest_height() >= target


def test_seven_validators_two_byzantine_with_uneven_power(tmp_path: Path):
    # Byzantine power 30 of 100 (< 1/3), spread over two validators.
    powers = [20, 10, 15, 15, 14, 13, 13]
    sim = Sim(7, seed=4, faults=Faults(drop=0.1, delay=(0.01, 0.8)), wal_dir=tmp_path, byzantine={0, 1},
              powers=powers)
    sim.start()
    sim.run_until(900.0, stop=lambda: sim.min_honest_height() >= 6)
    check_safety(sim)
    assert sim.min_honest_height() >= 6
    assert {e.validator for e in sim.evidence} <= {sim.addresses[0], sim.addresses[1]} and sim.evidence


def test_byzantine_and_a_partition_then_healing(tmp_path: Path):
    sim = Sim(4, seed=19, faults=Faults(drop=0.05, partitions=[(15.0, 90.0, frozenset({0, 3}))]),
              wal_dir=tmp_path, byzantine={3})
    sim.start()
    sim.run_until(20.0)
    before = sim.max_decided_height()
    sim.run_until(90.0)
    check_safety(sim)
    assert sim.max_decided_height() <= before + 1  # nothing (beyond what was in flight) without +2/3
    sim.run_until(900.0, stop=lambda: sim.min_honest_height() >= before + 5)
    check_safety(sim)
    assert sim.min_honest_height() >= before + 5


@pytest.mark.parametrize("seed", [6, 31])
def test_a_validator_paused_longer_than_a_round_catches_up(tmp_path: Path, seed: int):
    sim = Sim(4, seed=seed, faults=Faults(drop=0.02), wal_dir=tmp_path)
    sim.start()
    sim.run_until(10.0)
    sim.nodes[2].pause(40.0)  # SIGSTOP for several rounds' worth of timeouts, then SIGCONT
    sim.run_until(49.0)
    assert len(sim.decisions[2]) < sim.max_decided_height() - 5  # the others went on without it
    target = sim.max_decided_height() + 3
    sim.run_until(600.0, stop=lambda: sim.min_honest_height() >= target)
    check_safety(sim)
    assert sim.min_honest_height() >= target

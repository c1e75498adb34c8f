"""Gossip scores (p2p/scoring.py) on a fake clock: useless items are free up to a rate, penalised
above it; invalid ones cost a ban at once; a graylisted peer that keeps sending sinks to a ban;
penalties decay, so a peer that stops recovers."""

from p2p.scoring import GossipScores, ScoreParams


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_useless_items_are_free_within_the_rate_and_penalised_above():
    clock = Clock()
    scores = GossipScores(ScoreParams(useless_rate=100, useless_burst=200, useless=0.5), clock)
    for _ in range(10):
        scores.useless("honest", 100)  # exactly its rate, a second apart
        clock.t += 1
    assert scores.penalty("honest") == 0 and not scores.graylisted("honest")
    scores.useless("flooder", 200)
    assert scores.penalty("flooder") == 0  # the burst
    scores.useless("flooder", 400)
    assert scores.penalty("flooder") == 200 and scores.graylisted("flooder") and not scores.banned("flooder")


def test_an_invalid_message_bans_at_once_and_penalties_decay():
    clock = Clock()
    scores = GossipScores(ScoreParams(decay=0.5), clock)
    scores.invalid("liar")
    assert scores.banned("liar") and scores.score("liar") <= -1000
    clock.t += 10
    assert scores.penalty("liar") < 1 and not scores.graylisted("liar")


def test_a_graylisted_peer_that_keeps_sending_is_banned_and_one_that_stops_recovers():
    clock = Clock()
    params = ScoreParams()
    scores = GossipScores(params, clock)
    scores.penalise("a", params.graylist + 1)
    scores.penalise("b", params.graylist + 1)
    for _ in range(250):  # 5 s at 50 messages a second
        clock.t += 0.02
        scores.while_graylisted("a")
    assert scores.banned("a")
    clock.t += 60
    assert not scores.graylisted("b")


def test_memory_is_bounded_by_forgetting_recovered_peers_first():
    clock = Clock()
    scores = GossipScores(ScoreParams(max_peers=10), clock)
    scores.penalise("bad", 500)
    for i in range(100):
        scores.penalise(f"p{i}", 0.1)
    assert len(scores._peers) <= 10 and scores.penalty("bad") > 0

"""Gossip scores, as gossipsub v1.1 defines them: every peer starts at 0; what it sends that is
invalid (REJECT) costs it a large penalty at once, and what is useless (a transaction already
known, one that cannot pay) is free up to a rate and penalised above it. Penalties decay, so a
peer that stops recovers. Below :attr:`ScoreParams.graylist` a peer is graylisted: its messages
are dropped before anything is decoded (each still costs it a point, so a peer that keeps
sending while graylisted sinks further), the router stops grafting and gossiping with it; below
:attr:`ScoreParams.ban` it is disconnected and banned.

Scores are the application's part of gossipsub's score (its P6, fed to py-libp2p's router as
``app_specific_score_fn``): py-libp2p's own validator hook returns only a bool, so it cannot
tell IGNORE (no fault) from REJECT (a fault), which gossipsub's P4 needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreParams:
    """Penalty points, rates and thresholds (scores are negative penalties)."""

    invalid: float = 1000.0
    """A REJECTed message (undecodable, badly signed, another chain): past the ban at once."""
    useless_rate: float = 500.0
    """Useless items (known or unpayable transactions, stale blocks) a peer may send a second
    for free: an honest peer relays each transaction once, at the network's rate."""
    useless_burst: float = 5000.0
    """Useless items a peer may send at once for free (a burst after a reconnect)."""
    useless: float = 0.05
    """Points per useless item above the rate."""
    while_graylisted: float = 5.0
    """Points per message a graylisted peer still sends (one that goes on is banned in seconds)."""
    decay: float = 0.98
    """What is left of a penalty after a second (half-life about 34 s)."""
    graylist: float = 100.0
    """Penalty at which a peer is graylisted."""
    ban: float = 1000.0
    """Penalty at which a peer is banned."""
    max_peers: int = 4096
    """Peers whose penalties are kept; decayed ones are forgotten first."""


class _Peer:
    __slots__ = ("penalty", "at", "tokens", "tokens_at")

    def __init__(self, now: float, burst: float) -> None:
        self.penalty = 0.0
        self.at = now
        self.tokens = burst
        self.tokens_at = now


class GossipScores:
    """Each peer's decaying penalty and its allowance for useless items."""

    def __init__(self, params: ScoreParams | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.params = params or ScoreParams()
        self.clock = clock
        self._peers: dict[str, _Peer] = {}

    def _peer(self, peer: str) -> _Peer:
        now = self.clock()
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self.params.max_peers:
                self._forget_recovered(now)
            state = self._peers[peer] = _Peer(now, self.params.useless_burst)
        elif now > state.at:
            state.penalty *= math.pow(self.params.decay, now - state.at)
            state.at = now
        return state

    def _forget_recovered(self, now: float) -> None:
        for peer, state in list(self._peers.items()):
            if state.penalty * math.pow(self.params.decay, now - state.at) < 1.0:
                del self._peers[peer]
        while len(self._peers) >= self.params.max_peers:
            del self._peers[min(self._peers, key=lambda p: self._peers[p].penalty)]

    def penalty(self, peer: str) -> float:
        if peer not in self._peers:
            return 0.0
        return self._peer(peer).penalty

    def score(self, peer: str) -> float:
        """Gossipsub's application score of ``peer`` (0 or below)."""
        return -self.penalty(peer)

    def graylisted(self, peer: str) -> bool:
        return self.penalty(peer) >= self.params.graylist

    def banned(self, peer: str) -> bool:
        return self.penalty(peer) >= self.params.ban

    def penalise(self, peer: str, points: float) -> float:
        """Add ``points`` to ``peer``'s penalty; returns the penalty."""
        state = self._peer(peer)
        state.penalty += points
        return state.penalty

    def invalid(self, peer: str) -> float:
        return self.penalise(peer, self.params.invalid)

    def useless(self, peer: str, items: int) -> float:
        """``items`` useless items from ``peer``: free within its allowance, penalised above."""
        state = self._peer(peer)
        now = self.clock()
        p = self.params
        state.tokens = min(p.useless_burst, state.tokens + (now - state.tokens_at) * p.useless_rate)
        state.tokens_at = now
        free = min(state.tokens, float(items))
        state.tokens -= free
        state.penalty += (items - free) * p.useless
        return state.penalty

    def while_graylisted(self, peer: str) -> float:
        return self.penalise(peer, self.params.while_graylisted)

    def forget(self, peer: str) -> None:
        self._peers.pop(peer, None)

"""Consensus: who may seal the next block. A single validator for now; Tendermint BFT later."""

from consensus.solo import Commit, SingleValidator

__all__ = ["Commit", "SingleValidator"]

"""Consensus: Tendermint BFT (docs/consensus.md): votes, commits, validator sets, evidence, WAL."""

from consensus.commit import Commit, InvalidCommit
from consensus.messages import MessageError, Proposal, Vote, VoteType
from consensus.solo import SingleValidator

__all__ = ["Commit", "InvalidCommit", "MessageError", "Proposal", "SingleValidator", "Vote", "VoteType"]

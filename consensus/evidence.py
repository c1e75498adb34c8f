"""Evidence of misbehaviour: a validator that signed two different votes for one height/round/step.

The evidence carries both signed votes, so anyone can check it with the chain id and the
validator set of its height; the staking precompile does so again before it slashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import rlp

from consensus.messages import MessageError, Vote

#: Encoded size cap: two votes of at most 256 bytes and the list header.
MAX_EVIDENCE_BYTES = 600
#: Most pieces of evidence one block may carry (bounds the work of checking a block).
MAX_EVIDENCE_PER_BLOCK = 16


class InvalidEvidence(ValueError):
    """Evidence that does not prove a double sign; the message says why."""


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two conflicting votes of one validator for the same height, round and step."""

    vote_a: Vote
    """The vote with the smaller block hash (canonical order, so a double sign has one encoding)."""
    vote_b: Vote
    """The vote with the larger block hash."""

    @classmethod
    def of(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """The evidence made of two conflicting votes, in canonical order."""
        a, b = sorted((first, second), key=lambda v: v.block_hash)
        return cls(a, b)

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    def key(self) -> tuple[bytes, int, int, int]:
        """What makes two pieces of evidence the same offence: one punishment per key."""
        return (self.vote_a.validator, self.vote_a.height, self.vote_a.round, int(self.vote_a.type))

    def check(self, chain_id: int, powers: Mapping[bytes, int]) -> None:
        """Raise :class:`InvalidEvidence` unless this proves a double sign on ``chain_id`` by a
        validator of ``powers`` (the set of the votes' height)."""
        a, b = self.vote_a, self.vote_b
        if (a.type, a.height, a.round, a.validator) != (b.type, b.height, b.round, b.validator):
            raise InvalidEvidence("the votes are not for the same validator, height, round and step")
        if not a.block_hash < b.block_hash:
            raise InvalidEvidence("the votes are for the same block or not in canonical order")
        if powers.get(a.validator, 0) <= 0:
            raise InvalidEvidence(f"0x{a.validator.hex()} is not in the validator set of height {a.height}")
        if not (a.verify(chain_id) and b.verify(chain_id)):
            raise InvalidEvidence("a vote's signature is not the validator's on this chain")

    def verify(self, chain_id: int, powers: Mapping[bytes, int]) -> bool:
        try:
            self.check(chain_id, powers)
        except InvalidEvidence:
            return False
        return True

    def encode(self) -> bytes:
        return bytes(rlp.encode([self.vote_a.encode(), self.vote_b.encode()]))

    @classmethod
    def decode(cls, raw: bytes) -> DuplicateVoteEvidence:
        if len(raw) > MAX_EVIDENCE_BYTES:
            raise MessageError(f"evidence: {len(raw)} bytes is above the cap")
        try:
            items = rlp.decode(raw)
        except rlp.exceptions.DecodingError as e:
            raise MessageError(f"evidence: bad RLP ({e})") from None
        if not isinstance(items, list) or len(items) != 2 or not all(isinstance(i, bytes) for i in items):
            raise MessageError("evidence: expected [vote_a, vote_b]")
        return cls(Vote.decode(items[0]), Vote.decode(items[1]))

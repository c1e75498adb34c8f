"""The commit: the +2/3 precommits that make a block final, stored beside it and sent with it.

A commit is verified against the validator set of its height (``powers``) and the chain id:
each signature must be a valid precommit for exactly this chain, height, round and block, by a
validator of the set, and each validator counts once. A commit that names a validator twice is
refused outright, as CometBFT refuses one: a repeated signature is never extra power.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import rlp

from consensus.messages import (
    ADDRESS_LEN,
    HASH_LEN,
    MAX_HEIGHT,
    MAX_ROUND,
    SIGNATURE_LEN,
    MessageError,
    Vote,
    VoteType,
    field_bytes,
    field_int,
    recover_signer,
    sign_hash,
)

#: Most signatures a commit may carry: the largest validator set governance allows.
MAX_COMMIT_SIGNATURES = 10_000
#: Encoded size cap (about 90 bytes a signature).
MAX_COMMIT_BYTES = 64 + MAX_COMMIT_SIGNATURES * 96


class InvalidCommit(ValueError):
    """A commit that does not prove its block final; the message says why."""


def has_two_thirds(power: int, total: int) -> bool:
    """``power`` is more than 2/3 of ``total`` (Tendermint's +2/3), in exact integers."""
    return 3 * power > 2 * total


@dataclass(frozen=True)
class Commit:
    """The proof that a block is final: precommits for it from more than 2/3 of the voting power."""

    height: int
    """Block number."""
    block_hash: bytes
    """Hash of the committed block."""
    signatures: tuple[tuple[bytes, bytes], ...]
    """(validator address, 65-byte precommit signature) pairs, each validator at most once."""
    round: int = 0
    """Round in which the block was committed (part of what each precommit signed)."""

    @classmethod
    def from_votes(cls, votes: list[Vote] | tuple[Vote, ...]) -> Commit:
        """The commit made of precommits for one block at one height and round."""
        first = votes[0]
        for v in votes:
            if (v.type, v.height, v.round, v.block_hash) != (VoteType.PRECOMMIT, first.height, first.round,
                                                             first.block_hash) or v.is_nil:
                raise InvalidCommit("a commit is made of precommits for one block, height and round")
        sigs = tuple(sorted((v.validator, v.signature) for v in votes))
        return cls(first.height, first.block_hash, sigs, first.round)

    def precommits(self) -> tuple[Vote, ...]:
        """The signed precommits this commit carries."""
        return tuple(Vote(VoteType.PRECOMMIT, self.height, self.round, self.block_hash, a, s)
                     for a, s in self.signatures)

    def encode(self) -> bytes:
        return bytes(rlp.encode([self.height, self.round, self.block_hash, [[a, s] for a, s in self.signatures]]))

    @classmethod
    def decode(cls, raw: bytes) -> Commit:
        """Decode a commit; malformed or oversized bytes raise :class:`MessageError`."""
        if len(raw) > MAX_COMMIT_BYTES:
            raise MessageError(f"commit: {len(raw)} bytes is above the cap")
        try:
            items = rlp.decode(raw)
        except rlp.exceptions.DecodingError as e:
            raise MessageError(f"commit: bad RLP ({e})") from None
        if not isinstance(items, list) or len(items) != 4 or not isinstance(items[3], list):
            raise MessageError("commit: expected [height, round, block_hash, [[address, signature], ...]]")
        height, round_, block_hash, sigs = items
        if len(sigs) > MAX_COMMIT_SIGNATURES:
            raise MessageError(f"commit: {len(sigs)} signatures is above {MAX_COMMIT_SIGNATURES}")
        pairs = []
        for pair in sigs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise MessageError("commit: a signature entry is [address, signature]")
            pairs.append((field_bytes(pair[0], "commit.address", ADDRESS_LEN),
                          field_bytes(pair[1], "commit.signature", SIGNATURE_LEN)))
        return cls(field_int(height, "commit.height", MAX_HEIGHT), field_bytes(block_hash, "commit.block_hash", HASH_LEN),
                   tuple(pairs), field_int(round_, "commit.round", MAX_ROUND))

    def check(self, powers: Mapping[bytes, int], *, chain_id: int, height: int | None = None,
              block_hash: bytes | None = None) -> None:
        """Raise :class:`InvalidCommit` unless distinct validators of ``powers`` holding more than
        2/3 of its power signed a precommit for this block on ``chain_id``.

        ``powers`` must be the validator set of the commit's height (the caller looks it up);
        ``height`` and ``block_hash``, when given, must be what the commit claims.
        """
        if height is not None and height != self.height:
            raise InvalidCommit(f"commit is for height {self.height}, not {height}")
        if block_hash is not None and block_hash != self.block_hash:
            raise InvalidCommit("commit is for another block")
        total = sum(powers.values())
        if total <= 0:
            raise InvalidCommit("empty validator set")
        message = sign_hash(chain_id, VoteType.PRECOMMIT, self.height, self.round, self.block_hash)
        seen: set[bytes] = set()
        signed = 0
        for address, signature in self.signatures:
            if address in seen:
                raise InvalidCommit(f"validator 0x{address.hex()} signs twice")
            seen.add(address)
            if address not in powers:
                raise InvalidCommit(f"0x{address.hex()} is not in the validator set")
            if recover_signer(message, signature) != address:
                raise InvalidCommit(f"bad signature of 0x{address.hex()}")
            signed += powers[address]
        if not has_two_thirds(signed, total):
            raise InvalidCommit(f"signers hold {signed} of {total} power, not more than 2/3")

    def verify(self, powers: Mapping[bytes, int], *, chain_id: int, height: int | None = None,
               block_hash: bytes | None = None) -> bool:
        """True when :meth:`check` passes."""
        try:
            self.check(powers, chain_id=chain_id, height=height, block_hash=block_hash)
        except InvalidCommit:
            return False
        return True

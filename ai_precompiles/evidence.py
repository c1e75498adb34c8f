"""Double-sign evidence as the staking precompile reads it: decoding with caps, and the proof checks.

The bytes are the canonical RLP encoding of ``consensus.evidence.DuplicateVoteEvidence``
(``[vote_a, vote_b]``, each vote ``[type, height, round, block_hash, validator, signature]``) and a
vote's signature covers ``consensus.messages.sign_bytes`` (docs/consensus.md §3). The format is
read here again rather than imported, because ``ai_precompiles`` sits below ``consensus`` in the
dependency order (DESIGN.md); a unit test feeds this decoder what ``consensus`` encodes and signs,
so the two cannot drift apart.

Everything is hostile input: a size cap before RLP is touched, every field checked for type and
range, and a :class:`~ai_precompiles.errors.AIError` (a revert with its reason) for anything wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature as KeysBadSignature
from eth_keys.exceptions import ValidationError

from .errors import BadSignature, InvalidArgument

#: As ``consensus.messages.SIGN_DOMAIN``: prefix of every consensus sign-bytes string.
SIGN_DOMAIN = b"\x19ailedger consensus\n"
#: As ``consensus.evidence.MAX_EVIDENCE_BYTES`` / ``consensus.messages.MAX_VOTE_BYTES``.
MAX_EVIDENCE_BYTES = 600
MAX_VOTE_BYTES = 256
MAX_HEIGHT = 2**63 - 1
MAX_ROUND = 2**31 - 1
PREVOTE, PRECOMMIT = 1, 2
#: Signatures the precompile recovers for one piece of evidence (each priced at ``gas.signature``).
SIGNATURES_PER_EVIDENCE = 2


@dataclass(frozen=True)
class SignedVote:
    """One vote of the evidence (fields as ``consensus.messages.Vote``)."""

    type: int
    """1 prevote, 2 precommit."""
    height: int
    """Height voted at."""
    round: int
    """Round voted in."""
    block_hash: bytes
    """Block voted for; empty for nil."""
    validator: bytes
    """20-byte address of the signer."""
    signature: bytes
    """65-byte recoverable secp256k1 signature over :meth:`signing_hash`."""

    def signing_hash(self, chain_id: int) -> bytes:
        # pol_round is -1 for a vote, stored shifted by one (consensus.messages.sign_bytes)
        body = rlp.encode([self.type, chain_id, self.height, self.round, self.block_hash, 0])
        return bytes(keccak(SIGN_DOMAIN + body))

    def signer(self, chain_id: int) -> bytes | None:
        try:
            sig = keys.Signature(self.signature)
            return bytes(sig.recover_public_key_from_msg_hash(self.signing_hash(chain_id)).to_canonical_address())
        except (KeysBadSignature, ValidationError, ValueError):
            return None


@dataclass(frozen=True)
class DoubleSign:
    """Two conflicting votes of one validator for one (height, round, type), canonical order."""

    vote_a: SignedVote
    """The vote with the smaller block hash."""
    vote_b: SignedVote
    """The vote with the larger block hash."""

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    def check_shape(self) -> None:
        """The votes conflict: same validator, height, round and type, different block hashes, and
        in canonical order (so one offence has exactly one encoding)."""
        a, b = self.vote_a, self.vote_b
        if (a.type, a.height, a.round, a.validator) != (b.type, b.height, b.round, b.validator):
            raise InvalidArgument("evidence: the votes are not for the same validator, height, round and step")
        if not a.block_hash < b.block_hash:
            raise InvalidArgument("evidence: the votes are for the same block or not in canonical order")

    def check_signatures(self, chain_id: int) -> None:
        for v in (self.vote_a, self.vote_b):
            if v.signer(chain_id) != v.validator:
                raise BadSignature("evidence: a vote's signature is not the validator's on this chain")


def _int(raw: object, name: str, limit: int) -> int:
    if not isinstance(raw, bytes) or raw[:1] == b"\x00":
        raise InvalidArgument(f"evidence: {name} is not a canonical integer")
    value = int.from_bytes(raw, "big")
    if value > limit:
        raise InvalidArgument(f"evidence: {name} {value} is above {limit}")
    return value


def _bytes(raw: object, name: str, *lengths: int) -> bytes:
    if not isinstance(raw, bytes) or len(raw) not in lengths:
        raise InvalidArgument(f"evidence: {name} must be {' or '.join(map(str, lengths))} bytes")
    return raw


def _rlp_list(raw: bytes, cap: int, n: int, what: str) -> list[object]:
    if len(raw) > cap:
        raise InvalidArgument(f"evidence: {what} of {len(raw)} bytes is above the {cap}-byte cap")
    try:
        items = rlp.decode(raw)
    except rlp.exceptions.DecodingError:
        raise InvalidArgument(f"evidence: {what} is not valid RLP") from None
    if not isinstance(items, list) or len(items) != n:
        raise InvalidArgument(f"evidence: {what} must be an RLP list of {n} items")
    return items


def decode_vote(raw: bytes) -> SignedVote:
    t, h, r, bh, v, s = _rlp_list(raw, MAX_VOTE_BYTES, 6, "vote")
    type_ = _int(t, "vote type", 255)
    if type_ not in (PREVOTE, PRECOMMIT):
        raise InvalidArgument(f"evidence: vote type {type_} is not a prevote or precommit")
    return SignedVote(type_, _int(h, "height", MAX_HEIGHT), _int(r, "round", MAX_ROUND),
                      _bytes(bh, "block hash", 0, 32), _bytes(v, "validator", 20), _bytes(s, "signature", 65))


def decode_evidence(raw: bytes) -> DoubleSign:
    """Decode evidence bytes (at most :data:`MAX_EVIDENCE_BYTES`); raises ``InvalidArgument``."""
    items = _rlp_list(bytes(raw), MAX_EVIDENCE_BYTES, 2, "evidence")
    if not all(isinstance(i, bytes) for i in items):
        raise InvalidArgument("evidence: expected [vote_a, vote_b] as two encoded votes")
    a, b = items
    assert isinstance(a, bytes) and isinstance(b, bytes)
    return DoubleSign(decode_vote(a), decode_vote(b))

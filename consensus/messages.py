"""Consensus messages: votes and proposals, the canonical bytes they sign, and their encodings.

Every signature in consensus covers :func:`sign_bytes`: a fixed domain tag, then the RLP list
``[type, chain_id, height, round, block_hash, pol_round]``. So a signature is bound to one chain,
one height, one round and one step; it can never be replayed on another chain, at another
height or round, or as the other kind of vote, and the 0x19 tag keeps it from ever being the
hash of an Ethereum transaction (EIP-191's rule). ``block_hash`` is empty for a nil vote.

Decoding is hostile-input safe: a size cap before RLP is touched, then every field checked for
type and range; bad bytes raise :class:`MessageError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError

#: Prefix of every consensus sign-bytes string (0x19 keeps it apart from transactions).
SIGN_DOMAIN = b"\x19ailedger consensus\n"
#: Largest height and round a message may carry (CometBFT's are int64 and int32).
MAX_HEIGHT = 2**63 - 1
MAX_ROUND = 2**31 - 1
#: Encoded size caps, checked before decoding: a vote is about 110 bytes, a proposal 115.
MAX_VOTE_BYTES = 256
MAX_PROPOSAL_BYTES = 256
#: Length of a block hash, an address and a recoverable secp256k1 signature.
HASH_LEN = 32
ADDRESS_LEN = 20
SIGNATURE_LEN = 65


class MessageError(ValueError):
    """A consensus message that is malformed, oversized, or badly signed."""


class VoteType(enum.IntEnum):
    """The step a signature belongs to (CometBFT's ``SignedMsgType`` numbers)."""

    PREVOTE = 1
    PRECOMMIT = 2
    PROPOSAL = 32


def sign_bytes(
    chain_id: int, type_: VoteType, height: int, round_: int, block_hash: bytes, pol_round: int = -1
) -> bytes:
    """The canonical bytes a validator signs for a vote or a proposal.

    ``pol_round`` is -1 for votes (only a proposal carries a proof-of-lock round); it is stored
    shifted by one so that RLP's non-negative integers carry it.
    """
    return SIGN_DOMAIN + rlp.encode([int(type_), chain_id, height, round_, block_hash, pol_round + 1])


def sign_hash(
    chain_id: int, type_: VoteType, height: int, round_: int, block_hash: bytes, pol_round: int = -1
) -> bytes:
    """Keccak-256 of :func:`sign_bytes`: what the secp256k1 key signs."""
    return bytes(keccak(sign_bytes(chain_id, type_, height, round_, block_hash, pol_round)))


def recover_signer(message_hash: bytes, signature: bytes) -> bytes | None:
    """The address that made ``signature`` over ``message_hash``, or None if it is not valid."""
    if len(signature) != SIGNATURE_LEN:
        return None
    try:
        sig = keys.Signature(signature)
        return bytes(sig.recover_public_key_from_msg_hash(message_hash).to_canonical_address())
    except (BadSignature, ValidationError, ValueError):
        return None


def field_int(raw: object, name: str, limit: int) -> int:
    if not isinstance(raw, bytes) or (raw[:1] == b"\x00"):
        raise MessageError(f"{name}: not a canonical integer")
    value = int.from_bytes(raw, "big")
    if value > limit:
        raise MessageError(f"{name}: {value} is above {limit}")
    return value


def field_bytes(raw: object, name: str, *lengths: int) -> bytes:
    if not isinstance(raw, bytes) or len(raw) not in lengths:
        raise MessageError(f"{name}: expected {' or '.join(map(str, lengths))} bytes")
    return raw


def _decode_list(raw: bytes, cap: int, fields: int, what: str) -> list[object]:
    if len(raw) > cap:
        raise MessageError(f"{what}: {len(raw)} bytes is above the {cap}-byte cap")
    try:
        items = rlp.decode(raw)
    except rlp.exceptions.DecodingError as e:
        raise MessageError(f"{what}: bad RLP ({e})") from None
    if not isinstance(items, list) or len(items) != fields:
        raise MessageError(f"{what}: expected a list of {fields} fields")
    return items


@dataclass(frozen=True)
class Vote:
    """A signed prevote or precommit of one validator for a block (or nil) at a height/round."""

    type: VoteType
    """PREVOTE or PRECOMMIT."""
    height: int
    """Height the vote is for."""
    round: int
    """Round the vote is for (0-based)."""
    block_hash: bytes
    """Hash of the block voted for; empty for nil."""
    validator: bytes
    """20-byte address of the voter."""
    signature: bytes = b""
    """65-byte secp256k1 signature over :func:`sign_hash` of the fields above."""

    @property
    def is_nil(self) -> bool:
        return self.block_hash == b""

    def signing_hash(self, chain_id: int) -> bytes:
        return sign_hash(chain_id, self.type, self.height, self.round, self.block_hash)

    def signed(self, chain_id: int, private_key: bytes) -> Vote:
        """This vote with ``private_key``'s signature (the key must be ``validator``'s)."""
        sig = keys.PrivateKey(private_key).sign_msg_hash(self.signing_hash(chain_id)).to_bytes()
        return Vote(self.type, self.height, self.round, self.block_hash, self.validator, sig)

    def verify(self, chain_id: int) -> bool:
        """True when ``signature`` is ``validator``'s over this vote on ``chain_id``."""
        return recover_signer(self.signing_hash(chain_id), self.signature) == self.validator

    def encode(self) -> bytes:
        return bytes(rlp.encode([int(self.type), self.height, self.round, self.block_hash,
                                 self.validator, self.signature]))

    @classmethod
    def decode(cls, raw: bytes) -> Vote:
        t, h, r, bh, v, s = _decode_list(raw, MAX_VOTE_BYTES, 6, "vote")
        type_ = field_int(t, "vote.type", 255)
        if type_ not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise MessageError(f"vote.type: {type_} is not a prevote or precommit")
        return cls(VoteType(type_), field_int(h, "vote.height", MAX_HEIGHT), field_int(r, "vote.round", MAX_ROUND),
                   field_bytes(bh, "vote.block_hash", 0, HASH_LEN), field_bytes(v, "vote.validator", ADDRESS_LEN),
                   field_bytes(s, "vote.signature", SIGNATURE_LEN))


@dataclass(frozen=True)
class Proposal:
    """The proposer's signed proposal of a block for a height/round.

    The block itself travels beside the proposal (the reactor sends both); consensus only
    deals in the hash, and the node tells it whether the block is valid.
    """

    height: int
    """Height proposed for."""
    round: int
    """Round proposed in."""
    pol_round: int
    """Round of the proof of lock (+2/3 prevotes) for this block when it is re-proposed; -1 for a new block."""
    block_hash: bytes
    """Hash of the proposed block."""
    proposer: bytes
    """20-byte address of the proposer."""
    signature: bytes = b""
    """65-byte signature over :func:`sign_hash` with type PROPOSAL."""

    def signing_hash(self, chain_id: int) -> bytes:
        return sign_hash(chain_id, VoteType.PROPOSAL, self.height, self.round, self.block_hash, self.pol_round)

    def signed(self, chain_id: int, private_key: bytes) -> Proposal:
        sig = keys.PrivateKey(private_key).sign_msg_hash(self.signing_hash(chain_id)).to_bytes()
        return Proposal(self.height, self.round, self.pol_round, self.block_hash, self.proposer, sig)

    def verify(self, chain_id: int) -> bool:
        return recover_signer(self.signing_hash(chain_id), self.signature) == self.proposer

    def encode(self) -> bytes:
        return bytes(rlp.encode([self.height, self.round, self.pol_round + 1, self.block_hash,
                                 self.proposer, self.signature]))

    @classmethod
    def decode(cls, raw: bytes) -> Proposal:
        h, r, p, bh, v, s = _decode_list(raw, MAX_PROPOSAL_BYTES, 6, "proposal")
        height = field_int(h, "proposal.height", MAX_HEIGHT)
        round_ = field_int(r, "proposal.round", MAX_ROUND)
        pol_round = field_int(p, "proposal.pol_round", MAX_ROUND) - 1
        if pol_round >= round_:
            raise MessageError(f"proposal.pol_round {pol_round} is not below its round {round_}")
        return cls(height, round_, pol_round, field_bytes(bh, "proposal.block_hash", HASH_LEN),
                   field_bytes(v, "proposal.proposer", ADDRESS_LEN), field_bytes(s, "proposal.signature", SIGNATURE_LEN))

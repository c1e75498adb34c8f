"""The consensus hello: the first frame on every consensus stream, naming the validator that opens
it, so that a node refuses a stream from anyone outside the current validator set before it
decodes a single consensus frame.

``rlp([version, chain_id, validator, signature])``, where the signature is the validator key's
over ``keccak(HELLO_DOMAIN ‖ rlp([chain_id, sender peer id, receiver peer id]))``. Binding both
libp2p peer ids (each authenticated by Noise) means a hello captured on one link is worthless on
any other: a relay or a replay from another peer id does not verify. The 0x19 prefix and its own
domain keep it apart from transactions and from votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from eth_keys import keys

from consensus.messages import recover_signer

HELLO_DOMAIN = b"\x19ailedger consensus hello\n"
HELLO_VERSION = 1
#: Largest hello frame (one is about 95 bytes).
MAX_HELLO_BYTES = 256


class HelloError(ValueError):
    """Bytes that are not a hello, or a hello that does not verify for this link."""


def _signing_hash(chain_id: int, sender: str, receiver: str) -> bytes:
    return bytes(keccak(HELLO_DOMAIN + rlp.encode([chain_id, sender.encode(), receiver.encode()])))


@dataclass(frozen=True)
class Hello:
    """A validator's signed claim to the stream it opens."""

    chain_id: int
    validator: bytes
    """The 20-byte address of the validator opening the stream."""
    signature: bytes
    """65 bytes over :func:`_signing_hash` of (chain id, sender peer id, receiver peer id)."""

    @classmethod
    def make(cls, chain_id: int, sender: str, receiver: str, key: bytes) -> Hello:
        private = keys.PrivateKey(key)
        signature = private.sign_msg_hash(_signing_hash(chain_id, sender, receiver)).to_bytes()
        return cls(chain_id, bytes(private.public_key.to_canonical_address()), signature)

    def encode(self) -> bytes:
        return bytes(rlp.encode([HELLO_VERSION, self.chain_id, self.validator, self.signature]))

    @classmethod
    def decode(cls, raw: bytes) -> Hello:
        if len(raw) > MAX_HELLO_BYTES:
            raise HelloError(f"hello of {len(raw)} bytes")
        try:
            items = rlp.decode(raw)
        except rlp.exceptions.DecodingError as e:
            raise HelloError(f"undecodable hello ({e})") from None
        if not isinstance(items, list) or len(items) != 4 or not all(isinstance(i, bytes) for i in items):
            raise HelloError("a hello is [version, chain id, validator, signature]")
        version, chain_id, validator, signature = items
        if version != bytes([HELLO_VERSION]) or len(chain_id) > 8 or chain_id[:1] == b"\x00":
            raise HelloError("unsupported hello version or bad chain id")
        if len(validator) != 20 or len(signature) != 65:
            raise HelloError("a hello names a 20-byte validator with a 65-byte signature")
        return cls(int.from_bytes(chain_id, "big"), validator, signature)

    def check(self, chain_id: int, sender: str, receiver: str) -> bytes:
        """The validator this hello proves opened the stream from ``sender`` to ``receiver``."""
        if self.chain_id != chain_id:
            raise HelloError(f"a hello for chain {self.chain_id}")
        if recover_signer(_signing_hash(chain_id, sender, receiver), self.signature) != self.validator:
            raise HelloError("the hello's signature is not its validator's for this link")
        return self.validator

"""Single-validator consensus: the dev chain's and a one-validator testnet's.

The only validator proposes every block and commits it at once with its own signature,
so a block is final as soon as it is built. This is the placeholder the Tendermint BFT
work replaces; it keeps the same two questions the BFT engine answers: who proposes at a
height, and what commit makes a block final.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys import keys


@dataclass(frozen=True)
class Commit:
    """The proof that a block is final: the validators' signatures over its hash."""

    height: int
    """Block number."""
    block_hash: bytes
    """Hash of the committed block."""
    signatures: tuple[tuple[bytes, bytes], ...]
    """(validator address, 65-byte signature over the block hash) pairs."""

    def encode(self) -> bytes:
        import rlp

        return rlp.encode([self.height, self.block_hash, [[a, s] for a, s in self.signatures]])

    @classmethod
    def decode(cls, raw: bytes) -> Commit:
        import rlp

        height, block_hash, sigs = rlp.decode(raw)
        return cls(int.from_bytes(height, "big"), block_hash, tuple((a, s) for a, s in sigs))

    def verify(self, powers: dict[bytes, int]) -> bool:
        """True when validators holding more than 2/3 of ``powers`` signed this block."""
        total = sum(powers.values())
        signed = 0
        for address, signature in self.signatures:
            try:
                recovered = keys.Signature(signature).recover_public_key_from_msg_hash(self.block_hash)
            except Exception:
                return False
            if recovered.to_canonical_address() != address or address not in powers:
                return False
            signed += powers[address]
        return 3 * signed > 2 * total


class SingleValidator:
    """Consensus of a chain with exactly one validator."""

    def __init__(self, private_key: bytes) -> None:
        self._key = keys.PrivateKey(private_key)
        self.address = bytes(self._key.public_key.to_canonical_address())

    def proposer(self, height: int) -> bytes:
        """The validator that proposes block ``height``: always this one."""
        return self.address

    def commit(self, height: int, block_hash: bytes) -> Commit:
        """Sign block ``height`` final."""
        signature = self._key.sign_msg_hash(block_hash).to_bytes()
        return Commit(height, block_hash, ((self.address, signature),))

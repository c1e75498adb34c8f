"""Single-validator consensus: the dev chain's and a one-validator testnet's.

The only validator proposes every block and commits it at once with its own precommit, so a
block is final as soon as it is built. Its commit has the same form as a BFT commit (a
precommit over the canonical sign bytes, round 0), so sync and verification treat both alike.
"""

from __future__ import annotations

from eth_keys import keys

from consensus.commit import Commit
from consensus.messages import Vote, VoteType


class SingleValidator:
    """Consensus of a chain with exactly one validator."""

    def __init__(self, private_key: bytes, chain_id: int) -> None:
        self._key = keys.PrivateKey(private_key)
        self.chain_id = chain_id
        self.address = bytes(self._key.public_key.to_canonical_address())

    def proposer(self, height: int) -> bytes:
        """The validator that proposes block ``height``: always this one."""
        return self.address

    def commit(self, height: int, block_hash: bytes) -> Commit:
        """Sign block ``height`` final: one precommit at round 0."""
        vote = Vote(VoteType.PRECOMMIT, height, 0, block_hash, self.address).signed(
            self.chain_id, self._key.to_bytes())
        return Commit.from_votes([vote])

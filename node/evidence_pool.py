"""The node's pool of double-sign evidence waiting to go on chain, and the transaction that carries it.

Consensus finds evidence (two conflicting votes of one validator, ``EvidenceFound``); the pool
keeps it until a block includes it as a ``Staking.submitEvidence`` call. Its rules mirror what
the chain accepts, so the node never spends gas on evidence the chain refuses:

- **Verified on entry**: signatures for this chain id, the signer in the set of its height
  (``DuplicateVoteEvidence.check``); bad evidence raises ``InvalidEvidence`` and changes nothing.
- **One entry per offence**: the chain punishes a validator once per height (whatever the round
  or step), so the pool keys evidence by ``(validator, height)`` and keeps the first it sees.
- **Expiry**: evidence more than ``unbonding_blocks`` behind the head is refused on chain (the
  stake may be gone), so :meth:`EvidencePool.prune` drops it; evidence for a height not yet
  committed is not accepted.
- **Bounded**: at most ``capacity`` entries (default 1,000); when full, the oldest offence makes
  room for a newer one, and :meth:`EvidencePool.pick` hands at most ``MAX_EVIDENCE_PER_BLOCK``
  (16) to one block, oldest first (closest to expiring).
- Offences seen on chain (:meth:`EvidencePool.mark_committed`) are remembered until they would
  expire anyway, so gossip cannot bring them back.

Pure (no I/O, no clock): the node feeds it heights and calls it from its own loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_utils import to_checksum_address

from ai_precompiles import load_abi
from ai_precompiles.addresses import STAKING
from consensus.evidence import MAX_EVIDENCE_PER_BLOCK, DuplicateVoteEvidence, InvalidEvidence

#: Default most pieces of evidence the pool holds.
DEFAULT_CAPACITY = 1_000
#: Gas limit of one ``submitEvidence`` transaction: about 310,000 are used when the candidate
#: list is no longer than ``staking.max_validators``; a longer list costs about 11,000 more per
#: candidate (docs/ai_precompiles.md), so a node with such parameters passes a higher limit.
SUBMIT_EVIDENCE_GAS = 1_000_000

Offence = tuple[bytes, int]
"""``(validator, height)``: what the chain punishes once."""


def offence_of(evidence: DuplicateVoteEvidence) -> Offence:
    return (evidence.validator, evidence.height)


@dataclass
class EvidencePool:
    """Evidence waiting for a block, keyed by offence."""

    chain_id: int
    """Chain whose votes the evidence must carry."""
    unbonding_blocks: int
    """``staking.unbonding_blocks``: evidence older than this many blocks is useless on chain."""
    capacity: int = DEFAULT_CAPACITY
    """Most entries held."""

    def __post_init__(self) -> None:
        self._pending: dict[Offence, DuplicateVoteEvidence] = {}
        self._committed: dict[Offence, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, offence: object) -> bool:
        return offence in self._pending

    def _expired(self, height: int, head: int) -> bool:
        """The chain would refuse it in the block on top of ``head`` (``submitEvidence``'s rule)."""
        return head + 1 - height > self.unbonding_blocks

    def add(self, evidence: DuplicateVoteEvidence, powers: Mapping[bytes, int], head: int) -> bool:
        """Verify ``evidence`` against ``powers`` (the validator set of its height) and keep it.

        ``head`` is the last committed height (a block built on it is ``head + 1``). Returns False
        when the offence is already pending or on chain, is too old, or the pool is full of newer
        offences; raises :class:`InvalidEvidence` when it proves nothing."""
        evidence.check(self.chain_id, powers)
        if evidence.height > head:
            raise InvalidEvidence(f"evidence for height {evidence.height} above the head {head}")
        key = offence_of(evidence)
        if key in self._pending or key in self._committed or self._expired(evidence.height, head):
            return False
        if len(self._pending) >= self.capacity:
            oldest = min(self._pending, key=lambda k: (k[1], k[0]))
            if (oldest[1], oldest[0]) >= (key[1], key[0]):
                return False
            del self._pending[oldest]
        self._pending[key] = evidence
        return True

    def pick(self, head: int, limit: int = MAX_EVIDENCE_PER_BLOCK) -> list[DuplicateVoteEvidence]:
        """Evidence for the block on top of ``head``: oldest offences first, at most ``limit``
        (never more than ``MAX_EVIDENCE_PER_BLOCK``), expired ones left out."""
        limit = min(limit, MAX_EVIDENCE_PER_BLOCK)
        live = sorted((k for k in self._pending if not self._expired(k[1], head)),
                      key=lambda k: (k[1], k[0]))
        return [self._pending[k] for k in live[:limit]]

    def mark_committed(self, evidence: Iterable[DuplicateVoteEvidence | Offence], head: int) -> None:
        """Offences a block at ``head`` punished (or the chain refused as punished): drop them and
        remember them until they expire."""
        for item in evidence:
            key = offence_of(item) if isinstance(item, DuplicateVoteEvidence) else item
            self._pending.pop(key, None)
            if not self._expired(key[1], head):
                self._committed[key] = key[1]
        self.prune(head)

    def prune(self, head: int) -> None:
        """Forget everything older than the unbonding window at ``head``."""
        for table in (self._pending, self._committed):
            for key in [k for k in table if self._expired(k[1], head)]:
                del table[key]


# -- the transaction that carries evidence ---------------------------------------------------------


def submit_evidence_calldata(evidence: DuplicateVoteEvidence) -> bytes:
    """ABI calldata of ``Staking.submitEvidence(evidence.encode())``."""
    return bytes(load_abi("Staking").by_name["submitEvidence"].encode_args(evidence.encode()))


def submit_evidence_transaction(evidence: DuplicateVoteEvidence, private_key: bytes, nonce: int,
                                gas_price: int, chain_id: int, gas: int = SUBMIT_EVIDENCE_GAS) -> bytes:
    """A signed legacy (EIP-155) transaction to the staking precompile carrying ``evidence``: the
    raw bytes a node puts in its pool (``eth_sendRawTransaction`` form)."""
    tx = {"to": to_checksum_address(STAKING), "value": 0, "data": submit_evidence_calldata(evidence),
          "gas": gas, "gasPrice": gas_price, "nonce": nonce, "chainId": chain_id}
    return bytes(Account.sign_transaction(tx, private_key).raw_transaction)

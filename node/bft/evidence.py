"""The node's pool of double-sign evidence waiting to go on chain, the transaction that carries
it, and the reporter that takes what consensus finds there.

Consensus finds evidence (two conflicting votes of one validator, ``EvidenceFound``); the pool
keeps it until a block includes it as a ``Staking.submitEvidence`` call. Its rules mirror what
the chain accepts, so the node never spends gas on evidence the chain refuses:

- **Verified on entry**: signatures for this chain id, the signer in the set of its height
  (``DuplicateVoteEvidence.check``); bad evidence raises ``InvalidEvidence`` and changes nothing.
- **One entry per offence**: the chain punishes a validator once per height (whatever the round
  or step), so the pool keys evidence by ``(validator, height)`` and keeps the first it sees.
- **Expiry**: evidence more than ``staking.evidence_max_age`` blocks behind the head is refused on
  chain, so :meth:`EvidencePool.prune` drops it; evidence for a height not yet
  committed is not accepted.
- **Bounded**: at most ``capacity`` entries (default 1,000); when full, the oldest offence makes
  room for a newer one, and :meth:`EvidencePool.pick` hands at most ``MAX_EVIDENCE_PER_BLOCK``
  (16) to one block, oldest first (closest to expiring).
- Offences seen on chain (:meth:`EvidencePool.mark_committed`) are remembered until they would
  expire anyway, so gossip cannot bring them back.

The pool is pure (no I/O, no clock): the reporter feeds it heights from its own loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import trio

import ai_precompiles
from ai_precompiles import load_abi
from ai_precompiles.addresses import STAKING
from consensus.evidence import MAX_EVIDENCE_PER_BLOCK, DuplicateVoteEvidence, InvalidEvidence
from node import metrics
from node.chain.core import ChainCore
from node.chain.own_tx import NODE_TIP, sign_call
from node.errors import Refused
from node.validators import ValidatorSets
from node.worker import ChainWorker, Priority

log = logging.getLogger("ailedger.consensus")

#: Default most pieces of evidence the pool holds.
DEFAULT_CAPACITY = 1_000
#: Offences a validator's reporter keeps in its pool (docs/consensus.md §7).
MAX_EVIDENCE = 1024
#: Evidence found while its height is being decided waits for that height's block: this many
#: checks, this far apart.
EVIDENCE_WAIT_TRIES, EVIDENCE_WAIT_SECONDS = 120, 0.5
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
    max_age: int
    """``staking.evidence_max_age``: evidence older than this many blocks is refused on chain."""
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
        return head + 1 - height > self.max_age

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
                                max_fee: int, chain_id: int, tip: int = NODE_TIP,
                                gas: int = SUBMIT_EVIDENCE_GAS) -> bytes:
    """A signed EIP-1559 transaction to the staking precompile carrying ``evidence``: the raw bytes
    a node puts in its pool (``eth_sendRawTransaction`` form)."""
    return sign_call(private_key, chain_id, nonce, STAKING, submit_evidence_calldata(evidence), gas, max_fee, tip)


# -- putting found evidence on chain ---------------------------------------------------------------


class EvidenceReporter:
    """Takes the double signs consensus finds (``EvidenceFound``) to the chain: pooled once per
    offence, then a ``Staking.submitEvidence`` transaction signed by this validator goes into the
    transaction pool, which gossips it like any other; the next proposer includes it and the
    chain slashes (docs/consensus.md §7). Every honest validator that saw the double sign does
    so; the first transaction mined punishes, later ones revert ("already punished") at their
    sender's cost, one per validator at most."""

    def __init__(self, core: ChainCore, worker: ChainWorker, sets: ValidatorSets, key: bytes) -> None:
        self.core, self.worker, self.sets, self._key = core, worker, sets, key
        #: Double signs seen, by offence, until their transaction is pooled; its window is the
        #: chain's evidence age, read at each report.
        self.pool = EvidencePool(core.ledger.chain_id, max_age=1, capacity=MAX_EVIDENCE)

    async def report(self, evidence: DuplicateVoteEvidence) -> None:
        log.warning("consensus: EvidenceFound: validator 0x%s signed two votes at height %d round %d type %d",
                    evidence.validator.hex(), evidence.height, evidence.vote_a.round, int(evidence.vote_a.type))
        core = self.core
        # Found while its height is decided: the chain refuses it until that block is committed.
        for _ in range(EVIDENCE_WAIT_TRIES):
            if await self.worker.run(lambda: int(core.ledger.head.block_number)) >= evidence.height:
                break
            await trio.sleep(EVIDENCE_WAIT_SECONDS)
        else:
            log.warning("consensus: evidence against 0x%s dropped: height %d never committed here",
                        evidence.validator.hex(), evidence.height)
            return
        try:
            tx_hash = await self.worker.run(self._submit, evidence, priority=Priority.PRODUCE)
        except (Refused, InvalidEvidence) as e:
            log.warning("consensus: evidence against 0x%s not submitted: %s", evidence.validator.hex(), e)
            return
        if tx_hash is not None:
            log.warning("consensus: evidence against 0x%s at height %d submitted in transaction 0x%s",
                        evidence.validator.hex(), evidence.height, tx_hash.hex())

    def _submit(self, evidence: DuplicateVoteEvidence) -> bytes | None:
        """On the chain worker: pool the offence and submit its transaction, unless punished."""
        core = self.core
        head = int(core.ledger.head.block_number)
        state = core.ledger.state_at(core.ledger.head)
        if ai_precompiles.get_stake(state, evidence.validator)["jailedUntil"]:
            return None  # punished already: the chain would refuse it
        self.pool.max_age = int(ai_precompiles.get_params(state)["staking.evidence_max_age"])
        powers = {v.address: v.power for v in self.sets.at(evidence.height).validators}
        if not self.pool.add(evidence, powers, head):
            return None
        metrics.CONSENSUS_EVIDENCE.set(len(self.pool))
        return core.submit_call(self._key, STAKING, submit_evidence_calldata(evidence), SUBMIT_EVIDENCE_GAS)

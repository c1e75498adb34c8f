"""A validator's committee duty: when a challenge names it on its committee, its node re-runs the
challenged receipt on its own sidecar from chain and blobs alone and submits its verdict as a
transaction (``Inference.submitVerdict``) before the challenge's deadline.

A missed verdict counts against the validator (``inference.max_missed_verdicts`` jail it), so the
duty runs on its own: every committed block wakes it, and it reads the challenges opened since it
last looked (a bounded page each time, ``challenges.owed_verdicts``). A receipt it cannot judge
(its engine differs from the one the receipt pins, or a blob is not here yet) is retried until
the deadline; an engine that differs is never judged either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import trio

from ai_precompiles import challenges
from ai_precompiles.abi import load as load_abi
from ai_precompiles.addresses import INFERENCE
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent
from node.errors import NodeError
from node.inference import InferenceService
from node.worker import ChainWorker, Priority

log = logging.getLogger("ailedger.inference")

#: Gas of one submitVerdict transaction (about 575,000 when it decides a challenge).
VERDICT_GAS = 1_500_000
#: Seconds between looks when no block wakes the duty; between retries of a receipt it could not
#: judge yet.
IDLE_SECONDS, RETRY_SECONDS = 5.0, 2.0


@dataclass
class CommitteeDuty:
    """Judges the challenges whose committee names this node's validator."""

    core: ChainCore
    worker: ChainWorker
    reads: ChainWorker
    service: InferenceService
    scanned: int = 0
    """Challenges up to this id have been looked at."""
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Challenge id -> (receipt id, deadline block) still to judge."""

    def __post_init__(self) -> None:
        self._wake = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.core.events.subscribe(self._on_chain_event)
        task_status.started()
        while True:
            with trio.move_on_after(IDLE_SECONDS):
                await self._wake.wait()
            self._wake = trio.Event()
            await self._look()
            for challenge_id in sorted(self.pending):
                await self._judge(challenge_id)

    def _on_chain_event(self, event: ChainEvent) -> None:
        if isinstance(event, BlockCommitted) and self._token is not None:
            try:
                self._token.run_sync_soon(self._wake.set)
            except trio.RunFinishedError:
                pass

    async def _look(self) -> None:
        """New challenges that name this validator (one bounded page per wake)."""
        me = self.service.address

        def page() -> dict[str, object]:
            state = self.core.ledger.state_at(self.core.ledger.head)
            return challenges.owed_verdicts(state, me, self.scanned + 1)

        found = await self.reads.run(page)
        for owed in found["owed"]:  # type: ignore[attr-defined]
            self.pending.setdefault(int(owed["challengeId"]), (int(owed["receiptId"]), int(owed["deadline"])))
        nxt = found["next"]
        if nxt is None:
            count = await self.reads.run(lambda: challenges.challenge_count(
                self.core.ledger.state_at(self.core.ledger.head)))
            self.scanned = max(self.scanned, count)
        else:
            self.scanned = int(nxt) - 1  # type: ignore[call-overload]
            self._wake.set()  # more to read: the next page at once

    async def _judge(self, challenge_id: int) -> None:
        receipt_id, deadline = self.pending[challenge_id]
        head = await self.reads.run(lambda: int(self.core.ledger.head.block_number))
        if head >= deadline:
            log.warning("challenge %d: the verdict deadline (block %d) passed before this node could judge "
                        "receipt %d", challenge_id, deadline, receipt_id)
            del self.pending[challenge_id]
            return
        try:
            found = await self.service.verify_receipt(self.core, self.reads, receipt_id)
        except NodeError as e:
            log.info("challenge %d: receipt %d cannot be re-run yet (%s); retrying", challenge_id, receipt_id, e)
            await trio.sleep(RETRY_SECONDS)
            return
        if found.verdict == "unverifiable":
            log.warning("challenge %d: receipt %d pins another engine than this node's (%s); no verdict",
                        challenge_id, receipt_id, found.reason)
            del self.pending[challenge_id]
            return
        upheld = found.verdict == "invalid"
        data = load_abi("Inference").by_name["submitVerdict"].encode_args(challenge_id, upheld)
        key = self.service.validator_key
        try:
            tx_hash = await self.worker.run(self.core.submit_call, key, INFERENCE, data, VERDICT_GAS,
                                            priority=Priority.PRODUCE)
        except NodeError as e:
            log.warning("challenge %d: verdict not submitted: %s", challenge_id, e)
            await trio.sleep(RETRY_SECONDS)
            return
        log.warning("challenge %d: receipt %d re-run here is %s (output %s, attribution off by %d bp): verdict %s "
                    "in transaction 0x%s", challenge_id, receipt_id, found.verdict,
                    "exact" if found.output_matches else "different", found.attribution_diff_bp,
                    "upheld" if upheld else "rejected", tx_hash.hex())
        del self.pending[challenge_id]

"""What a validator operator watches of the node's AI side: its sidecar's state (starting,
ready, down, back) in the log, in ``ai_inferQuote`` and in metrics, and counters of the AI work
the chain records for its validator.

The sidecar is a separate process that can be slow to start (it loads its base model), crash,
or be restarted by the operator. :class:`SidecarWatch` asks its gRPC health service every
``interval`` seconds, from a thread (a gRPC call blocks), on a fresh channel each time: a kept
channel backs off its reconnects for up to two minutes, and a sidecar that is back must be seen
as back at the next check. Each change of state is one log line and one metrics sample, never a
line per check.

:class:`AICounters` counts from the chain's one event stream (``node/chain/events.py``): the
inference receipts recorded for this validator, the adapters it trained, the verdicts it
submitted, the challenges against it and the committees it sat on. What the chain committed is
what counts, whoever served it, so the counters agree with ``eth_getLogs``. Blob bytes are
counted where blobs are written (``node/blobstore.py``).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from node import metrics
from node.chain.events import BlockCommitted, ChainEvent

if TYPE_CHECKING:
    from state import Ledger

#: A child of the node's logger, so `ailedger run`'s log has these lines; `ailedger dev`, whose
#: output is its banner, shows only this logger's.
log = logging.getLogger("ailedger.sidecar")

#: Seconds between two health checks of the sidecar.
CHECK_INTERVAL = 2.0
#: Seconds one health check may take before the sidecar counts as not answering.
CHECK_TIMEOUT = 2.0


class SidecarState(enum.Enum):
    """The sidecar as the node last saw it."""

    STARTING = "starting"
    """Not serving yet since the node started (it may be loading its base model)."""
    READY = "ready"
    """Its health service answers SERVING."""
    DOWN = "down"
    """It was ready, and now does not answer or answers NOT_SERVING."""


@dataclass
class SidecarWatch:
    """A validator's sidecar, checked on a timer; its state and when it last changed."""

    address: str
    """gRPC address of the sidecar."""
    interval: float = CHECK_INTERVAL
    """Seconds between checks."""
    state: SidecarState = SidecarState.STARTING
    since: float = field(default_factory=time.time)
    """Unix time of the last change of state."""
    reason: str = ""
    """Why the last check did not find it serving (empty when it did)."""
    changes: dict[str, int] = field(default_factory=lambda: {"ready": 0, "down": 0, "back": 0})
    """How many times it became ready, went down and came back since the node started."""

    def __post_init__(self) -> None:
        metrics.SIDECAR_UP.set(0)

    def check(self) -> tuple[bool, str]:
        """Ask the sidecar's health service once (blocking; run in a thread): (serving, why not)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = grpc.insecure_channel(self.address)
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=CHECK_TIMEOUT)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            return False, "not answering" if code in (grpc.StatusCode.UNAVAILABLE, None) else f"health check: {code.name}"
        finally:
            channel.close()
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return True, ""
        return False, "not serving (loading its base model?)"

    def observe(self, serving: bool, reason: str = "") -> None:
        """Take one observation of the sidecar (a check here, or one a handler made): a change
        of state is logged and counted."""
        self.reason = "" if serving else (reason or "not serving")
        if serving and self.state is not SidecarState.READY:
            change = "back" if self.state is SidecarState.DOWN else "ready"
            if change == "back":
                log.info("sidecar at %s back after %.0f s down", self.address, time.time() - self.since)
            else:
                log.info("sidecar at %s ready", self.address)
            self._become(SidecarState.READY, change)
        elif not serving and self.state is SidecarState.READY:
            log.warning("sidecar at %s down: %s; ai_inferQuote reports it, ai_infer refuses until it is back",
                        self.address, self.reason)
            self._become(SidecarState.DOWN, "down")

    def _become(self, state: SidecarState, change: str) -> None:
        self.state = state
        self.since = time.time()
        self.changes[change] += 1
        metrics.SIDECAR_UP.set(1 if state is SidecarState.READY else 0)
        metrics.SIDECAR_CHANGES.labels(change).inc()

    def status(self) -> dict[str, Any]:
        """What ``ai_inferQuote`` reports: the state, since when, and why not ready. The address
        is left out: the sidecar is the operator's private service."""
        return {"state": self.state.value, "since": int(self.since), "reason": self.reason or None,
                "changes": dict(self.changes)}

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Check the sidecar every ``interval`` seconds until cancelled."""
        log.info("watching the sidecar at %s (every %.0f s)", self.address, self.interval)
        task_status.started()
        while True:
            # Abandoned on cancel: a shutdown never waits out a check (trio-typing's stubs
            # predate the argument).
            serving, reason = await trio.to_thread.run_sync(self.check, abandon_on_cancel=True)  # type: ignore[call-arg]
            self.observe(serving, reason)
            await trio.sleep(self.interval)


class AICounters:
    """Counts, from committed blocks, the AI work the chain records for one validator."""

    def __init__(self, validator: bytes, ledger: Ledger) -> None:
        import ai_precompiles
        from ai_precompiles.addresses import INFERENCE, MODEL_REGISTRY

        self.validator = validator
        self.ledger = ledger
        self._word = int.from_bytes(validator, "big")
        events = {name: ai_precompiles.MODULES[module].abi.events[name].topic0 for module, name in (
            ("Inference", "InferenceRecorded"), ("ModelRegistry", "AdapterRegistered"),
            ("Inference", "VerdictSubmitted"), ("Inference", "ChallengeOpened"), ("Inference", "CommitteeMember"))}
        # (address, topic 0) -> how to tell that the log is about this validator, and what it counts
        self._rules: dict[tuple[bytes, int], tuple[str, int, Any]] = {
            # the validator is the first word of the data (it is not indexed)
            (INFERENCE, events["InferenceRecorded"]): ("data", 0, metrics.AI_INFERENCES),
            (MODEL_REGISTRY, events["AdapterRegistered"]): ("data", 0, metrics.AI_TRAININGS),
            (INFERENCE, events["VerdictSubmitted"]): ("topic", 2, metrics.AI_VERIFICATIONS),
            (INFERENCE, events["ChallengeOpened"]): ("topic", 3, metrics.AI_CHALLENGES.labels("accused")),
            (INFERENCE, events["CommitteeMember"]): ("topic", 2, metrics.AI_CHALLENGES.labels("committee")),
        }
        self._addresses = (INFERENCE, MODEL_REGISTRY)

    def on_chain_event(self, event: ChainEvent) -> None:
        """A chain-events subscriber (chain thread): count the block's logs about this validator.
        Bounded by the block's logs; nothing else is done here."""
        if not isinstance(event, BlockCommitted) or not event.block.transactions or (
                event.receipts is None and not event.may_log(*self._addresses)):
            return
        receipts = event.receipts if event.receipts is not None else self.ledger.receipts(event.block)
        for receipt in receipts:
            for entry in receipt.logs:
                if not entry.topics:
                    continue
                rule = self._rules.get((bytes(entry.address), entry.topics[0]))
                if rule is None:
                    continue
                where, index, counter = rule
                if where == "topic":
                    value = entry.topics[index] if len(entry.topics) > index else None
                else:
                    data = bytes(entry.data)
                    value = int.from_bytes(data[32 * index : 32 * index + 32], "big") if len(data) >= 32 * (index + 1) else None
                if value == self._word:
                    counter.inc()

"""What a JSON-RPC handler is given: the node's parts it may use, never the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.chain.core import ChainCore
from node.chain.dev import DevControls
from node.chain.reader import NetworkStatus
from node.errors import NotAvailable
from node.inference import InferenceService
from node.rpc.filters import FilterRegistry
from node.sidecar_watch import SidecarWatch
from node.training import TrainingService
from node.worker import ChainWorker


@dataclass
class NodeContext:
    """Every handler's first argument. CHAIN handlers run on the chain worker and may use
    everything; READ handlers run on the read worker and may only read committed state
    (``core.call``, ``core.resolve``, the ledger, ``filters.logs``); ASYNC handlers run on the
    trio loop and reach the core only through ``worker``."""

    core: ChainCore
    filters: FilterRegistry
    worker: ChainWorker
    read_worker: ChainWorker
    network: NetworkStatus = field(default_factory=NetworkStatus)
    """Peers and sync progress, kept by the network side."""
    dev: DevControls | None = None
    """A dev chain's controls; None on every other node."""
    inference: InferenceService | None = None
    """This node's inference service when it serves ai_infer (a sidecar and a validator key)."""
    sidecar_watch: SidecarWatch | None = None
    """The state of that service's sidecar, checked on a timer (``node/sidecar_watch.py``)."""
    training: TrainingService | None = None
    """This node's training service when it trains for builders (ai_train: a sidecar and a
    validator key)."""

    def dev_controls(self, what: str) -> DevControls:
        """The dev controls, or NotAvailable on a node that serves a real chain."""
        if self.dev is None:
            raise NotAvailable(f"{what} is a dev-chain control; this node serves a real chain")
        return self.dev

    def sidecar_status(self, serving: bool | None = None) -> dict[str, Any] | None:
        """The sidecar's state for ``ai_inferQuote``, after taking ``serving`` (a check the
        handler just made) as the newest observation; None on a node without a sidecar."""
        if self.sidecar_watch is None:
            return None
        if serving is not None:
            self.sidecar_watch.observe(serving)
        return self.sidecar_watch.status()

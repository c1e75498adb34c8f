"""A validator's inference service: its sidecar, its key and its price, and what it has in
flight.

``ai_infer`` (``node/rpc/ai_infer.py``) checks a user's signed request on chain, then asks
this service to run the prompt on the sidecar and records the receipt. The sidecar calls
block (gRPC), so they run in a thread, never on the trio loop or the chain thread; at most
``concurrency`` prompts are on the sidecar at once and ``max_waiting`` more may wait, so a
burst of requests cannot queue without end. Sidecar failures are the node's typed errors
(busy, not serving, unknown adapter), mapped to JSON-RPC codes at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from eth_keys import keys

from node.errors import LimitExceeded, NotFound, Refused

if TYPE_CHECKING:
    from sidecar.client import Attributed


@dataclass
class InferenceService:
    """What a validator's node needs to serve ``ai_infer``: its sidecar, key and price."""

    sidecar: str
    """gRPC address of the sidecar that runs prompts."""
    validator_key: bytes
    """Key the receipts are signed and sent with (the node's validator key)."""
    price: int
    """Wei charged per request (the quote; a request's maxFee must cover it)."""
    max_tokens: int = 128
    """Most tokens one request may generate."""
    concurrency: int = 4
    """Prompts in flight on the sidecar at once; more wait (the sidecar batches them)."""
    timeout: float = 300.0
    """Seconds one sidecar call may take."""
    slots: trio.Semaphore = field(init=False)
    max_waiting: int = 64
    """Requests waiting for a slot beyond which new ones are refused (busy)."""
    in_flight: set[bytes] = field(default_factory=set)
    """Request hashes being served now: the same signed request is not run twice at once."""
    reserved: dict[bytes, int] = field(default_factory=dict)
    """Per user, the fees of their requests being served now: a deposit covers them all."""
    adapter_ids: dict[str, str] = field(default_factory=dict)
    """On-chain weights hash -> the sidecar's adapter id (learnt from ListAdapters)."""
    engine_profile: bytes | None = None
    """The sidecar's engine-profile blob (canonical JSON), once it has answered: a receipt pins
    its keccak-256, and the node keeps the blob so any node can read what was pinned."""

    def __post_init__(self) -> None:
        self.slots = trio.Semaphore(self.concurrency)
        self.address: bytes = keys.PrivateKey(self.validator_key).public_key.to_canonical_address()

    # -- the sidecar (blocking; run in a thread) --

    def _sidecar_adapter(self, client: Any, weights_hash: str) -> str:
        if weights_hash not in self.adapter_ids:
            listed = client.list_adapters()
            if listed.engine_profile:
                self.engine_profile = bytes(listed.engine_profile)
            for info in listed.adapters:
                self.adapter_ids["0x" + info.weights_hash.lower().removeprefix("0x")] = info.adapter_id
        if weights_hash not in self.adapter_ids:
            raise NotFound(f"this node's sidecar does not hold the adapter with weights {weights_hash}")
        return self.adapter_ids[weights_hash]

    def run_prompt(self, weights_hash: str, prompt: bytes, max_tokens: int) -> Attributed:
        """The sidecar's answer to one prompt on the adapter with ``weights_hash``: its
        output, output hash and attribution weights."""
        import grpc

        from sidecar.client import SidecarClient

        try:
            with SidecarClient(self.sidecar, timeout=self.timeout) as client:
                adapter = self._sidecar_adapter(client, weights_hash)
                return client.infer(adapter, prompt, max_tokens)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise LimitExceeded(f"the sidecar is busy: {e.details()}") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise Refused("this node's sidecar is not serving yet; try again shortly") from None
            raise Refused(f"sidecar: {e.details() if hasattr(e, 'details') else e}") from None

    def sidecar_ready(self) -> bool:
        try:
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            from sidecar.client import SidecarClient

            with SidecarClient(self.sidecar, timeout=2) as client:
                reply = health_pb2_grpc.HealthStub(client.channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2)
                serving = bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
                if serving and self.engine_profile is None:
                    self.engine_profile = client.engine_profile()[0] or None
                return serving
        except Exception:
            return False

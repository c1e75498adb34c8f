"""A validator's AI service: its sidecar, its key and its price, what it has in flight, and the
adapters and receipts it takes from the chain.

- ``ai_infer`` (``node/rpc/ai_infer.py``) checks a user's signed request on chain, then asks this
  service to run the prompt on the sidecar and records the receipt.
- An adapter is network data (its weights, attribution index and manifest are blobs the
  registration names; ``node/network.py`` replicates them): when the sidecar lacks one, the
  service reads the three artifacts from the node's blob store and imports them (the sidecar
  checks every hash and the base model), so every validator serves every adapter.
- ``ai_verifyReceipt`` re-runs a receipt from chain and blobs alone on the sidecar
  (:meth:`InferenceService.verify_receipt`); a committee member's node does the same to judge a
  challenge (``node/ai_watch.py``).

Sidecar calls block (gRPC), so they run in a thread, never on the trio loop or the chain thread.
At most ``concurrency`` prompts are on the sidecar at once and ``max_waiting`` more may wait,
served round-robin by user with at most ``max_per_user`` each, so no user (or sybil crowd of one
deposit) fills the queue and an honest request waits behind at most one run of each other user.
Sidecar failures are the node's typed errors (busy, not serving, unknown adapter), mapped to
JSON-RPC codes at the edge.
"""

from __future__ import annotations

import collections
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio
from eth_keys import keys

from ai_precompiles import inference, registry
from node.chain.core import ChainCore
from node.errors import LimitExceeded, NotFound, Refused
from node.worker import ChainWorker

if TYPE_CHECKING:
    from sidecar.client import Attributed, SidecarClient, Verified

log = logging.getLogger("ailedger.inference")

#: Verification's attribution tolerance (basis points), docs/sidecar.md: a contribution's points
#: are its floor or floor + 1 of a float share, so float noise moves it by at most 2.
ATTRIBUTION_TOLERANCE_BP = 2


class Lies(Protocol):
    """Test-only misbehaviour of a validator's receipts (``node/ai_faults.py``)."""

    def alter(self, result: Attributed, served: str, lineage: tuple[int, ...]) -> Attributed: ...

    def adapter(self, asked: str, held: list[str]) -> str: ...


@dataclass(frozen=True)
class Artifacts:
    """An adapter's three artifacts, read from the node's blob store."""

    manifest: bytes
    weights: bytes
    attribution_index: bytes


@dataclass(frozen=True)
class ReceiptCheck:
    """What a re-run of a receipt found (``ai_verifyReceipt``)."""

    receipt_id: int
    verdict: str
    """``valid`` (output exact, attribution within tolerance), ``invalid`` (either differs), or
    ``unverifiable`` (this node's engine differs from the one the receipt pins: no judgement)."""
    output_matches: bool
    attribution_matches: bool
    attribution_diff_bp: int
    tolerance_bp: int
    output: bytes
    reason: str = ""


def read_artifacts(core: ChainCore, model: registry.Model) -> Artifacts:
    """On the chain (or read) worker: the adapter's artifacts from the blob store; NotFound
    names what is not replicated here yet."""
    wanted = {"manifest": model.manifest_hash, "weights": model.weights_hash,
              "attribution index": model.attribution_index_hash}
    if model.manifest_hash == b"\x00" * 32:
        raise NotFound(f"adapter {model.id} was registered without a training manifest: no node can import it")
    missing = [(name, digest) for name, digest in wanted.items() if core.blobs.size(digest) is None]
    if missing:
        # Replication brings them after the registration block; a node that joined later (state
        # sync) or missed them asks its peers now.
        asked = all([core.fetch_lazily(digest) for _, digest in missing])
        name, digest = missing[0]
        raise NotFound(f"this node does not hold adapter {model.id}'s {name} (0x{digest.hex()}) yet; "
                       + ("it is being fetched from its peers now: try again in a few seconds" if asked
                          else "it is fetched from peers after the registration block"))
    data = {name: core.blobs.get(digest) for name, digest in wanted.items()}
    return Artifacts(data["manifest"], data["weights"], data["attribution index"])


@dataclass
class InferenceService:
    """What a validator's node needs to serve and check inference: its sidecar, key and price."""

    sidecar: str
    """gRPC address of the sidecar that runs prompts."""
    validator_key: bytes
    """Key the receipts and verdicts are signed and sent with (the node's validator key)."""
    price: int
    """Wei charged per request (the quote; a request's maxFee must cover it)."""
    max_tokens: int = 128
    """Most tokens one request may generate."""
    concurrency: int = 4
    """Prompts in flight on the sidecar at once; more wait (the sidecar batches them)."""
    timeout: float = 300.0
    """Seconds one sidecar call may take (a request's deadline must leave room for it)."""
    max_waiting: int = 64
    """Requests waiting for a slot beyond which new ones are refused (busy)."""
    max_per_user: int = 16
    """Requests of one user in flight or waiting at once."""
    lies: Lies | None = None
    """Test-only: how this validator lies (None on every production node)."""
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
        self.address: bytes = keys.PrivateKey(self.validator_key).public_key.to_canonical_address()
        self._running = 0
        self._queues: collections.OrderedDict[bytes, collections.deque[trio.Event]] = collections.OrderedDict()
        self._per_user: collections.Counter[bytes] = collections.Counter()
        self._imports = trio.Lock()

    # -- the fair queue (trio loop) ----------------------------------------------------------

    @asynccontextmanager
    async def slot(self, user: bytes) -> Any:
        """Hold one of the sidecar's ``concurrency`` slots for ``user``'s request: refused when
        ``max_waiting`` wait already or the user has ``max_per_user`` in the queue; waiting users
        are served round-robin, one request each in turn."""
        waiting = sum(len(q) for q in self._queues.values())
        if waiting >= self.max_waiting:
            raise LimitExceeded("this node is serving too many inferences; try again shortly")
        if self._per_user[user] >= self.max_per_user:
            raise LimitExceeded(f"at most {self.max_per_user} of your requests wait on this node at once")
        self._per_user[user] += 1
        try:
            if self._running >= self.concurrency or waiting:
                turn = trio.Event()
                self._queues.setdefault(user, collections.deque()).append(turn)
                try:
                    await turn.wait()
                except BaseException:
                    self._leave_queue(user, turn)
                    raise
            else:
                self._running += 1
            try:
                yield
            finally:
                self._release()
        finally:
            self._per_user[user] -= 1
            if not self._per_user[user]:
                del self._per_user[user]

    def _leave_queue(self, user: bytes, turn: trio.Event) -> None:
        if turn.is_set():  # handed a slot just as it was cancelled: pass it on
            self._release()
            return
        queue = self._queues.get(user)
        if queue is not None and turn in queue:
            queue.remove(turn)
            if not queue:
                del self._queues[user]

    def _release(self) -> None:
        """A slot is free: the next user in turn takes it (round-robin), else it is idle."""
        while self._queues:
            user, queue = next(iter(self._queues.items()))
            turn = queue.popleft()
            if queue:
                self._queues.move_to_end(user)  # this user's next request waits its turn
            else:
                del self._queues[user]
            turn.set()
            return
        self._running -= 1

    # -- the sidecar (blocking; run in a thread) ---------------------------------------------

    def _client(self) -> SidecarClient:
        from sidecar.client import SidecarClient

        return SidecarClient(self.sidecar, timeout=self.timeout)

    def _learn(self, client: SidecarClient) -> None:
        listed = client.list_adapters()
        if listed.engine_profile:
            self.engine_profile = bytes(listed.engine_profile)
        for info in listed.adapters:
            self.adapter_ids["0x" + info.weights_hash.lower().removeprefix("0x")] = info.adapter_id

    def held_adapter(self, weights_hash: str) -> str | None:
        """The sidecar's id of the adapter with ``weights_hash``, or None when it lacks it."""
        if weights_hash not in self.adapter_ids:
            with _map_sidecar_errors(), self._client() as client:
                self._learn(client)
        return self.adapter_ids.get(weights_hash)

    def import_adapter(self, artifacts: Artifacts) -> str:
        """Send an adapter's artifacts to the sidecar, which checks their hashes and its base."""
        from sidecar.client import AdapterArtifacts

        with _map_sidecar_errors(), self._client() as client:
            answer = client.import_adapter(AdapterArtifacts.of(artifacts.manifest, artifacts.weights,
                                                               artifacts.attribution_index))
        weights_hash = "0x" + answer.weights_hash.lower().removeprefix("0x")
        self.adapter_ids[weights_hash] = answer.adapter_id
        return str(answer.adapter_id)

    def run_prompt(self, adapter_id: str, prompt: bytes, max_tokens: int) -> Attributed:
        """The sidecar's answer to one prompt: its output, output hash and attribution."""
        if self.lies is not None:
            adapter_id = self.lies.adapter(adapter_id, sorted(set(self.adapter_ids.values())))
        with _map_sidecar_errors(), self._client() as client:
            return client.infer(adapter_id, prompt, max_tokens)

    def run_verify(self, weights_hash: str, prompt: bytes, max_tokens: int, profile_hash: str, profile: bytes,
                   output_hash: str, attribution: list[tuple[bytes, int]]) -> Verified:
        with _map_sidecar_errors(), self._client() as client:
            return client.verify(weights_hash, prompt, max_tokens, engine_profile_hash=profile_hash,
                                 engine_profile=profile, expected_output_hash=output_hash,
                                 expected_attribution=attribution, tolerance_bp=ATTRIBUTION_TOLERANCE_BP)

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

    # -- orchestration (trio loop) -----------------------------------------------------------

    async def adapter(self, core: ChainCore, reads: ChainWorker, model: registry.Model) -> str:
        """The sidecar's id of ``model``, imported from the node's blobs when it lacks it.

        A merge's parents are imported first: the sidecar rebuilds a merge from the parents it
        names before it stores it, and refuses one that does not rebuild (docs/merges.md). The
        recursion is bounded by ``registry.max_depth`` and each model is imported once."""
        weights_hash = "0x" + model.weights_hash.hex()
        held = await trio.to_thread.run_sync(self.held_adapter, weights_hash)
        if held is not None:
            return held
        for parent in await reads.run(_merge_parents, core, model.id):
            await self.adapter(core, reads, parent)
        async with self._imports:  # one import at a time; a second asker finds it held
            held = await trio.to_thread.run_sync(self.held_adapter, weights_hash)
            if held is not None:
                return held
            artifacts = await reads.run(read_artifacts, core, model)
            adapter_id = await trio.to_thread.run_sync(self.import_adapter, artifacts)
            log.info("adapter %d imported into the sidecar from the node's blobs (weights %s)", model.id,
                     weights_hash)
            return adapter_id

    async def verify_receipt(self, core: ChainCore, reads: ChainWorker, receipt_id: int) -> ReceiptCheck:
        """Re-run receipt ``receipt_id`` from chain and blobs alone and compare."""
        receipt, model, prompt, profile = await reads.run(_receipt_inputs, core, receipt_id)
        await self.adapter(core, reads, model)
        attribution = [(str(c).encode(), w) for c, w in zip(receipt.contribution_ids, receipt.weights_bp,
                                                            strict=True)]
        try:
            async with self.slot(b"verify"):
                found = await trio.to_thread.run_sync(
                    self.run_verify, "0x" + receipt.weights_hash.hex(), prompt, receipt.max_tokens,
                    "0x" + receipt.engine_profile.hex(), profile, "0x" + receipt.output_hash.hex(), attribution)
        except _EngineDiffers as e:
            return ReceiptCheck(receipt_id, "unverifiable", False, False, 0, ATTRIBUTION_TOLERANCE_BP, b"", str(e))
        valid = found.output_matches and found.attribution_matches
        return ReceiptCheck(receipt_id, "valid" if valid else "invalid", found.output_matches,
                            found.attribution_matches, found.attribution_diff_bp, found.tolerance_bp,
                            found.answer.output)


def _merge_parents(core: ChainCore, model_id: int) -> list[registry.Model]:
    """On a worker: the parents of a merged adapter (none for any other model)."""
    state = core.ledger.state_at(core.ledger.head)
    merge = registry.get_merge(state, model_id)
    if merge is None:
        return []
    parents = [registry.get_model(state, p) for p in merge.parent_ids]
    return [p for p in parents if p is not None]


def _receipt_inputs(core: ChainCore, receipt_id: int) -> tuple[inference.Receipt, registry.Model, bytes, bytes]:
    """On a worker: the receipt, its adapter, its prompt and the engine profile it pins."""
    state = core.ledger.state_at(core.ledger.head)
    receipt = inference.get_receipt(state, receipt_id)
    if receipt is None:
        raise NotFound(f"receipt {receipt_id} does not exist")
    model = registry.get_model(state, receipt.adapter_id)
    assert model is not None  # a receipt names a registered adapter
    blobs = []
    for name, digest in (("prompt", receipt.prompt_hash), ("engine profile", receipt.engine_profile)):
        if core.blobs.size(digest) is None:
            raise NotFound(f"this node does not hold receipt {receipt_id}'s {name} (0x{digest.hex()}) yet")
        blobs.append(core.blobs.get(digest))
    return receipt, model, blobs[0], blobs[1]


class _EngineDiffers(Refused):
    """The sidecar's engine is not the one a receipt pins: it cannot judge the receipt."""


class _map_sidecar_errors:  # noqa: N801 - a context manager, named like contextlib's
    """gRPC failures as the node's typed errors."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if error is None:
            return
        import grpc

        if not isinstance(error, grpc.RpcError):
            return
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise LimitExceeded(f"the sidecar is busy: {details}") from None
        if code == grpc.StatusCode.UNAVAILABLE:
            raise Refused("this node's sidecar is not serving yet; try again shortly") from None
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            raise _EngineDiffers(f"sidecar: {details}") from None
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"sidecar: {details}") from None
        raise Refused(f"sidecar: {details}") from None


"""The CLI's side of a sidecar's gRPC: a client whose errors read as one line saying what to do,
the health wait, finding an adapter by its weights, and the sidecar's base model on chain.

grpc and the sidecar's client load only when a command talks to a sidecar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from node.cli.client import Client
from node.cli.errors import CLIError
from node.cli.options import parse_hash
from node.cli.reads import list_all

if TYPE_CHECKING:
    import grpc

    from sidecar.client import SidecarClient


class sidecar_client:  # noqa: N801 - used as a context manager, like open()
    """A sidecar gRPC client whose errors come out as one CLIError line saying what to do."""

    def __init__(self, address: str, timeout: float = 3600.0) -> None:
        from sidecar.client import SidecarClient

        self.address = address
        self.client = SidecarClient(address, timeout=timeout)

    def __enter__(self) -> SidecarClient:
        return self.client

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.client.close()
        if exc is not None:
            import grpc

            if isinstance(exc, grpc.RpcError):
                raise CLIError(grpc_message(exc, self.address)) from None


def grpc_message(exc: grpc.RpcError, address: str) -> str:
    """One line for a gRPC error: what happened and what to do."""
    import grpc

    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"the sidecar at {address} is not serving (yet): start `ailedger dev` (it starts one) or "
                "`ailedger sidecar`, wait for \"sidecar ready\", or give --sidecar / AILEDGER_SIDECAR")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return f"the sidecar refused the request: {details}"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"the sidecar does not have it: {details}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"the sidecar is busy ({details}); try again shortly"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the sidecar at {address} did not answer in time"
    return f"sidecar error {code.name if code else ''}: {details}"


def wait_sidecar(address: str, timeout: float, progress: Callable[[float], None] | None = None) -> None:
    """Block until the sidecar's health check says SERVING; ``progress(seconds)`` every ~10 s."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    started = time.monotonic()
    last = started
    channel = grpc.insecure_channel(address)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            now = time.monotonic()
            if now - started > timeout:
                raise CLIError(f"the sidecar at {address} was not ready after {timeout:.0f} s")
            if progress is not None and now - last >= 10:
                progress(now - started)
                last = now
            time.sleep(0.5)
    finally:
        channel.close()


def sidecar_adapter(sidecar: SidecarClient, weights_hash: str) -> str:
    """The sidecar's id of the adapter whose weights hash to ``weights_hash`` (0x hex)."""
    for info in sidecar.list_adapters().adapters:
        if "0x" + info.weights_hash.lower().removeprefix("0x") == weights_hash.lower():
            return str(info.adapter_id)
    raise CLIError(f"the sidecar holds no adapter with weights {weights_hash}")


def base_model_id(client: Client, weights_hash: str) -> int | None:
    """On-chain id of the base model with these weights, if registered."""
    wanted = "0x" + weights_hash.lower().removeprefix("0x")
    for m in list_all(client, "ai_listModels", "models"):
        if int(m["kind"]) == 1 and m["weightsHash"].lower() == wanted:
            return int(m["id"])
    return None


#: License a sidecar's base model is registered under (the shipped one's).
BASE_LICENSE = "apache-2.0"


def base_model_entry(name: str, weights_hash: str) -> dict[str, str]:
    """How a sidecar's base model is registered, in the genesis file's ``ai.baseModels`` form:
    its weights hash, and config and tokenizer hashes derived from its name (the sidecar names
    a model by its weights hash; the other two only tell models apart)."""
    from eth_hash.auto import keccak

    return {"weightsHash": "0x" + weights_hash.lower().removeprefix("0x"),
            "configHash": "0x" + keccak(b"config:" + name.encode()).hex(),
            "tokenizerHash": "0x" + keccak(b"tokenizer:" + name.encode()).hex(),
            "license": BASE_LICENSE}


def shipped_base_entry() -> dict[str, str] | None:
    """The registration of the base model shipped with the sidecar, read from the hash shipped
    beside it (no torch, no running sidecar); None when the sidecar package is not installed."""
    import importlib.util

    if importlib.util.find_spec("sidecar") is None:
        return None
    from sidecar.config import SHIPPED_BASE_NAME, shipped_base_weights_hash

    weights = shipped_base_weights_hash()
    return None if weights is None else base_model_entry(SHIPPED_BASE_NAME, weights)


def register_sidecar_base(client: Client, sidecar_address: str) -> tuple[int, str, bool]:
    """Register the sidecar's base model on chain unless it is: (id, weights hash, new?)."""
    with sidecar_client(sidecar_address) as sidecar:
        listing = sidecar.list_adapters()
    entry = base_model_entry(listing.base_model, listing.base_model_hash)
    weights = entry["weightsHash"]
    existing = base_model_id(client, weights)
    if existing is not None:
        return existing, weights, False
    receipt = client.transact("ModelRegistry", "registerBaseModel", parse_hash(weights),
                              parse_hash(entry["configHash"]), parse_hash(entry["tokenizerHash"]), entry["license"])
    return client.event_arg(receipt, "ModelRegistry", "BaseModelRegistered"), weights, True


def shown_training(events: Iterable[Any], desc: str, stream: IO[str] | None = None) -> Any:
    """Follow a sidecar's Train or Retrain stream on a :class:`node.progress.Progress` (a bar on
    a terminal, a line per milestone elsewhere, each step drawn once) and return its result
    (None if the stream ended without one)."""
    from node.progress import Progress

    result = None
    with Progress(desc, "step", stream=stream) as progress:
        for event in events:
            if hasattr(event, "total_steps"):
                progress.move_to(event.step, event.total_steps, loss=f"{event.loss:.3f}", phase=event.phase)
            else:
                result = event
    return result

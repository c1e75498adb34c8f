"""Running a node: open the ledger, start the chain worker, the JSON-RPC server, block
production and metrics on one trio loop, and shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from consensus import SingleValidator
from genesis import Genesis
from node import metrics
from node.core import ChainCore
from node.rpc.server import MAX_BODY, RPCServer
from node.worker import ChainWorker
from state import Ledger, LevelDBStore, MemoryStore

log = logging.getLogger("ailedger")


@dataclass
class NodeConfig:
    """How to run one node."""

    host: str = "127.0.0.1"
    """Interface the JSON-RPC server binds."""
    port: int = 8545
    """JSON-RPC port (HTTP and WebSocket)."""
    datadir: Path | None = None
    """LevelDB directory; None keeps the chain in memory (dev)."""
    genesis: Genesis | None = None
    """Genesis to create the chain from when the datadir is empty."""
    block_time: float | None = None
    """Seconds between blocks; None mines a block per transaction (automine)."""
    dev_keys: list[bytes] = field(default_factory=list)
    """Private keys eth_sendTransaction/eth_sign may use (dev accounts only)."""
    validator_key: bytes | None = None
    """Key of this node's validator: it proposes, signs the commits and receives the fees."""
    metrics_port: int | None = None
    """Prometheus port; None disables metrics."""


def open_ledger(config: NodeConfig) -> Ledger:
    store = LevelDBStore(config.datadir) if config.datadir else MemoryStore()
    try:
        return Ledger(store, config.genesis)
    except Exception:
        store.close()
        raise


async def run_node(config: NodeConfig, on_ready: Callable[[Ledger], None] | None = None) -> None:
    worker = ChainWorker()
    ledger = worker.call_blocking(open_ledger, config)
    validator = SingleValidator(config.validator_key, ledger.chain_id) if config.validator_key else None
    core = worker.call_blocking(
        ChainCore, ledger, config.dev_keys,
        validator.address if validator else b"\x00" * 20, config.block_time is None, validator,
    )
    server = RPCServer(core, worker)
    hc = HypercornConfig()
    hc.bind = [f"{config.host}:{config.port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.websocket_max_message_size = MAX_BODY + 1024
    hc.keep_alive_timeout = 30
    if config.metrics_port is not None:
        metrics.serve(config.host, config.metrics_port)
    shutdown = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, shutdown)
            await nursery.start(lambda task_status: serve(server, hc, shutdown_trigger=shutdown.wait, task_status=task_status))  # type: ignore[arg-type]
            nursery.start_soon(server.pump_forever)
            if config.block_time is not None:
                nursery.start_soon(_interval_mining, core, worker, server, config.block_time)
            if on_ready is not None:
                on_ready(ledger)
            await shutdown.wait()
            nursery.cancel_scope.cancel()
    finally:
        worker.call_blocking(ledger.close)
        worker.stop()


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return


async def _interval_mining(core: ChainCore, worker: ChainWorker, server: RPCServer, block_time: float) -> None:
    next_at = trio.current_time() + block_time
    while True:
        await trio.sleep_until(next_at)
        next_at += block_time
        try:
            await worker.run(core.mine)
        except Exception:
            log.exception("block production failed; retrying next interval")
        server.pump_events()


def main_loop(config: NodeConfig, on_ready: Callable[[Ledger], None] | None = None) -> int:
    try:
        trio.run(run_node, config, on_ready)
    except OSError as e:
        print(f"error: cannot serve on {config.host}:{config.port}: {e.strerror}", file=sys.stderr)
        return 1
    return 0

"""Running a node: open the ledger, start the chain worker, the JSON-RPC server, block
production and metrics on one trio loop, and shut down cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from ai_precompiles.upgrades import UpgradeRequired
from consensus import SingleValidator
from genesis import Genesis
from node import metrics
from node.bft.reactor import ConsensusConfig
from node.chain.assembly import assemble
from node.chain.producers import mine_every
from node.chain.reader import NetworkStatus
from node.rpc.explorer import BundleError
from node.rpc.filters import FILTER_TIMEOUT, FilterRegistry
from node.rpc.namespaces import DEFAULT_API, DEV_NAMESPACES
from node.rpc.server import MAX_BODY, RPCServer, RPCSettings
from node.sidecar_watch import AICounters, SidecarWatch
from node.txpool import PoolConfig
from node.warm import TrainingSetWarmer
from node.worker import ChainWorker
from p2p.host import P2PConfig
from state import Ledger, LevelDBStore, MemoryStore

#: Exit status of a node that stopped at an upgrade it does not know (what to install is printed).
UPGRADE_EXIT_CODE = 3

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
    dev: bool = False
    """A dev chain: dev namespaces may be served, state edits and rewinds allowed."""
    api: tuple[str, ...] = DEFAULT_API
    """JSON-RPC namespaces served (checked by ``node.rpc.namespaces.parse_api``)."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call; empty allows none."""
    explorer: bool = False
    """Serve the explorer (a static web app reading this node's JSON-RPC) at /explorer."""
    rpc_gas_cap: int | None = 50_000_000
    """Most gas one eth_call / eth_estimateGas may use (also capped by the block gas limit)."""
    rpc_evm_timeout: float = 5.0
    """Seconds one eth_call / eth_estimateGas may run; 0 disables the limit."""
    rpc_read_timeout: float = 10.0
    """Seconds one read-lane call (long reads) may spend reading state; 0 disables."""
    read_queue: int = 64
    """Most eth_call-class requests waiting for the read worker before new ones are refused."""
    read_threads: int = 2
    """Threads of the read worker: a slow read does not queue every other one behind it."""
    txpool: PoolConfig = field(default_factory=PoolConfig)
    """Transaction pool limits (geth's --txpool.* flags)."""
    sidecar: str | None = None
    """gRPC address of this validator's sidecar; with a validator key, the node serves ai_infer."""
    inference_price: int = 10**15
    """Wei this node's validator charges per ai_infer request (its quote)."""
    training_price: int = 10**16
    """Wei this node's validator charges per ai_train job (its quote)."""
    p2p: P2PConfig | None = None
    """How to join the network; None runs alone."""
    follower: bool = False
    """Take blocks only from peers (never build them); needs ``p2p``."""
    progress_bar: bool = False
    """Show a sync progress bar on stderr."""
    state_sync: bool = False
    """An empty chain takes a peer's recent state before block sync (``node/state_sync.py``)."""
    consensus: ConsensusConfig | None = None
    """BFT timeouts; used when the genesis names several validators and ``validator_key`` is one
    of them (None: the defaults)."""


def open_ledger(config: NodeConfig) -> Ledger:
    store = LevelDBStore(config.datadir) if config.datadir else MemoryStore()
    try:
        return Ledger(store, config.genesis)
    except Exception:
        store.close()
        raise


async def run_node(config: NodeConfig, on_ready: Callable[[Ledger], None] | None = None) -> None:
    if not config.dev and set(config.api) & DEV_NAMESPACES:
        raise ValueError("dev namespaces are served only by a dev chain")
    worker = ChainWorker()
    ledger = worker.call_blocking(open_ledger, config)
    try:
        # a node stopped by an upgrade it lacks stops again at start, before serving anything
        worker.call_blocking(lambda: ledger.require_upgrades(ledger.head, ledger.head.block_number + 1))
    except UpgradeRequired:
        worker.call_blocking(ledger.close)
        worker.stop()
        raise
    bft_address = _bft_address(config, ledger)
    validator = (SingleValidator(config.validator_key, ledger.chain_id)
                 if config.validator_key and bft_address is None else None)
    coinbase = bft_address or (validator.address if validator else b"\x00" * 20)
    # A BFT validator's blocks come from consensus (node/bft/reactor.py) and a follower's
    # from its peers: neither has a producer (no automine, no block timer).
    chain = worker.call_blocking(functools.partial(
        assemble, ledger, produces_blocks=not config.follower and bft_address is None, coinbase=coinbase,
        validator=validator, automine=config.block_time is None, dev=config.dev, dev_keys=config.dev_keys,
        pool_config=config.txpool, rpc_gas_cap=config.rpc_gas_cap, rpc_evm_timeout=config.rpc_evm_timeout or None,
    ))
    core = chain.core
    if chain.producer is not None:
        chain.producer.attach(worker)  # automine builds its blocks as jobs of their own
    # eth_call and long reads run here, on committed state, beside the chain thread.
    read_worker = ChainWorker("read-worker", max_queued=config.read_queue, threads=config.read_threads)
    # the training sets lineages list, read when their version is published (node/warm.py)
    core.events.subscribe(TrainingSetWarmer(core, read_worker).on_chain_event)
    settings = RPCSettings(config.api, config.cors_origins, config.rpc_read_timeout or None,
                           explorer=config.explorer)
    inference = None
    sidecar_watch = None
    training = None
    if config.sidecar and config.validator_key:
        from node.ai_faults import testing_lies
        from node.inference import InferenceService
        from node.training import TrainingService

        inference = InferenceService(config.sidecar, config.validator_key, config.inference_price,
                                     lies=testing_lies(config.datadir))
        sidecar_watch = SidecarWatch(config.sidecar)
        training = TrainingService(config.sidecar, config.validator_key, config.training_price)
    if config.validator_key:
        from eth_keys import keys

        address = bytes(keys.PrivateKey(config.validator_key).public_key.to_canonical_address())
        core.events.subscribe(AICounters(address, ledger).on_chain_event)
    network_status = NetworkStatus()
    server = RPCServer(core, worker, settings, read_worker, inference, chain.dev, network_status, sidecar_watch,
                       training)
    hc = HypercornConfig()
    hc.bind = [f"{config.host}:{config.port}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.websocket_max_message_size = MAX_BODY + 1024
    hc.keep_alive_timeout = 30
    if config.metrics_port is not None:
        metrics.serve(config.host, config.metrics_port)
    shutdown = trio.Event()
    token = trio.lowlevel.current_trio_token()
    core.on_halt = lambda _reason: token.run_sync_soon(shutdown.set)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, shutdown)
            await nursery.start(lambda task_status: serve(server, hc, shutdown_trigger=shutdown.wait, task_status=task_status))  # type: ignore[arg-type]
            nursery.start_soon(_expire_filters, server.filters, worker)
            if sidecar_watch is not None:
                await nursery.start(sidecar_watch.run)
            if training is not None:
                nursery.start_soon(training.run, core, worker)
            if config.p2p is not None:
                from node.network import NetworkNode

                network = NetworkNode(chain.pipeline, worker, config.p2p, network_status, config.progress_bar,
                                      config.state_sync)
                await nursery.start(network.run)
                print(f"P2P peer id {network.host.peer_id}", flush=True)
                print(f"P2P listening on {network.host.listen_addr}", flush=True)
                if bft_address is not None:
                    from node.bft.faults import testing_transport
                    from node.bft.reactor import ConsensusReactor

                    assert config.validator_key is not None and config.datadir is not None
                    consensus = config.consensus or ConsensusConfig()
                    wrap = testing_transport(core, consensus, config.validator_key, bft_address, config.datadir)
                    reactor = ConsensusReactor(chain.pipeline, worker, network, config.validator_key,
                                               config.datadir, consensus, wrap)
                    await nursery.start(reactor.run)
                    print(f"Consensus: BFT validator 0x{bft_address.hex()}", flush=True)
            if inference is not None:
                from node.ai_watch import CommitteeDuty

                # judges the challenges whose committee names this validator
                await nursery.start(CommitteeDuty(core, worker, read_worker, inference).run)
            if config.block_time is not None and chain.producer is not None:
                nursery.start_soon(mine_every, chain.producer, worker, config.block_time)
            if on_ready is not None:
                on_ready(ledger)
            if config.explorer:
                print(f"Explorer at http://{_url_host(config.host)}:{config.port}/explorer/", flush=True)
            await shutdown.wait()
            nursery.cancel_scope.cancel()
    finally:
        read_worker.stop()
        worker.call_blocking(ledger.close)
        worker.stop()
    if core.halted is not None:
        raise core.halted


def _url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets, any-address as localhost."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _bft_address(config: NodeConfig, ledger: Ledger) -> bytes | None:
    """This node's validator address when it runs BFT consensus: the genesis names several
    validators, this node has the key of one of them, and it is on the network."""
    if config.validator_key is None or config.p2p is None or config.dev:
        return None
    validators = ledger.genesis.validators
    if len(validators) <= 1:
        return None  # one validator: the single-sealer path (SingleValidator)
    from eth_keys import keys

    # A key outside the genesis set is a candidate: it follows consensus and votes from the
    # epoch its stake puts it in the set.
    address = bytes(keys.PrivateKey(config.validator_key).public_key.to_canonical_address())
    if config.datadir is None:
        raise ValueError("a BFT validator needs a --datadir (its consensus WAL lives there)")
    return address


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            shutdown.set()
            return


async def _expire_filters(filters: FilterRegistry, worker: ChainWorker) -> None:
    """Drop unpolled filters on a timer, so an idle node frees them too."""
    while True:
        await trio.sleep(FILTER_TIMEOUT / 10)
        await worker.run(filters.expire_filters)


def main_loop(config: NodeConfig, on_ready: Callable[[Ledger], None] | None = None) -> int:
    try:
        trio.run(run_node, config, on_ready)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except UpgradeRequired as e:
        print(f"error: {e}", file=sys.stderr)
        return UPGRADE_EXIT_CODE
    except OSError as e:
        print(f"error: cannot serve on {config.host}:{config.port}: {e.strerror}", file=sys.stderr)
        return 1
    return 0

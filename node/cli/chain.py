"""``ailedger init`` and ``ailedger run``: a node's chain created in a datadir from a genesis
file, and the node run on it, alone or on a network from its config file."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.amounts import parse_amount
from node.cli.dev import dev_chain_genesis
from node.cli.options import Subparsers, hex_key
from node.cli.serving import (
    add_rpc_flags,
    add_txpool_flags,
    check_datadir,
    check_port,
    rpc_settings,
    serve,
    txpool_config,
)

if TYPE_CHECKING:
    from genesis.testnet import NodeFile
    from node.bft.reactor import ConsensusConfig
    from state import Ledger


def add_parsers(sub: Subparsers) -> None:
    _add_init(sub)
    _add_run(sub)


def _add_init(sub: Subparsers) -> None:
    p = sub.add_parser(
        "init",
        help="create a chain in a datadir from a genesis file",
        description="Validate GENESIS and write block 0 into DATADIR (LevelDB). Errors name the bad field. "
        "With --dev, write the dev genesis (the development mnemonic's accounts prefunded).",
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--genesis", type=Path, help="genesis JSON file (see genesis/format.py for the format)")
    group.add_argument("--dev", action="store_true", help="use the dev genesis")
    p.add_argument("--datadir", type=Path, required=True, help="directory for the chain database")
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    check_datadir(args.datadir)
    from genesis import load_genesis
    from state import Ledger, LevelDBStore

    genesis = dev_chain_genesis() if args.dev else load_genesis(args.genesis)
    ledger = Ledger(LevelDBStore(args.datadir), genesis)
    head = ledger.head
    print(f"Initialised chain {genesis.chain_id} in {args.datadir}: genesis 0x{head.hash.hex()}, state root 0x{head.state_root.hex()}")
    ledger.close()
    return 0


def _add_run(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="run a node on an initialised datadir",
        description="Run the node whose chain is in DATADIR (created by `ailedger init`). "
        "It serves JSON-RPC and, as the chain's single validator, produces blocks. With "
        "--config (written by `ailedger testnet init`) or p2p flags it joins the network; "
        "without a validator key it is a follower that syncs from its peers, an empty datadir "
        "starting from the config's genesis file.",
    )
    add_rpc_flags(p, dev=False)
    p.set_defaults(host=None, port=None)  # None: the config's value, else 127.0.0.1:8545
    for action in p._actions:
        if action.dest in ("host", "port"):
            action.help = (action.help or "").replace("%(default)s", "the config's, else " + ("127.0.0.1" if action.dest == "host" else "8545"))
    p.add_argument("--datadir", type=Path, default=None, help="directory created by `ailedger init` (or taken from --config)")
    p.add_argument("--config", type=Path, default=None, help="node config file (JSON, see `ailedger testnet init`); flags override it")
    p.add_argument("--p2p-port", type=int, default=None, metavar="PORT", help="libp2p TCP port (turns p2p on; default 30303 with --config or --peers)")
    p.add_argument("--peers", default=None, metavar="MULTIADDR,...",
                   help="static peers / bootnodes, comma-separated /ip4/HOST/tcp/PORT/p2p/PEER_ID")
    p.add_argument("--validator-key", default=os.environ.get("AILEDGER_VALIDATOR_KEY"),
                   help="hex private key of this validator, for its fee address (env AILEDGER_VALIDATOR_KEY)")
    p.add_argument("--sidecar", default=None, metavar="ADDR",
                   help="gRPC address of this validator's sidecar: with --validator-key, serve ai_infer "
                        "(default: the config's `sidecar`); the node reports it ready, down and back in its "
                        "log, in ai_inferQuote and in metrics")
    p.add_argument("--inference-price", type=parse_amount, default=10**15, metavar="AMOUNT",
                   help="what this validator charges per ai_infer request (default: 0.001eth)")
    p.add_argument("--state-sync", action="store_true",
                   help="an empty datadir takes a peer's recent state (checked against a committed header) "
                        "and replays only the blocks after it, instead of every block since genesis")
    p.add_argument("--training-price", type=parse_amount, default=10**16, metavar="AMOUNT",
                   help="what this validator charges per ai_train job (default: 0.01eth)")
    p.add_argument("--byzantine", default=None, help=argparse.SUPPRESS)  # test-only, needs AILEDGER_ALLOW_BYZANTINE
    p.add_argument("--faults", action="store_true", help=argparse.SUPPRESS)  # test-only, needs AILEDGER_ALLOW_FAULTS
    add_txpool_flags(p)
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from genesis.testnet import load_node_file

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ailedger").setLevel(logging.INFO)
    node_file = load_node_file(args.config) if args.config is not None else None
    datadir = args.datadir or (node_file.datadir if node_file else None)
    if datadir is None:
        print("error: give --datadir or --config", file=sys.stderr)
        return 1
    if not (datadir / "CURRENT").exists() and node_file is None:
        print(f"error: {datadir} holds no chain; run `ailedger init --genesis FILE --datadir {datadir}` first", file=sys.stderr)
        return 1
    # A new node starts its chain from the config's genesis; an existing one must match it.
    genesis = None
    if node_file is not None:
        from genesis import load_genesis

        genesis = load_genesis(node_file.genesis)
    key_hex = args.validator_key
    if key_hex is None and node_file is not None and node_file.validator_key is not None:
        key_hex = node_file.validator_key.read_text().strip()
    key = hex_key(key_hex, "--validator-key") if key_hex else None
    host = args.host or (node_file.host if node_file else "127.0.0.1")
    port = args.port if args.port is not None else (node_file.rpc_port if node_file else 8545)
    p2p = None
    if node_file is not None or args.p2p_port is not None or args.peers:
        from p2p.host import P2PConfig

        peers = [a.strip() for a in args.peers.split(",") if a.strip()] if args.peers else (node_file.peers if node_file else [])
        p2p = P2PConfig(
            key_path=(node_file.node_key if node_file and node_file.node_key else datadir / "nodekey"),
            port=args.p2p_port if args.p2p_port is not None else (node_file.p2p_port if node_file else 30303),
            listen_host=host, peers=peers,
        )
    check_port(host, port, "--port")
    check_datadir(datadir)
    block_time = args.block_time if args.block_time is not None else (node_file.block_time if node_file else None)
    from node.service import NodeConfig

    consensus = consensus_config(node_file)
    if args.byzantine is not None:
        from node.bft.faults import BYZANTINE_ENV, BYZANTINE_MODES

        if not os.environ.get(BYZANTINE_ENV):
            print(f"error: --byzantine is a test-only mode; it needs {BYZANTINE_ENV}=1", file=sys.stderr)
            return 1
        if args.byzantine not in BYZANTINE_MODES:
            print(f"error: --byzantine must be one of {', '.join(BYZANTINE_MODES)}", file=sys.stderr)
            return 1
        consensus.byzantine = args.byzantine
    if args.faults:
        from node.bft.faults import FAULTS_ENV

        if not os.environ.get(FAULTS_ENV):
            print(f"error: --faults is a test-only mode; it needs {FAULTS_ENV}=1", file=sys.stderr)
            return 1
        consensus.faults = True
    config = NodeConfig(
        host=host, port=port, datadir=datadir, genesis=genesis,
        block_time=block_time, validator_key=key, metrics_port=args.metrics_port,
        **rpc_settings(args, dev=False),
        txpool=txpool_config(args),
        sidecar=args.sidecar or (node_file.sidecar if node_file else None), inference_price=args.inference_price,
        training_price=args.training_price,
        p2p=p2p, follower=p2p is not None and key is None, progress_bar=p2p is not None,
        consensus=consensus, state_sync=args.state_sync,
    )

    def ready(ledger: Ledger) -> None:
        role = "follower" if config.follower else "validator" if key else "node"
        print(f"Chain {ledger.chain_id} at block {ledger.head.block_number} ({role})", flush=True)
        print(f"Listening on {host}:{port}", flush=True)

    return serve(config, ready)


def consensus_config(node_file: NodeFile | None) -> ConsensusConfig:
    """BFT timeouts: the defaults, with what the node's config file sets."""
    import dataclasses

    from genesis.testnet import TIMEOUT_FIELDS
    from node.bft.reactor import ConsensusConfig

    config = ConsensusConfig()
    if node_file is None or not node_file.consensus:
        return config
    changes = {TIMEOUT_FIELDS[name]: value for name, value in node_file.consensus.items() if name in TIMEOUT_FIELDS}
    max_txs = int(node_file.consensus.get("maxBlockTxs", config.max_block_txs))
    build = float(node_file.consensus.get("buildSeconds", config.build_seconds))
    return dataclasses.replace(config, timeouts=dataclasses.replace(config.timeouts, **changes), max_block_txs=max_txs,
                               build_seconds=build)

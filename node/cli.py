"""The ``ailedger`` command line: dev chain, init, run, keys, and the sidecar."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account

from genesis import (
    DEV_CHAIN_ID,
    DEV_MNEMONIC,
    Genesis,
    GenesisError,
    derive_accounts,
    dev_genesis,
    load_genesis,
)
from genesis.dev import DEV_BALANCE_ETH, DEV_BASE_FEE, DEV_GAS_LIMIT, DEV_PATH, derive_validator_key
from node import ai_cli
from node.service import NodeConfig, main_loop
from state import ChainMismatch, Ledger, LevelDBStore

DESCRIPTION = """\
ailedger: a blockchain node for an AI-native chain, Ethereum-compatible.

Start a local dev chain (like anvil) and point web3.py, ethers, viem or cast at it:

    ailedger dev                      # http://127.0.0.1:8545, 20 prefunded accounts
    ailedger dev --block-time 2       # a block every 2 s instead of one per transaction
    ailedger dev --datadir ./chain    # persist, and restart on the same chain

Run a node from a genesis file:

    ailedger init --genesis genesis.json --datadir ./node1
    ailedger run --datadir ./node1

Data, models and inference on chain (sign with --account N on the dev chain, or --key):

    ailedger datanet create med-qa --account 0        # then: contribute, curate, datanet publish
    ailedger train --datanet 1:1 --parent 1 --account 0
    ailedger infer --adapter 2 --prompt "..." --account 3 --validator-account 0
    ailedger COMMAND --help                           # every command explains itself
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (GenesisError, ChainMismatch, ai_cli.CLIError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ailedger", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_dev(sub)
    _add_init(sub)
    _add_run(sub)
    _add_testnet(sub)
    _add_keys(sub)
    ai_cli.add_parsers(sub)
    ai_cli.add_sidecar_parsers(sub)
    if importlib.util.find_spec("sidecar.cli") is not None:
        from sidecar import cli as sidecar_cli  # no torch at import time

        sidecar_cli.add_parser(sub)
    return parser


def _rpc_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to serve JSON-RPC on (default: %(default)s; 0.0.0.0 for all)")
    p.add_argument("-p", "--port", type=int, default=8545, help="JSON-RPC port, HTTP and WebSocket (default: %(default)s)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics on this port (off by default)")
    p.add_argument("-b", "--block-time", type=float, default=None, metavar="SECONDS",
                   help="mine a block every SECONDS; without it, a block is mined as soon as a transaction arrives (automine)")


def _add_dev(sub: Any) -> None:
    p = sub.add_parser(
        "dev",
        help="start a local dev chain with prefunded accounts (like anvil)",
        description="Start a single-node dev chain. Accounts of the development mnemonic are "
        "prefunded and unlocked (eth_sendTransaction, eth_sign). The chain lives in memory "
        "unless --datadir is given. Flags mean what they mean for anvil.",
    )
    _rpc_flags(p)
    p.add_argument("--chain-id", type=int, default=DEV_CHAIN_ID, help="chain id (default: %(default)s)")
    p.add_argument("-a", "--accounts", type=int, default=20, help="number of prefunded dev accounts (default: %(default)s)")
    p.add_argument("--balance", type=int, default=DEV_BALANCE_ETH, help="balance of each dev account in ETH (default: %(default)s)")
    p.add_argument("-m", "--mnemonic", default=DEV_MNEMONIC, help="BIP-39 mnemonic of the dev accounts (default: the standard 'test test ... junk')")
    p.add_argument("--gas-limit", type=int, default=DEV_GAS_LIMIT, help="block gas limit (default: %(default)s)")
    p.add_argument("--base-fee", type=int, default=DEV_BASE_FEE, help="genesis base fee in wei (default: %(default)s)")
    p.add_argument("--timestamp", type=int, default=None, help="genesis timestamp (default: now)")
    p.add_argument("--datadir", type=Path, default=None, help="keep the chain in LevelDB here; restarting with the same datadir resumes the chain")
    p.add_argument("--no-sidecar", action="store_true", help="do not start the AI sidecar (training, serving, attribution)")
    p.add_argument("--sidecar-port", type=int, default=50051, help="gRPC port of the sidecar (default: %(default)s)")
    p.add_argument("--silent", action="store_true", help="print only the listening line")
    p.set_defaults(func=cmd_dev)


def cmd_dev(args: argparse.Namespace) -> int:
    accounts = derive_accounts(args.mnemonic, args.accounts)
    genesis: Genesis | None = dev_genesis(
        chain_id=args.chain_id,
        mnemonic=args.mnemonic,
        accounts=args.accounts,
        balance_eth=args.balance,
        gas_limit=args.gas_limit,
        base_fee=args.base_fee,
        timestamp=args.timestamp,
    )
    if args.datadir is not None and (args.datadir / "CURRENT").exists():
        genesis = None  # resume: the datadir's own genesis rules
    config = NodeConfig(
        host=args.host,
        port=args.port,
        datadir=args.datadir,
        genesis=genesis,
        block_time=args.block_time,
        dev_keys=[a.private_key for a in accounts],
        validator_key=derive_validator_key(args.mnemonic),
        metrics_port=args.metrics_port,
    )
    sidecar = None if args.no_sidecar else _start_sidecar(args)

    def ready(ledger: Ledger) -> None:
        if not args.silent:
            _print_banner(args, accounts, ledger)
        print(f"Listening on {args.host}:{args.port}", flush=True)

    try:
        return main_loop(config, ready)
    finally:
        if sidecar is not None:
            sidecar.terminate()
            try:
                sidecar.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sidecar.kill()


def _start_sidecar(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    if importlib.util.find_spec("sidecar") is None or importlib.util.find_spec("torch") is None:
        print("note: the AI sidecar is not installed (torch/peft missing); running without it", file=sys.stderr)
        return None
    store = (args.datadir / "sidecar") if args.datadir else Path(tempfile.mkdtemp(prefix="ailedger-sidecar-"))
    cmd = [sys.executable, "-m", "sidecar", "--host", args.host, "--port", str(args.sidecar_port), "--store", str(store)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    print(f"Sidecar starting on {args.host}:{args.sidecar_port} (store {store})", flush=True)
    return proc


def _print_banner(args: argparse.Namespace, accounts: list[Any], ledger: Ledger) -> None:
    lines = ["", "ailedger dev chain", "", "Available Accounts", "=================="]
    lines += [f"({i}) {a.address} ({args.balance} ETH)" for i, a in enumerate(accounts)]
    lines += ["", "Private Keys", "=================="]
    lines += [f"({i}) 0x{a.private_key.hex()}" for i, a in enumerate(accounts)]
    lines += [
        "", "Wallet", "==================",
        f"Mnemonic:          {args.mnemonic}",
        f"Derivation path:   {DEV_PATH.format('')}",
        "", "Chain ID", "==================", str(ledger.chain_id),
        "", "Head block", "==================", f"{ledger.head.block_number} (0x{ledger.head.hash.hex()})",
        "", f"RPC URL: http://{args.host}:{args.port}  (WebSocket: ws://{args.host}:{args.port})",
    ]
    if args.metrics_port:
        lines.append(f"Metrics: http://{args.host}:{args.metrics_port}/metrics")
    lines.append("")
    print("\n".join(lines), flush=True)


def _add_init(sub: Any) -> None:
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
    genesis = dev_genesis() if args.dev else load_genesis(args.genesis)
    ledger = Ledger(LevelDBStore(args.datadir), genesis)
    head = ledger.head
    print(f"Initialised chain {genesis.chain_id} in {args.datadir}: genesis 0x{head.hash.hex()}, state root 0x{head.state_root.hex()}")
    ledger.close()
    return 0


def _add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a node on an initialised datadir",
        description="Run the node whose chain is in DATADIR (created by `ailedger init`). "
        "It serves JSON-RPC and, as the chain's single validator, produces blocks. With "
        "--config (written by `ailedger testnet init`) or p2p flags it joins the network; "
        "without a validator key it is a follower that syncs from its peers, an empty datadir "
        "starting from the config's genesis file.",
    )
    _rpc_flags(p)
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
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from genesis.testnet import load_node_file
    from p2p.host import P2PConfig

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
    genesis = load_genesis(node_file.genesis) if node_file is not None else None
    key_hex = args.validator_key
    if key_hex is None and node_file is not None and node_file.validator_key is not None:
        key_hex = node_file.validator_key.read_text().strip()
    key = bytes.fromhex(key_hex.removeprefix("0x")) if key_hex else None
    host = args.host or (node_file.host if node_file else "127.0.0.1")
    port = args.port if args.port is not None else (node_file.rpc_port if node_file else 8545)
    p2p = None
    if node_file is not None or args.p2p_port is not None or args.peers:
        peers = [a.strip() for a in args.peers.split(",") if a.strip()] if args.peers else (node_file.peers if node_file else [])
        p2p = P2PConfig(
            key_path=(node_file.node_key if node_file and node_file.node_key else datadir / "nodekey"),
            port=args.p2p_port if args.p2p_port is not None else (node_file.p2p_port if node_file else 30303),
            listen_host=host, peers=peers,
        )
    block_time = args.block_time if args.block_time is not None else (node_file.block_time if node_file else None)
    config = NodeConfig(
        host=host, port=port, datadir=datadir, genesis=genesis,
        block_time=block_time, validator_key=key, metrics_port=args.metrics_port,
        p2p=p2p, follower=p2p is not None and key is None, progress_bar=p2p is not None,
    )

    def ready(ledger: Ledger) -> None:
        role = "follower" if config.follower else "validator" if key else "node"
        print(f"Chain {ledger.chain_id} at block {ledger.head.block_number} ({role})", flush=True)
        print(f"Listening on {host}:{port}", flush=True)

    return main_loop(config, ready)


def _add_testnet(sub: Any) -> None:
    p = sub.add_parser("testnet", help="create and run a local multi-node testnet",
                       description="A local network of nodes: one validator and followers, "
                       "each a separate process talking libp2p on loopback.")
    ts = p.add_subparsers(title="testnet commands", metavar="ACTION")
    init = ts.add_parser("init", help="write a genesis, and a key and a config per node")
    init.add_argument("--nodes", type=int, default=4, help="number of nodes; node0 is the validator (default: %(default)s)")
    init.add_argument("--dir", type=Path, required=True, help="new directory for the testnet")
    init.add_argument("--chain-id", type=int, default=None, help="chain id (default: the dev chain id + 1)")
    init.add_argument("--rpc-port", type=int, default=8545, help="RPC port of node0; node i uses +i (default: %(default)s)")
    init.add_argument("--p2p-port", type=int, default=30303, help="p2p port of node0; node i uses +i (default: %(default)s)")
    init.add_argument("--block-time", type=float, default=1.0, help="seconds between the validator's blocks (default: %(default)s)")
    init.set_defaults(func=cmd_testnet_init)
    up = ts.add_parser("up", help="start every node of a testnet; Ctrl-C stops them all")
    up.add_argument("--dir", type=Path, required=True, help="directory written by `testnet init`")
    up.set_defaults(func=cmd_testnet_up)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_testnet_init(args: argparse.Namespace) -> int:
    from genesis.testnet import TESTNET_CHAIN_ID, init_testnet
    from p2p.host import peer_id_of_key

    nodes = init_testnet(
        args.dir, args.nodes, peer_id_of_key, chain_id=args.chain_id or TESTNET_CHAIN_ID,
        rpc_port=args.rpc_port, p2p_port=args.p2p_port, block_time=args.block_time,
    )
    print(f"Testnet of {len(nodes)} nodes in {args.dir} (genesis {args.dir / 'genesis.json'})")
    for i, node in enumerate(nodes):
        role = "validator" if node.validator_key else "follower"
        print(f"  node{i} {role:9} rpc http://{node.host}:{node.rpc_port}  p2p {node.p2p_port}  peer {node.peer_id}")
    print(f"Start it with: ailedger testnet up --dir {args.dir}")
    return 0


def cmd_testnet_up(args: argparse.Namespace) -> int:
    import signal
    import time

    from genesis.testnet import load_node_file

    configs = sorted(args.dir.glob("node*/config.json"), key=lambda p: int(p.parent.name[4:] or 0))
    if not configs:
        print(f"error: no node*/config.json in {args.dir}; run `ailedger testnet init --dir {args.dir}` first", file=sys.stderr)
        return 1
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for path in configs:
            node = load_node_file(path)
            log = open(path.parent / "node.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "run", "--config", str(path)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            procs.append((path.parent.name, proc))
            role = "validator" if node.validator_key else "follower"
            print(f"{path.parent.name} {role:9} RPC http://{node.host}:{node.rpc_port}  peer {node.peer_id}  "
                  f"(log {path.parent / 'node.log'})", flush=True)
        print("Ctrl-C stops all nodes.", flush=True)
        while True:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping the others", file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _add_keys(sub: Any) -> None:
    p = sub.add_parser("keys", help="create and inspect secp256k1 keys",
                       description="Keys are Ethereum secp256k1 keys, for accounts and validators alike.")
    ks = p.add_subparsers(title="keys commands", metavar="ACTION")
    new = ks.add_parser("new", help="generate a new random key and print it as JSON")
    new.set_defaults(func=cmd_keys_new)
    derive = ks.add_parser("derive", help="derive accounts from a mnemonic (default: the dev mnemonic)")
    derive.add_argument("-m", "--mnemonic", default=DEV_MNEMONIC)
    derive.add_argument("-n", "--count", type=int, default=10)
    derive.set_defaults(func=cmd_keys_derive)
    addr = ks.add_parser("address", help="print the address of a private key")
    addr.add_argument("key", help="hex private key")
    addr.set_defaults(func=cmd_keys_address)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_keys_new(args: argparse.Namespace) -> int:
    acct = Account.create()
    print(json.dumps({"address": acct.address, "privateKey": "0x" + bytes(acct.key).hex()}, indent=2))
    return 0


def cmd_keys_derive(args: argparse.Namespace) -> int:
    for i, a in enumerate(derive_accounts(args.mnemonic, args.count)):
        print(f"({i}) {a.address} 0x{a.private_key.hex()}")
    return 0


def cmd_keys_address(args: argparse.Namespace) -> int:
    try:
        print(Account.from_key(args.key).address)
    except (ValueError, TypeError) as e:
        print(f"error: not a private key: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``ailedger`` command line: dev chain, init, run, keys, and the sidecar."""

from __future__ import annotations

import argparse
import importlib.util
import json
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
    _add_keys(sub)
    ai_cli.add_parsers(sub)
    ai_cli.add_sidecar_parsers(sub)
    if importlib.util.find_spec("sidecar.cli") is not None:
        from sidecar import cli as sidecar_cli  # no torch at import time

        sidecar_cli.add_parser(sub)
    return parser


def _rpc_flags(p: argparse.ArgumentParser, dev: bool) -> None:
    from node.rpc.methods import DEFAULT_API, DEV_NAMESPACES, NAMESPACES
    from node.rpc.server import DEV_CORS_ORIGINS

    p.add_argument("--host", default="127.0.0.1", help="interface to serve JSON-RPC on (default: %(default)s, this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("-p", "--port", type=int, default=8545, help="JSON-RPC port, HTTP and WebSocket (default: %(default)s)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics on this port (off by default)")
    p.add_argument("-b", "--block-time", type=float, default=None, metavar="SECONDS",
                   help="mine a block every SECONDS; without it, a block is mined as soon as a transaction arrives (automine)")
    if dev:
        api_default = ",".join(sorted(NAMESPACES))
        api_help = "JSON-RPC namespaces to serve, comma-separated (default: all, dev methods included: %(default)s)"
        cors_default = ",".join(DEV_CORS_ORIGINS)
        cors_help = ("browser origins allowed to call, comma-separated; scheme://host:* for any port, * for any site "
                     "(default: pages served from this machine: %(default)s)")
    else:
        api_default = ",".join(DEFAULT_API)
        api_help = (f"JSON-RPC namespaces to serve, comma-separated (default: %(default)s). The dev namespaces "
                    f"({', '.join(sorted(DEV_NAMESPACES))}) exist only in `ailedger dev`")
        cors_default = ""
        cors_help = ("browser origins allowed to call, comma-separated, e.g. https://app.example.org; "
                     "scheme://host:* for any port, * for any site (default: none, no web page may call)")
    p.add_argument("--http-api", default=api_default, metavar="NAMESPACES", help=api_help)
    p.add_argument("--cors-origins", default=cors_default, metavar="ORIGINS", help=cors_help)
    p.add_argument("--rpc-gascap", type=int, default=50_000_000, metavar="GAS",
                   help="most gas one eth_call/eth_estimateGas may use; never more than the block gas limit (default: %(default)s)")
    p.add_argument("--rpc-evmtimeout", type=float, default=5.0, metavar="SECONDS",
                   help="wall-clock limit of one eth_call/eth_estimateGas, 0 for none (default: %(default)s)")
    p.add_argument("--rpc-read-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="wall-clock limit of one long read (eth_getLogs, feeHistory, ai_ lineage and training sets), "
                        "0 for none (default: %(default)s)")


def _rpc_config(args: argparse.Namespace, dev: bool) -> dict[str, Any]:
    """The NodeConfig fields the RPC flags set; exits with a message on a bad value."""
    from node.rpc.server import parse_api, parse_origins

    try:
        api = parse_api(args.http_api, dev)
        origins = parse_origins(args.cors_origins)
    except ValueError as e:
        raise ai_cli.CLIError(str(e)) from None
    if args.rpc_gascap <= 0 or args.rpc_evmtimeout < 0 or args.rpc_read_timeout < 0:
        raise ai_cli.CLIError("--rpc-gascap must be positive, --rpc-evmtimeout and --rpc-read-timeout not negative")
    if "*" in origins:
        print("warning: --cors-origins '*' lets any web page the operator opens call this node", file=sys.stderr)
    dev_api = sorted(set(api) & {"evm", "anvil", "hardhat"})
    if dev and dev_api and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: serving the dev methods ({', '.join(dev_api)}: set balances, rewrite code, rewind) "
              f"to anyone who can reach {args.host}; use --http-api eth,net,web3,txpool,ai to leave them out",
              file=sys.stderr)
    return {
        "dev": dev, "api": api, "cors_origins": origins,
        "rpc_gas_cap": args.rpc_gascap, "rpc_evm_timeout": args.rpc_evmtimeout,
        "rpc_read_timeout": args.rpc_read_timeout,
    }


def _add_dev(sub: Any) -> None:
    p = sub.add_parser(
        "dev",
        help="start a local dev chain with prefunded accounts (like anvil)",
        description="Start a single-node dev chain. Accounts of the development mnemonic are "
        "prefunded and unlocked (eth_sendTransaction, eth_sign). The chain lives in memory "
        "unless --datadir is given. Flags mean what they mean for anvil.",
    )
    _rpc_flags(p, dev=True)
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
        **_rpc_config(args, dev=True),
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
        "It serves JSON-RPC and, as the chain's single validator, produces blocks.",
    )
    _rpc_flags(p, dev=False)
    p.add_argument("--datadir", type=Path, required=True, help="directory created by `ailedger init`")
    p.add_argument("--validator-key", default=os.environ.get("AILEDGER_VALIDATOR_KEY"),
                   help="hex private key of this validator, for its fee address (env AILEDGER_VALIDATOR_KEY)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if not (args.datadir / "CURRENT").exists():
        print(f"error: {args.datadir} holds no chain; run `ailedger init --genesis FILE --datadir {args.datadir}` first", file=sys.stderr)
        return 1
    key = bytes.fromhex(args.validator_key.removeprefix("0x")) if args.validator_key else None
    config = NodeConfig(
        host=args.host, port=args.port, datadir=args.datadir, genesis=None,
        block_time=args.block_time, validator_key=key, metrics_port=args.metrics_port,
        **_rpc_config(args, dev=False),
    )

    def ready(ledger: Ledger) -> None:
        print(f"Chain {ledger.chain_id} at block {ledger.head.block_number}", flush=True)
        print(f"Listening on {args.host}:{args.port}", flush=True)

    return main_loop(config, ready)


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

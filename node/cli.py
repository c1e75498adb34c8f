"""The ``ailedger`` command line: dev chain, init, run, keys, and the sidecar."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from genesis import DEV_BALANCE_ETH, DEV_BASE_FEE, DEV_CHAIN_ID, DEV_GAS_LIMIT, DEV_MNEMONIC
from node import ai_cli

# Heavy modules (eth_account, py-evm, trio, hypercorn) are imported inside the commands that
# need them, so `ailedger --help` and the read commands start fast. `genesis` is light.
#: What `ailedger dev` gives its own validator so that it can serve ai_infer out of the box.
DEV_VALIDATOR_FUNDS = 100 * 10**18
DEV_VALIDATOR_STAKE = 2 * 10**18


DESCRIPTION = """\
ailedger: a blockchain node for an AI-native chain, Ethereum-compatible.

Start a local dev chain (like anvil) and point web3.py, ethers, viem or cast at it:

    ailedger dev                      # http://127.0.0.1:8545, 20 prefunded accounts
    ailedger dev --block-time 2       # a block every 2 s instead of one per transaction
    ailedger dev --datadir ./chain    # persist, and restart on the same chain

Run a node from a genesis file:

    ailedger init --genesis genesis.json --datadir ./node1
    ailedger run --datadir ./node1    # serves eth,net,web3,txpool,ai on 127.0.0.1 (--http-api, --host)

A local network of nodes (libp2p; a late joiner syncs and verifies every block):

    ailedger testnet init --nodes 4 --dir ./net ; ailedger testnet up --dir ./net

Data, models and inference on chain (sign with --account N on the dev chain, or --key):

    ailedger datanet create med-qa --account 0        # then: contribute, curate, datanet publish
    ailedger train --datanet 1:1 --account 0          # on the sidecar's base model (`ailedger model list`)
    ailedger infer --adapter 2 --prompt "..." --account 3 --deposit 0.01eth   # served by the node's validator
    ailedger receipt show 1 ; ailedger rewards claim --account 1
    ailedger COMMAND --help                           # every command explains itself (reads take --json)

README.md's Quickstart runs the whole loop.
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ailedger ... | head`: the reader left; say nothing more (and not at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except BaseException as e:  # noqa: BLE001 - ordinary mistakes get one line, bugs a traceback
        message = friendly_error(e, args)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


def friendly_error(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an ordinary mistake (bad input, a port or datadir in use), else None."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            message = friendly_error(inner, args)
            if message is not None:
                return message
        return None
    if isinstance(exc, ai_cli.CLIError):
        return str(exc)
    from genesis import GenesisError
    from state import ChainMismatch

    if isinstance(exc, (GenesisError, ChainMismatch)):
        return str(exc)
    text = str(exc)
    datadir = getattr(args, "datadir", None)
    if type(exc).__module__.startswith("plyvel") or "LOCK" in text:
        if "lock" in text.lower():
            return f"the datadir {datadir} is in use by another process (is a node already running on it?)"
        return f"cannot open the datadir {datadir}: {text}"
    if isinstance(exc, OSError) and exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
        return f"{text}: the port is in use (another ailedger or anvil?); choose another with --port"
    return None


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


def _rpc_flags(p: argparse.ArgumentParser, dev: bool) -> None:
    from node.rpc.namespaces import ALL_NAMESPACES, DEFAULT_API, DEV_CORS_ORIGINS, DEV_NAMESPACES

    p.add_argument("--host", default="127.0.0.1", help="interface to serve JSON-RPC on (default: %(default)s, this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("-p", "--port", type=int, default=8545, help="JSON-RPC port, HTTP and WebSocket (default: %(default)s)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics on this port (off by default)")
    p.add_argument("-b", "--block-time", type=float, default=None, metavar="SECONDS",
                   help="mine a block every SECONDS; without it, a block is mined as soon as a transaction arrives (automine)")
    if dev:
        api_default = ",".join(ALL_NAMESPACES)
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


def _txpool_flags(p: argparse.ArgumentParser) -> None:
    """The pool's limits, named as geth's ``--txpool.*`` flags, with geth's defaults."""
    from node.txpool import PoolConfig

    defaults = PoolConfig()
    for flag, name, help_text in (
        ("pricebump", "price_bump", "percent by which a replacement must raise both fee caps"),
        ("accountslots", "account_slots", "executable transaction slots each sender is guaranteed"),
        ("globalslots", "global_slots", "executable transaction slots of all senders together"),
        ("accountqueue", "account_queue", "future (gapped) transactions one sender may park"),
        ("globalqueue", "global_queue", "future transaction slots of all senders together"),
        ("lifetime", "lifetime", "seconds a future transaction may wait for its nonce gap to fill"),
    ):
        p.add_argument(f"--txpool.{flag}", dest=f"txpool_{name}", type=_positive_int, metavar="N",
                       default=getattr(defaults, name), help=f"{help_text} (default: %(default)s)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _txpool_config(args: argparse.Namespace) -> Any:
    from node.txpool import PoolConfig

    return PoolConfig(**{f: getattr(args, f"txpool_{f}") for f in PoolConfig.__dataclass_fields__})


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
    p.add_argument("--sidecar-port", type=int, default=50051, help="gRPC port of the sidecar it starts (default: %(default)s)")
    p.add_argument("--sidecar", default=None, metavar="ADDR",
                   help="use the sidecar already running at ADDR (host:port) instead of starting one")
    p.add_argument("--inference-price", type=ai_cli.parse_amount, default=10**15, metavar="AMOUNT",
                   help="what this node's validator charges per ai_infer request (default: 0.001eth)")
    p.add_argument("--silent", action="store_true", help="print only the listening line")
    _txpool_flags(p)
    p.set_defaults(func=cmd_dev)


def dev_chain_genesis(mnemonic: str = DEV_MNEMONIC, **options: Any) -> Any:
    """The dev genesis, with the dev validator funded: it pays the gas of the receipts it
    records through ai_infer (`ailedger dev` and `ailedger init --dev` alike)."""
    from eth_account import Account

    from genesis import GenesisAccount, dev_genesis
    from genesis.dev import derive_validator_key

    validator = bytes.fromhex(Account.from_key(derive_validator_key(mnemonic)).address[2:])
    return dev_genesis(mnemonic=mnemonic, extra_alloc={validator: GenesisAccount(balance=DEV_VALIDATOR_FUNDS)},
                       **options)


def cmd_dev(args: argparse.Namespace) -> int:
    _check_port(args.host, args.port, "--port")
    _check_datadir(args.datadir)
    from genesis import Genesis, derive_accounts
    from genesis.dev import derive_validator_key
    from node.service import NodeConfig
    from state import Ledger

    # SIGTERM before the node's loop takes over must still stop the sidecar (the finally below).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    accounts = derive_accounts(args.mnemonic, args.accounts)
    validator_key = derive_validator_key(args.mnemonic)
    genesis: Genesis | None = dev_chain_genesis(
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
    sidecar_address = args.sidecar
    sidecar = None
    if sidecar_address is None and not args.no_sidecar:
        _check_port(args.host, args.sidecar_port, "--sidecar-port")
        sidecar = _start_sidecar(args)
        if sidecar is not None:
            sidecar_address = f"{args.host}:{args.sidecar_port}"
    config = NodeConfig(
        host=args.host,
        port=args.port,
        datadir=args.datadir,
        genesis=genesis,
        block_time=args.block_time,
        dev_keys=[a.private_key for a in accounts],
        validator_key=validator_key,
        metrics_port=args.metrics_port,
        **_rpc_config(args, dev=True),
        txpool=_txpool_config(args),
        sidecar=sidecar_address,
        inference_price=args.inference_price,
    )

    def ready(ledger: Ledger) -> None:
        if not args.silent:
            _print_banner(args, accounts, ledger)
        print(f"Listening on {args.host}:{args.port}", flush=True)
        if sidecar_address is not None:
            url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
            threading.Thread(target=_prepare_ai, args=(url, validator_key, sidecar_address, sidecar),
                             name="dev-ai-setup", daemon=True).start()

    try:
        return _serve(config, ready)
    finally:
        if sidecar is not None:
            sidecar.terminate()
            try:
                sidecar.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sidecar.kill()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _serve(config: Any, ready: Any) -> int:
    from node.service import main_loop

    return main_loop(config, ready)


def _check_datadir(datadir: Path | None) -> None:
    """Refuse a datadir another node holds (LevelDB's LOCK), in one line."""
    import fcntl

    if datadir is None or not (datadir / "LOCK").exists():
        return
    with open(datadir / "LOCK", "a") as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ai_cli.CLIError(f"the datadir {datadir} is in use by another process "
                                  "(is a node already running on it?)") from None
        fcntl.lockf(lock, fcntl.LOCK_UN)


def _check_port(host: str, port: int, flag: str) -> None:
    """Refuse a port another process holds, in one line, before anything starts."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ai_cli.CLIError(f"cannot listen on {host}:{port} ({e.strerror}): another process "
                                  f"(ailedger, anvil?) holds it; choose another with {flag}") from None


def _prepare_ai(url: str, validator_key: bytes, sidecar_address: str, proc: subprocess.Popen[bytes] | None) -> None:
    """After the dev node listens: stake its validator (so it can record ai_infer receipts),
    wait for the sidecar to serve, and register the sidecar's base model on chain."""
    client = ai_cli.Client(url, validator_key)
    try:
        minimum = int(client.call("ai_getParams")["staking.min_stake"], 16)
        if int(client.view("Staking", "stakeOf", client.address)) < minimum:
            client.transact("Staking", "stake", value=max(DEV_VALIDATOR_STAKE, minimum))
        print(f"Waiting for the sidecar on {sidecar_address} ...", flush=True)

        def progress(seconds: float) -> None:
            if proc is not None and proc.poll() is not None:
                raise ai_cli.CLIError(f"the sidecar exited with status {proc.returncode}")
            print(f"  sidecar not ready yet ({seconds:.0f} s; the first start builds its base model)", flush=True)

        ai_cli.wait_sidecar(sidecar_address, timeout=3600, progress=progress)
        print(f"sidecar ready on {sidecar_address}", flush=True)
        model_id, weights, new = ai_cli.register_sidecar_base(client, sidecar_address)
        print(f"base model {model_id} {'registered' if new else 'on chain'}: the sidecar's, weights {weights}",
              flush=True)
        print(f"AI ready: validator {client.address} serves ai_infer", flush=True)
    except ai_cli.CLIError as e:
        print(f"error: AI setup: {e}", file=sys.stderr, flush=True)
    except Exception as e:  # noqa: BLE001 - the chain keeps serving; say why AI is not ready
        print(f"error: AI setup failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def _start_sidecar(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    if importlib.util.find_spec("sidecar") is None or importlib.util.find_spec("torch") is None:
        print("note: the AI sidecar is not installed (torch/peft missing); running without it", file=sys.stderr)
        return None
    store = (args.datadir / "sidecar") if args.datadir else Path(tempfile.mkdtemp(prefix="ailedger-sidecar-"))
    cmd = [sys.executable, "-m", "sidecar", "--host", args.host, "--port", str(args.sidecar_port), "--store", str(store)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent)
    print(f"Sidecar starting on {args.host}:{args.sidecar_port} (store {store})", flush=True)
    return proc


def _die_with_parent() -> None:
    """In the sidecar child, before exec: ask Linux for SIGTERM when ``ailedger dev`` dies,
    however it dies (kill -9 included), so no sidecar outlives its node."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _print_banner(args: argparse.Namespace, accounts: list[Any], ledger: Any) -> None:
    from genesis.dev import DEV_PATH

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
    _check_datadir(args.datadir)
    from genesis import load_genesis
    from state import Ledger, LevelDBStore

    genesis = dev_chain_genesis() if args.dev else load_genesis(args.genesis)
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
    _rpc_flags(p, dev=False)
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
                   help="gRPC address of this validator's sidecar: with --validator-key, serve ai_infer")
    p.add_argument("--inference-price", type=ai_cli.parse_amount, default=10**15, metavar="AMOUNT",
                   help="what this validator charges per ai_infer request (default: 0.001eth)")
    p.add_argument("--byzantine", default=None, help=argparse.SUPPRESS)  # test-only, needs AILEDGER_ALLOW_BYZANTINE
    p.add_argument("--faults", action="store_true", help=argparse.SUPPRESS)  # test-only, needs AILEDGER_ALLOW_FAULTS
    _txpool_flags(p)
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
    key = ai_cli._hex_key(key_hex, "--validator-key") if key_hex else None
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
    _check_port(host, port, "--port")
    _check_datadir(datadir)
    block_time = args.block_time if args.block_time is not None else (node_file.block_time if node_file else None)
    from node.service import NodeConfig

    consensus = _consensus_config(node_file)
    if args.byzantine is not None:
        from node.consensus_reactor import BYZANTINE_ENV, BYZANTINE_MODES

        if not os.environ.get(BYZANTINE_ENV):
            print(f"error: --byzantine is a test-only mode; it needs {BYZANTINE_ENV}=1", file=sys.stderr)
            return 1
        if args.byzantine not in BYZANTINE_MODES:
            print(f"error: --byzantine must be one of {', '.join(BYZANTINE_MODES)}", file=sys.stderr)
            return 1
        consensus.byzantine = args.byzantine
    if args.faults:
        from node.consensus_reactor import FAULTS_ENV

        if not os.environ.get(FAULTS_ENV):
            print(f"error: --faults is a test-only mode; it needs {FAULTS_ENV}=1", file=sys.stderr)
            return 1
        consensus.faults = True
    config = NodeConfig(
        host=host, port=port, datadir=datadir, genesis=genesis,
        block_time=block_time, validator_key=key, metrics_port=args.metrics_port,
        **_rpc_config(args, dev=False),
        txpool=_txpool_config(args),
        sidecar=args.sidecar, inference_price=args.inference_price,
        p2p=p2p, follower=p2p is not None and key is None, progress_bar=p2p is not None,
        consensus=consensus,
    )

    def ready(ledger: Any) -> None:
        role = "follower" if config.follower else "validator" if key else "node"
        print(f"Chain {ledger.chain_id} at block {ledger.head.block_number} ({role})", flush=True)
        print(f"Listening on {host}:{port}", flush=True)

    return _serve(config, ready)


def _consensus_config(node_file: Any) -> Any:
    """BFT timeouts: the defaults, with what the node's config file sets."""
    import dataclasses

    from genesis.testnet import TIMEOUT_FIELDS
    from node.consensus_reactor import ConsensusConfig

    config = ConsensusConfig()
    if node_file is None or not node_file.consensus:
        return config
    changes = {TIMEOUT_FIELDS[name]: value for name, value in node_file.consensus.items() if name in TIMEOUT_FIELDS}
    max_txs = int(node_file.consensus.get("maxBlockTxs", config.max_block_txs))
    return ConsensusConfig(dataclasses.replace(config.timeouts, **changes), config.gossip_interval, max_txs)


def _add_testnet(sub: Any) -> None:
    p = sub.add_parser("testnet", help="create and run a local multi-node testnet",
                       description="A local network of nodes: one validator and followers, "
                       "each a separate process talking libp2p on loopback.")
    ts = p.add_subparsers(title="testnet commands", metavar="ACTION")
    init = ts.add_parser("init", help="write a genesis, and a key and a config per node")
    init.add_argument("--nodes", type=int, default=None, help="number of nodes; node0 is the validator unless --validators (default: 4, or --validators)")
    init.add_argument("--validators", type=int, default=0, metavar="N",
                      help="nodes 0..N-1 are validators with equal stakes in genesis and run BFT consensus; "
                      "the others follow (default: one validator, node0, sealing alone)")
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

    count = args.nodes if args.nodes is not None else max(4, args.validators)
    nodes = init_testnet(
        args.dir, count, peer_id_of_key, chain_id=args.chain_id or TESTNET_CHAIN_ID,
        rpc_port=args.rpc_port, p2p_port=args.p2p_port, block_time=args.block_time,
        validators=args.validators,
    )
    print(f"Testnet of {len(nodes)} nodes in {args.dir} (genesis {args.dir / 'genesis.json'})")
    for i, node in enumerate(nodes):
        role = "validator" if node.validator_key else "follower"
        print(f"  node{i} {role:9} rpc http://{node.host}:{node.rpc_port}  p2p {node.p2p_port}  peer {node.peer_id}")
    print(f"Start it with: ailedger testnet up --dir {args.dir}")
    return 0


def cmd_testnet_up(args: argparse.Namespace) -> int:
    import time

    from genesis.testnet import load_node_file

    configs = sorted(args.dir.glob("node*/config.json"), key=lambda p: int(p.parent.name[4:] or 0))
    if not configs:
        print(f"error: no node*/config.json in {args.dir}; run `ailedger testnet init --dir {args.dir}` first", file=sys.stderr)
        return 1
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # SIGTERM stops the nodes as Ctrl-C does
    try:
        for path in configs:
            node = load_node_file(path)
            log = open(path.parent / "node.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "run", "--config", str(path)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent,  # a killed `testnet up` leaves no node behind
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
    except (KeyboardInterrupt, SystemExit):
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
    from eth_account import Account

    acct = Account.create()
    print(json.dumps({"address": acct.address, "privateKey": "0x" + bytes(acct.key).hex()}, indent=2))
    return 0


def cmd_keys_derive(args: argparse.Namespace) -> int:
    from genesis import derive_accounts

    for i, a in enumerate(derive_accounts(args.mnemonic, args.count)):
        print(f"({i}) {a.address} 0x{a.private_key.hex()}")
    return 0


def cmd_keys_address(args: argparse.Namespace) -> int:
    from eth_account import Account

    try:
        print(Account.from_key(args.key).address)
    except (ValueError, TypeError) as e:
        print(f"error: not a private key: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What ``ailedger dev`` and ``ailedger run`` share: the JSON-RPC and pool flags, the one-line
checks that a port or datadir is free before anything starts, and the node's main loop."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypedDict

from node.cli.errors import CLIError

if TYPE_CHECKING:
    from node.service import NodeConfig
    from node.txpool import PoolConfig
    from state import Ledger


class RPCSettings(TypedDict):
    """The NodeConfig fields the RPC flags set."""

    dev: bool
    api: tuple[str, ...]
    cors_origins: tuple[str, ...]
    rpc_gas_cap: int
    rpc_evm_timeout: float
    rpc_read_timeout: float
    explorer: bool


def add_rpc_flags(p: argparse.ArgumentParser, dev: bool) -> None:
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
    if dev:
        p.add_argument("--no-explorer", dest="explorer", action="store_false",
                       help="do not serve the explorer at http://HOST:PORT/explorer/ (served by default)")
    else:
        p.add_argument("--explorer", action="store_true",
                       help="serve the explorer, a web page that reads this node's JSON-RPC, at "
                            "http://HOST:PORT/explorer/ (off by default)")
    p.add_argument("--rpc-gascap", type=int, default=50_000_000, metavar="GAS",
                   help="most gas one eth_call/eth_estimateGas may use; never more than the block gas limit (default: %(default)s)")
    p.add_argument("--rpc-evmtimeout", type=float, default=5.0, metavar="SECONDS",
                   help="wall-clock limit of one eth_call/eth_estimateGas, 0 for none (default: %(default)s)")
    p.add_argument("--rpc-read-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="wall-clock limit of one long read (eth_getLogs, feeHistory, ai_ lineage and training sets), "
                        "0 for none (default: %(default)s)")


def rpc_settings(args: argparse.Namespace, dev: bool) -> RPCSettings:
    """The NodeConfig fields the RPC flags set; a bad value is a CLIError."""
    from node.rpc.namespaces import parse_api, parse_origins

    try:
        api = parse_api(args.http_api, dev)
        origins = parse_origins(args.cors_origins)
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.rpc_gascap <= 0 or args.rpc_evmtimeout < 0 or args.rpc_read_timeout < 0:
        raise CLIError("--rpc-gascap must be positive, --rpc-evmtimeout and --rpc-read-timeout not negative")
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
        "rpc_read_timeout": args.rpc_read_timeout, "explorer": args.explorer,
    }


def add_txpool_flags(p: argparse.ArgumentParser) -> None:
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


def txpool_config(args: argparse.Namespace) -> PoolConfig:
    from node.txpool import PoolConfig

    return PoolConfig(**{f: getattr(args, f"txpool_{f}") for f in PoolConfig.__dataclass_fields__})


def check_datadir(datadir: Path | None) -> None:
    """Refuse a datadir another node holds (LevelDB's LOCK), in one line."""
    import fcntl

    if datadir is None or not (datadir / "LOCK").exists():
        return
    with open(datadir / "LOCK", "a") as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CLIError(f"the datadir {datadir} is in use by another process "
                           "(is a node already running on it?)") from None
        fcntl.lockf(lock, fcntl.LOCK_UN)


def check_port(host: str, port: int, flag: str) -> None:
    """Refuse a port another process holds, in one line, before anything starts."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise CLIError(f"cannot listen on {host}:{port} ({e.strerror}): another process "
                           f"(ailedger, anvil?) holds it; choose another with {flag}") from None


def serve(config: NodeConfig, ready: Callable[[Ledger], None]) -> int:
    """Run the node until it is stopped; ``ready(ledger)`` once it listens."""
    from node.service import main_loop

    return main_loop(config, ready)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def die_with_parent() -> None:
    """In a child, before exec: ask Linux for SIGTERM when its ``ailedger`` parent dies,
    however it dies (kill -9 included), so no sidecar or testnet node outlives it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

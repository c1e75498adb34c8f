"""The ``ailedger`` command line: one module per command group, one JSON-RPC client for all.

- ``dev``, ``chain`` (init, run), ``testnet``, ``keys``: run nodes; ``serving`` holds what
  ``dev`` and ``run`` share.
- ``abi``, ``datanet`` (with contribute, curate), ``model`` (model, adapter), ``receipt``,
  ``deposit``, ``rewards``, ``stake``, ``govern``, ``train``, ``infer``: the chain's AI side,
  as signed transactions and ``ai_`` reads through :class:`node.cli.client.Client`.
- ``options`` (flags, signing key, output), ``amounts``, ``reads``, ``blobs`` and
  ``sidecar_grpc``: what the commands share.

Heavy modules (eth_account, py-evm, trio, grpc, tqdm) are imported inside the commands that
need them, so ``ailedger --help`` and the read commands start fast; ``genesis`` and
``ai_precompiles.addresses`` are light.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import NoReturn

from node.cli import (
    abi,
    chain,
    datanet,
    deposit,
    dev,
    govern,
    infer,
    keys,
    model,
    receipt,
    rewards,
    stake,
    testnet,
    train,
)
from node.cli.errors import FAILED, USAGE, CLIError, error_json

DESCRIPTION = """\
ailedger: a blockchain node for an AI-native chain, Ethereum-compatible.

Start a local dev chain (like anvil) and point web3.py, ethers, viem or cast at it:

    ailedger dev                      # http://127.0.0.1:8545, 20 prefunded accounts
    ailedger dev --block-time 2       # a block every 2 s instead of one per transaction
    ailedger dev --datadir ./chain    # persist, and restart on the same chain

Run a node from a genesis file:

    ailedger init --genesis genesis.json --datadir ./node1
    ailedger run --datadir ./node1    # serves eth,net,web3,txpool,ai on 127.0.0.1 (--http-api, --host)

A local network of nodes (libp2p; a late joiner syncs and verifies every block; each validator
with a sidecar of its own, so any validator serves inference):

    ailedger testnet init --nodes 4 --validators 4 --dir ./net ; ailedger testnet up --dir ./net

Data, models and inference on chain (sign with --account N, a public dev key funded on the dev
chain and testnets, or --key):

    ailedger datanet create med-qa --account 0        # then: contribute, curate, datanet publish
    ailedger train --datanet 1:1 --account 0          # on the sidecar's base model (`ailedger model list`)
    ailedger infer --adapter 2 --prompt "..." --account 3 --deposit 0.01eth   # served by the node's validator
    ailedger receipt show 1 ; ailedger rewards claim --account 1
    ailedger adapter verify 2                         # re-train it from its on-chain recipe
    ailedger COMMAND --help                           # every command explains itself

Commands that talk to a node take --json: the result as JSON on stdout, and a failure too, as
{"error": {"code": "usage" | "unreachable" | "rpc" | "failed", "message": ...}} (exit status 1,
or 2 for a usage error); progress goes to stderr, a bar on a terminal and plain lines elsewhere.

README.md's Quickstart runs the whole loop.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised as :class:`UsageError` (the command's subparsers
    are of this class too), so ``main`` prints it as JSON under ``--json``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


class UsageError(Exception):
    """Bad flags or arguments, found by ``parser``."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for --json (before a ``--``, where flags end)."""
    flags = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in flags


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        if wants_json(argv):
            print(json.dumps(error_json(str(e), USAGE)))
        else:  # argparse's own form
            e.parser.print_usage(sys.stderr)
            print(f"{e.parser.prog}: error: {e}", file=sys.stderr)
        return 2
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
        if getattr(args, "json", False):
            details = e.details if isinstance(e, CLIError) else {}
            code = e.code if isinstance(e, CLIError) else FAILED
            print(json.dumps(error_json(message, code, **details)))
        else:
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
    if isinstance(exc, CLIError):
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
    parser: argparse.ArgumentParser = Parser(
        prog="ailedger", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    # The order of `ailedger --help`: running nodes, then the chain's AI side, then the sidecar.
    dev.add_parser(sub)
    chain.add_parsers(sub)
    testnet.add_parser(sub)
    keys.add_parser(sub)
    for group in (abi, datanet, model, receipt, deposit, rewards, stake, govern, train, infer):
        group.add_parsers(sub)
    if importlib.util.find_spec("sidecar.cli") is not None:
        from sidecar import cli as sidecar_cli  # no torch at import time

        sidecar_cli.add_parser(sub)
    return parser

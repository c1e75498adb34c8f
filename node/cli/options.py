"""What the chain commands share: the ``--rpc/--key/--account/--json`` flags, the key they sign
with, argparse helpers for a command and its actions, and one output style.

The signing key comes from ``--key`` (hex), the environment (``AILEDGER_KEY``) or
``--account N``: the Nth account of the development mnemonic, whose keys are public: funded on
the dev chain and testnets, it signs on any chain.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from genesis import DEV_MNEMONIC
from node.cli.amounts import parse_amount
from node.cli.client import Client, Json
from node.cli.errors import CLIError

#: What ``add_subparsers`` returns: the set of commands (or actions) a parser offers.
if TYPE_CHECKING:
    from typing import TypeAlias

    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction  # not subscriptable at run time

#: A command: reads its parsed flags, returns the exit status.
Command = Callable[[argparse.Namespace], int]
#: One argument of a command: ``add_argument``'s flags and keywords (argparse types them loosely).
Argument = tuple[tuple[str, ...], dict[str, Any]]

#: The options of an AMOUNT argument.
AMOUNT: dict[str, Any] = {"type": parse_amount, "metavar": "AMOUNT", "help": "e.g. 2eth, 0.1eth, 20gwei, or wei"}


#: The --json rule, said once for every command that has the flag.
JSON_HELP = ("print the result as JSON on stdout; a failure too, as {\"error\": {\"code\": ..., "
             "\"message\": ...}} on stdout (code: usage, unreachable, rpc or failed), exit status 1 "
             "(2 for a usage error)")


def arg(*flags: str, **options: Any) -> Argument:
    return flags, options


def add_common(p: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to a node."""
    p.add_argument("--rpc", default=os.environ.get("AILEDGER_RPC", "http://127.0.0.1:8545"),
                   help="node JSON-RPC URL (default: %(default)s; env AILEDGER_RPC)")
    p.add_argument("--key", default=None, help="hex private key that signs (or env AILEDGER_KEY)")
    p.add_argument("--account", type=int, default=None, metavar="N",
                   help="sign with account N of the development mnemonic: funded on `ailedger dev` and "
                        "testnets, usable on any chain, but its keys are public (never for real value)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def add_sidecar_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
                   help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)")


def action(group: Subparsers, name: str, help: str, func: Command, *arguments: Argument,
           description: str | None = None) -> argparse.ArgumentParser:
    """One signed-or-read command: the common flags, its own arguments, its function."""
    p = group.add_parser(name, help=help, description=description or help)
    add_common(p)
    for flags, options in arguments:
        p.add_argument(*flags, **options)
    p.set_defaults(func=func)
    return p


def group(sub: Subparsers, name: str, help: str, description: str | None = None) -> Subparsers:
    """A command with actions (``datanet create`` ...); alone, it prints its own help."""
    parser = sub.add_parser(name, help=help, description=description or help)
    parser.set_defaults(func=help_only(parser))
    return parser.add_subparsers(title=f"{name} commands", metavar="ACTION")


def help_only(parser: argparse.ArgumentParser) -> Command:
    """What a command of actions does given none: print its help and exit with status 2."""

    def print_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return print_help


def show(args: argparse.Namespace, obj: Json, lines: list[str] | str) -> None:
    """One output style: readable lines by default, the JSON object with --json."""
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=2))
    else:
        print(lines if isinstance(lines, str) else "\n".join(lines))


def parse_hash(value: str) -> bytes:
    """A 0x 32-byte hash given on the command line or by the node."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CLIError(f"{value}: expected a 32-byte hash")
    return raw


def hex_key(text: str, what: str) -> bytes:
    """A 32-byte hex private key given as ``what`` (a flag or variable name, for the message)."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CLIError(f"{what}: expected a 32-byte hex private key")
    return raw


def dev_key(index: int) -> bytes:
    """Private key of dev account ``index`` of the development mnemonic."""
    if not 0 <= index < 1000:
        raise CLIError(f"--account {index}: expected a dev account index 0..999")
    from genesis import derive_accounts

    return derive_accounts(DEV_MNEMONIC, index + 1)[index].private_key


def signing_key(args: argparse.Namespace) -> bytes | None:
    """``--key``, else ``AILEDGER_KEY``, else ``--account N``'s dev key, else none (reads only)."""
    if getattr(args, "key", None):
        return hex_key(args.key, "--key")
    if os.environ.get("AILEDGER_KEY"):
        return hex_key(os.environ["AILEDGER_KEY"], "AILEDGER_KEY")
    if getattr(args, "account", None) is not None:
        return dev_key(args.account)
    return None


def client_for(args: argparse.Namespace) -> Client:
    """The client of ``--rpc`` that signs with the command's key."""
    return Client(args.rpc, signing_key(args))

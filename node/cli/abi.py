"""``ailedger abi``: a precompile's ABI JSON, Solidity interface or address, for other tools."""

from __future__ import annotations

import argparse
import json

from ai_precompiles.addresses import BY_NAME
from node.cli.client import checksum
from node.cli.errors import CLIError
from node.cli.options import Subparsers

#: The precompile modules by name, sorted (``addresses.BY_NAME`` holds the one list).
MODULE_NAMES = tuple(sorted(BY_NAME))


def add_parsers(sub: Subparsers) -> None:
    abi = sub.add_parser("abi", help="print a precompile's ABI JSON or Solidity interface",
                         description="Print the ABI (default) or the Solidity interface of an AI precompile, "
                         "to call it from web3.py, ethers, cast or a Solidity contract.")
    abi.add_argument("name", metavar="NAME", help=f"module: {', '.join(MODULE_NAMES)}")
    abi.add_argument("--sol", action="store_true", help="print the Solidity interface instead")
    abi.add_argument("--address", action="store_true", help="print only the precompile address")
    abi.set_defaults(func=cmd_abi)


def cmd_abi(args: argparse.Namespace) -> int:
    if args.name not in MODULE_NAMES:
        raise CLIError(f"no module {args.name!r}: choose one of {', '.join(MODULE_NAMES)}")
    import ai_precompiles

    if args.address:
        print(checksum(BY_NAME[args.name]))
    elif args.sol:
        print(ai_precompiles.sol_source(args.name))
    else:
        print(json.dumps(list(ai_precompiles.MODULES[args.name].abi.raw), indent=2))
    return 0

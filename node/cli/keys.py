"""``ailedger keys``: secp256k1 keys, for accounts and validators alike."""

from __future__ import annotations

import argparse
import json
import sys

from genesis import DEV_MNEMONIC
from node.cli.options import Subparsers, help_only


def add_parser(sub: Subparsers) -> None:
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
    p.set_defaults(func=help_only(p))


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

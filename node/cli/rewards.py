"""``ailedger rewards``: what an address has earned from inference fees, and claiming it."""

from __future__ import annotations

import argparse

from node.cli.amounts import ether
from node.cli.client import Json, checksum
from node.cli.errors import CLIError
from node.cli.options import Subparsers, action, arg, client_for, group, show


def add_parsers(sub: Subparsers) -> None:
    rsub = group(sub, "rewards", "show and claim rewards")
    action(rsub, "show", "claimable and earned rewards of an address", cmd_rewards_show,
           arg("address", nargs="?", help="default: your own"))
    action(rsub, "claim", "pay out your claimable rewards", cmd_rewards_claim)


def cmd_rewards_show(args: argparse.Namespace) -> int:
    client = client_for(args)
    who = args.address or client.address
    r = client.call("ai_getRewards", who)
    out: dict[str, Json] = {"address": checksum(who), "claimable": int(r["claimable"], 16),
                            "earned": int(r["earned"], 16)}
    show(args, out, f"{out['address']}: claimable {ether(out['claimable'])}, earned {ether(out['earned'])}")
    return 0


def cmd_rewards_claim(args: argparse.Namespace) -> int:
    client = client_for(args)
    before = int(client.call("ai_getRewards", client.address)["claimable"], 16)
    if before == 0:
        raise CLIError(f"{client.address} has nothing to claim (see `ailedger rewards show`)")
    receipt = client.transact("Rewards", "claim")
    show(args, {"claimed": before, "transactionHash": receipt["transactionHash"]},
         f"claimed {ether(before)} (tx {receipt['transactionHash']})")
    return 0

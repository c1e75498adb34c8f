"""``ailedger deposit``: the deposit the Inference precompile charges fees from, added to and
withdrawn after its lock."""

from __future__ import annotations

import argparse
import time

from node.cli.amounts import ether
from node.cli.client import checksum
from node.cli.errors import CLIError
from node.cli.options import AMOUNT, Subparsers, action, arg, client_for, group, show
from node.cli.reads import check_balance, deposit_of


def add_parsers(sub: Subparsers) -> None:
    dpsub = group(sub, "deposit", "show, add and withdraw your inference deposit",
                  "Inference fees are charged from a deposit held by the Inference precompile. A "
                  "withdrawal is requested first and paid after a lock (governance "
                  "`inference.withdraw_delay`), so requests you already signed can still be paid.")
    action(dpsub, "show", "deposit balance and pending withdrawal", cmd_deposit_show,
           arg("address", nargs="?", help="default: your own"))
    action(dpsub, "add", "deposit ether for inference fees", cmd_deposit_add, arg("amount", **AMOUNT))
    action(dpsub, "withdraw", "request a withdrawal, or take it once its lock is over", cmd_deposit_withdraw,
           arg("amount", nargs="?", **{**AMOUNT, "help": "default: the whole deposit"}))


def cmd_deposit_show(args: argparse.Namespace) -> int:
    client = client_for(args)
    who = args.address or client.address
    d = deposit_of(client, who)
    line = f"{checksum(who)}: deposit {ether(d['balance'])}"
    if d["withdrawalPending"]:
        line += (f", withdrawal of {ether(d['withdrawalPending'])} requested, unlocks at "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(d['unlockTime']))}")
    show(args, {"address": checksum(who), **d}, line)
    return 0


def cmd_deposit_add(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.amount == 0:
        raise CLIError("nothing to deposit: give an amount above zero (e.g. 0.1eth)")
    check_balance(client, args.amount)
    receipt = client.transact("Inference", "deposit", value=args.amount)
    d = deposit_of(client, client.address)
    show(args, {"deposited": args.amount, **d, "transactionHash": receipt["transactionHash"]},
         f"deposited {ether(args.amount)}; deposit now {ether(d['balance'])} (tx {receipt['transactionHash']})")
    return 0


def cmd_deposit_withdraw(args: argparse.Namespace) -> int:
    client = client_for(args)
    d = deposit_of(client, client.address)
    if d["balance"] == 0:
        raise CLIError(f"{client.address} has no deposit")
    amount = args.amount if args.amount is not None else d["balance"]
    if amount == 0 or amount > d["balance"]:
        raise CLIError(f"cannot withdraw {ether(amount)}: the deposit is {ether(d['balance'])}")
    now = int(client.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    if d["withdrawalPending"] >= amount and d["unlockTime"] <= now:
        receipt = client.transact("Inference", "withdraw", amount)
        show(args, {"withdrawn": amount, "transactionHash": receipt["transactionHash"]},
             f"withdrew {ether(amount)} (tx {receipt['transactionHash']})")
        return 0
    if d["withdrawalPending"] >= amount:
        raise CLIError(f"the withdrawal unlocks in {d['unlockTime'] - now} s; run this again then")
    receipt = client.transact("Inference", "requestWithdrawal", amount)
    d = deposit_of(client, client.address)
    show(args, {"requested": amount, "unlockTime": d["unlockTime"], "transactionHash": receipt["transactionHash"]},
         f"withdrawal of {ether(amount)} requested; it unlocks in {max(0, d['unlockTime'] - now)} s "
         "(requests you signed can still be charged until then); run `ailedger deposit withdraw` again then")
    return 0

"""``ailedger stake``: validators' stakes, which put them in the validator set and let them
record inference receipts."""

from __future__ import annotations

import argparse

from node.cli.amounts import ether
from node.cli.client import Json, checksum
from node.cli.errors import CLIError
from node.cli.options import AMOUNT, Subparsers, action, arg, client_for, group, show
from node.cli.reads import check_balance


def add_parsers(sub: Subparsers) -> None:
    ssub = group(sub, "stake", "stake, unstake and show validator stakes",
                 "Validators stake to enter the validator set (from the next epoch) and to record "
                 "inference receipts; unstaked wei waits out the unbonding delay.")
    action(ssub, "add", "stake from your balance", cmd_stake_add, arg("amount", **AMOUNT))
    action(ssub, "remove", "start unbonding part of your stake", cmd_stake_remove, arg("amount", **AMOUNT))
    action(ssub, "withdraw", "withdraw unstaked wei whose unbonding delay has passed", cmd_stake_withdraw)
    action(ssub, "show", "the validator set and voting powers", cmd_stake_show)


def cmd_stake_add(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.amount == 0:
        raise CLIError("nothing to stake: give an amount above zero (e.g. 2eth)")
    check_balance(client, args.amount)
    receipt = client.transact("Staking", "stake", value=args.amount)
    show(args, {"staked": args.amount, "transactionHash": receipt["transactionHash"]},
         f"staked {ether(args.amount)} (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_remove(args: argparse.Namespace) -> int:
    client = client_for(args)
    staked = int(client.view("Staking", "stakeOf", client.address))
    if args.amount == 0 or args.amount > staked:
        raise CLIError(f"cannot unstake {ether(args.amount)}: your stake is {ether(staked)}")
    receipt = client.transact("Staking", "unstake", args.amount)
    show(args, {"unbonding": args.amount, "transactionHash": receipt["transactionHash"]},
         f"unbonding {ether(args.amount)} (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_withdraw(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Staking", "withdrawUnbonded")
    show(args, {"transactionHash": receipt["transactionHash"]}, f"withdrawn (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_show(args: argparse.Namespace) -> int:
    validators = client_for(args).call("ai_getValidatorSet")
    out: list[dict[str, Json]] = [{"address": checksum(v["address"]), "power": int(v["power"], 16)}
                                  for v in validators]
    show(args, out, [f"{v['address']}: {ether(v['power'])}" for v in out] or ["no staked validators"])
    return 0

"""``ailedger rewards``: what an address has earned from inference fees, and claiming it."""

from __future__ import annotations

import argparse
import sys

from node.cli.amounts import ether
from node.cli.client import Client, Json, checksum
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


def settle_due(client: Client, address: str) -> int:
    """Settle the receipts that hold ``address``'s pending rewards and whose challenge window is
    over, so that a claim takes them too; returns how many settled. The receipts come from the
    account's ``RewardPending`` logs, newest first, until they account for its whole pending
    balance (or the chain's start), in spans the node's log-range limit allows."""
    from ai_precompiles import load_abi
    from ai_precompiles.addresses import REWARDS

    rewards = client.call("ai_getRewards", address)
    assert isinstance(rewards, dict)
    pending = int(str(rewards.get("pending", "0x0")), 16)
    head = int(str(client.call("eth_blockNumber")), 16)
    topics = [hex(load_abi("Rewards").events["RewardPending"].topic0),
              "0x" + address.lower().removeprefix("0x").rjust(64, "0")]
    seen, due, end = 0, [], head
    while seen < pending and end >= 0:
        start = max(0, end - 9_999)
        logs = client.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(end),
                                           "address": checksum(REWARDS), "topics": topics})
        assert isinstance(logs, list)
        for log in reversed(logs):
            assert isinstance(log, dict)
            receipt_id = int(str(log["topics"][2]), 16)  # type: ignore[index]
            receipt = client.view("Inference", "getReceipt", receipt_id)
            assert isinstance(receipt, dict)
            if receipt["status"] in (0, 1):  # pending, or challenged: still held
                seen += int(str(log["data"]), 16)
                if receipt["status"] == 0 and int(str(receipt["release_block"])) <= head + 1 and receipt_id not in due:
                    due.append(receipt_id)
        end = start - 1
    for i in range(0, len(due), 64):  # Inference.settle takes at most 64 receipts a call
        client.transact("Inference", "settle", due[i : i + 64])
    return len(due)


def cmd_rewards_claim(args: argparse.Namespace) -> int:
    client = client_for(args)
    if settle_due(client, client.address):
        print("settled the receipts whose challenge window is over", file=sys.stderr)
    rewards = client.call("ai_getRewards", client.address)
    assert isinstance(rewards, dict)
    before = int(str(rewards["claimable"]), 16)
    if before == 0:
        held = int(str(rewards.get("pending", "0x0")), 16)
        raise CLIError(f"{client.address} has nothing to claim" + (
            f" yet: {ether(held)} is held until its receipts' challenge windows close" if held else
            " (see `ailedger rewards show`)"))
    receipt = client.transact("Rewards", "claim")
    show(args, {"claimed": before, "transactionHash": receipt["transactionHash"]},
         f"claimed {ether(before)} (tx {receipt['transactionHash']})")
    return 0

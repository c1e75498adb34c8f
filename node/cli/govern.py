"""``ailedger govern``: proposals to change protocol parameters, stake-weighted votes on them,
and the parameters in force."""

from __future__ import annotations

import argparse

from node.cli.amounts import ether
from node.cli.client import Json, checksum
from node.cli.errors import CLIError
from node.cli.options import Subparsers, action, arg, client_for, group, show

#: Parameters holding an address rather than a number.
ADDRESS_PARAMS = ("treasury",)


def add_parsers(sub: Subparsers) -> None:
    gsub = group(sub, "govern", "propose, vote on and show parameter changes")
    action(gsub, "propose", "propose a new value for a protocol parameter", cmd_govern_propose,
           arg("param", help="parameter name (see `ailedger govern params`)"), arg("value", type=int))
    action(gsub, "vote", "vote on a proposal (weighted by your stake)", cmd_govern_vote,
           arg("proposal", type=int), arg("choice", choices=["yes", "no"]))
    action(gsub, "execute", "execute a passed proposal after its delay", cmd_govern_execute,
           arg("proposal", type=int))
    action(gsub, "show", "show a proposal", cmd_govern_show, arg("proposal", type=int))
    action(gsub, "params", "the current protocol parameters", cmd_govern_params)


def cmd_govern_propose(args: argparse.Namespace) -> int:
    client = client_for(args)
    params = client.call("ai_getParams")
    if args.param not in params:
        raise CLIError(f"no parameter {args.param!r} (see `ailedger govern params`)")
    receipt = client.transact("Governance", "propose", args.param, args.value)
    pid = client.event_arg(receipt, "Governance", "ProposalCreated")
    show(args, {"id": pid, "transactionHash": receipt["transactionHash"]}, f"proposal {pid} created")
    return 0


def cmd_govern_vote(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "vote", args.proposal, args.choice == "yes")
    show(args, {"proposal": args.proposal, "vote": args.choice, "transactionHash": receipt["transactionHash"]},
         f"voted {args.choice} on proposal {args.proposal}")
    return 0


def cmd_govern_execute(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "execute", args.proposal)
    show(args, {"proposal": args.proposal, "transactionHash": receipt["transactionHash"]},
         f"proposal {args.proposal} executed")
    return 0


def cmd_govern_show(args: argparse.Namespace) -> int:
    client = client_for(args)
    try:
        prop = client.call("ai_getProposal", args.proposal)
    except CLIError as e:
        raise CLIError(f"proposal {args.proposal} does not exist" if "not found" in str(e) else str(e)) from None
    show(args, prop, [f"proposal {prop['id']}: {prop['param']} = {prop['value']} (by {prop['proposer']})",
                      f"  yes {ether(prop['yesVotes'])}, no {ether(prop['noVotes'])} of {ether(prop['totalPower'])}; "
                      f"votes until block {prop['endBlock']}, executable from {prop['executableBlock']}"])
    return 0


def cmd_govern_params(args: argparse.Namespace) -> int:
    raw = client_for(args).call("ai_getParams")
    params: dict[str, Json] = {}
    for k, v in raw.items():
        params[k] = checksum(int(v, 16).to_bytes(20, "big")) if k in ADDRESS_PARAMS else int(v, 16)
    width = max(map(len, params))
    show(args, params, [f"{k:<{width}}  {v}" for k, v in sorted(params.items())])
    return 0

"""``ailedger govern``: proposals (a protocol parameter, an adapter's deployment, a named
upgrade at a height), stake-weighted votes on them, approval policies, the parameters in force
and the upgrade schedule."""

from __future__ import annotations

import argparse

from node.cli.amounts import ether
from node.cli.client import Json, checksum
from node.cli.errors import CLIError
from node.cli.options import AMOUNT, Subparsers, action, arg, client_for, group, show

#: ``govern policy``'s subjects -> ``Governance.setApprovalPolicy`` kinds
POLICY_KINDS = {"datanet": 1, "base-model": 2}
KINDS = ("parameter", "model", "upgrade")

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
    action(gsub, "policy", "require (or not) an approved model proposal before adapters trained on "
           "your datanet or base model are served", cmd_govern_policy,
           arg("subject", choices=sorted(POLICY_KINDS)), arg("id", type=int), arg("required", choices=["on", "off"]))
    action(gsub, "propose-model", "propose your adapter for deployment, with a bond", cmd_govern_propose_model,
           arg("adapter", type=int), arg("bond", **AMOUNT))
    action(gsub, "model-status", "whether an adapter needs approval, has it, and may be served",
           cmd_govern_model_status, arg("adapter", type=int))
    action(gsub, "propose-upgrade", "propose a named upgrade at a block height", cmd_govern_propose_upgrade,
           arg("name"), arg("height", type=int),
           arg("--info", default="", help="what node operators install to apply it (a version, a URL)"))
    action(gsub, "close", "close a proposal that did not pass (settles a model proposal's bond)",
           cmd_govern_close, arg("proposal", type=int))
    action(gsub, "upgrades", "the upgrade schedule, and which upgrades this node knows", cmd_govern_upgrades)


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
    kind = int(prop.get("kind", 0))
    what = {1: f"deploy adapter {prop['value']} (bond {ether(prop['bond'])})",
            2: f"upgrade {prop['param']} at block {prop['value']}" + (f" ({prop['info']})" if prop.get("info") else "")
            }.get(kind, f"{prop['param']} = {prop['value']}")
    state = "executed" if prop["executed"] else "closed" if prop.get("closed") else "open"
    show(args, prop, [f"proposal {prop['id']} ({KINDS[kind] if kind < len(KINDS) else kind}, {state}): "
                      f"{what} (by {prop['proposer']})",
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


def cmd_govern_policy(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "setApprovalPolicy", POLICY_KINDS[args.subject], args.id,
                              args.required == "on")
    show(args, {"subject": args.subject, "id": args.id, "required": args.required == "on",
                "transactionHash": receipt["transactionHash"]},
         f"{args.subject} {args.id}: adapters registered from now on "
         + ("need an approved model proposal" if args.required == "on" else "need no approval"))
    return 0


def cmd_govern_propose_model(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "proposeModel", args.adapter, value=args.bond)
    pid = client.event_arg(receipt, "Governance", "ModelProposed")
    show(args, {"id": pid, "adapter": args.adapter, "bond": args.bond, "transactionHash": receipt["transactionHash"]},
         f"proposal {pid} created: deploy adapter {args.adapter}, bond {ether(args.bond)}")
    return 0


def cmd_govern_model_status(args: argparse.Namespace) -> int:
    status = client_for(args).call("ai_getModelStatus", hex(args.adapter))
    approved_by, open_pid = int(status["approvedBy"], 16), int(status["openProposal"], 16)
    line = (f"adapter {args.adapter}: " + ("deployable" if status["deployable"] else "awaits approval")
            + ("" if status["requiresApproval"] else " (no policy requires approval)")
            + (f"; approved by proposal {approved_by}" if approved_by else "")
            + (f"; open proposal {open_pid}" if open_pid else ""))
    show(args, status, line)
    return 0


def cmd_govern_propose_upgrade(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "proposeUpgrade", args.name, args.height, args.info)
    pid = client.event_arg(receipt, "Governance", "UpgradeProposed")
    show(args, {"id": pid, "name": args.name, "height": args.height, "transactionHash": receipt["transactionHash"]},
         f"proposal {pid} created: upgrade {args.name} at block {args.height}")
    return 0


def cmd_govern_close(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("Governance", "closeProposal", args.proposal)
    returned, slashed = _event_words(receipt, "ProposalClosed")
    show(args, {"proposal": args.proposal, "bondReturned": returned, "bondSlashed": slashed,
                "transactionHash": receipt["transactionHash"]},
         f"proposal {args.proposal} closed" + (f"; bond returned {ether(returned)}" if returned else "")
         + (f"; bond slashed {ether(slashed)}" if slashed else ""))
    return 0


def _event_words(receipt: dict[str, Json], event: str) -> tuple[int, ...]:
    """The data words of the first Governance ``event`` log in ``receipt`` (its non-indexed
    fields, each a uint here)."""
    import ai_precompiles

    ev = ai_precompiles.MODULES["Governance"].abi.events[event]
    for log in receipt["logs"]:  # type: ignore[union-attr]
        if int(log["topics"][0], 16) == ev.topic0:  # type: ignore[index]
            data = bytes.fromhex(str(log["data"])[2:])  # type: ignore[index]
            return tuple(int.from_bytes(data[i:i + 32], "big") for i in range(0, len(data), 32))
    raise CLIError(f"no {event} event in the receipt")


def cmd_govern_upgrades(args: argparse.Namespace) -> int:
    answer = client_for(args).call("ai_getUpgrades")
    lines = [f"{u['name']} at block {int(u['height'], 16)} (proposal {int(u['proposalId'], 16)})"
             + ("" if u["known"] else " - NOT KNOWN to this node: it stops at that height")
             + (f"; install: {u['info']}" if u["info"] else "")
             for u in answer["scheduled"]] or ["no upgrade scheduled"]
    lines.append("this node knows: " + (", ".join(sorted(answer["known"])) or "none"))
    show(args, answer, lines)
    return 0

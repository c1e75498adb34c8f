"""``ailedger train``: train a LoRA adapter in a sidecar on the exact contribution set of datanet
versions, then register it on chain with that lineage as a native adapter-registration
transaction."""

from __future__ import annotations

import argparse
import json
import sys

from node.cli.blobs import fetch_blob, upload
from node.cli.errors import CLIError
from node.cli.model import datanet_versions
from node.cli.options import Subparsers, add_common, add_sidecar_flag, client_for, parse_hash, show
from node.cli.reads import get_datanet, get_model, training_set
from node.cli.sidecar_grpc import register_sidecar_base, sidecar_client

#: Gas limit of the adapter-registration transaction.
REGISTRATION_GAS = 3_000_000


def add_parsers(sub: Subparsers) -> None:
    train = sub.add_parser(
        "train", help="train a LoRA adapter in a sidecar on datanet versions and register it on chain",
        description="Fetch the exact contribution set of the given datanet versions from the node "
        "(bytes from its blob store), train a LoRA adapter in the sidecar (progress shown), then "
        "register the adapter on chain with its lineage as a native adapter-registration "
        "transaction signed by you as the training validator. Without --parent it trains on the "
        "sidecar's base model (registered on chain first if it is not yet).")
    add_common(train)
    add_sidecar_flag(train)
    train.add_argument("--datanet", action="append", required=True, metavar="ID:VERSION",
                       help="datanet version to train on (repeat)")
    train.add_argument("--parent", type=int, default=None,
                       help="on-chain id of the base model or parent adapter (default: the sidecar's base model)")
    train.add_argument("--rank", type=int, default=0, help="LoRA rank (default: the sidecar's)")
    train.add_argument("--epochs", type=int, default=0,
                       help="most passes; training stops once every example is learnt (default: the sidecar's)")
    train.add_argument("--learning-rate", type=float, default=0.0, help="(default: the sidecar's)")
    train.add_argument("--target-modules", default="",
                       help="comma-separated linear layers to adapt (default: the sidecar's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--license", default="apache-2.0")
    train.set_defaults(func=cmd_train)


def contribution_key(contribution_id: int) -> bytes:
    """How on-chain contribution ids travel to the sidecar and come back in attributions."""
    return str(contribution_id).encode()


def cmd_train(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address
    from tqdm import tqdm

    client = client_for(args)
    sender = client.address
    ids, versions = datanet_versions(args.datanet)
    for d, v in zip(ids, versions, strict=True):
        dn = get_datanet(client, d)
        if not 0 < v <= int(dn["versionCount"]):
            raise CLIError(f"datanet {d} has no version {v} (it has {dn['versionCount']}; "
                           "`ailedger datanet publish` makes one)")
    if args.epochs < 0 or args.rank < 0 or args.learning_rate < 0:
        raise CLIError("--epochs, --rank and --learning-rate must not be negative")
    if args.parent is None:
        parent, weights, new = register_sidecar_base(client, args.sidecar)
        if new:
            print(f"base model {parent} registered (the sidecar's, weights {weights})", file=sys.stderr)
    else:
        parent = args.parent
        get_model(client, parent, "parent model")
    pairs = [[d, v] for d, v in zip(ids, versions, strict=True)]
    contribution_root, listed = training_set(client, pairs)
    if not listed:
        raise CLIError("the datanet versions hold no accepted contributions")
    contributions = []
    for c in tqdm(listed, desc="fetching contributions", unit="item", file=sys.stderr):
        contributions.append((contribution_key(c["id"]), fetch_blob(client, c["contentHash"])))
    hyper: dict[str, object] = {
        k: v for k, v in (("rank", args.rank), ("epochs", args.epochs), ("learning_rate", args.learning_rate)) if v
    }
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    hyper_json = json.dumps({"seed": args.seed, **hyper}, sort_keys=True).encode()
    result = None
    with sidecar_client(args.sidecar) as sidecar, tqdm(desc="training", unit="step", file=sys.stderr) as bar:
        for event in sidecar.train(contributions, seed=args.seed, datanets=list(zip(ids, versions, strict=True)),
                                   **hyper):
            if hasattr(event, "total_steps"):
                bar.total = event.total_steps
                bar.n = event.step
                bar.set_postfix(loss=f"{event.loss:.3f}", phase=event.phase)
                bar.refresh()
            else:
                result = event
    if result is None:
        raise CLIError("the sidecar ended training without a result")
    hyper_hash = upload(client, hyper_json, "hyper-parameters")
    # The adapter is network data: its three artifacts go to the node, which serves them to peers.
    with sidecar_client(args.sidecar) as sidecar:
        artifacts = sidecar.export_adapter(adapter_id=result.adapter_id)
    for label, data in (("weights", artifacts.weights), ("attribution index", artifacts.attribution_index),
                        ("manifest", artifacts.manifest)):
        upload(client, data, label)
    from state.native import AdapterRegistrationTransaction

    receipt = client.send_native(
        AdapterRegistrationTransaction, gas=REGISTRATION_GAS,
        parent_id=parent, datanet_ids=ids, datanet_versions=versions,
        contribution_root=parse_hash(contribution_root), hyper_params_hash=hyper_hash,
        weights_hash=parse_hash(result.weights_hash), attribution_index_hash=parse_hash(result.attribution_index_hash),
        manifest_hash=parse_hash(artifacts.manifest_hash),
        validator=to_canonical_address(sender), license=args.license.encode(),
    )
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    out = {"id": adapter_id, "parent": parent, "sidecarAdapter": result.adapter_id,
           "weightsHash": "0x" + result.weights_hash.removeprefix("0x"), "steps": result.steps,
           "finalLoss": result.final_loss, "transactionHash": receipt["transactionHash"]}
    show(args, out, f"adapter {adapter_id} registered on model {parent} ({result.steps} steps, "
                    f"loss {result.final_loss:.3f}, tx {receipt['transactionHash']})")
    return 0

"""``ailedger train``: a LoRA adapter trained on the exact contribution set of datanet versions
and registered on chain with that lineage, you as its author.

Without ``--sidecar`` the node at ``--rpc`` trains it: its validator quotes a price
(``ai_trainQuote``), you sign an EIP-712 training request bound to that validator and price and
send it with the recipe (``ai_train``), and follow the job (``ai_getTrainingJob``) until the
validator has registered the adapter; the fee comes from your inference deposit. With
``--sidecar ADDR`` (or ``AILEDGER_SIDECAR``) you train on that sidecar yourself and register the
adapter as its validator, as a native adapter-registration transaction."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from node.cli.amounts import ether, parse_amount
from node.cli.blobs import fetch_blob, upload
from node.cli.client import Client, Json, checksum
from node.cli.errors import CLIError
from node.cli.model import datanet_versions
from node.cli.options import Subparsers, add_common, client_for, parse_hash, show
from node.cli.reads import check_balance, deposit_of, get_datanet, get_model, training_set
from node.cli.sidecar_grpc import register_sidecar_base, shown_training, sidecar_client
from node.progress import progress_over

#: Gas limit of the adapter-registration transaction.
REGISTRATION_GAS = 3_000_000
#: Seconds a training request stays valid after the head block's time, at least (the node's
#: quote may ask for more: a whole job's time).
REQUEST_LIFETIME = 7200
#: Seconds between two looks at a job, and between two progress lines when not on a terminal.
POLL_SECONDS = 0.5
LINE_SECONDS = 10.0


def add_parsers(sub: Subparsers) -> None:
    train = sub.add_parser(
        "train", help="train a LoRA adapter on datanet versions and register it on chain, you as its author",
        description="Without --sidecar: ask the node's validator to train (ai_trainQuote, then a signed "
        "EIP-712 training request with the recipe to ai_train), follow the job (progress shown) until "
        "the validator has registered the adapter with you as its author, and print its id; the fee "
        "is charged from your inference deposit (--deposit tops it up first). With --sidecar ADDR: "
        "fetch the exact contribution set of the given datanet versions from the node (bytes from its "
        "blob store), train on that sidecar, then register the adapter with its lineage as a native "
        "adapter-registration transaction signed by you as the training validator. Without --parent it "
        "trains on the sidecar's base model (the local one is registered on chain first if it is not yet).")
    add_common(train)
    train.add_argument("--sidecar", default=os.environ.get("AILEDGER_SIDECAR"), metavar="ADDR",
                       help="train on your own sidecar at ADDR (host:port) and register the adapter as its "
                       "validator yourself (env AILEDGER_SIDECAR); without it, the node at --rpc trains it "
                       "for a fee (ai_train)")
    train.add_argument("--max-fee", type=parse_amount, default=None, metavar="AMOUNT",
                       help="without --sidecar: refuse a quote above this (default: accept the node's price)")
    train.add_argument("--deposit", type=parse_amount, default=None, metavar="AMOUNT",
                       help="without --sidecar: deposit this much first (the fee is charged from your deposit)")
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

    client = client_for(args)
    sender = client.address
    ids, versions = datanet_versions(args.datanet)
    for d, v in zip(ids, versions, strict=True):
        dn = get_datanet(client, d)
        if not 0 < v <= int(dn["versionCount"]):
            raise CLIError(f"datanet {d} has no version {v} (it has {dn['versionCount']}; "
                           "`ailedger datanet publish` makes one)")
        if int(client.view("Datanets", "withdrawnInVersion", d, v)):
            raise CLIError(f"datanet {d} version {v} covers a contribution whose contributor withdrew consent "
                           "since it was published: nothing new trains on it (`ailedger datanet publish` makes a "
                           "version that leaves it out)")
    if args.epochs < 0 or args.rank < 0 or args.learning_rate < 0:
        raise CLIError("--epochs, --rank and --learning-rate must not be negative")
    if not 0 <= args.seed < 2**63:
        raise CLIError("--seed must be within 0..2^63-1")
    hyper: dict[str, object] = {
        k: v for k, v in (("rank", args.rank), ("epochs", args.epochs), ("learning_rate", args.learning_rate)) if v
    }
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    if not args.sidecar:
        return _train_on_the_node(args, client, ids, versions, {"seed": args.seed, **hyper})
    if args.parent is None:
        parent, weights, new = register_sidecar_base(client, args.sidecar)
        if new:
            print(f"base model {parent} registered (the sidecar's, weights {weights})", file=sys.stderr)
    else:
        parent = args.parent
        check_parent(client, parent)
    pairs = [[d, v] for d, v in zip(ids, versions, strict=True)]
    contribution_root, listed = training_set(client, pairs)
    if not listed:
        raise CLIError("the datanet versions hold no accepted contributions")
    contributions = []
    for c in progress_over(listed, "fetching contributions", "item"):
        contributions.append((contribution_key(c["id"]), fetch_blob(client, c["contentHash"])))
    hyper_json = json.dumps({"seed": args.seed, **hyper}, sort_keys=True).encode()
    with sidecar_client(args.sidecar) as sidecar:
        result = shown_training(sidecar.train(contributions, seed=args.seed,
                                              datanets=list(zip(ids, versions, strict=True)), **hyper), "training")
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


def check_parent(client: Client, parent: int) -> None:
    """Refuse early a parent the chain would refuse: one that does not exist, whose effective
    licence allows no derivatives, or whose lineage trained on withdrawn data."""
    model = get_model(client, parent, "parent model")
    licence = model.get("effectiveLicense")
    if isinstance(licence, dict) and not licence.get("derivatives", True):
        raise CLIError(f"parent model {parent}'s licence allows no derivatives")
    if model.get("withdrawnContributions"):
        raise CLIError(f"parent model {parent}'s lineage trained on a contribution whose consent was withdrawn")


def _train_on_the_node(args: argparse.Namespace, client: Client, ids: list[int], versions: list[int],
                       recipe: dict[str, object]) -> int:
    """Ask the node's validator to train: quote, sign, send, follow the job."""
    from eth_hash.auto import keccak
    from eth_utils import to_canonical_address

    from ai_precompiles import typed_data

    builder = client.address
    try:
        quote = client.call("ai_trainQuote")
    except CLIError as e:
        raise CLIError(f"{e} (or train on your own sidecar: --sidecar ADDR)") from None
    price = int(quote["price"], 16)
    if args.max_fee is not None and price > args.max_fee:
        raise CLIError(f"the node's price {ether(price)} is above your --max-fee {ether(args.max_fee)}")
    if not quote["ready"]:
        raise CLIError("the node's sidecar is not serving yet; try again shortly")
    parent = args.parent if args.parent is not None else quote["baseModel"]["id"]
    if parent is None:
        raise CLIError(f"the node's sidecar trains on the base model with weights {quote['baseModel']['weightsHash']}, "
                       "which is not registered on chain: register it first, or give --parent")
    check_parent(client, parent)
    _ensure_deposit(client, args, price)
    chain_id = int(quote["chainId"], 16)
    recipe_text = json.dumps(recipe, sort_keys=True)
    head = client.call("eth_getBlockByNumber", "latest", False)
    lifetime = max(REQUEST_LIFETIME, int(quote["limits"]["minDeadlineSeconds"]) + 600)
    request = {"builder": to_canonical_address(builder), "validator": to_canonical_address(quote["validator"]),
               "parent_id": parent, "datanet_ids": ids, "datanet_versions": versions,
               "hyper_params_hash": keccak(recipe_text.encode()), "license": args.license, "max_fee": price,
               "nonce": int.from_bytes(os.urandom(8), "big"), "deadline": int(head["timestamp"], 16) + lifetime,
               "chain_id": chain_id}
    signature = typed_data.sign(typed_data.training_request_digest(request, chain_id), client.key)
    wire = {"builder": builder, "validator": quote["validator"], "parentId": parent, "datanetIds": ids,
            "datanetVersions": versions, "hyperParamsHash": "0x" + request["hyper_params_hash"].hex(),
            "license": args.license, "maxFee": hex(price), "nonce": hex(request["nonce"]),
            "deadline": hex(request["deadline"]), "chainId": hex(chain_id)}
    job = client.call("ai_train", wire, "0x" + signature.hex(), recipe_text)
    print(f"training job {job['id']} taken by validator {checksum(quote['validator'])} "
          f"({job['contributions']} contributions, fee {ether(price)})", file=sys.stderr)
    job = follow_job(client, job)
    if job["status"] != "registered":
        raise CLIError(f"the training job failed: {job['error']}")
    out = {"id": job["adapterId"], "parent": parent, "jobId": job["id"], "author": builder,
           "validator": checksum(quote["validator"]), "weightsHash": job["weightsHash"], "steps": job["step"],
           "finalLoss": job["loss"], "fee": price, "transactionHash": job["transactionHash"]}
    show(args, out, f"adapter {job['adapterId']} registered on model {parent}, you its author, trained by "
                    f"{checksum(quote['validator'])} ({job['step']} steps, loss {job['loss']:.3f}, fee "
                    f"{ether(price)}, tx {job['transactionHash']})")
    return 0


def _ensure_deposit(client: Client, args: argparse.Namespace, price: int) -> None:
    if args.deposit is not None:
        if args.deposit == 0:
            raise CLIError("--deposit 0: nothing to deposit")
        check_balance(client, args.deposit)
        client.transact("Inference", "deposit", value=args.deposit)
    have = deposit_of(client, client.address)
    available = have["balance"] - have["withdrawalPending"]
    if available < price:
        raise CLIError(f"your deposit ({ether(have['balance'])}) does not cover the training fee {ether(price)}: "
                       "add --deposit 0.05eth (or `ailedger deposit add`)")


def follow_job(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job until it is registered or failed: a progress bar on a terminal, a line per
    change (and every LINE_SECONDS while training) elsewhere, both on stderr."""
    from tqdm import tqdm

    if sys.stderr.isatty():
        with tqdm(desc="queued", unit="step", file=sys.stderr) as bar:
            while job["status"] not in ("registered", "failed"):
                time.sleep(POLL_SECONDS)
                job = _job(client, job["id"])
                bar.set_description(job["phase"] if job["status"] == "training" and job["phase"] else job["status"])
                if job["totalSteps"]:
                    bar.total = job["totalSteps"]
                    bar.n = job["step"]
                if job["loss"] is not None:
                    bar.set_postfix(loss=f"{job['loss']:.3f}", refresh=False)
                bar.refresh()  # once a poll: set_postfix's own refresh would draw it twice
        return job
    said: tuple[Json, ...] = ()
    last = 0.0
    while True:
        now = time.monotonic()
        state = (job["status"], job["phase"])
        if state != said or (job["status"] == "training" and now - last >= LINE_SECONDS):
            step = f" step {job['step']}/{job['totalSteps']}" if job["totalSteps"] else ""
            loss = f" loss {job['loss']:.3f}" if job["loss"] is not None else ""
            where = f" (position {job['queuePosition']} in the queue)" if job.get("queuePosition") else ""
            print(f"job {job['status']}{' ' + job['phase'] if job['phase'] else ''}{step}{loss}{where}",
                  file=sys.stderr, flush=True)
            said, last = state, now
        if job["status"] in ("registered", "failed"):
            return job
        time.sleep(POLL_SECONDS)
        job = _job(client, job["id"])


def _job(client: Client, job_id: str) -> dict[str, Any]:
    job = client.call("ai_getTrainingJob", job_id)
    if not isinstance(job, dict):
        raise CLIError("the node answered ai_getTrainingJob with something that is not a job")
    return job

"""``ailedger model`` and ``ailedger adapter``: base models and LoRA adapters on chain, their
registration and their lineage."""

from __future__ import annotations

import argparse
import os

from node.cli.client import Json
from node.cli.errors import CLIError
from node.cli.options import Subparsers, action, arg, client_for, group, parse_hash, show
from node.cli.reads import get_model

#: A model's kind, by its on-chain code.
KIND = {1: "base model", 2: "adapter"}
_HASH = {"required": True, "help": "0x 32-byte hash"}


def add_parsers(sub: Subparsers) -> None:
    msub = group(sub, "model", "list and show base models and adapters")
    action(msub, "list", "base models and adapters on chain", cmd_model_list,
           arg("--offset", type=int, default=0), arg("--limit", type=int, default=100))
    action(msub, "show", "show a model or adapter", cmd_adapter_show, arg("id", type=int))
    action(msub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
           arg("id", type=int))

    asub = group(sub, "adapter", "register and inspect models and adapters")
    action(asub, "list", "base models and adapters on chain", cmd_model_list,
           arg("--offset", type=int, default=0), arg("--limit", type=int, default=100))
    action(asub, "register-base", "register a base model", cmd_adapter_register_base,
           arg("--weights-hash", **_HASH), arg("--config-hash", **_HASH), arg("--tokenizer-hash", **_HASH),
           arg("--license", default="apache-2.0"))
    action(asub, "register", "register an adapter with its lineage", cmd_adapter_register,
           arg("--parent", type=int, required=True, help="parent model or adapter id"),
           arg("--datanet", action="append", default=[], metavar="ID:VERSION", help="datanet version trained on (repeat)"),
           arg("--contribution-root", **_HASH), arg("--hyper-params-hash", **_HASH),
           arg("--weights-hash", **_HASH), arg("--attribution-index-hash", **_HASH),
           arg("--manifest-hash", default="0x" + "00" * 32,
               help="0x keccak-256 of the training manifest blob (default: none recorded)"),
           arg("--validator", default=None, help="validator that trained it (default: you)"),
           arg("--license", default="apache-2.0"))
    action(asub, "merge", "merge 2..16 adapters on a sidecar and register the merge (you: a staked validator)",
           _merge_command, arg("--parents", required=True, metavar="ID,ID,...", help="adapter ids, in merge order"),
           arg("--method", choices=("linear", "ties", "dare_linear"), default="linear",
               help="peft's add_weighted_adapter combination (default: %(default)s)"),
           arg("--weights", default=None, metavar="W,W,...",
               help="merge weight of each parent, 0.0001..1 (default: equal)"),
           arg("--density", default=None, help="ties/dare_linear: fraction of each delta kept, e.g. 0.5"),
           arg("--seed", type=int, default=0, help="dare_linear: seed of its random drop mask"),
           arg("--license", default="apache-2.0"),
           arg("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
               help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)"),
           description="Import the parents into the sidecar from the node's blobs when it lacks them, merge them "
           "there (deterministic on the CPU; DARE from its seed), send the merge's three artifacts to the node and "
           "register it on chain with its recipe (ModelRegistry.registerMergedAdapter), signed by you as the "
           "validator that built it. Any validator rebuilds it from the parents and the recipe before it serves "
           "it; `ailedger adapter verify ID` does the same check. docs/merges.md.")
    action(asub, "show", "show a model or adapter", cmd_adapter_show, arg("id", type=int))
    action(asub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
           arg("id", type=int))
    action(asub, "verify", "re-train an adapter from its on-chain recipe on a sidecar and compare the weights",
           cmd_adapter_verify, arg("id", type=int),
           arg("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
               help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)"),
           description="Fetch the adapter's training manifest (the blob its record's manifestHash names) "
           "and its contributions' bytes from the node, check that the manifest is the adapter's (its "
           "weights, base model and exact on-chain training set), re-train it on the sidecar (Retrain: "
           "nothing is stored) and compare the weights and attribution-index hashes with the record. "
           "Exit 0: verified; 1: MISMATCH, the recipe does not give the adapter (grounds for a "
           "challenge); 3: INCONCLUSIVE, the hashes differ but this sidecar's environment differs from "
           "the trainer's (versions, threads, CPU kernel family, device), which proves nothing. When "
           "training is bit-reproducible: docs/sidecar.md, \"When training is bit-reproducible\".")


def _merge_command(args: argparse.Namespace) -> int:
    from node.cli.merge import cmd_adapter_merge

    return cmd_adapter_merge(args)


def datanet_versions(items: list[str]) -> tuple[list[int], list[int]]:
    """``--datanet ID:VERSION`` flags as (datanet ids, versions)."""
    ids, versions = [], []
    for item in items:
        try:
            d, v = (int(x) for x in item.split(":"))
        except ValueError:
            raise CLIError(f"--datanet {item}: expected ID:VERSION") from None
        ids.append(d)
        versions.append(v)
    return ids, versions


def _model_line(m: dict[str, Json]) -> str:
    kind = KIND.get(int(m["kind"]), str(m["kind"]))
    if int(m["kind"]) == 1:
        return f"model {m['id']}: base model, weights {m['weightsHash']}, by {m['author']}"
    data = ", ".join(f"{d}:{v}" for d, v in zip(m["datanetIds"], m["datanetVersions"], strict=True))
    retired = " (retired)" if m["retired"] else ""
    return f"model {m['id']}: {kind} on {m['parentId']}, data {data or '-'}, by {m['author']}{retired}"


def cmd_model_list(args: argparse.Namespace) -> int:
    client = client_for(args)
    page = client.call("ai_listModels", {"offset": args.offset, "limit": args.limit})
    models = page["models"]
    lines = [_model_line(m) for m in models] or ["no models yet (`ailedger dev` registers its sidecar's base model)"]
    for m in models:
        m["kind"] = KIND.get(int(m["kind"]), m["kind"])
    show(args, page, lines)
    return 0


def cmd_adapter_show(args: argparse.Namespace) -> int:
    m = get_model(client_for(args), args.id)
    lines = [_model_line(m), f"  weights {m['weightsHash']}, license {m['license']}, "
             f"children {', '.join(map(str, m['children'])) or '-'}"]
    licence = m.get("effectiveLicense")
    if isinstance(licence, dict):
        lines.append(f"  effective licence: commercial use {'allowed' if licence['commercialUse'] else 'refused'}, "
                     f"derivatives {'allowed' if licence['derivatives'] else 'refused'}; "
                     f"contributions with consent withdrawn in its lineage: {m.get('withdrawnContributions', 0)}")
    m["kind"] = KIND.get(int(m["kind"]), m["kind"])
    show(args, m, lines)
    return 0


def cmd_adapter_lineage(args: argparse.Namespace) -> int:
    client = client_for(args)
    get_model(client, args.id)
    lineage = client.call("ai_getLineage", args.id)
    lines = []
    for m in lineage["path"]:
        lines.append(_model_line(m))
        merge = m.get("merge")
        if merge:
            lines += [f"  merged ({merge['methodName']}) from adapter {p['id']}, weight {p['weightBp'] / 10_000:g}, "
                      f"by {p['author']}, path {' <- '.join(map(str, p['path']))}" for p in merge["parents"]]
    lines += [f"  contributor of {cid}: {who}" for cid, who in lineage.get("contributors", {}).items()]
    show(args, lineage, lines)
    return 0


def cmd_adapter_register_base(args: argparse.Namespace) -> int:
    client = client_for(args)
    receipt = client.transact("ModelRegistry", "registerBaseModel", parse_hash(args.weights_hash),
                              parse_hash(args.config_hash), parse_hash(args.tokenizer_hash), args.license)
    model_id = client.event_arg(receipt, "ModelRegistry", "BaseModelRegistered")
    show(args, {"id": model_id, "transactionHash": receipt["transactionHash"]}, f"base model {model_id} registered")
    return 0


def cmd_adapter_register(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address

    client = client_for(args)
    ids, versions = datanet_versions(args.datanet)
    get_model(client, args.parent, "parent model")
    validator = to_canonical_address(args.validator or client.address)
    spec = (args.parent, ids, versions, parse_hash(args.contribution_root), parse_hash(args.hyper_params_hash),
            parse_hash(args.weights_hash), parse_hash(args.attribution_index_hash), parse_hash(args.manifest_hash),
            validator, args.license)
    receipt = client.transact("ModelRegistry", "registerAdapter", spec)
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    show(args, {"id": adapter_id, "transactionHash": receipt["transactionHash"]}, f"adapter {adapter_id} registered")
    return 0


#: ``adapter verify``'s exit status when the re-run proves nothing (the environments differ).
INCONCLUSIVE = 3
#: Largest manifest ``adapter verify`` reads (the sidecar's own limit, ``artifacts.MAX_MANIFEST_BYTES``).
MAX_MANIFEST_BYTES = 32 << 20


def _manifest_contribution_id(raw: object) -> int | None:
    """The on-chain id a manifest's contribution names (``train`` keys them by the decimal id),
    or None for one that names no on-chain contribution."""
    try:
        text = bytes.fromhex(str(raw)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and len(text) < 20 and not text.startswith("0") else None


def _manifest_faults(manifest: dict[str, Json], model: dict[str, Json], base_weights: str,
                     on_chain: dict[int, str]) -> list[str]:
    """Why a manifest cannot be the recipe of ``model`` as the chain records it (empty: it can)."""
    def part(name: str) -> dict[str, Json]:
        value = manifest.get(name)
        return value if isinstance(value, dict) else {}

    faults = []
    weights = "0x" + str(part("artifacts").get("weights", "")).lower()
    if weights != model["weightsHash"].lower():
        faults.append(f"the manifest names weights {weights[:66]}, the adapter's record {model['weightsHash']}")
    base = "0x" + str(part("base_model").get("hash", "")).lower()
    if base != base_weights.lower():
        faults.append(f"the manifest trains on base weights {base[:66]}, the adapter's lineage is on {base_weights}")
    listed = manifest.get("contributions")
    items = listed if isinstance(listed, list) else [listed]
    named: dict[int, str] = {}
    for c in items:
        if not isinstance(c, dict) or (cid := _manifest_contribution_id(c.get("id"))) is None:
            faults.append(f"the manifest names a contribution {str(c)[:80]} that is no on-chain contribution id")
            break
        named[cid] = "0x" + str(c.get("hash", "")).lower()
    else:
        if len(named) != len(items) or named != {cid: h.lower() for cid, h in on_chain.items()}:
            faults.append("the manifest's contributions (ids and content hashes) are not the exact training set "
                          "of the adapter's datanet versions on chain")
    return faults


def cmd_adapter_verify(args: argparse.Namespace) -> int:
    import json

    from node.cli.blobs import fetch_blob
    from node.cli.reads import training_set
    from node.cli.sidecar_grpc import shown_training, sidecar_client
    from node.progress import progress_over

    client = client_for(args)
    model = get_model(client, args.id, "adapter")
    if int(model["kind"]) != 2:
        raise CLIError(f"model {args.id} is a base model: only an adapter has a training recipe to re-run")
    if "merge" in model:
        from node.cli.merge import verify_merge

        return verify_merge(args, client, model)
    manifest_hash = model["manifestHash"]
    if int(manifest_hash, 16) == 0:
        raise CLIError(f"adapter {args.id} was registered without a training manifest: there is no recipe to re-run")
    try:
        manifest_bytes = fetch_blob(client, manifest_hash)
    except CLIError as e:
        raise CLIError(f"cannot read adapter {args.id}'s manifest {manifest_hash} from the node ({e}); "
                       "ask a node that holds it (--rpc)") from None
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise CLIError(f"the manifest is {len(manifest_bytes)} bytes, over {MAX_MANIFEST_BYTES}")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        manifest = None
    base_weights = get_model(client, int(model["baseModelId"]), "base model")["weightsHash"]
    pairs = [[int(d), int(v)] for d, v in zip(model["datanetIds"], model["datanetVersions"], strict=True)]
    on_chain = {int(c["id"]): str(c["contentHash"]) for c in training_set(client, pairs)[1]} if pairs else {}
    faults = (["the manifest blob is not JSON"] if not isinstance(manifest, dict)
              else _manifest_faults(manifest, model, base_weights, on_chain))
    out: dict[str, Json] = {"id": args.id, "weightsHash": model["weightsHash"],
                            "attributionIndexHash": model["attributionIndexHash"], "manifestHash": manifest_hash}
    if faults:
        out.update(result="mismatch", reasons=faults)
        show(args, out, [f"adapter {args.id}: MISMATCH: its manifest is not its recipe", *[f"  {f}" for f in faults]])
        return 1
    assert isinstance(manifest, dict)
    contributions = []
    for c in progress_over(manifest["contributions"], "fetching contributions", "item"):
        contributions.append((bytes.fromhex(c["id"]), fetch_blob(client, "0x" + c["hash"])))
    with sidecar_client(args.sidecar) as sidecar:
        try:
            result = shown_training(sidecar.retrain(manifest_bytes, contributions), "re-training")
        except Exception as e:
            import grpc

            if isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                out.update(result="inconclusive", reasons=[str(e.details())])
                show(args, out, f"adapter {args.id}: INCONCLUSIVE: this sidecar cannot re-run the recipe: {e.details()}")
                return INCONCLUSIVE
            raise
    if result is None:
        raise CLIError("the sidecar ended re-training without a result")
    got_weights = "0x" + result.weights_hash.lower().removeprefix("0x")
    got_index = "0x" + result.attribution_index_hash.lower().removeprefix("0x")
    differences = list(result.environment_differences)
    out.update(retrainedWeightsHash=got_weights, retrainedAttributionIndexHash=got_index,
               environmentDifferences=differences, steps=result.steps)
    same = (got_weights, got_index) == (model["weightsHash"].lower(), model["attributionIndexHash"].lower())
    if same:
        out["result"] = "verified"
        show(args, out, f"adapter {args.id}: verified: re-training its recipe gives its weights {got_weights} "
                        f"and attribution index ({result.steps} steps)")
        return 0
    wrong = "weights" if got_weights != model["weightsHash"].lower() else "attribution index"
    if differences:
        out["result"] = "inconclusive"
        show(args, out, [f"adapter {args.id}: INCONCLUSIVE: re-training gives other {wrong} ({got_weights}), "
                         "but this sidecar's environment differs from the trainer's, so that proves nothing:",
                         *[f"  {d}" for d in differences],
                         "  re-run it on a machine that matches (docs/sidecar.md, \"When training is bit-reproducible\")"])
        return INCONCLUSIVE
    out["result"] = "mismatch"
    show(args, out, [f"adapter {args.id}: MISMATCH: re-training its recipe in the trainer's environment gives "
                     f"{wrong} {got_weights if wrong == 'weights' else got_index}, the adapter claims "
                     f"{model['weightsHash'] if wrong == 'weights' else model['attributionIndexHash']}",
                     "  the manifest does not describe how the adapter was made (grounds for a challenge)"])
    return 1

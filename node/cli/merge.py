"""``ailedger adapter merge`` and the merge half of ``ailedger adapter verify``: a merge of 2..16
on-chain adapters built on a sidecar, its three artifacts sent to the node, and its registration
(``ModelRegistry.registerMergedAdapter``, as a native merge-registration transaction, type 0x63,
signed by a staked validator); a merge rebuilt on a
sidecar from its on-chain recipe and compared (docs/merges.md)."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

from node.cli.blobs import fetch_blob, upload
from node.cli.client import Client, Json
from node.cli.errors import CLIError
from node.cli.options import client_for, parse_hash, show
from node.cli.reads import get_model
from node.cli.sidecar_grpc import sidecar_adapter, sidecar_client

if TYPE_CHECKING:
    from sidecar.client import SidecarClient

#: Merge methods by name (peft's combination_type) and their on-chain codes.
METHODS = {"linear": 1, "ties": 2, "dare_linear": 3}
NAMES = {code: name for name, code in METHODS.items()}
#: Most parents of one merge (the chain's limit).
MAX_PARENTS = 16
#: Gas limit of the merge-registration transaction (a 16-parent merge spans many datanets).
REGISTRATION_GAS = 6_000_000
#: ``adapter verify``'s exit status for a merge that does not rebuild, as for a trained adapter.
MISMATCH = 1


def fraction_bp(text: str, what: str) -> int:
    """A fraction of 1.0 given as a decimal (0.5) in whole basis points (5000), 1..10000."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CLIError(f"{what} {text!r}: expected a decimal such as 0.5")
    bp = round(value * 10_000)
    if abs(value * 10_000 - bp) > 1e-6 or not 1 <= bp <= 10_000:
        raise CLIError(f"{what} {text}: must be within 0.0001..1 in steps of 0.0001 (a whole basis point)")
    return bp


def parse_recipe(args: argparse.Namespace) -> tuple[list[int], list[int], int, int]:
    """The flags as (parent ids, weights bp, density bp, seed); refused here before any work."""
    try:
        parents = [int(p) for p in args.parents.split(",") if p.strip()]
    except ValueError:
        raise CLIError(f"--parents {args.parents}: expected adapter ids such as 2,3") from None
    if not 2 <= len(parents) <= MAX_PARENTS or len(set(parents)) != len(parents):
        raise CLIError(f"--parents: 2 to {MAX_PARENTS} distinct adapter ids")
    if args.weights:
        weights = [fraction_bp(w, "--weights") for w in args.weights.split(",")]
        if len(weights) != len(parents):
            raise CLIError(f"--weights: one per parent ({len(parents)}), {len(weights)} given")
    else:
        weights = [10_000 // len(parents)] * len(parents)
    if args.method == "linear":
        if args.density is not None:
            raise CLIError("--density is for ties and dare_linear only")
        density = 0
    else:
        if args.density is None:
            raise CLIError(f"--method {args.method} needs --density (the fraction of each delta kept, e.g. 0.5)")
        density = fraction_bp(args.density, "--density")
    if args.seed and args.method != "dare_linear":
        raise CLIError("--seed is for dare_linear only (its random drop mask)")
    if not 0 <= args.seed < 2**64:
        raise CLIError("--seed must be within 0..2^64-1")
    return parents, weights, density, args.seed


def ensure_held(client: Client, sidecar: SidecarClient, model_id: int, depth: int = 0) -> str:
    """The 0x weights hash of adapter ``model_id``, imported into the sidecar from the node's
    blobs when it lacks it (a merge's parents first: the sidecar rebuilds a merge to import it)."""
    from sidecar.client import AdapterArtifacts

    model = get_model(client, model_id, "adapter")
    if int(model["kind"]) != 2:
        raise CLIError(f"model {model_id} is a base model: a merge merges adapters")
    weights = str(model["weightsHash"]).lower()
    try:
        sidecar_adapter(sidecar, weights)
        return weights
    except CLIError:
        pass
    if depth > 64:
        raise CLIError(f"adapter {model_id}'s merges nest too deep to import")
    for parent in (model.get("merge") or {}).get("parentIds", []):
        ensure_held(client, sidecar, int(parent), depth + 1)
    if int(model["manifestHash"], 16) == 0:
        raise CLIError(f"adapter {model_id} was registered without a manifest: no sidecar can import it")
    parts = [fetch_blob(client, model[k]) for k in ("manifestHash", "weightsHash", "attributionIndexHash")]
    sidecar.import_adapter(AdapterArtifacts.of(*parts))
    return weights


def precheck(client: Client, recipe: tuple[list[int], list[int], int, int, int], license: str) -> None:
    """Refuse, before any sidecar work, a merge the chain would refuse (unstaked sender, missing
    or retired parents, parents of other base models, too deep): the registration is estimated
    with placeholder artifact hashes, so only a taken weights hash can still fail it."""
    import os

    import ai_precompiles
    from ai_precompiles.addresses import MODEL_REGISTRY

    fn = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerMergedAdapter"]
    data = fn.encode_args(recipe, os.urandom(32), os.urandom(32), os.urandom(32), license)
    try:
        client.call("eth_estimateGas", {"from": client.address, "to": "0x" + MODEL_REGISTRY.hex(),
                                        "data": "0x" + data.hex()})
    except CLIError as e:
        raise CLIError(f"the chain would refuse this merge: {e}") from None


def cmd_adapter_merge(args: argparse.Namespace) -> int:
    client = client_for(args)
    parents, weights, density, seed = parse_recipe(args)
    precheck(client, (parents, weights, METHODS[args.method], density, seed), args.license)
    with sidecar_client(args.sidecar) as sidecar:
        hashes = [ensure_held(client, sidecar, p) for p in parents]
        result = sidecar.merge(hashes, args.method, weights, density, seed)
        artifacts = sidecar.export_adapter(adapter_id=result.adapter_id)
    # the merge is network data: its three artifacts go to the node, which serves them to peers
    for label, data in (("weights", artifacts.weights), ("attribution index", artifacts.attribution_index),
                        ("manifest", artifacts.manifest)):
        upload(client, data, label)
    from state.native import MergedAdapterRegistrationTransaction

    receipt = client.send_native(
        MergedAdapterRegistrationTransaction, gas=REGISTRATION_GAS, parent_ids=parents, weights_bp=weights,
        method=METHODS[args.method], density_bp=density, seed=seed, weights_hash=parse_hash(result.weights_hash),
        attribution_index_hash=parse_hash(result.attribution_index_hash),
        manifest_hash=parse_hash(artifacts.manifest_hash), license=args.license.encode())
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    out = {"id": adapter_id, "parents": parents, "method": args.method, "weightsBp": weights, "densityBp": density,
           "seed": seed, "sidecarAdapter": result.adapter_id, "weightsHash": "0x" + result.weights_hash,
           "manifestHash": "0x" + artifacts.manifest_hash.removeprefix("0x"),
           "transactionHash": receipt["transactionHash"]}
    show(args, out, f"adapter {adapter_id} registered: a {args.method} merge of {', '.join(map(str, parents))} "
                    f"(weights {result.weights_hash[:16]}…, tx {receipt['transactionHash']})")
    return 0


def _manifest_faults(manifest: object, model: dict[str, Json], parents: list[dict[str, Json]]) -> list[str]:
    """Why a manifest cannot be the merge the chain records (empty: it can)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("merge"), dict):
        return ["the manifest blob is not a merge manifest"]
    merge, section = model["merge"], manifest["merge"]
    faults = []
    claimed = [str(p.get("weights", "")) if isinstance(p, dict) else "" for p in section.get("parents", [])]
    on_chain = [str(p["weightsHash"]).lower().removeprefix("0x") for p in parents]
    if claimed != on_chain:
        faults.append(f"the manifest merges parents {[c[:16] for c in claimed]}, the chain records "
                      f"{[c[:16] for c in on_chain]} (adapters {merge['parentIds']})")
    expected = {"method": NAMES.get(int(merge["method"])), "weights_bp": list(merge["weightsBp"]),
                "density_bp": merge["densityBp"], "seed": merge["seed"]}
    for key, value in expected.items():
        if section.get(key) != value:
            faults.append(f"the manifest's {key} is {str(section.get(key))[:80]}, the chain's {value}")
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or "0x" + str(artifacts.get("weights")) != str(model["weightsHash"]).lower():
        faults.append("the manifest names other weights than the adapter's record")
    return faults


def verify_merge(args: argparse.Namespace, client: Client, model: dict[str, Json]) -> int:
    """``adapter verify`` of a merge: its manifest must be its on-chain recipe, and rebuilding
    the recipe from the parents' artifacts must give its weights and attribution index."""
    merge = model["merge"]
    parents = [get_model(client, int(p), "parent") for p in merge["parentIds"]]
    out: dict[str, Json] = {"id": model["id"], "weightsHash": model["weightsHash"],
                            "attributionIndexHash": model["attributionIndexHash"], "parents": merge["parentIds"]}
    try:
        manifest = json.loads(fetch_blob(client, model["manifestHash"]))
    except ValueError:
        manifest = None
    faults = _manifest_faults(manifest, model, parents)
    if not faults:
        with sidecar_client(args.sidecar) as sidecar:
            hashes = [ensure_held(client, sidecar, int(p)) for p in merge["parentIds"]]
            rebuilt = sidecar.merge(hashes, str(NAMES[int(merge["method"])]), list(merge["weightsBp"]),
                                    int(merge["densityBp"]), int(merge["seed"]), dry_run=True)
        got_w, got_i = "0x" + rebuilt.weights_hash, "0x" + rebuilt.attribution_index_hash
        out.update(rebuiltWeightsHash=got_w, rebuiltAttributionIndexHash=got_i)
        if got_w != str(model["weightsHash"]).lower():
            faults.append(f"rebuilding the recipe from the parents gives weights {got_w}, the merge claims "
                          f"{model['weightsHash']}")
        elif got_i != str(model["attributionIndexHash"]).lower():
            faults.append(f"rebuilding gives attribution index {got_i}, the merge claims {model['attributionIndexHash']}")
    if faults:
        out.update(result="mismatch", reasons=faults)
        show(args, out, [f"adapter {model['id']}: MISMATCH: the merge is not what its parents and recipe make",
                         *[f"  {f}" for f in faults], "  (every validator's sidecar refuses to import it)"])
        return MISMATCH
    out["result"] = "verified"
    show(args, out, f"adapter {model['id']}: verified: merging {', '.join(map(str, merge['parentIds']))} with its "
                    f"recipe gives its weights {model['weightsHash']} and attribution index")
    return 0

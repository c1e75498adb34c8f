"""``ailedger model`` and ``ailedger adapter``: base models and LoRA adapters on chain, their
registration and their lineage."""

from __future__ import annotations

import argparse

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
    action(asub, "show", "show a model or adapter", cmd_adapter_show, arg("id", type=int))
    action(asub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
           arg("id", type=int))


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
    m["kind"] = KIND.get(int(m["kind"]), m["kind"])
    show(args, m, lines)
    return 0


def cmd_adapter_lineage(args: argparse.Namespace) -> int:
    client = client_for(args)
    get_model(client, args.id)
    lineage = client.call("ai_getLineage", args.id)
    lines = [_model_line(m) for m in lineage["path"]]
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

"""``ailedger datanet``, ``contribute`` and ``curate``: datanets, the data recorded in them, and
its curation, as signed transactions and ``ai_`` reads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ai_precompiles.datanets import REASON_ADVERSARIAL
from node.cli.amounts import ether, parse_amount
from node.cli.blobs import upload
from node.cli.client import Json
from node.cli.errors import CLIError
from node.cli.options import Subparsers, action, arg, client_for, group, show
from node.cli.reads import get_datanet, list_all, list_contributions, status_name


def add_parsers(sub: Subparsers) -> None:
    dsub = group(sub, "datanet", "create, list, show and publish datanets")
    action(dsub, "create", "create a datanet (you become its owner)", cmd_datanet_create,
           arg("name"),
           arg("--domain", default="general", help="subject domain, e.g. medical-qa"),
           arg("--description-uri", default="", help="URI of a longer description"),
           arg("--license-policy", default="CC-BY-4.0", help="licenses contributions must be compatible with"),
           arg("--curator", action="append", default=[], help="curator address (repeat); default: yourself"),
           arg("--quorum", type=int, default=1, help="approvals needed to accept a contribution"),
           arg("--max-size", type=int, default=16 * 1024 * 1024, help="largest contribution in bytes"))
    action(dsub, "show", "show a datanet", cmd_datanet_show, arg("id", type=int))
    action(dsub, "list", "list the datanets, or with ID one datanet's contributions", cmd_datanet_list,
           arg("id", type=int, nargs="?"),
           arg("--status", choices=["pending", "accepted", "rejected"], default=None))
    action(dsub, "publish", "publish a version (Merkle root of accepted contributions)", cmd_datanet_publish,
           arg("id", type=int))
    action(dsub, "policy", "set what each later contribution must carry (owner only)", cmd_datanet_policy,
           arg("id", type=int),
           arg("--min-bond", type=parse_amount, default=0, help="bond each contribution must carry (e.g. 0.1eth)"),
           arg("--require-sketch", action="store_true", help="each contribution must carry its MinHash sketch"),
           description="A contribution to a datanet with a policy bonds at least --min-bond, returned when "
           "the curators accept it or reject it for an ordinary reason, slashed when they reject it as "
           "adversarial (`ailedger curate --adversarial`); its MinHash sketch flags it when it is a near "
           "copy of an earlier contribution, and an accepted near copy shares the original's rewards.")
    action(dsub, "withdraw-consent", "withdraw consent for your contributions (final)", cmd_withdraw_consent,
           arg("contributions", type=int, nargs="+", metavar="ID"),
           description="Withdraw consent for each contribution ID (yours): nothing new trains on it (versions "
           "covering it cannot be trained on), adapters already trained on it count it "
           "(withdrawnContributions in `ailedger model show`), and their receipts from now on say so. Every ID "
           "is checked before anything is sent.")

    action(sub, "contribute", "upload files and record them as contributions to a datanet", cmd_contribute,
           arg("datanet", type=int, help="datanet id"),
           arg("files", nargs="+", type=Path, metavar="FILE"),
           arg("--license", default="CC-BY-4.0",
               help="SPDX id of the files' license, from the chain's allow-list (e.g. CC-BY-4.0, MIT, CC0-1.0; "
                    "CC-BY-NC-4.0 forbids commercial use, CC-BY-ND-4.0 derivatives, of what is trained on it)"),
           arg("--metadata", default="", help="metadata JSON (its keccak-256 goes on chain; the JSON to the blob store)"),
           arg("--abi", action="store_true", help="send an ABI call to the Datanets precompile instead of the native type"),
           arg("--bond", type=parse_amount, default=None,
               help="bond each contribution with this much (default: the datanet's minimum); sends contributeBonded"),
           arg("--sketch", action="store_true",
               help="send each file's MinHash sketch (contributeBonded; implied by a bond or the datanet's policy)"),
           description="Check every FILE first (exists, not empty, within the datanet's size limit, not a "
           "duplicate), then upload each to the node's blob store (chunked, with progress), commit to it "
           "(a salted hash that shows nothing, so nobody who sees the contribution pending can claim the "
           "file first) and, a block later, record a contribution carrying its keccak-256 content hash, as "
           "a native data-contribution transaction (or an ABI call with --abi).")
    curate = action(sub, "curate", "approve or reject contributions (curators only)", cmd_curate,
                    arg("contributions", type=int, nargs="*", metavar="ID"),
                    arg("--all-pending", action="store_true",
                        help="every pending contribution of the datanets you curate (or of --datanet)"),
                    arg("--datanet", type=int, default=None, help="with --all-pending: only this datanet"),
                    arg("--reason", type=int, default=0, help="reason code of a rejection"))
    choice = curate.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--reject", action="store_true")
    choice.add_argument("--adversarial", action="store_true",
                        help=f"reject as adversarial (reason {REASON_ADVERSARIAL}): enough such votes slash "
                        "the contribution's bond and raise its contributor's penalty score")


def cmd_datanet_create(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address

    client = client_for(args)
    if not args.name.strip():
        raise CLIError("a datanet needs a name")
    if args.quorum < 1:
        raise CLIError("--quorum must be at least 1")
    curators = [to_canonical_address(c) for c in args.curator] or [to_canonical_address(client.address)]
    if args.quorum > len(curators):
        raise CLIError(f"--quorum {args.quorum} exceeds the {len(curators)} curator(s)")
    receipt = client.transact("Datanets", "createDatanet", args.name, args.domain, args.description_uri,
                              args.license_policy, curators, args.quorum, args.max_size)
    datanet_id = client.event_arg(receipt, "Datanets", "DatanetCreated")
    show(args, {"id": datanet_id, "transactionHash": receipt["transactionHash"]},
         f"datanet {datanet_id} created: {args.name} (tx {receipt['transactionHash']})")
    return 0


def _datanet_lines(d: dict[str, Json]) -> list[str]:
    lines = [f"datanet {d['id']}: {d['name']} ({d['domain']})",
             f"  owner {d['owner']}, curators {', '.join(d['curators'])}, quorum {d['quorum']}",
             f"  contributions {d['contributionCount']}, accepted {d['acceptedCount']}, "
             f"versions {d['versionCount']}, license {d['licensePolicy']}"]
    policy = d.get("contributionPolicy")
    if isinstance(policy, dict) and (int(policy["minBond"]) or policy["requireSketch"]):
        lines.append(f"  policy: bond at least {ether(int(policy['minBond']))}"
                     + (", MinHash sketch required" if policy["requireSketch"] else ""))
    return lines


def _quality_notes(c: dict[str, Json]) -> list[str]:
    """What a curator should know of a contribution's quality (``ai_getContribution``)."""
    q = c.get("quality")
    if not isinstance(q, dict):
        return []
    notes = []
    if int(q["nearDuplicateOf"]):
        notes.append(f"near duplicate of contribution {q['nearDuplicateOf']} "
                     f"(similarity {int(q['similarityBp']) / 100:.1f}%): if accepted it shares that one's rewards")
    if q["sketchMatches"] is False:
        notes.append("its sketch on chain is NOT its blob's: a lie about the data (reject it with --adversarial)")
    if int(q["bond"]):
        notes.append(f"bond {ether(int(q['bond']))}")
    if int(q["penaltyScore"]):
        notes.append(f"its contributor's penalty score is {q['penaltyScore']}")
    return notes


def cmd_datanet_policy(args: argparse.Namespace) -> int:
    client = client_for(args)
    d = get_datanet(client, args.id)
    if d["owner"].lower() != client.address.lower():
        raise CLIError(f"only the datanet's owner {d['owner']} sets its policy")
    receipt = client.transact("Datanets", "setContributionPolicy", args.id, args.min_bond, args.require_sketch)
    show(args, {"datanet": args.id, "minBond": args.min_bond, "requireSketch": args.require_sketch,
                "transactionHash": receipt["transactionHash"]},
         f"datanet {args.id}: each contribution bonds at least {ether(args.min_bond)}"
         + (" and carries its sketch" if args.require_sketch else "") + f" (tx {receipt['transactionHash']})")
    return 0


def cmd_datanet_show(args: argparse.Namespace) -> int:
    d = get_datanet(client_for(args), args.id)
    show(args, d, _datanet_lines(d))
    return 0


def cmd_datanet_list(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.id is None:
        if args.status:
            raise CLIError("--status lists one datanet's contributions: give its ID")
        items = list_all(client, "ai_listDatanets", "datanets")
        lines = [line for d in items for line in _datanet_lines(d)] or ["no datanets yet (`ailedger datanet create`)"]
        show(args, items, lines)
        return 0
    get_datanet(client, args.id)
    contributions = list_contributions(client, args.id, args.status)
    for c in contributions:
        c["status"] = status_name(c)
    lines = [f"contribution {c['id']}: {c['status']}, {c['size']} bytes from {c['contributor']} "
             f"({c['contentHash']})" for c in contributions] or [f"datanet {args.id} has no such contributions"]
    show(args, contributions, lines)
    return 0


def cmd_datanet_publish(args: argparse.Namespace) -> int:
    client = client_for(args)
    d = get_datanet(client, args.id)
    if d["owner"].lower() != client.address.lower():
        raise CLIError(f"only the datanet's owner {d['owner']} publishes its versions")
    receipt = client.transact("Datanets", "publishVersion", args.id)
    version = client.event_arg(receipt, "Datanets", "VersionPublished", 2)
    show(args, {"datanet": args.id, "version": version, "transactionHash": receipt["transactionHash"]},
         f"datanet {args.id} version {version} published (tx {receipt['transactionHash']})")
    return 0


def cmd_contribute(args: argparse.Namespace) -> int:
    from eth_hash.auto import keccak

    from ai_precompiles import licenses
    from ai_precompiles.errors import AIError

    try:
        licenses.canonical(args.license)
    except AIError as e:
        raise CLIError(f"--license: {e.reason}; nothing was uploaded") from None
    client = client_for(args)
    client.address  # noqa: B018 - a missing key stops the command before any read
    d = get_datanet(client, args.datanet)
    max_size = int(d["maxContributionSize"])
    policy = d.get("contributionPolicy") or {"minBond": 0, "requireSketch": False}
    assert isinstance(policy, dict)
    min_bond = int(policy["minBond"])
    bond = min_bond if args.bond is None else args.bond
    if bond < min_bond:
        raise CLIError(f"--bond {ether(bond)} is below datanet {args.datanet}'s minimum "
                       f"{ether(min_bond)}; nothing was uploaded")
    bonded = bool(bond or args.sketch or policy["requireSketch"])
    # Check every file before anything is uploaded or sent.
    files: list[tuple[Path, bytes, bytes]] = []
    seen: dict[bytes, Path] = {}
    on_chain = {c["contentHash"].lower() for c in list_contributions(client, args.datanet)}
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CLIError(f"{path}: {e.strerror}; nothing was uploaded") from None
        if not data:
            raise CLIError(f"{path} is empty; nothing was uploaded")
        if len(data) > max_size:
            raise CLIError(f"{path} has {len(data)} bytes, over datanet {args.datanet}'s limit of {max_size}; "
                           "nothing was uploaded")
        digest = bytes(keccak(data))
        if digest in seen:
            same = "is named twice" if seen[digest] == path else f"has the same content as {seen[digest]}"
            raise CLIError(f"{path} {same}; nothing was uploaded")
        if "0x" + digest.hex() in on_chain:
            raise CLIError(f"{path} is already a contribution to datanet {args.datanet}; nothing was uploaded")
        seen[digest] = path
        files.append((path, data, digest))
    metadata_hash = b"\x00" * 32
    if args.metadata:
        try:
            json.loads(args.metadata)
        except ValueError:
            raise CLIError("--metadata: not JSON") from None
        metadata_hash = upload(client, args.metadata.encode(), "metadata")
    import secrets

    from eth_utils import to_canonical_address

    from ai_precompiles.datanets import contribution_commitment
    from node.progress import progress_over

    me = to_canonical_address(client.address)
    results = []
    for path, data, _digest in progress_over(files, "contributions", "file") if len(files) > 1 else files:
        content_hash = upload(client, data, path.name)
        # Commit first: the contribution, which shows the content hash, goes in a later block.
        salt = secrets.token_bytes(32)
        client.transact("Datanets", "commitContribution", contribution_commitment(
            me, args.datanet, content_hash, len(data), args.license, metadata_hash, salt))
        if bonded:
            from ai_precompiles.sketch import compute_sketch

            receipt = client.transact("Datanets", "contributeBonded", args.datanet, content_hash, len(data),
                                      args.license, metadata_hash, salt, compute_sketch(data), value=bond)
        elif args.abi:
            receipt = client.transact("Datanets", "contribute", args.datanet, content_hash, len(data),
                                      args.license, metadata_hash, salt)
        else:
            from state.native import DataContributionTransaction

            receipt = client.send_native(
                DataContributionTransaction, gas=1_000_000, datanet_id=args.datanet, content_hash=content_hash,
                size=len(data), license=args.license.encode(), metadata_hash=metadata_hash, salt=salt)
        cid = client.event_arg(receipt, "Datanets", "ContributionSubmitted", 2)
        result: dict[str, Json] = {"file": str(path), "id": cid, "contentHash": "0x" + content_hash.hex(),
                                   "size": len(data), "transactionHash": receipt["transactionHash"]}
        if bonded:
            quality = client.call("ai_getContribution", cid)["quality"]
            result.update(bond=bond, nearDuplicateOf=quality["nearDuplicateOf"])
        results.append(result)
    show(args, results, [f"{r['file']}: contribution {r['id']} ({r['size']} bytes, tx {r['transactionHash']})"
                         + (f", a near duplicate of contribution {r['nearDuplicateOf']}: the curators see it"
                            if r.get("nearDuplicateOf") else "")
                         for r in results])
    return 0


def cmd_withdraw_consent(args: argparse.Namespace) -> int:
    client = client_for(args)
    me = client.address.lower()
    ids = list(dict.fromkeys(args.contributions))
    for cid in ids:
        try:
            c = client.call("ai_getContribution", cid)
        except CLIError as e:
            if "not found" in str(e):
                raise CLIError(f"contribution {cid} does not exist; nothing was sent") from None
            raise
        if str(c["contributor"]).lower() != me:
            raise CLIError(f"contribution {cid} is {c['contributor']}'s, not yours; nothing was sent")
        if c["withdrawnBlock"]:
            raise CLIError(f"consent for contribution {cid} was already withdrawn in block {c['withdrawnBlock']}; "
                           "nothing was sent")
    results = []
    for cid in ids:
        receipt = client.transact("Datanets", "withdrawConsent", cid)
        results.append({"id": cid, "transactionHash": receipt["transactionHash"]})
    show(args, results, [f"contribution {r['id']}: consent withdrawn (tx {r['transactionHash']})" for r in results])
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    client = client_for(args)
    me = client.address.lower()
    ids = list(dict.fromkeys(args.contributions))
    if args.all_pending:
        datanets = [get_datanet(client, args.datanet)] if args.datanet is not None else \
            list_all(client, "ai_listDatanets", "datanets")
        for d in datanets:
            if me in (c.lower() for c in d["curators"]):
                ids += [c["id"] for c in list_contributions(client, int(d["id"]), "pending") if c["id"] not in ids]
        if not ids:
            show(args, [], "no pending contributions in the datanets you curate")
            return 0
    elif args.datanet is not None:
        raise CLIError("--datanet goes with --all-pending")
    if not ids:
        raise CLIError("name the contributions to curate (IDs) or give --all-pending")
    if args.approve and args.reason:
        raise CLIError("an approval carries no --reason")
    if args.adversarial and args.reason:
        raise CLIError(f"--adversarial is reason {REASON_ADVERSARIAL}: give no --reason")
    reason = REASON_ADVERSARIAL if args.adversarial else args.reason
    # Check them all before sending any vote.
    curators: dict[int, list[str]] = {}
    for cid in ids:
        try:
            c = client.call("ai_getContribution", cid)
        except CLIError as e:
            raise CLIError(f"contribution {cid} does not exist; nothing was sent" if "not found" in str(e) else str(e)) from None
        if int(c["status"]) != 0:
            raise CLIError(f"contribution {cid} is already {status_name(c)}; nothing was sent")
        dn = int(c["datanetId"])
        if dn not in curators:
            curators[dn] = [a.lower() for a in get_datanet(client, dn)["curators"]]
        if me not in curators[dn]:
            raise CLIError(f"you ({client.address}) are not a curator of datanet {dn} (contribution {cid}); "
                           "nothing was sent")
        for note in _quality_notes(c):
            print(f"contribution {cid}: {note}", file=sys.stderr)
    results = []
    for cid in ids:
        receipt = client.transact("Datanets", "curate", cid, bool(args.approve), reason)
        status = status_name(client.call("ai_getContribution", cid))
        results.append({"id": cid, "vote": "approve" if args.approve else "reject", "status": status,
                        "transactionHash": receipt["transactionHash"]})
    show(args, results, [f"contribution {r['id']}: {r['vote']}d, now {r['status']} (tx {r['transactionHash']})"
                         for r in results])
    return 0

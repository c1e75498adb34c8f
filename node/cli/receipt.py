"""``ailedger receipt``: an inference receipt with its output and ancestry, and its check by
re-running the request on a sidecar."""

from __future__ import annotations

import argparse

from node.cli.amounts import ether
from node.cli.blobs import fetch_blob
from node.cli.client import Client, Json
from node.cli.errors import CLIError
from node.cli.options import Subparsers, action, arg, client_for, group, show
from node.cli.reads import get_model
from node.cli.sidecar_grpc import sidecar_adapter, sidecar_client


def add_parsers(sub: Subparsers) -> None:
    rcsub = group(sub, "receipt", "show and verify inference receipts")
    action(rcsub, "show", "an inference receipt, its output and its ancestry (data, contributors, lineage)",
           cmd_receipt_show, arg("id", help="receipt id, or the hash of its transaction"))
    action(rcsub, "verify", "re-run a receipt from the chain and its blobs, and compare output and attribution",
           cmd_receipt_verify, arg("id", help="receipt id, or the hash of its transaction"),
           arg("--prompt", default=None,
               help="check this prompt too (its hash must be the receipt's; the node holds the prompt already)"),
           arg("--sidecar", default=None,
               help="re-run on this sidecar (gRPC address) instead of asking the node (--rpc) to re-run it "
                    "on its own; the output is compared"))


    action(rcsub, "challenge", "challenge a receipt you believe lies, bonding inference.challenge_bond: a committee "
                               "of other validators re-runs it; if it lies, the validator is slashed and you are "
                               "rewarded, if not, you lose the bond",
           cmd_receipt_challenge, arg("id", help="receipt id, or the hash of its transaction"))


def _receipt(client: Client, ref: str) -> dict[str, Json]:
    try:
        if ref.startswith("0x") and len(ref) == 66:
            return dict(client.call("ai_getInferenceAncestry", ref))
        return dict(client.call("ai_getReceipt", int(ref)))
    except ValueError:
        raise CLIError(f"{ref}: expected a receipt id or a transaction hash") from None
    except CLIError as e:
        if "not found" in str(e) or "recorded no inference" in str(e):
            raise CLIError(f"no inference receipt {ref}") from None
        raise


def cmd_receipt_show(args: argparse.Namespace) -> int:
    client = client_for(args)
    found = _receipt(client, args.id)
    r = found["receipt"]
    try:
        found["output"] = fetch_blob(client, r["outputHash"]).decode("utf-8", errors="replace")
    except CLIError:
        found["output"] = None
    lines = [f"receipt {r['id']}: adapter {r['adapterId']} for {r['user']}, fee {ether(r['fee'])}, "
             f"validator {r['validator']}, block {r['blockNumber']}",
             f"  output: {found['output']!r}" if found["output"] is not None else
             f"  output {r['outputHash']} (not in this node's blob store)"]
    lines += [f"  {a['weightBp'] / 100:.2f}% contribution {a['contributionId']} (datanet {a['datanetId']}) "
              f"by {a['contributor']}" for a in found["attributions"]]
    lines += ["  lineage: " + " <- ".join(f"{m['id']}" for m in found["lineage"]["path"])]
    show(args, found, lines)
    return 0


def cmd_receipt_verify(args: argparse.Namespace) -> int:
    """The node (``ai_verifyReceipt``) re-runs the receipt from what the chain pins: prompt,
    adapter artifacts, max tokens, engine profile; the output must match exactly and the
    attribution within the tolerance docs/sidecar.md states."""
    from eth_hash.auto import keccak

    client = client_for(args)
    found = _receipt(client, args.id)
    r = found["receipt"]
    assert isinstance(r, dict)
    if args.prompt is not None and "0x" + keccak(args.prompt.encode()).hex() != str(r["promptHash"]).lower():
        raise CLIError("that prompt is not the one this receipt was for (its hash differs)")
    if args.sidecar is not None:
        return _verify_on_sidecar(args, client, r)
    checked = client.call("ai_verifyReceipt", r["id"])
    assert isinstance(checked, dict)
    verdict = checked["verdict"]
    if verdict == "valid":
        line = f"receipt {r['id']}: verified, the re-run gives the same output and attribution"
    elif verdict == "unverifiable":
        line = f"receipt {r['id']}: cannot be judged here: {checked['reason']}"
    else:
        what = [w for w, ok in (("output", checked["outputMatches"]), ("attribution", checked["attributionMatches"]))
                if not ok]
        line = (f"receipt {r['id']}: MISMATCH: the re-run differs in {' and '.join(what)} "
                f"(attribution off by {checked['attributionDiffBp']} bp, tolerance {checked['toleranceBp']} bp)")
    show(args, checked, line)
    return 0 if verdict == "valid" else 1


def _verify_on_sidecar(args: argparse.Namespace, client: Client, r: dict[str, Json]) -> int:
    """Re-run on a sidecar of your own (it must hold the adapter): the output hash is compared."""
    prompt = fetch_blob(client, str(r["promptHash"]))
    model = get_model(client, int(str(r["adapterId"])))
    with sidecar_client(args.sidecar) as sidecar:
        adapter = sidecar_adapter(sidecar, model["weightsHash"])
        answer, _, matches = sidecar.replay(adapter_id=adapter, prompt=prompt, max_tokens=int(str(r["maxTokens"])),
                                            expected_output_hash=str(r["outputHash"]).removeprefix("0x"))
    ok = "0x" + answer.output_hash.lower().removeprefix("0x") == str(r["outputHash"]).lower()
    out = {"receiptId": r["id"], "matches": ok, "outputHash": r["outputHash"],
           "replayedOutputHash": "0x" + answer.output_hash.removeprefix("0x"),
           "output": answer.output.decode("utf-8", errors="replace")}
    show(args, out, f"receipt {r['id']}: " + ("verified, the replay gives the same output" if ok else
                                             f"MISMATCH: the replay gives {out['replayedOutputHash']}"))
    return 0 if ok else 1


def cmd_receipt_challenge(args: argparse.Namespace) -> int:
    client = client_for(args)
    r = _receipt(client, args.id)["receipt"]
    assert isinstance(r, dict)
    params = client.call("ai_getParams")
    assert isinstance(params, dict)
    bond = int(str(params["inference.challenge_bond"]), 16)
    head = int(str(client.call("eth_blockNumber")), 16)
    if int(str(r["status"])) != 0:
        raise CLIError(f"receipt {r['id']} is {['pending', 'challenged', 'settled', 'reversed'][int(str(r['status']))]}: "
                       "only a pending receipt may be challenged")
    if head + 1 >= int(str(r["releaseBlock"])):
        raise CLIError(f"receipt {r['id']}'s challenge window closed at block {r['releaseBlock']}")
    receipt = client.transact("Inference", "challenge", int(str(r["id"])), value=bond)
    challenge_id = client.event_arg(receipt, "Inference", "ChallengeOpened")
    show(args, {"challengeId": challenge_id, "receiptId": r["id"], "bond": bond,
                "transactionHash": receipt["transactionHash"]},
         f"challenge {challenge_id} opened on receipt {r['id']} with a bond of {ether(bond)}; the committee's "
         "verdicts follow (`ailedger receipt show` shows the outcome)")
    return 0

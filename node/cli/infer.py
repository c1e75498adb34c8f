"""``ailedger infer``: a signed inference request served by a validator's node (``ai_infer``), or,
with ``--validator-*``, served on your own sidecar with the receipt signed as that validator."""

from __future__ import annotations

import argparse
import os

from node.cli.amounts import ether, parse_amount
from node.cli.blobs import upload
from node.cli.client import Client, Json, checksum
from node.cli.errors import CLIError
from node.cli.options import (
    Subparsers,
    add_common,
    add_sidecar_flag,
    client_for,
    dev_key,
    hex_key,
    parse_hash,
    show,
)
from node.cli.reads import check_balance, deposit_of, get_model
from node.cli.sidecar_grpc import sidecar_adapter, sidecar_client

#: Seconds a request stays valid after the head block's time.
REQUEST_LIFETIME = 3600


def add_parsers(sub: Subparsers) -> None:
    infer = sub.add_parser(
        "infer", help="ask a validator's node to run an inference; its receipt lands on chain",
        description="Ask the node at --rpc for its validator's quote (ai_inferQuote), sign an EIP-712 "
        "inference request bound to that validator and price, and send it with the prompt "
        "(ai_infer): the node runs it on its sidecar, records the receipt with the attribution "
        "and answers with the output. You never hold a validator key. The fee is charged from "
        "your deposit (--deposit tops it up first). With --validator-key/--validator-account, "
        "serve it yourself on --sidecar and sign the receipt as that validator instead.")
    add_common(infer)
    add_sidecar_flag(infer)
    infer.add_argument("--adapter", type=int, required=True, help="on-chain adapter id")
    infer.add_argument("--prompt", required=True)
    infer.add_argument("--max-tokens", type=int, default=32)
    infer.add_argument("--max-fee", type=parse_amount, default=None, metavar="AMOUNT",
                       help="refuse a quote above this (default: accept the node's price)")
    infer.add_argument("--fee", type=parse_amount, default=10**15, metavar="AMOUNT",
                       help="with --validator-*: the fee charged (default: 0.001eth)")
    infer.add_argument("--deposit", type=parse_amount, default=None, metavar="AMOUNT",
                       help="deposit this much first (e.g. 0.1eth)")
    infer.add_argument("--validator-key", default=None, help="serve it yourself: hex key of the validator")
    infer.add_argument("--validator-account", type=int, default=None, metavar="N",
                       help="serve it yourself: dev account N as validator")
    infer.set_defaults(func=cmd_infer)


def _check_adapter(client: Client, adapter_id: int) -> dict[str, Json]:
    model = get_model(client, adapter_id, "adapter")
    if int(model["kind"]) != 2:
        raise CLIError(f"model {adapter_id} is a base model; infer needs an adapter (see `ailedger model list`)")
    if model["retired"]:
        raise CLIError(f"adapter {adapter_id} is retired")
    return model


def _ensure_deposit(client: Client, args: argparse.Namespace, price: int) -> None:
    if args.deposit is not None:
        if args.deposit == 0:
            raise CLIError("--deposit 0: nothing to deposit")
        check_balance(client, args.deposit)
        client.transact("Inference", "deposit", value=args.deposit)
    have = deposit_of(client, client.address)
    available = have["balance"] - (have["withdrawalPending"] if have["withdrawalPending"] else 0)
    if available < price:
        raise CLIError(f"your deposit ({ether(have['balance'])}) does not cover the fee {ether(price)}: "
                       "add --deposit 0.01eth (or `ailedger deposit add`)")


def cmd_infer(args: argparse.Namespace) -> int:
    if args.validator_key or args.validator_account is not None:
        return _infer_as_validator(args)
    from eth_hash.auto import keccak

    from ai_precompiles import typed_data

    user = client_for(args)
    user_address = user.address
    if not args.prompt:
        raise CLIError("--prompt is empty")
    _check_adapter(user, args.adapter)
    quote = user.call("ai_inferQuote")
    price = int(quote["price"], 16)
    if args.max_fee is not None and price > args.max_fee:
        raise CLIError(f"the node's price {ether(price)} is above your --max-fee {ether(args.max_fee)}")
    if not quote.get("ready", True):
        raise CLIError("the node's sidecar is not serving yet; try again shortly")
    if not 0 < args.max_tokens <= int(quote["maxTokens"]):
        raise CLIError(f"--max-tokens must be within 1..{quote['maxTokens']} on this node")
    _ensure_deposit(user, args, price)
    chain_id = int(quote["chainId"], 16)
    head = user.call("eth_getBlockByNumber", "latest", False)
    request = {"user": bytes.fromhex(user_address[2:]), "validator": bytes.fromhex(quote["validator"][2:]),
               "adapter_id": args.adapter, "prompt_hash": keccak(args.prompt.encode()),
               "max_tokens": args.max_tokens, "max_fee": price, "nonce": int.from_bytes(os.urandom(8), "big"),
               "deadline": int(head["timestamp"], 16) + REQUEST_LIFETIME, "chain_id": chain_id}
    signature = typed_data.sign(typed_data.request_digest(request, chain_id), user.key)
    wire = {"user": user_address, "validator": quote["validator"], "adapterId": args.adapter,
            "prompt": args.prompt, "maxTokens": args.max_tokens, "maxFee": hex(price), "nonce": hex(request["nonce"]),
            "deadline": hex(request["deadline"]), "chainId": hex(chain_id)}
    result = user.call("ai_infer", wire, "0x" + signature.hex(), {"maxTokens": args.max_tokens})
    result["fee"] = int(result["fee"], 16)
    lines = [result["output"], "",
             f"receipt {result['receiptId']} (tx {result['transactionHash']}), fee {ether(result['fee'])} "
             f"to validator {checksum(result['validator'])}"]
    lines += [f"  {a['weightBp'] / 100:.2f}% contribution {a['contributionId']}" for a in result["attribution"]]
    show(args, result, lines)
    return 0


def _infer_as_validator(args: argparse.Namespace) -> int:
    """Serve the request on a sidecar you run and sign the receipt as the validator yourself."""
    from eth_hash.auto import keccak
    from eth_utils import to_canonical_address

    from ai_precompiles import typed_data
    from state.native import InferenceReceiptTransaction

    user = client_for(args)
    vkey = hex_key(args.validator_key, "--validator-key") if args.validator_key else dev_key(args.validator_account)
    validator = Client(args.rpc, vkey)
    model = _check_adapter(user, args.adapter)
    if args.fee == 0:
        raise CLIError("--fee must be above zero")
    staked = int(user.view("Staking", "stakeOf", validator.address))
    minimum = int(user.call("ai_getParams")["staking.min_stake"], 16)
    if staked < minimum:
        raise CLIError(f"validator {validator.address} has {ether(staked)} staked, below the minimum "
                       f"{ether(minimum)}: `ailedger stake add 2eth` with its key first")
    _ensure_deposit(user, args, args.fee)
    chain_id = user.chain_id()
    head = user.call("eth_getBlockByNumber", "latest", False)
    request = {
        "user": to_canonical_address(user.address), "validator": to_canonical_address(validator.address),
        "adapter_id": args.adapter, "prompt_hash": keccak(args.prompt.encode()), "max_tokens": args.max_tokens,
        "max_fee": args.fee, "nonce": int.from_bytes(os.urandom(8), "big"), "deadline": int(head["timestamp"], 16) + REQUEST_LIFETIME,
        "chain_id": chain_id,
    }
    user_signature = typed_data.sign(typed_data.request_digest(request, chain_id), user.key)
    with sidecar_client(args.sidecar) as sidecar:
        result = sidecar.infer(sidecar_adapter(sidecar, model["weightsHash"]), args.prompt.encode(), args.max_tokens)
        profile, profile_hash = sidecar.engine_profile()
    if not profile_hash or result.engine_profile_hash != profile_hash:
        raise CLIError("the sidecar reported no engine profile (or changed it mid-request): a receipt must pin one")
    upload(validator, result.output, "output")
    upload(validator, profile, "engine profile")
    ids = [int(cid) for cid, _ in result.weights]
    weights = [bp for _, bp in result.weights]
    output_hash = parse_hash(result.output_hash)
    receipt = validator.submit_native(InferenceReceiptTransaction.for_request(
        vkey, request, user_signature, output_hash=output_hash, engine_profile=parse_hash(profile_hash),
        contribution_ids=ids, weights_bp=weights,
        fee=args.fee, **validator.tx_head()))
    out = {
        "output": result.output.decode("utf-8", errors="replace"),
        "outputHash": "0x" + output_hash.hex(),
        "attribution": [{"contributionId": i, "weightBp": w} for i, w in zip(ids, weights, strict=True)],
        "fee": args.fee,
        "validator": validator.address,
        "transactionHash": receipt["transactionHash"],
        "receiptId": validator.event_arg(receipt, "Inference", "InferenceRecorded"),
    }
    lines = [out["output"], "", f"receipt {out['receiptId']} (tx {out['transactionHash']}), fee {ether(args.fee)}"]
    show(args, out, lines)
    return 0

"""``ailedger infer``: a signed inference request served by a validator's node (``ai_infer``), or,
with ``--validator-*``, served on your own sidecar with the receipt signed as that validator."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from node.cli.amounts import ether, parse_amount
from node.cli.blobs import upload
from node.cli.client import RECEIPT_WAIT, Client, Json, checksum
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
        "and answers with the output; the receipt id is printed once the receipt is final. You "
        "never hold a validator key. The fee is charged from your deposit (--deposit tops it up "
        "first, and only once the adapter, the node's quote and sidecar, its validator's stake, "
        "--max-fee and the deposit are checked: a refused request deposits nothing). With "
        "--validator-key/--validator-account, serve it yourself on --sidecar and sign the receipt "
        "as that validator instead.")
    add_common(infer)
    add_sidecar_flag(infer)
    infer.add_argument("--adapter", type=int, required=True, help="on-chain adapter id")
    infer.add_argument("--prompt", required=True)
    infer.add_argument("--max-tokens", type=int, default=32)
    infer.add_argument("--commercial", action="store_true",
                       help="declare commercial use of the output (signed in the request); refused, before "
                            "anything is deposited, on an adapter whose effective licence is non-commercial")
    infer.add_argument("--max-fee", type=parse_amount, default=None, metavar="AMOUNT",
                       help="refuse a quote above this (default: accept the node's price)")
    infer.add_argument("--fee", type=parse_amount, default=10**15, metavar="AMOUNT",
                       help="with --validator-*: the fee charged (default: 0.001eth)")
    infer.add_argument("--deposit", type=parse_amount, default=None, metavar="AMOUNT",
                       help="deposit this much first (e.g. 0.1eth), once the node is known to serve the request")
    infer.add_argument("--wait", type=float, default=RECEIPT_WAIT, metavar="SECONDS",
                       help="how long to wait for the receipt to be final when the node answers before its "
                            "block, as on BFT (default: %(default)s)")
    infer.add_argument("--validator-key", default=None, help="serve it yourself: hex key of the validator")
    infer.add_argument("--validator-account", type=int, default=None, metavar="N",
                       help="serve it yourself: dev account N as validator")
    infer.set_defaults(func=cmd_infer)


def _check_adapter(client: Client, adapter_id: int, commercial: bool = False) -> dict[str, Json]:
    model = get_model(client, adapter_id, "adapter")
    if int(model["kind"]) != 2:
        raise CLIError(f"model {adapter_id} is a base model; infer needs an adapter (see `ailedger model list`)")
    if model["retired"]:
        raise CLIError(f"adapter {adapter_id} is retired")
    if not client.call("ai_getModelStatus", hex(adapter_id))["deployable"]:
        raise CLIError(f"adapter {adapter_id} awaits approval: its policy requires an executed model proposal "
                       "(see `ailedger govern model-status`)")
    licence = model.get("effectiveLicense")
    if commercial and isinstance(licence, dict) and not licence.get("commercialUse", True):
        raise CLIError(f"adapter {adapter_id}'s licence allows no commercial use (its lineage trained on "
                       "non-commercial data): drop --commercial; nothing was deposited")
    return model


def _check_deposit(client: Client, args: argparse.Namespace, price: int) -> None:
    """Refuse, before anything is sent, a fee that the deposit (topped up by ``--deposit``)
    would not cover, or a ``--deposit`` the signer cannot pay."""
    if args.deposit is not None:
        if args.deposit == 0:
            raise CLIError("--deposit 0: nothing to deposit")
        check_balance(client, args.deposit)
    have = deposit_of(client, client.address)
    available = have["balance"] - (have["withdrawalPending"] if have["withdrawalPending"] else 0)
    if available + (args.deposit or 0) < price:
        with_top_up = f" plus --deposit {ether(args.deposit)}" if args.deposit else ""
        raise CLIError(f"your deposit ({ether(available)} available){with_top_up} does not cover the fee "
                       f"{ether(price)}: deposit at least {ether(price - available)} "
                       "(--deposit, or `ailedger deposit add`); nothing was deposited")


def _ensure_deposit(client: Client, args: argparse.Namespace, price: int) -> None:
    _check_deposit(client, args, price)
    if args.deposit is not None:
        client.transact("Inference", "deposit", value=args.deposit)


def _check_node_serves(client: Client, args: argparse.Namespace) -> dict[str, Json]:
    """The node's quote, once everything that would make it refuse the request is checked, so
    that a refused user has deposited nothing: the adapter exists and is not retired, the node
    serves inference with its sidecar ready, its price is within --max-fee, its validator is
    staked and not jailed, --max-tokens is within its limit, and the deposit covers the price."""
    _check_adapter(client, args.adapter, args.commercial)
    quote = dict(client.call("ai_inferQuote"))
    price = int(quote["price"], 16)
    if args.max_fee is not None and price > args.max_fee:
        raise CLIError(f"the node's price {ether(price)} is above your --max-fee {ether(args.max_fee)}; "
                       "nothing was deposited")
    if not quote.get("ready", True):
        state = (quote.get("sidecar") or {}).get("state", "not serving")
        raise CLIError(f"the node's sidecar is not serving ({state}); try again shortly; nothing was deposited")
    validator = checksum(quote["validator"])
    minimum = int(client.call("ai_getParams")["staking.min_stake"], 16)
    if int(client.view("Staking", "stakeOf", validator)) < minimum:
        raise CLIError(f"the node's validator {validator} is not staked, so it cannot record receipts; "
                       "nothing was deposited")
    if int(client.view("Staking", "jailedUntil", validator)):
        raise CLIError(f"the node's validator {validator} is jailed and cannot record receipts; "
                       "nothing was deposited")
    if not 0 < args.max_tokens <= int(quote["maxTokens"]):
        raise CLIError(f"--max-tokens must be within 1..{quote['maxTokens']} on this node")
    _check_deposit(client, args, price)
    return quote


def wait_final(client: Client, tx_hash: str, timeout: float, what: str = "receipt") -> dict[str, Json]:
    """The transaction's receipt once its block is committed (final: BFT never reverts a
    committed block), waiting at most ``timeout`` seconds, with a progress line on a terminal."""
    started = time.monotonic()
    tty = sys.stderr.isatty()
    try:
        while True:
            receipt = client.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if receipt["status"] != "0x1":
                    raise CLIError(f"the {what} transaction {tx_hash} failed in block "
                                   f"{int(receipt['blockNumber'], 16)}: {client.failure_reason(tx_hash, receipt)}")
                return dict(receipt)
            waited = time.monotonic() - started
            if waited >= timeout:
                raise CLIError(f"the {what} transaction {tx_hash} is not in a block after {timeout:.0f} s; "
                               f"look later with `ailedger receipt show {tx_hash}`")
            if tty:
                print(f"\rwaiting for the {what} to be final: {waited:.0f} s (tx {tx_hash})",
                      end="", file=sys.stderr, flush=True)
            time.sleep(min(0.5, max(0.0, timeout - waited)))
    finally:
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def cmd_infer(args: argparse.Namespace) -> int:
    if args.validator_key or args.validator_account is not None:
        return _infer_as_validator(args)
    from eth_hash.auto import keccak

    from ai_precompiles import typed_data

    user = client_for(args)
    user_address = user.address
    if not args.prompt:
        raise CLIError("--prompt is empty")
    if args.wait <= 0:
        raise CLIError("--wait must be a positive number of seconds")
    quote = _check_node_serves(user, args)
    price = int(quote["price"], 16)
    if args.deposit is not None:
        user.transact("Inference", "deposit", value=args.deposit)
    chain_id = int(quote["chainId"], 16)
    head = user.call("eth_getBlockByNumber", "latest", False)
    request = {"user": bytes.fromhex(user_address[2:]), "validator": bytes.fromhex(quote["validator"][2:]),
               "adapter_id": args.adapter, "prompt_hash": keccak(args.prompt.encode()),
               "max_tokens": args.max_tokens, "max_fee": price, "nonce": int.from_bytes(os.urandom(8), "big"),
               "deadline": int(head["timestamp"], 16) + REQUEST_LIFETIME, "chain_id": chain_id,
               "commercial": args.commercial}
    signature = typed_data.sign(typed_data.request_digest(request, chain_id), user.key)
    wire = {"user": user_address, "validator": quote["validator"], "adapterId": args.adapter,
            "prompt": args.prompt, "maxTokens": args.max_tokens, "maxFee": hex(price), "nonce": hex(request["nonce"]),
            "deadline": hex(request["deadline"]), "chainId": hex(chain_id), "commercial": args.commercial}
    result = user.call("ai_infer", wire, "0x" + signature.hex(), {"maxTokens": args.max_tokens})
    result["fee"] = int(result["fee"], 16)
    if result["receiptId"] is None:
        # On BFT (or with a block time) ai_infer answers before the receipt's block: the id is
        # known once the receipt transaction is final, from its InferenceRecorded event.
        if not args.json:
            print(result["output"], flush=True)
        try:
            receipt = wait_final(user, result["transactionHash"], args.wait)
        except CLIError:
            if args.json:
                print(json.dumps(result, indent=2))
            raise
        result["receiptId"] = user.event_arg(receipt, "Inference", "InferenceRecorded")
        result["blockNumber"] = receipt["blockNumber"]
        lines = [""]
    else:
        lines = [result["output"], ""]
    lines += [f"receipt {result['receiptId']} (tx {result['transactionHash']}), fee {ether(result['fee'])} "
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
    model = _check_adapter(user, args.adapter, args.commercial)
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
        "chain_id": chain_id, "commercial": args.commercial,
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

"""The AI commands of the ``ailedger`` CLI: datanets, contributions, curation, adapters,
rewards and governance, all as ordinary signed transactions and ``ai_`` reads against a
node's JSON-RPC (default http://127.0.0.1:8545).

The signing key comes from ``--key`` (hex), the environment (``AILEDGER_KEY``) or
``--account N``: the Nth account of the development mnemonic, for the dev chain.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address
from tqdm import tqdm

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from genesis import DEV_MNEMONIC, derive_accounts

#: Bytes per ai_putBlobChunk call (hex doubles it under the 5 MiB body limit).
UPLOAD_CHUNK = 1024 * 1024


class CLIError(RuntimeError):
    """A command failed; the message is for the user."""


class Client:
    """A minimal JSON-RPC client that signs with one key."""

    def __init__(self, url: str, key: bytes | None) -> None:
        self.url = url
        self.account = Account.from_key(key) if key is not None else None

    def call(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                reply = json.loads(response.read())
        except OSError as e:
            raise CLIError(f"cannot reach {self.url}: {e}") from None
        if "error" in reply:
            err = reply["error"]
            raise CLIError(f"{method}: {err.get('message')} (code {err.get('code')})")
        return reply["result"]

    @property
    def address(self) -> str:
        if self.account is None:
            raise CLIError("this command signs a transaction: give --key, AILEDGER_KEY or --account N")
        return str(self.account.address)

    def transact(self, module: str, function: str, *args: Any, value: int = 0) -> dict[str, Any]:
        """Sign and send a call of ``module.function``; wait for and return its receipt."""
        fn = ai_precompiles.MODULES[module].abi.by_name[function]
        data = "0x" + fn.encode_args(*args).hex()
        to = to_checksum_address(BY_NAME[module])
        sender = self.address
        tx = {"from": sender, "to": to, "data": data, "value": hex(value)}
        gas = int(self.call("eth_estimateGas", tx), 16)
        return self.send_raw(self._sign({"to": to, "data": data, "value": value, "gas": gas * 6 // 5}))

    def _sign(self, fields: dict[str, Any]) -> bytes:
        assert self.account is not None
        tip = int(self.call("eth_maxPriorityFeePerGas"), 16)
        base = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        tx = {
            "type": 2,
            "chainId": int(self.call("eth_chainId"), 16),
            "nonce": int(self.call("eth_getTransactionCount", self.address, "pending"), 16),
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * base + tip,
            **fields,
        }
        return bytes(self.account.sign_transaction(tx).raw_transaction)

    def send_raw(self, raw: bytes) -> dict[str, Any]:
        tx_hash = self.call("eth_sendRawTransaction", "0x" + raw.hex())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            receipt = self.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if receipt["status"] != "0x1":
                    raise CLIError(f"transaction {tx_hash} failed in block {int(receipt['blockNumber'], 16)}: "
                                   f"{self.failure_reason(tx_hash, receipt)}")
                return dict(receipt)
            time.sleep(0.2)
        raise CLIError(f"transaction {tx_hash} not mined within 120 s")

    def failure_reason(self, tx_hash: str, receipt: dict[str, Any]) -> str:
        """Why a mined transaction failed: re-run its call on the parent block's state."""
        tx = self.call("eth_getTransactionByHash", tx_hash)
        parent = hex(int(receipt["blockNumber"], 16) - 1)
        try:
            self.call("eth_call", {"from": tx["from"], "to": tx["to"], "data": tx["input"],
                                   "value": tx["value"], "gas": tx["gas"]}, parent)
        except CLIError as e:
            return str(e).removeprefix("eth_call: ")
        return "reverted (no reason could be reproduced)"

    def event_arg(self, receipt: dict[str, Any], module: str, event: str, index: int = 1) -> int:
        """The ``index``-th topic of the first ``event`` log of ``module`` in ``receipt`` (an id)."""
        ev = ai_precompiles.MODULES[module].abi.events[event]
        for log in receipt["logs"]:
            if int(log["topics"][0], 16) == ev.topic0:
                return int(log["topics"][index], 16)
        raise CLIError(f"no {event} event in the receipt")


def _key(args: argparse.Namespace) -> bytes | None:
    if args.key:
        return bytes.fromhex(args.key.removeprefix("0x"))
    if os.environ.get("AILEDGER_KEY"):
        return bytes.fromhex(os.environ["AILEDGER_KEY"].removeprefix("0x"))
    if args.account is not None:
        return derive_accounts(DEV_MNEMONIC, args.account + 1)[args.account].private_key
    return None


def _client(args: argparse.Namespace) -> Client:
    return Client(args.rpc, _key(args))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", default=os.environ.get("AILEDGER_RPC", "http://127.0.0.1:8545"),
                   help="node JSON-RPC URL (default: %(default)s; env AILEDGER_RPC)")
    p.add_argument("--key", default=None, help="hex private key that signs (or env AILEDGER_KEY)")
    p.add_argument("--account", type=int, default=None, metavar="N",
                   help="sign with dev account N of the development mnemonic (dev chains only)")


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def _action(group: Any, name: str, help: str, func: Any, *arguments: tuple[tuple[str, ...], dict[str, Any]],
            description: str | None = None) -> argparse.ArgumentParser:
    """One signed-or-read command: the common flags, its own arguments, its function."""
    p = group.add_parser(name, help=help, description=description or help)
    _common(p)
    for flags, options in arguments:
        p.add_argument(*flags, **options)
    p.set_defaults(func=func)
    return p


def _group(sub: Any, name: str, help: str, description: str | None = None) -> Any:
    """A command with actions (``datanet create`` ...); alone, it prints its own help."""
    parser = sub.add_parser(name, help=help, description=description or help)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
    return parser.add_subparsers(title=f"{name} commands", metavar="ACTION")


def _arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, options


_HASH = {"required": True, "help": "0x 32-byte hash"}


def add_parsers(sub: Any) -> None:
    """Register the AI commands on the ``ailedger`` parser."""
    abi = sub.add_parser("abi", help="print a precompile's ABI JSON or Solidity interface",
                         description="Print the ABI (default) or the Solidity interface of an AI precompile, "
                         "to call it from web3.py, ethers, cast or a Solidity contract.")
    abi.add_argument("name", choices=sorted(ai_precompiles.MODULES), help="module name")
    abi.add_argument("--sol", action="store_true", help="print the Solidity interface instead")
    abi.add_argument("--address", action="store_true", help="print only the precompile address")
    abi.set_defaults(func=cmd_abi)

    dsub = _group(sub, "datanet", "create, show, list and publish datanets")
    _action(dsub, "create", "create a datanet (you become its owner)", cmd_datanet_create,
            _arg("name"),
            _arg("--domain", default="general", help="subject domain, e.g. medical-qa"),
            _arg("--description-uri", default="", help="URI of a longer description"),
            _arg("--license-policy", default="CC-BY-4.0", help="licenses contributions must be compatible with"),
            _arg("--curator", action="append", default=[], help="curator address (repeat); default: yourself"),
            _arg("--quorum", type=int, default=1, help="approvals needed to accept a contribution"),
            _arg("--max-size", type=int, default=16 * 1024 * 1024, help="largest contribution in bytes"))
    _action(dsub, "show", "show a datanet", cmd_datanet_show, _arg("id", type=int))
    _action(dsub, "list", "list a datanet's contributions", cmd_datanet_list, _arg("id", type=int),
            _arg("--status", choices=["pending", "accepted", "rejected"], default=None))
    _action(dsub, "publish", "publish a version (Merkle root of accepted contributions)", cmd_datanet_publish,
            _arg("id", type=int))

    _action(sub, "contribute", "upload files and record them as contributions to a datanet", cmd_contribute,
            _arg("datanet", type=int, help="datanet id"),
            _arg("files", nargs="+", type=Path, metavar="FILE"),
            _arg("--license", default="CC-BY-4.0"),
            _arg("--metadata", default="", help="metadata JSON (its keccak-256 goes on chain; the JSON to the blob store)"),
            _arg("--abi", action="store_true", help="send an ABI call to the Datanets precompile instead of the native type"),
            description="Upload each FILE to the node's blob store (chunked, with progress) and record a "
            "contribution carrying its keccak-256 content hash, as a native data-contribution transaction "
            "(or an ABI call with --abi).")
    curate = _action(sub, "curate", "approve or reject a contribution (curators only)", cmd_curate,
                     _arg("contribution", type=int),
                     _arg("--reason", type=int, default=0, help="reason code of a rejection"))
    choice = curate.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--reject", action="store_true")

    asub = _group(sub, "adapter", "register and inspect models and adapters")
    _action(asub, "register-base", "register a base model", cmd_adapter_register_base,
            _arg("--weights-hash", **_HASH), _arg("--config-hash", **_HASH), _arg("--tokenizer-hash", **_HASH),
            _arg("--license", default="apache-2.0"))
    _action(asub, "register", "register an adapter with its lineage", cmd_adapter_register,
            _arg("--parent", type=int, required=True, help="parent model or adapter id"),
            _arg("--datanet", action="append", default=[], metavar="ID:VERSION", help="datanet version trained on (repeat)"),
            _arg("--contribution-root", **_HASH), _arg("--hyper-params-hash", **_HASH),
            _arg("--weights-hash", **_HASH), _arg("--attribution-index-hash", **_HASH),
            _arg("--validator", default=None, help="validator that trained it (default: you)"),
            _arg("--license", default="apache-2.0"))
    _action(asub, "show", "show a model or adapter", cmd_adapter_show, _arg("id", type=int))
    _action(asub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
            _arg("id", type=int))

    rsub = _group(sub, "rewards", "show and claim rewards")
    _action(rsub, "show", "claimable and earned rewards of an address", cmd_rewards_show,
            _arg("address", nargs="?", help="default: your own"))
    _action(rsub, "claim", "pay out your claimable rewards", cmd_rewards_claim)

    ssub = _group(sub, "stake", "stake, unstake and show validator stakes",
                  "Validators stake to enter the validator set (from the next epoch) and to record "
                  "inference receipts; unstaked wei waits out the unbonding delay.")
    _action(ssub, "add", "stake wei from your balance", cmd_stake_add, _arg("amount", type=int, help="wei to stake"))
    _action(ssub, "remove", "start unbonding wei of your stake", cmd_stake_remove,
            _arg("amount", type=int, help="wei to unstake"))
    _action(ssub, "withdraw", "withdraw unstaked wei whose unbonding delay has passed", cmd_stake_withdraw)
    _action(ssub, "show", "the validator set and voting powers", cmd_stake_show)

    gsub = _group(sub, "govern", "propose, vote on and show parameter changes")
    _action(gsub, "propose", "propose a new value for a protocol parameter", cmd_govern_propose,
            _arg("param", help="parameter name (see `ailedger govern params`)"), _arg("value", type=int))
    _action(gsub, "vote", "vote on a proposal (weighted by your stake)", cmd_govern_vote,
            _arg("proposal", type=int), _arg("choice", choices=["yes", "no"]))
    _action(gsub, "execute", "execute a passed proposal after its delay", cmd_govern_execute,
            _arg("proposal", type=int))
    _action(gsub, "show", "show a proposal", cmd_govern_show, _arg("proposal", type=int))
    _action(gsub, "params", "the current protocol parameters", cmd_govern_params)


def _hash(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise CLIError(f"{value}: expected a 32-byte hash")
    return raw


def cmd_abi(args: argparse.Namespace) -> int:
    if args.address:
        print(to_checksum_address(BY_NAME[args.name]))
    elif args.sol:
        print(ai_precompiles.sol_source(args.name))
    else:
        _print(list(ai_precompiles.MODULES[args.name].abi.raw))
    return 0


def cmd_datanet_create(args: argparse.Namespace) -> int:
    client = _client(args)
    curators = [to_canonical_address(c) for c in args.curator] or [to_canonical_address(client.address)]
    receipt = client.transact("Datanets", "createDatanet", args.name, args.domain, args.description_uri,
                              args.license_policy, curators, args.quorum, args.max_size)
    datanet_id = client.event_arg(receipt, "Datanets", "DatanetCreated")
    print(f"datanet {datanet_id} created in block {int(receipt['blockNumber'], 16)} (tx {receipt['transactionHash']})")
    return 0


def cmd_datanet_show(args: argparse.Namespace) -> int:
    _print(_client(args).call("ai_getDatanet", args.id))
    return 0


def cmd_datanet_list(args: argparse.Namespace) -> int:
    options = {"status": args.status} if args.status else {}
    _print(_client(args).call("ai_listContributions", args.id, options))
    return 0


def cmd_datanet_publish(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Datanets", "publishVersion", args.id)
    version = client.event_arg(receipt, "Datanets", "VersionPublished", 2)
    print(f"datanet {args.id} version {version} published (tx {receipt['transactionHash']})")
    return 0


def upload(client: Client, data: bytes, label: str) -> bytes:
    """Put ``data`` in the node's blob store, in chunks with a progress bar when large."""
    digest = keccak(data)
    if len(data) <= UPLOAD_CHUNK:
        client.call("ai_putBlob", "0x" + data.hex(), "0x" + digest.hex())
        return bytes(digest)
    upload_id = client.call("ai_beginBlob", hex(len(data)), "0x" + digest.hex())
    with tqdm(total=len(data), unit="B", unit_scale=True, desc=label, file=sys.stderr) as bar:
        for offset in range(0, len(data), UPLOAD_CHUNK):
            chunk = data[offset : offset + UPLOAD_CHUNK]
            client.call("ai_putBlobChunk", upload_id, hex(offset), "0x" + chunk.hex())
            bar.update(len(chunk))
    client.call("ai_finishBlob", upload_id)
    return bytes(digest)


def cmd_contribute(args: argparse.Namespace) -> int:
    from state.native import DataContributionTransaction
    from state.vm import LedgerTransactionBuilder

    client = _client(args)
    sender = client.address
    metadata_hash = b"\x00" * 32
    if args.metadata:
        metadata_hash = upload(client, args.metadata.encode(), "metadata")
    for path in tqdm(args.files, desc="contributions", unit="file", file=sys.stderr, disable=len(args.files) < 2):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CLIError(f"{path}: {e.strerror}") from None
        content_hash = upload(client, data, path.name)
        if args.abi:
            receipt = client.transact("Datanets", "contribute", args.datanet, content_hash, len(data),
                                      args.license, metadata_hash)
        else:
            assert client.account is not None
            tip = int(client.call("eth_maxPriorityFeePerGas"), 16)
            base = int(client.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
            inner = DataContributionTransaction.sign(
                bytes(client.account.key),
                chain_id=int(client.call("eth_chainId"), 16),
                nonce=int(client.call("eth_getTransactionCount", sender, "pending"), 16),
                max_priority_fee_per_gas=tip, max_fee_per_gas=2 * base + tip, gas=1_000_000,
                datanet_id=args.datanet, content_hash=content_hash, size=len(data),
                license=args.license.encode(), metadata_hash=metadata_hash,
            )
            receipt = client.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
        cid = client.event_arg(receipt, "Datanets", "ContributionSubmitted", 2)
        print(f"{path}: contribution {cid} (0x{content_hash.hex()}, {len(data)} bytes, tx {receipt['transactionHash']})")
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Datanets", "curate", args.contribution, bool(args.approve), args.reason)
    status = client.call("ai_getContribution", args.contribution)
    print(f"contribution {args.contribution}: {'approved' if args.approve else 'rejected'} "
          f"(tx {receipt['transactionHash']}); now {json.dumps(status.get('status'))}")
    return 0


def cmd_adapter_register_base(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("ModelRegistry", "registerBaseModel", _hash(args.weights_hash),
                              _hash(args.config_hash), _hash(args.tokenizer_hash), args.license)
    print(f"base model {client.event_arg(receipt, 'ModelRegistry', 'BaseModelRegistered')} registered")
    return 0


def cmd_adapter_register(args: argparse.Namespace) -> int:
    client = _client(args)
    ids, versions = [], []
    for item in args.datanet:
        try:
            d, v = item.split(":")
            ids.append(int(d))
            versions.append(int(v))
        except ValueError:
            raise CLIError(f"--datanet {item}: expected ID:VERSION") from None
    validator = to_canonical_address(args.validator or client.address)
    spec = (args.parent, ids, versions, _hash(args.contribution_root), _hash(args.hyper_params_hash),
            _hash(args.weights_hash), _hash(args.attribution_index_hash), validator, args.license)
    receipt = client.transact("ModelRegistry", "registerAdapter", spec)
    print(f"adapter {client.event_arg(receipt, 'ModelRegistry', 'AdapterRegistered')} registered")
    return 0


def cmd_adapter_show(args: argparse.Namespace) -> int:
    _print(_client(args).call("ai_getModel", args.id))
    return 0


def cmd_adapter_lineage(args: argparse.Namespace) -> int:
    _print(_client(args).call("ai_getLineage", args.id))
    return 0


def cmd_rewards_show(args: argparse.Namespace) -> int:
    client = _client(args)
    _print(client.call("ai_getRewards", args.address or client.address))
    return 0


def cmd_rewards_claim(args: argparse.Namespace) -> int:
    client = _client(args)
    before = int(client.call("ai_getRewards", client.address)["claimable"], 16)
    receipt = client.transact("Rewards", "claim")
    print(f"claimed {before} wei (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_add(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Staking", "stake", value=args.amount)
    print(f"staked {args.amount} wei (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_remove(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Staking", "unstake", args.amount)
    print(f"unbonding {args.amount} wei (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_withdraw(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Staking", "withdrawUnbonded")
    print(f"withdrawn (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_show(args: argparse.Namespace) -> int:
    _print(_client(args).call("ai_getValidatorSet"))
    return 0


def cmd_govern_propose(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Governance", "propose", args.param, args.value)
    print(f"proposal {client.event_arg(receipt, 'Governance', 'ProposalCreated')} created")
    return 0


def cmd_govern_vote(args: argparse.Namespace) -> int:
    client = _client(args)
    client.transact("Governance", "vote", args.proposal, args.choice == "yes")
    print(f"voted {args.choice} on proposal {args.proposal}")
    return 0


def cmd_govern_execute(args: argparse.Namespace) -> int:
    client = _client(args)
    client.transact("Governance", "execute", args.proposal)
    print(f"proposal {args.proposal} executed")
    return 0


def cmd_govern_show(args: argparse.Namespace) -> int:
    _print(_client(args).call("ai_getProposal", args.proposal))
    return 0


def cmd_govern_params(args: argparse.Namespace) -> int:
    params = _client(args).call("ai_getParams")
    _print({k: int(v, 16) for k, v in params.items()})
    return 0


# -- training and inference through a sidecar -----------------------------------------------------


def add_sidecar_parsers(sub: Any) -> None:
    train = sub.add_parser(
        "train", help="train a LoRA adapter in a sidecar on datanet versions and register it on chain",
        description="Fetch the exact contribution set of the given datanet versions from the node "
        "(bytes from its blob store), train a LoRA adapter in the sidecar (progress shown), then "
        "register the adapter on chain with its lineage as a native adapter-registration "
        "transaction signed by you as the training validator.")
    _common(train)
    train.add_argument("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
                       help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)")
    train.add_argument("--datanet", action="append", required=True, metavar="ID:VERSION",
                       help="datanet version to train on (repeat)")
    train.add_argument("--parent", type=int, required=True, help="on-chain id of the base model or parent adapter")
    train.add_argument("--rank", type=int, default=0, help="LoRA rank (0: the sidecar's default)")
    train.add_argument("--epochs", type=int, default=0,
                       help="most passes; training stops once every example is learnt (0: the sidecar's default)")
    train.add_argument("--learning-rate", type=float, default=0.0, help="(0: the sidecar's default)")
    train.add_argument("--target-modules", default="",
                       help="comma-separated linear layers to adapt (default: the sidecar's, every linear layer)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--license", default="apache-2.0")
    train.set_defaults(func=cmd_train)

    infer = sub.add_parser(
        "infer", help="run an inference in a sidecar and record its receipt on chain",
        description="Sign an inference request as the user (EIP-712), run it on the adapter in the "
        "sidecar, and submit the receipt with the output hash and attribution as the validator "
        "(native inference-receipt transaction). The fee is charged from the user's deposit in "
        "the Inference precompile (use --deposit to top it up first).")
    _common(infer)
    infer.add_argument("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"))
    infer.add_argument("--adapter", type=int, required=True, help="on-chain adapter id")
    infer.add_argument("--prompt", required=True)
    infer.add_argument("--max-tokens", type=int, default=32)
    infer.add_argument("--fee", type=int, default=10**15, help="fee in wei (also the request's max fee)")
    infer.add_argument("--deposit", type=int, default=0, help="wei to deposit for the user first")
    infer.add_argument("--validator-key", default=None, help="hex key of the validator (default: the user's)")
    infer.add_argument("--validator-account", type=int, default=None, metavar="N", help="dev account N as validator")
    infer.set_defaults(func=cmd_infer)


def _contribution_key(contribution_id: int) -> bytes:
    """How on-chain contribution ids travel to the sidecar and come back in attributions."""
    return str(contribution_id).encode()


def cmd_train(args: argparse.Namespace) -> int:
    from sidecar.client import SidecarClient  # grpc only; no torch in this process
    from state.native import AdapterRegistrationTransaction
    from state.vm import LedgerTransactionBuilder

    client = _client(args)
    pairs = []
    for item in args.datanet:
        try:
            d, v = (int(x) for x in item.split(":"))
        except ValueError:
            raise CLIError(f"--datanet {item}: expected ID:VERSION") from None
        pairs.append([d, v])
    training_set = client.call("ai_getTrainingSet", pairs)
    contributions = []
    for c in tqdm(training_set["contributions"], desc="fetching contributions", unit="item", file=sys.stderr):
        contributions.append((_contribution_key(c["id"]), fetch_blob(client, c["contentHash"])))
    if not contributions:
        raise CLIError("the datanet versions hold no accepted contributions")
    hyper: dict[str, Any] = {
        k: v for k, v in (("rank", args.rank), ("epochs", args.epochs), ("learning_rate", args.learning_rate)) if v
    }
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    hyper_json = json.dumps({"seed": args.seed, **hyper}, sort_keys=True).encode()
    hyper_hash = upload(client, hyper_json, "hyper-parameters")
    result = None
    with SidecarClient(args.sidecar) as sidecar, tqdm(desc="training", unit="step", file=sys.stderr) as bar:
        for event in sidecar.train(contributions, seed=args.seed, **hyper):
            if hasattr(event, "total_steps"):
                bar.total = event.total_steps
                bar.n = event.step
                bar.set_postfix(loss=f"{event.loss:.3f}", phase=event.phase)
                bar.refresh()
            else:
                result = event
    if result is None:
        raise CLIError("the sidecar ended training without a result")
    assert client.account is not None
    tip = int(client.call("eth_maxPriorityFeePerGas"), 16)
    base = int(client.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    inner = AdapterRegistrationTransaction.sign(
        bytes(client.account.key),
        chain_id=int(client.call("eth_chainId"), 16),
        nonce=int(client.call("eth_getTransactionCount", client.address, "pending"), 16),
        max_priority_fee_per_gas=tip, max_fee_per_gas=2 * base + tip, gas=3_000_000,
        parent_id=args.parent, datanet_ids=[d for d, _ in pairs], datanet_versions=[v for _, v in pairs],
        contribution_root=_hash(training_set["contributionRoot"]), hyper_params_hash=hyper_hash,
        weights_hash=_hash(result.weights_hash), attribution_index_hash=_hash(result.attribution_index_hash),
        validator=to_canonical_address(client.address), license=args.license.encode(),
    )
    receipt = client.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    print(f"adapter {adapter_id} registered (sidecar adapter {result.adapter_id}, weights 0x{result.weights_hash}, "
          f"{result.steps} steps, loss {result.final_loss:.3f})")
    return 0


def fetch_blob(client: Client, content_hash: str) -> bytes:
    first = client.call("ai_getBlob", content_hash)
    data = bytearray(bytes.fromhex(first["data"][2:]))
    size = int(first["size"], 16)
    while len(data) < size:
        part = client.call("ai_getBlob", content_hash, hex(len(data)))
        data += bytes.fromhex(part["data"][2:])
    if keccak(bytes(data)) != _hash(content_hash):
        raise CLIError(f"blob {content_hash} does not hash to its name")
    return bytes(data)


def _sidecar_adapter(sidecar: Any, weights_hash: str) -> str:
    for info in sidecar.list_adapters().adapters:
        if "0x" + info.weights_hash == weights_hash.lower():
            return str(info.adapter_id)
    raise CLIError(f"the sidecar holds no adapter with weights {weights_hash}")


def cmd_infer(args: argparse.Namespace) -> int:
    from ai_precompiles import typed_data
    from sidecar.client import SidecarClient
    from state.native import InferenceReceiptTransaction
    from state.vm import LedgerTransactionBuilder

    user = _client(args)
    vkey = None
    if args.validator_key:
        vkey = bytes.fromhex(args.validator_key.removeprefix("0x"))
    elif args.validator_account is not None:
        vkey = derive_accounts(DEV_MNEMONIC, args.validator_account + 1)[args.validator_account].private_key
    validator = Client(args.rpc, vkey) if vkey is not None else user
    assert user.account is not None and validator.account is not None
    if args.deposit:
        user.transact("Inference", "deposit", value=args.deposit)
    model = user.call("ai_getModel", args.adapter)
    chain_id = int(user.call("eth_chainId"), 16)
    head = user.call("eth_getBlockByNumber", "latest", False)
    request = {
        "user": to_canonical_address(user.address), "adapter_id": args.adapter,
        "prompt_hash": keccak(args.prompt.encode()), "max_fee": args.fee,
        "nonce": int.from_bytes(os.urandom(8), "big"), "deadline": int(head["timestamp"], 16) + 3600,
        "chain_id": chain_id,
    }
    request_hash = typed_data.request_digest(request, chain_id)
    user_signature = typed_data.sign(request_hash, bytes(user.account.key))
    with SidecarClient(args.sidecar) as sidecar:
        result = sidecar.infer(_sidecar_adapter(sidecar, model["weightsHash"]), args.prompt.encode(), args.max_tokens)
    ids = [int(cid) for cid, _ in result.weights]
    weights = [bp for _, bp in result.weights]
    output_hash = _hash(result.output_hash)
    vaddr = to_canonical_address(validator.address)
    validator_signature = typed_data.sign(
        typed_data.receipt_digest(request_hash, output_hash, ids, weights, args.fee, vaddr, chain_id),
        bytes(validator.account.key))
    tip = int(validator.call("eth_maxPriorityFeePerGas"), 16)
    base = int(head["baseFeePerGas"], 16)
    inner = InferenceReceiptTransaction.sign(
        bytes(validator.account.key), chain_id=chain_id,
        nonce=int(validator.call("eth_getTransactionCount", validator.address, "pending"), 16),
        max_priority_fee_per_gas=tip, max_fee_per_gas=2 * base + tip, gas=3_000_000,
        user=request["user"], adapter_id=args.adapter, prompt_hash=request["prompt_hash"],
        max_fee=args.fee, request_nonce=request["nonce"], deadline=request["deadline"],
        request_chain_id=chain_id, user_signature=user_signature, output_hash=output_hash,
        contribution_ids=ids, weights_bp=weights, fee=args.fee, validator=vaddr,
        validator_signature=validator_signature,
    )
    receipt = validator.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
    print(json.dumps({
        "output": result.output.decode("utf-8", errors="replace"),
        "outputHash": "0x" + output_hash.hex(),
        "attribution": [{"contributionId": i, "weightBp": w} for i, w in zip(ids, weights, strict=True)],
        "transactionHash": receipt["transactionHash"],
        "receiptId": validator.event_arg(receipt, "Inference", "InferenceRecorded"),
    }, indent=2))
    return 0

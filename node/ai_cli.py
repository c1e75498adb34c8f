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
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# Heavy modules (eth_account, py-evm through ai_precompiles, grpc, tqdm) are imported inside
# the functions that need them: `ailedger --help` and a read command start in well under 0.5 s.

#: Bytes per ai_putBlobChunk call (hex doubles it under the 5 MiB body limit).
UPLOAD_CHUNK = 1024 * 1024
#: The precompile modules, by name (``ai_precompiles.MODULES`` without importing py-evm).
MODULE_NAMES = ("Datanets", "Governance", "Inference", "ModelRegistry", "Rewards", "Staking")
DEV_MNEMONIC = "test test test test test test test test test test test junk"
STATUS = {0: "pending", 1: "accepted", 2: "rejected"}
KIND = {1: "base model", 2: "adapter"}
#: Parameters holding an address rather than a number.
ADDRESS_PARAMS = ("treasury",)


class CLIError(RuntimeError):
    """A command failed; the message is for the user."""


# -- amounts ---------------------------------------------------------------------------------------

_UNITS = {"wei": 1, "gwei": 10**9, "eth": 10**18, "ether": 10**18}


def parse_amount(text: str) -> int:
    """``1.5eth``, ``0.1ether``, ``20gwei``, ``123wei`` or a bare integer of wei."""
    raw = text.strip().lower().replace("_", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit):
            number, scale = raw[: -len(unit)].strip(), _UNITS[unit]
            break
    else:
        number, scale = raw, 1
        if "." in raw:
            raise argparse.ArgumentTypeError(f"{text}: give a unit (e.g. {text}eth) or an integer of wei")
    try:
        value = Decimal(number) * scale
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text}: not an amount (e.g. 0.1eth, 20gwei, 1000wei)") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: not a whole number of wei")
    return int(value)


def ether(wei: int | str) -> str:
    """Wei as ether for people: ``0.0015 ETH``."""
    value = int(wei, 16) if isinstance(wei, str) else int(wei)
    text = f"{Decimal(value) / 10**18:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


def checksum(address: str | bytes) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


# -- the JSON-RPC client ---------------------------------------------------------------------------


class Client:
    """A minimal JSON-RPC client that signs with one key."""

    def __init__(self, url: str, key: bytes | None) -> None:
        self.url = url
        self._key = key
        self._account: Any = None

    @property
    def account(self) -> Any:
        if self._account is None and self._key is not None:
            from eth_account import Account

            self._account = Account.from_key(self._key)
        return self._account

    def call(self, method: str, *params: Any) -> Any:
        import urllib.error
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise CLIError(f"{self.url} answered HTTP {e.code} to {method}") from None
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise CLIError(f"cannot reach the node at {self.url} ({reason}): is `ailedger dev` running? "
                           "(or give --rpc URL / AILEDGER_RPC)") from None
        if "error" in reply:
            err = reply["error"]
            if err.get("code") == -32601:
                raise CLIError(f"the node at {self.url} does not serve {method}: {err.get('message')}")
            raise CLIError(f"{err.get('message')}")
        return reply["result"]

    @property
    def address(self) -> str:
        if self.account is None:
            raise CLIError("this command signs a transaction: give --account N (dev chain), --key or AILEDGER_KEY")
        return str(self.account.address)

    def view(self, module: str, function: str, *args: Any) -> Any:
        """Call a precompile's view function and decode its result."""
        import ai_precompiles
        from ai_precompiles.addresses import BY_NAME

        fn = ai_precompiles.MODULES[module].abi.by_name[function]
        data = "0x" + fn.encode_args(*args).hex()
        raw = self.call("eth_call", {"to": checksum(BY_NAME[module]), "data": data}, "latest")
        return fn.decode_result(bytes.fromhex(raw[2:]))

    def transact(self, module: str, function: str, *args: Any, value: int = 0) -> dict[str, Any]:
        """Sign and send a call of ``module.function``; wait for and return its receipt. The
        call is estimated first, so a call that would revert is refused before it spends gas."""
        import ai_precompiles
        from ai_precompiles.addresses import BY_NAME

        fn = ai_precompiles.MODULES[module].abi.by_name[function]
        data = "0x" + fn.encode_args(*args).hex()
        to = checksum(BY_NAME[module])
        sender = self.address
        tx = {"from": sender, "to": to, "data": data, "value": hex(value)}
        gas = int(self.call("eth_estimateGas", tx), 16)
        return self.send_raw(self._sign({"to": to, "data": data, "value": value, "gas": gas * 6 // 5}))

    def fees(self) -> tuple[int, int]:
        """(max priority fee, max fee) per gas for a transaction now."""
        tip = int(self.call("eth_maxPriorityFeePerGas"), 16)
        base = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        return tip, 2 * base + tip

    def nonce(self) -> int:
        return int(self.call("eth_getTransactionCount", self.address, "pending"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def _sign(self, fields: dict[str, Any]) -> bytes:
        tip, max_fee = self.fees()
        tx = {"type": 2, "chainId": self.chain_id(), "nonce": self.nonce(),
              "maxPriorityFeePerGas": tip, "maxFeePerGas": max_fee, **fields}
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
            return str(e)
        return "reverted (no reason could be reproduced)"

    def event_arg(self, receipt: dict[str, Any], module: str, event: str, index: int = 1) -> int:
        """The ``index``-th topic of the first ``event`` log of ``module`` in ``receipt`` (an id)."""
        import ai_precompiles

        ev = ai_precompiles.MODULES[module].abi.events[event]
        for log in receipt["logs"]:
            if int(log["topics"][0], 16) == ev.topic0:
                return int(log["topics"][index], 16)
        raise CLIError(f"no {event} event in the receipt")


def _key(args: argparse.Namespace) -> bytes | None:
    if getattr(args, "key", None):
        return _hex_key(args.key, "--key")
    if os.environ.get("AILEDGER_KEY"):
        return _hex_key(os.environ["AILEDGER_KEY"], "AILEDGER_KEY")
    if getattr(args, "account", None) is not None:
        return dev_key(args.account)
    return None


def _hex_key(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CLIError(f"{what}: expected a 32-byte hex private key")
    return raw


def dev_key(index: int) -> bytes:
    """Private key of dev account ``index`` of the development mnemonic."""
    if not 0 <= index < 1000:
        raise CLIError(f"--account {index}: expected a dev account index 0..999")
    from genesis import derive_accounts

    return derive_accounts(DEV_MNEMONIC, index + 1)[index].private_key


def _client(args: argparse.Namespace) -> Client:
    return Client(args.rpc, _key(args))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", default=os.environ.get("AILEDGER_RPC", "http://127.0.0.1:8545"),
                   help="node JSON-RPC URL (default: %(default)s; env AILEDGER_RPC)")
    p.add_argument("--key", default=None, help="hex private key that signs (or env AILEDGER_KEY)")
    p.add_argument("--account", type=int, default=None, metavar="N",
                   help="sign with dev account N of the development mnemonic (dev chains only)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def show(args: argparse.Namespace, obj: Any, lines: list[str] | str) -> None:
    """One output style: readable lines by default, the JSON object with --json."""
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=2))
    else:
        print(lines if isinstance(lines, str) else "\n".join(lines))


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
_AMOUNT = {"type": parse_amount, "metavar": "AMOUNT", "help": "e.g. 2eth, 0.1eth, 20gwei, or wei"}


def add_parsers(sub: Any) -> None:
    """Register the AI commands on the ``ailedger`` parser."""
    abi = sub.add_parser("abi", help="print a precompile's ABI JSON or Solidity interface",
                         description="Print the ABI (default) or the Solidity interface of an AI precompile, "
                         "to call it from web3.py, ethers, cast or a Solidity contract.")
    abi.add_argument("name", metavar="NAME", help=f"module: {', '.join(MODULE_NAMES)}")
    abi.add_argument("--sol", action="store_true", help="print the Solidity interface instead")
    abi.add_argument("--address", action="store_true", help="print only the precompile address")
    abi.set_defaults(func=cmd_abi)

    dsub = _group(sub, "datanet", "create, list, show and publish datanets")
    _action(dsub, "create", "create a datanet (you become its owner)", cmd_datanet_create,
            _arg("name"),
            _arg("--domain", default="general", help="subject domain, e.g. medical-qa"),
            _arg("--description-uri", default="", help="URI of a longer description"),
            _arg("--license-policy", default="CC-BY-4.0", help="licenses contributions must be compatible with"),
            _arg("--curator", action="append", default=[], help="curator address (repeat); default: yourself"),
            _arg("--quorum", type=int, default=1, help="approvals needed to accept a contribution"),
            _arg("--max-size", type=int, default=16 * 1024 * 1024, help="largest contribution in bytes"))
    _action(dsub, "show", "show a datanet", cmd_datanet_show, _arg("id", type=int))
    _action(dsub, "list", "list the datanets, or with ID one datanet's contributions", cmd_datanet_list,
            _arg("id", type=int, nargs="?"),
            _arg("--status", choices=["pending", "accepted", "rejected"], default=None))
    _action(dsub, "publish", "publish a version (Merkle root of accepted contributions)", cmd_datanet_publish,
            _arg("id", type=int))

    _action(sub, "contribute", "upload files and record them as contributions to a datanet", cmd_contribute,
            _arg("datanet", type=int, help="datanet id"),
            _arg("files", nargs="+", type=Path, metavar="FILE"),
            _arg("--license", default="CC-BY-4.0"),
            _arg("--metadata", default="", help="metadata JSON (its keccak-256 goes on chain; the JSON to the blob store)"),
            _arg("--abi", action="store_true", help="send an ABI call to the Datanets precompile instead of the native type"),
            description="Check every FILE first (exists, not empty, within the datanet's size limit, not a "
            "duplicate), then upload each to the node's blob store (chunked, with progress) and record a "
            "contribution carrying its keccak-256 content hash, as a native data-contribution transaction "
            "(or an ABI call with --abi).")
    curate = _action(sub, "curate", "approve or reject contributions (curators only)", cmd_curate,
                     _arg("contributions", type=int, nargs="*", metavar="ID"),
                     _arg("--all-pending", action="store_true",
                          help="every pending contribution of the datanets you curate (or of --datanet)"),
                     _arg("--datanet", type=int, default=None, help="with --all-pending: only this datanet"),
                     _arg("--reason", type=int, default=0, help="reason code of a rejection"))
    choice = curate.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--reject", action="store_true")

    msub = _group(sub, "model", "list and show base models and adapters")
    _action(msub, "list", "base models and adapters on chain", cmd_model_list,
            _arg("--offset", type=int, default=0), _arg("--limit", type=int, default=100))
    _action(msub, "show", "show a model or adapter", cmd_adapter_show, _arg("id", type=int))
    _action(msub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
            _arg("id", type=int))

    asub = _group(sub, "adapter", "register and inspect models and adapters")
    _action(asub, "list", "base models and adapters on chain", cmd_model_list,
            _arg("--offset", type=int, default=0), _arg("--limit", type=int, default=100))
    _action(asub, "register-base", "register a base model", cmd_adapter_register_base,
            _arg("--weights-hash", **_HASH), _arg("--config-hash", **_HASH), _arg("--tokenizer-hash", **_HASH),
            _arg("--license", default="apache-2.0"))
    _action(asub, "register", "register an adapter with its lineage", cmd_adapter_register,
            _arg("--parent", type=int, required=True, help="parent model or adapter id"),
            _arg("--datanet", action="append", default=[], metavar="ID:VERSION", help="datanet version trained on (repeat)"),
            _arg("--contribution-root", **_HASH), _arg("--hyper-params-hash", **_HASH),
            _arg("--weights-hash", **_HASH), _arg("--attribution-index-hash", **_HASH),
            _arg("--manifest-hash", default="0x" + "00" * 32,
                 help="0x keccak-256 of the training manifest blob (default: none recorded)"),
            _arg("--validator", default=None, help="validator that trained it (default: you)"),
            _arg("--license", default="apache-2.0"))
    _action(asub, "show", "show a model or adapter", cmd_adapter_show, _arg("id", type=int))
    _action(asub, "lineage", "the whole path back to the base model, with data and authors", cmd_adapter_lineage,
            _arg("id", type=int))

    rcsub = _group(sub, "receipt", "show and verify inference receipts")
    _action(rcsub, "show", "an inference receipt, its output and its ancestry (data, contributors, lineage)",
            cmd_receipt_show, _arg("id", help="receipt id, or the hash of its transaction"))
    _action(rcsub, "verify", "re-run a receipt's request on a sidecar and compare the output hash",
            cmd_receipt_verify, _arg("id", help="receipt id, or the hash of its transaction"),
            _arg("--prompt", required=True, help="the prompt (its hash must be the receipt's)"),
            _arg("--max-tokens", type=int, default=32),
            _arg("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
                 help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)"))

    dpsub = _group(sub, "deposit", "show, add and withdraw your inference deposit",
                   "Inference fees are charged from a deposit held by the Inference precompile. A "
                   "withdrawal is requested first and paid after a lock (governance "
                   "`inference.withdraw_delay`), so requests you already signed can still be paid.")
    _action(dpsub, "show", "deposit balance and pending withdrawal", cmd_deposit_show,
            _arg("address", nargs="?", help="default: your own"))
    _action(dpsub, "add", "deposit ether for inference fees", cmd_deposit_add, _arg("amount", **_AMOUNT))
    _action(dpsub, "withdraw", "request a withdrawal, or take it once its lock is over", cmd_deposit_withdraw,
            _arg("amount", nargs="?", **{**_AMOUNT, "help": "default: the whole deposit"}))

    rsub = _group(sub, "rewards", "show and claim rewards")
    _action(rsub, "show", "claimable and earned rewards of an address", cmd_rewards_show,
            _arg("address", nargs="?", help="default: your own"))
    _action(rsub, "claim", "pay out your claimable rewards", cmd_rewards_claim)

    ssub = _group(sub, "stake", "stake, unstake and show validator stakes",
                  "Validators stake to enter the validator set (from the next epoch) and to record "
                  "inference receipts; unstaked wei waits out the unbonding delay.")
    _action(ssub, "add", "stake from your balance", cmd_stake_add, _arg("amount", **_AMOUNT))
    _action(ssub, "remove", "start unbonding part of your stake", cmd_stake_remove, _arg("amount", **_AMOUNT))
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
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CLIError(f"{value}: expected a 32-byte hash")
    return raw


def cmd_abi(args: argparse.Namespace) -> int:
    if args.name not in MODULE_NAMES:
        raise CLIError(f"no module {args.name!r}: choose one of {', '.join(MODULE_NAMES)}")
    import ai_precompiles
    from ai_precompiles.addresses import BY_NAME

    if args.address:
        print(checksum(BY_NAME[args.name]))
    elif args.sol:
        print(ai_precompiles.sol_source(args.name))
    else:
        print(json.dumps(list(ai_precompiles.MODULES[args.name].abi.raw), indent=2))
    return 0


# -- reads the checks share ------------------------------------------------------------------------


def get_datanet(client: Client, datanet_id: int) -> dict[str, Any]:
    try:
        return dict(client.call("ai_getDatanet", datanet_id))
    except CLIError as e:
        if "not found" in str(e):
            raise CLIError(f"datanet {datanet_id} does not exist (see `ailedger datanet list`)") from None
        raise


def get_model(client: Client, model_id: int, what: str = "model") -> dict[str, Any]:
    try:
        return dict(client.call("ai_getModel", model_id))
    except CLIError as e:
        if "not found" in str(e):
            raise CLIError(f"{what} {model_id} does not exist (see `ailedger model list`)") from None
        raise


def list_contributions(client: Client, datanet_id: int, status: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        options: dict[str, Any] = {"offset": len(items), "limit": 1000}
        if status:
            options["status"] = status
        page = client.call("ai_listContributions", datanet_id, options)
        items += page
        if len(page) < 1000:
            return items


def list_all(client: Client, method: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.call(method, {"offset": len(items), "limit": 100})
        items += page[key]
        if not page[key] or len(items) >= int(page["total"]):
            return items


def _status(c: dict[str, Any]) -> str:
    return STATUS.get(int(c["status"]), str(c["status"]))


# -- datanets, contributions, curation -------------------------------------------------------------


def cmd_datanet_create(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address

    client = _client(args)
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


def _datanet_lines(d: dict[str, Any]) -> list[str]:
    return [f"datanet {d['id']}: {d['name']} ({d['domain']})",
            f"  owner {d['owner']}, curators {', '.join(d['curators'])}, quorum {d['quorum']}",
            f"  contributions {d['contributionCount']}, accepted {d['acceptedCount']}, "
            f"versions {d['versionCount']}, license {d['licensePolicy']}"]


def cmd_datanet_show(args: argparse.Namespace) -> int:
    d = get_datanet(_client(args), args.id)
    show(args, d, _datanet_lines(d))
    return 0


def cmd_datanet_list(args: argparse.Namespace) -> int:
    client = _client(args)
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
        c["status"] = _status(c)
    lines = [f"contribution {c['id']}: {c['status']}, {c['size']} bytes from {c['contributor']} "
             f"({c['contentHash']})" for c in contributions] or [f"datanet {args.id} has no such contributions"]
    show(args, contributions, lines)
    return 0


def cmd_datanet_publish(args: argparse.Namespace) -> int:
    client = _client(args)
    d = get_datanet(client, args.id)
    if d["owner"].lower() != client.address.lower():
        raise CLIError(f"only the datanet's owner {d['owner']} publishes its versions")
    receipt = client.transact("Datanets", "publishVersion", args.id)
    version = client.event_arg(receipt, "Datanets", "VersionPublished", 2)
    show(args, {"datanet": args.id, "version": version, "transactionHash": receipt["transactionHash"]},
         f"datanet {args.id} version {version} published (tx {receipt['transactionHash']})")
    return 0


def upload(client: Client, data: bytes, label: str) -> bytes:
    """Put ``data`` in the node's blob store, in chunks with a progress bar when large."""
    from eth_hash.auto import keccak

    digest = keccak(data)
    if len(data) <= UPLOAD_CHUNK:
        client.call("ai_putBlob", "0x" + data.hex(), "0x" + digest.hex())
        return bytes(digest)
    from tqdm import tqdm

    upload_id = client.call("ai_beginBlob", hex(len(data)), "0x" + digest.hex())
    with tqdm(total=len(data), unit="B", unit_scale=True, desc=label, file=sys.stderr) as bar:
        for offset in range(0, len(data), UPLOAD_CHUNK):
            chunk = data[offset : offset + UPLOAD_CHUNK]
            client.call("ai_putBlobChunk", upload_id, hex(offset), "0x" + chunk.hex())
            bar.update(len(chunk))
    client.call("ai_finishBlob", upload_id)
    return bytes(digest)


def cmd_contribute(args: argparse.Namespace) -> int:
    from eth_hash.auto import keccak

    client = _client(args)
    sender = client.address
    d = get_datanet(client, args.datanet)
    max_size = int(d["maxContributionSize"])
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
    from tqdm import tqdm

    results = []
    for path, data, _digest in tqdm(files, desc="contributions", unit="file", file=sys.stderr, disable=len(files) < 2):
        content_hash = upload(client, data, path.name)
        if args.abi:
            receipt = client.transact("Datanets", "contribute", args.datanet, content_hash, len(data),
                                      args.license, metadata_hash)
        else:
            from state.native import DataContributionTransaction
            from state.vm import LedgerTransactionBuilder

            tip, max_fee = client.fees()
            inner = DataContributionTransaction.sign(
                bytes(client.account.key), chain_id=client.chain_id(),
                nonce=int(client.call("eth_getTransactionCount", sender, "pending"), 16),
                max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee, gas=1_000_000,
                datanet_id=args.datanet, content_hash=content_hash, size=len(data),
                license=args.license.encode(), metadata_hash=metadata_hash,
            )
            receipt = client.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
        cid = client.event_arg(receipt, "Datanets", "ContributionSubmitted", 2)
        results.append({"file": str(path), "id": cid, "contentHash": "0x" + content_hash.hex(), "size": len(data),
                        "transactionHash": receipt["transactionHash"]})
    show(args, results, [f"{r['file']}: contribution {r['id']} ({r['size']} bytes, tx {r['transactionHash']})"
                         for r in results])
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    client = _client(args)
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
    # Check them all before sending any vote.
    curators: dict[int, list[str]] = {}
    for cid in ids:
        try:
            c = client.call("ai_getContribution", cid)
        except CLIError as e:
            raise CLIError(f"contribution {cid} does not exist; nothing was sent" if "not found" in str(e) else str(e)) from None
        if int(c["status"]) != 0:
            raise CLIError(f"contribution {cid} is already {_status(c)}; nothing was sent")
        dn = int(c["datanetId"])
        if dn not in curators:
            curators[dn] = [a.lower() for a in get_datanet(client, dn)["curators"]]
        if me not in curators[dn]:
            raise CLIError(f"you ({client.address}) are not a curator of datanet {dn} (contribution {cid}); "
                           "nothing was sent")
    results = []
    for cid in ids:
        receipt = client.transact("Datanets", "curate", cid, bool(args.approve), args.reason)
        status = _status(client.call("ai_getContribution", cid))
        results.append({"id": cid, "vote": "approve" if args.approve else "reject", "status": status,
                        "transactionHash": receipt["transactionHash"]})
    show(args, results, [f"contribution {r['id']}: {r['vote']}d, now {r['status']} (tx {r['transactionHash']})"
                         for r in results])
    return 0


# -- models ----------------------------------------------------------------------------------------


def _model_line(m: dict[str, Any]) -> str:
    kind = KIND.get(int(m["kind"]), str(m["kind"]))
    if int(m["kind"]) == 1:
        return f"model {m['id']}: base model, weights {m['weightsHash']}, by {m['author']}"
    data = ", ".join(f"{d}:{v}" for d, v in zip(m["datanetIds"], m["datanetVersions"], strict=True))
    retired = " (retired)" if m["retired"] else ""
    return f"model {m['id']}: {kind} on {m['parentId']}, data {data or '-'}, by {m['author']}{retired}"


def cmd_model_list(args: argparse.Namespace) -> int:
    client = _client(args)
    page = client.call("ai_listModels", {"offset": args.offset, "limit": args.limit})
    models = page["models"]
    lines = [_model_line(m) for m in models] or ["no models yet (`ailedger dev` registers its sidecar's base model)"]
    for m in models:
        m["kind"] = KIND.get(int(m["kind"]), m["kind"])
    show(args, page, lines)
    return 0


def cmd_adapter_show(args: argparse.Namespace) -> int:
    m = get_model(_client(args), args.id)
    lines = [_model_line(m), f"  weights {m['weightsHash']}, license {m['license']}, "
             f"children {', '.join(map(str, m['children'])) or '-'}"]
    m["kind"] = KIND.get(int(m["kind"]), m["kind"])
    show(args, m, lines)
    return 0


def cmd_adapter_lineage(args: argparse.Namespace) -> int:
    client = _client(args)
    get_model(client, args.id)
    lineage = client.call("ai_getLineage", args.id)
    lines = [_model_line(m) for m in lineage["path"]]
    lines += [f"  contributor of {cid}: {who}" for cid, who in lineage.get("contributors", {}).items()]
    show(args, lineage, lines)
    return 0


def cmd_adapter_register_base(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("ModelRegistry", "registerBaseModel", _hash(args.weights_hash),
                              _hash(args.config_hash), _hash(args.tokenizer_hash), args.license)
    model_id = client.event_arg(receipt, "ModelRegistry", "BaseModelRegistered")
    show(args, {"id": model_id, "transactionHash": receipt["transactionHash"]}, f"base model {model_id} registered")
    return 0


def cmd_adapter_register(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address

    client = _client(args)
    ids, versions = _datanet_versions(args.datanet)
    get_model(client, args.parent, "parent model")
    validator = to_canonical_address(args.validator or client.address)
    spec = (args.parent, ids, versions, _hash(args.contribution_root), _hash(args.hyper_params_hash),
            _hash(args.weights_hash), _hash(args.attribution_index_hash), _hash(args.manifest_hash), validator,
            args.license)
    receipt = client.transact("ModelRegistry", "registerAdapter", spec)
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    show(args, {"id": adapter_id, "transactionHash": receipt["transactionHash"]}, f"adapter {adapter_id} registered")
    return 0


def _datanet_versions(items: list[str]) -> tuple[list[int], list[int]]:
    ids, versions = [], []
    for item in items:
        try:
            d, v = (int(x) for x in item.split(":"))
        except ValueError:
            raise CLIError(f"--datanet {item}: expected ID:VERSION") from None
        ids.append(d)
        versions.append(v)
    return ids, versions


# -- rewards, deposits, stakes, governance ---------------------------------------------------------


def cmd_rewards_show(args: argparse.Namespace) -> int:
    client = _client(args)
    who = args.address or client.address
    r = client.call("ai_getRewards", who)
    out: dict[str, Any] = {"address": checksum(who), "claimable": int(r["claimable"], 16),
                           "earned": int(r["earned"], 16)}
    show(args, out, f"{out['address']}: claimable {ether(out['claimable'])}, earned {ether(out['earned'])}")
    return 0


def settle_due(client: Client, address: str) -> int:
    """Settle the receipts that hold ``address``'s pending rewards and whose challenge window is
    over, so that a claim takes them too; returns how many settled. The receipts come from the
    account's ``RewardPending`` logs, newest first, until they account for its whole pending
    balance (or the chain's start), in spans the node's log-range limit allows."""
    import ai_precompiles
    from ai_precompiles.addresses import REWARDS

    pending = int(client.call("ai_getRewards", address).get("pending", "0x0"), 16)
    head = int(client.call("eth_blockNumber"), 16)
    topics = [hex(ai_precompiles.MODULES["Rewards"].abi.events["RewardPending"].topic0),
              "0x" + address.lower().removeprefix("0x").rjust(64, "0")]
    seen, due, end = 0, [], head
    while seen < pending and end >= 0:
        start = max(0, end - 9_999)
        logs = client.call("eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(end),
                                           "address": checksum(REWARDS), "topics": topics})
        for log in reversed(logs):
            receipt = client.view("Inference", "getReceipt", int(log["topics"][2], 16))
            if receipt["status"] in (0, 1):  # pending, or challenged: still held
                seen += int(log["data"], 16)
                if receipt["status"] == 0 and receipt["release_block"] <= head + 1 and receipt["id"] not in due:
                    due.append(receipt["id"])
        end = start - 1
    for i in range(0, len(due), 64):  # Inference.settle takes at most 64 receipts a call
        client.transact("Inference", "settle", due[i : i + 64])
    return len(due)


def cmd_rewards_claim(args: argparse.Namespace) -> int:
    client = _client(args)
    if settle_due(client, client.address):
        print("settled the receipts whose challenge window is over", file=sys.stderr)
    rewards = client.call("ai_getRewards", client.address)
    before = int(rewards["claimable"], 16)
    if before == 0:
        held = int(rewards.get("pending", "0x0"), 16)
        raise CLIError(f"{client.address} has nothing to claim" + (
            f" yet: {ether(held)} is held until its receipts' challenge windows close" if held else
            " (see `ailedger rewards show`)"))
    receipt = client.transact("Rewards", "claim")
    show(args, {"claimed": before, "transactionHash": receipt["transactionHash"]},
         f"claimed {ether(before)} (tx {receipt['transactionHash']})")
    return 0


def _deposit(client: Client, who: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in client.call("ai_getDeposit", who).items()}


def cmd_deposit_show(args: argparse.Namespace) -> int:
    client = _client(args)
    who = args.address or client.address
    d = _deposit(client, who)
    line = f"{checksum(who)}: deposit {ether(d['balance'])}"
    if d["withdrawalPending"]:
        line += (f", withdrawal of {ether(d['withdrawalPending'])} requested, unlocks at "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(d['unlockTime']))}")
    show(args, {"address": checksum(who), **d}, line)
    return 0


def cmd_deposit_add(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.amount == 0:
        raise CLIError("nothing to deposit: give an amount above zero (e.g. 0.1eth)")
    _check_balance(client, args.amount)
    receipt = client.transact("Inference", "deposit", value=args.amount)
    d = _deposit(client, client.address)
    show(args, {"deposited": args.amount, **d, "transactionHash": receipt["transactionHash"]},
         f"deposited {ether(args.amount)}; deposit now {ether(d['balance'])} (tx {receipt['transactionHash']})")
    return 0


def cmd_deposit_withdraw(args: argparse.Namespace) -> int:
    client = _client(args)
    d = _deposit(client, client.address)
    if d["balance"] == 0:
        raise CLIError(f"{client.address} has no deposit")
    amount = args.amount if args.amount is not None else d["balance"]
    if amount == 0 or amount > d["balance"]:
        raise CLIError(f"cannot withdraw {ether(amount)}: the deposit is {ether(d['balance'])}")
    now = int(client.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    if d["withdrawalPending"] >= amount and d["unlockTime"] <= now:
        receipt = client.transact("Inference", "withdraw", amount)
        show(args, {"withdrawn": amount, "transactionHash": receipt["transactionHash"]},
             f"withdrew {ether(amount)} (tx {receipt['transactionHash']})")
        return 0
    if d["withdrawalPending"] >= amount:
        raise CLIError(f"the withdrawal unlocks in {d['unlockTime'] - now} s; run this again then")
    receipt = client.transact("Inference", "requestWithdrawal", amount)
    d = _deposit(client, client.address)
    show(args, {"requested": amount, "unlockTime": d["unlockTime"], "transactionHash": receipt["transactionHash"]},
         f"withdrawal of {ether(amount)} requested; it unlocks in {max(0, d['unlockTime'] - now)} s "
         "(requests you signed can still be charged until then); run `ailedger deposit withdraw` again then")
    return 0


def _check_balance(client: Client, amount: int) -> None:
    balance = int(client.call("eth_getBalance", client.address, "latest"), 16)
    if balance < amount:
        raise CLIError(f"{client.address} holds {ether(balance)}, less than {ether(amount)}")


def cmd_stake_add(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.amount == 0:
        raise CLIError("nothing to stake: give an amount above zero (e.g. 2eth)")
    _check_balance(client, args.amount)
    receipt = client.transact("Staking", "stake", value=args.amount)
    show(args, {"staked": args.amount, "transactionHash": receipt["transactionHash"]},
         f"staked {ether(args.amount)} (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_remove(args: argparse.Namespace) -> int:
    client = _client(args)
    staked = int(client.view("Staking", "stakeOf", client.address))
    if args.amount == 0 or args.amount > staked:
        raise CLIError(f"cannot unstake {ether(args.amount)}: your stake is {ether(staked)}")
    receipt = client.transact("Staking", "unstake", args.amount)
    show(args, {"unbonding": args.amount, "transactionHash": receipt["transactionHash"]},
         f"unbonding {ether(args.amount)} (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_withdraw(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Staking", "withdrawUnbonded")
    show(args, {"transactionHash": receipt["transactionHash"]}, f"withdrawn (tx {receipt['transactionHash']})")
    return 0


def cmd_stake_show(args: argparse.Namespace) -> int:
    validators = _client(args).call("ai_getValidatorSet")
    out: list[dict[str, Any]] = [{"address": checksum(v["address"]), "power": int(v["power"], 16)}
                                 for v in validators]
    show(args, out, [f"{v['address']}: {ether(v['power'])}" for v in out] or ["no staked validators"])
    return 0


def cmd_govern_propose(args: argparse.Namespace) -> int:
    client = _client(args)
    params = client.call("ai_getParams")
    if args.param not in params:
        raise CLIError(f"no parameter {args.param!r} (see `ailedger govern params`)")
    receipt = client.transact("Governance", "propose", args.param, args.value)
    pid = client.event_arg(receipt, "Governance", "ProposalCreated")
    show(args, {"id": pid, "transactionHash": receipt["transactionHash"]}, f"proposal {pid} created")
    return 0


def cmd_govern_vote(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Governance", "vote", args.proposal, args.choice == "yes")
    show(args, {"proposal": args.proposal, "vote": args.choice, "transactionHash": receipt["transactionHash"]},
         f"voted {args.choice} on proposal {args.proposal}")
    return 0


def cmd_govern_execute(args: argparse.Namespace) -> int:
    client = _client(args)
    receipt = client.transact("Governance", "execute", args.proposal)
    show(args, {"proposal": args.proposal, "transactionHash": receipt["transactionHash"]},
         f"proposal {args.proposal} executed")
    return 0


def cmd_govern_show(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        prop = client.call("ai_getProposal", args.proposal)
    except CLIError as e:
        raise CLIError(f"proposal {args.proposal} does not exist" if "not found" in str(e) else str(e)) from None
    show(args, prop, [f"proposal {prop['id']}: {prop['param']} = {prop['value']} (by {prop['proposer']})",
                      f"  yes {ether(prop['yesVotes'])}, no {ether(prop['noVotes'])} of {ether(prop['totalPower'])}; "
                      f"votes until block {prop['endBlock']}, executable from {prop['executableBlock']}"])
    return 0


def cmd_govern_params(args: argparse.Namespace) -> int:
    raw = _client(args).call("ai_getParams")
    params: dict[str, Any] = {}
    for k, v in raw.items():
        params[k] = checksum(int(v, 16).to_bytes(20, "big")) if k in ADDRESS_PARAMS else int(v, 16)
    width = max(map(len, params))
    show(args, params, [f"{k:<{width}}  {v}" for k, v in sorted(params.items())])
    return 0


# -- receipts --------------------------------------------------------------------------------------


def _receipt(client: Client, ref: str) -> dict[str, Any]:
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


def fetch_blob(client: Client, content_hash: str) -> bytes:
    from eth_hash.auto import keccak

    first = client.call("ai_getBlob", content_hash)
    data = bytearray(bytes.fromhex(first["data"][2:]))
    size = int(first["size"], 16)
    while len(data) < size:
        part = client.call("ai_getBlob", content_hash, hex(len(data)))
        data += bytes.fromhex(part["data"][2:])
    if keccak(bytes(data)) != _hash(content_hash):
        raise CLIError(f"blob {content_hash} does not hash to its name")
    return bytes(data)


def cmd_receipt_show(args: argparse.Namespace) -> int:
    client = _client(args)
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
    from eth_hash.auto import keccak

    client = _client(args)
    found = _receipt(client, args.id)
    r = found["receipt"]
    if "0x" + keccak(args.prompt.encode()).hex() != r["promptHash"].lower():
        raise CLIError("that prompt is not the one this receipt was for (its hash differs)")
    model = get_model(client, int(r["adapterId"]))
    with sidecar_client(args.sidecar) as sidecar:
        adapter = _sidecar_adapter(sidecar, model["weightsHash"])
        answer, _, matches = sidecar.replay(adapter_id=adapter, prompt=args.prompt.encode(),
                                            max_tokens=int(r.get("maxTokens") or args.max_tokens),
                                            expected_output_hash=r["outputHash"].removeprefix("0x"))
    ok = "0x" + answer.output_hash.lower().removeprefix("0x") == r["outputHash"].lower()
    out = {"receiptId": r["id"], "matches": ok, "outputHash": r["outputHash"],
           "replayedOutputHash": "0x" + answer.output_hash.removeprefix("0x"),
           "output": answer.output.decode("utf-8", errors="replace")}
    show(args, out, f"receipt {r['id']}: " + ("verified, the replay gives the same output" if ok else
                                             f"MISMATCH: the replay gives {out['replayedOutputHash']}"))
    return 0 if ok else 1


# -- training and inference through a sidecar -----------------------------------------------------


class sidecar_client:  # noqa: N801 - used as a context manager, like open()
    """A sidecar gRPC client whose errors come out as one CLIError line saying what to do."""

    def __init__(self, address: str, timeout: float = 3600.0) -> None:
        from sidecar.client import SidecarClient

        self.address = address
        self.client = SidecarClient(address, timeout=timeout)

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.client.close()
        if exc is not None:
            import grpc

            if isinstance(exc, grpc.RpcError):
                raise CLIError(grpc_message(exc, self.address)) from None


def grpc_message(exc: Any, address: str) -> str:
    """One line for a gRPC error: what happened and what to do."""
    import grpc

    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"the sidecar at {address} is not serving (yet): start `ailedger dev` (it starts one) or "
                "`ailedger sidecar`, wait for \"sidecar ready\", or give --sidecar / AILEDGER_SIDECAR")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return f"the sidecar refused the request: {details}"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"the sidecar does not have it: {details}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"the sidecar is busy ({details}); try again shortly"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the sidecar at {address} did not answer in time"
    return f"sidecar error {code.name if code else ''}: {details}"


def wait_sidecar(address: str, timeout: float, progress: Any = None) -> None:
    """Block until the sidecar's health check says SERVING; ``progress(seconds)`` every ~10 s."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    started = time.monotonic()
    last = started
    channel = grpc.insecure_channel(address)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            now = time.monotonic()
            if now - started > timeout:
                raise CLIError(f"the sidecar at {address} was not ready after {timeout:.0f} s")
            if progress is not None and now - last >= 10:
                progress(now - started)
                last = now
            time.sleep(0.5)
    finally:
        channel.close()


def base_model_id(client: Client, weights_hash: str) -> int | None:
    """On-chain id of the base model with these weights, if registered."""
    wanted = "0x" + weights_hash.lower().removeprefix("0x")
    for m in list_all(client, "ai_listModels", "models"):
        if int(m["kind"]) == 1 and m["weightsHash"].lower() == wanted:
            return int(m["id"])
    return None


def register_sidecar_base(client: Client, sidecar_address: str) -> tuple[int, str, bool]:
    """Register the sidecar's base model on chain unless it is: (id, weights hash, new?)."""
    from eth_hash.auto import keccak

    with sidecar_client(sidecar_address) as sidecar:
        listing = sidecar.list_adapters()
    weights = "0x" + listing.base_model_hash.lower().removeprefix("0x")
    existing = base_model_id(client, weights)
    if existing is not None:
        return existing, weights, False
    name = listing.base_model.encode()
    receipt = client.transact("ModelRegistry", "registerBaseModel", _hash(weights), keccak(b"config:" + name),
                              keccak(b"tokenizer:" + name), "apache-2.0")
    return client.event_arg(receipt, "ModelRegistry", "BaseModelRegistered"), weights, True


def _sidecar_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sidecar", default=os.environ.get("AILEDGER_SIDECAR", "127.0.0.1:50051"),
                   help="sidecar gRPC address (default: %(default)s; env AILEDGER_SIDECAR)")


def add_sidecar_parsers(sub: Any) -> None:
    train = sub.add_parser(
        "train", help="train a LoRA adapter in a sidecar on datanet versions and register it on chain",
        description="Fetch the exact contribution set of the given datanet versions from the node "
        "(bytes from its blob store), train a LoRA adapter in the sidecar (progress shown), then "
        "register the adapter on chain with its lineage as a native adapter-registration "
        "transaction signed by you as the training validator. Without --parent it trains on the "
        "sidecar's base model (registered on chain first if it is not yet).")
    _common(train)
    _sidecar_flag(train)
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

    infer = sub.add_parser(
        "infer", help="ask a validator's node to run an inference; its receipt lands on chain",
        description="Ask the node at --rpc for its validator's quote (ai_inferQuote), sign an EIP-712 "
        "inference request bound to that validator and price, and send it with the prompt "
        "(ai_infer): the node runs it on its sidecar, records the receipt with the attribution "
        "and answers with the output. You never hold a validator key. The fee is charged from "
        "your deposit (--deposit tops it up first). With --validator-key/--validator-account, "
        "serve it yourself on --sidecar and sign the receipt as that validator instead.")
    _common(infer)
    _sidecar_flag(infer)
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


def _contribution_key(contribution_id: int) -> bytes:
    """How on-chain contribution ids travel to the sidecar and come back in attributions."""
    return str(contribution_id).encode()


def cmd_train(args: argparse.Namespace) -> int:
    from eth_utils import to_canonical_address
    from tqdm import tqdm

    client = _client(args)
    sender = client.address
    ids, versions = _datanet_versions(args.datanet)
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
    training_set = client.call("ai_getTrainingSet", pairs)
    listed = list(training_set["contributions"])
    while len(listed) < training_set.get("total", len(listed)):  # the node answers in pages
        page = client.call("ai_getTrainingSet", pairs, "latest", {"offset": len(listed)})["contributions"]
        if not page:
            break
        listed += page
    if not listed:
        raise CLIError("the datanet versions hold no accepted contributions")
    contributions = []
    for c in tqdm(listed, desc="fetching contributions", unit="item", file=sys.stderr):
        contributions.append((_contribution_key(c["id"]), fetch_blob(client, c["contentHash"])))
    hyper: dict[str, Any] = {
        k: v for k, v in (("rank", args.rank), ("epochs", args.epochs), ("learning_rate", args.learning_rate)) if v
    }
    if args.target_modules:
        hyper["target_modules"] = [m.strip() for m in args.target_modules.split(",") if m.strip()]
    hyper_json = json.dumps({"seed": args.seed, **hyper}, sort_keys=True).encode()
    result = None
    with sidecar_client(args.sidecar) as sidecar, tqdm(desc="training", unit="step", file=sys.stderr) as bar:
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
    hyper_hash = upload(client, hyper_json, "hyper-parameters")
    from state.native import AdapterRegistrationTransaction
    from state.vm import LedgerTransactionBuilder

    tip, max_fee = client.fees()
    inner = AdapterRegistrationTransaction.sign(
        bytes(client.account.key), chain_id=client.chain_id(),
        nonce=int(client.call("eth_getTransactionCount", sender, "pending"), 16),
        max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee, gas=3_000_000,
        parent_id=parent, datanet_ids=ids, datanet_versions=versions,
        contribution_root=_hash(training_set["contributionRoot"]), hyper_params_hash=hyper_hash,
        weights_hash=_hash(result.weights_hash), attribution_index_hash=_hash(result.attribution_index_hash),
        # zero (none recorded) until the sidecar reports a training manifest (issue 18)
        manifest_hash=_hash(getattr(result, "manifest_hash", "") or "00" * 32),
        validator=to_canonical_address(sender), license=args.license.encode(),
    )
    receipt = client.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
    adapter_id = client.event_arg(receipt, "ModelRegistry", "AdapterRegistered")
    out = {"id": adapter_id, "parent": parent, "sidecarAdapter": result.adapter_id,
           "weightsHash": "0x" + result.weights_hash.removeprefix("0x"), "steps": result.steps,
           "finalLoss": result.final_loss, "transactionHash": receipt["transactionHash"]}
    show(args, out, f"adapter {adapter_id} registered on model {parent} ({result.steps} steps, "
                    f"loss {result.final_loss:.3f}, tx {receipt['transactionHash']})")
    return 0


def _sidecar_adapter(sidecar: Any, weights_hash: str) -> str:
    for info in sidecar.list_adapters().adapters:
        if "0x" + info.weights_hash.lower().removeprefix("0x") == weights_hash.lower():
            return str(info.adapter_id)
    raise CLIError(f"the sidecar holds no adapter with weights {weights_hash}")


def _check_adapter(client: Client, adapter_id: int) -> dict[str, Any]:
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
        _check_balance(client, args.deposit)
        client.transact("Inference", "deposit", value=args.deposit)
    have = _deposit(client, client.address)
    available = have["balance"] - (have["withdrawalPending"] if have["withdrawalPending"] else 0)
    if available < price:
        raise CLIError(f"your deposit ({ether(have['balance'])}) does not cover the fee {ether(price)}: "
                       "add --deposit 0.01eth (or `ailedger deposit add`)")


def cmd_infer(args: argparse.Namespace) -> int:
    if args.validator_key or args.validator_account is not None:
        return _infer_as_validator(args)
    from eth_hash.auto import keccak

    from ai_precompiles import typed_data

    user = _client(args)
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
               "max_tokens": args.max_tokens, "max_fee": price,
               "nonce": int.from_bytes(os.urandom(8), "big"), "deadline": int(head["timestamp"], 16) + 3600,
               "chain_id": chain_id}
    signature = typed_data.sign(typed_data.request_digest(request, chain_id), bytes(user.account.key))
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
    from state.vm import LedgerTransactionBuilder

    user = _client(args)
    vkey = _hex_key(args.validator_key, "--validator-key") if args.validator_key else dev_key(args.validator_account)
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
    vaddr = to_canonical_address(validator.address)
    request = {
        "user": to_canonical_address(user.address), "validator": vaddr, "adapter_id": args.adapter,
        "prompt_hash": keccak(args.prompt.encode()), "max_tokens": args.max_tokens, "max_fee": args.fee,
        "nonce": int.from_bytes(os.urandom(8), "big"), "deadline": int(head["timestamp"], 16) + 3600,
        "chain_id": chain_id,
    }
    request_hash = typed_data.request_digest(request, chain_id)
    user_signature = typed_data.sign(request_hash, bytes(user.account.key))
    with sidecar_client(args.sidecar) as sidecar:
        result = sidecar.infer(_sidecar_adapter(sidecar, model["weightsHash"]), args.prompt.encode(), args.max_tokens)
    upload(validator, result.output, "output")
    ids = [int(cid) for cid, _ in result.weights]
    weights = [bp for _, bp in result.weights]
    output_hash = _hash(result.output_hash)
    from node.rpc.infer_methods import placeholder_engine_profile

    engine_profile = placeholder_engine_profile()
    validator_signature = typed_data.sign(typed_data.receipt_digest(
        request_hash, output_hash, engine_profile, ids, weights, args.fee, vaddr, chain_id), vkey)
    tip, max_fee = validator.fees()
    inner = InferenceReceiptTransaction.sign(
        vkey, chain_id=chain_id, nonce=validator.nonce(),
        max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee, gas=3_000_000,
        user=request["user"], adapter_id=args.adapter, prompt_hash=request["prompt_hash"],
        max_tokens=args.max_tokens, max_fee=args.fee, request_nonce=request["nonce"], deadline=request["deadline"],
        request_chain_id=chain_id, user_signature=user_signature, output_hash=output_hash,
        engine_profile=engine_profile,
        contribution_ids=ids, weights_bp=weights, fee=args.fee, validator=vaddr,
        validator_signature=validator_signature,
    )
    receipt = validator.send_raw(LedgerTransactionBuilder.wrap_native(inner).encode())
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

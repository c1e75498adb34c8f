"""One web3.py scenario that any anvil-compatible dev node must answer identically.

`run_scenario(http_url, ws_url)` drives a fresh dev node (standard dev mnemonic, automine,
chain id 31337) the way a web3.py user would: deploy the Demo contract (from an unlocked
account and as a locally signed EIP-1559 transaction), send transactions, read state,
read events three ways (eth_getLogs, a filter, a WebSocket subscription), decode a reason
string and a custom error on revert, and use the dev methods (snapshot/revert, time
travel, setBalance). It returns only chain-agnostic facts, so the differential test can
compare the dict from anvil with the dict from ailedger with one `==`.

Facts that legitimately differ between two correct nodes are left out where they are
read, each with a comment: block hashes (they cover timestamps and the miner),
timestamps themselves (only differences are kept), state roots (the coinbase differs),
client version and the opaque ids of snapshots, filters and subscriptions.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.providers.persistent import WebSocketProvider

from genesis import DEV_MNEMONIC

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "build" / "Demo.json"
ETHER = 10**18
GWEI = 10**9
LIMIT = 1000  # the constructor argument of the first deployment
WS_TIMEOUT_S = 15.0
TYPED_DATA = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
        ],
        "Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "ailedger", "chainId": 31337},
    "message": {"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "contents": "hello"},
}


@dataclass(frozen=True)
class DevKey:
    """A dev account whose key the scenario holds, to sign transactions locally."""

    address: str
    """Checksummed address."""
    key: bytes
    """32-byte secp256k1 private key."""


def load_artifact() -> dict[str, Any]:
    """The committed solc-js output for Demo (abi, bytecode, deployedBytecode)."""
    return json.loads(ARTIFACT.read_text())


def dev_key(index: int) -> DevKey:
    """Key `index` of the standard dev mnemonic at m/44'/60'/0'/0/index, as anvil derives it."""
    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return DevKey(acct.address, bytes(acct.key))


def _hex(value: Any) -> Any:
    """Normalise HexBytes/bytes to 0x-hex strings so facts compare and print plainly."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


def _receipt_facts(r: Any) -> dict[str, Any]:
    """Receipt fields that two correct nodes agree on (block hash is excluded: it covers the timestamp)."""
    return {
        "status": r["status"],
        "type": r["type"],
        "from": r["from"],
        "to": r["to"],
        "contractAddress": r["contractAddress"],
        "gasUsed": r["gasUsed"],
        "cumulativeGasUsed": r["cumulativeGasUsed"],
        "effectiveGasPrice": r["effectiveGasPrice"],
        "blockNumber": r["blockNumber"],
        "transactionIndex": r["transactionIndex"],
        "logs": len(r["logs"]),
        "logsBloom": _hex(r["logsBloom"]),
    }


def _event_facts(event: Any, node_signed: dict[str, str]) -> dict[str, Any]:
    """A decoded event, without block hash (timestamp-dependent)."""
    return {
        "event": event["event"],
        "args": {k: _hex(v) for k, v in dict(event["args"]).items()},
        "blockNumber": event["blockNumber"],
        "logIndex": event["logIndex"],
        "transactionIndex": event["transactionIndex"],
        "transactionHash": _tx_ref(event["transactionHash"], node_signed),
    }


def _tx_ref(tx_hash: Any, node_signed: dict[str, str]) -> str:
    """A transaction as a fact: its hash if the scenario signed it, else its label.

    A transaction that the node signs for an unlocked account (eth_sendTransaction
    without fee fields) carries fees the node chose: anvil fills maxFeePerGas as
    base fee + 2 * tip, geth as 2 * base fee + tip, so its hash is node policy. Such
    transactions are named by the label the scenario gave them when it sent them.
    """
    h = _hex(tx_hash)
    return node_signed.get(h, h)


def _decode_logs(
    contract: Any, node_signed: dict[str, str], logs: list[Any]
) -> list[dict[str, Any]]:
    """Decode raw logs of the Demo contract with web3's ABI machinery."""
    by_topic = {
        "0x"
        + keccak(text="ValueSet(address,uint256,uint256,string)").hex(): contract.events.ValueSet,
        "0x" + keccak(text="Deposited(address,uint256,uint256)").hex(): contract.events.Deposited,
    }
    out = []
    for log in logs:
        topic0 = _hex(log["topics"][0])
        out.append(_event_facts(by_topic[topic0]().process_log(log), node_signed))
    return out


def _decode_custom_error(abi: list[dict[str, Any]], data: str) -> dict[str, Any]:
    """Decode revert data against the ABI's custom errors: the selector picks the error."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    for item in abi:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
        if raw[:4] == selector:
            values = abi_decode(types, raw[4:])
            return {
                "error": item["name"],
                "args": dict(zip([i["name"] for i in item["inputs"]], values, strict=True)),
            }
    raise AssertionError(f"revert data {data} matches no custom error")


def _revert_facts(fn: Any) -> dict[str, Any]:
    """Call `fn` that must revert; return what web3.py decoded (class, message, data)."""
    try:
        fn()
    except ContractCustomError as exc:
        return {"kind": "custom", "data": exc.data}
    except ContractLogicError as exc:
        return {"kind": "reason", "message": exc.message, "data": exc.data}
    raise AssertionError("call did not revert")


def _guarded(facts: dict[str, Any], name: str, section: Any) -> None:
    """Run one independent section; if the node makes it raise, record the exception as a
    fact instead of aborting, so one run shows every section that differs."""
    try:
        section()
    except Exception as exc:  # noqa: BLE001 - any failure is a fact to compare
        facts[f"{name}_exception"] = f"{type(exc).__name__}: {exc}"[:500]


def _raw_error(w3: Web3, method: str, params: list[Any]) -> dict[str, Any]:
    """The JSON-RPC error object exactly as the node returns it (no web3 formatting)."""
    resp = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    return dict(resp.get("error") or {"no_error": True})


async def _ws_part(
    ws_url: str,
    contract_address: str,
    abi: list[dict[str, Any]],
    sender: str,
    node_signed: dict[str, str],
) -> dict[str, Any]:
    """Subscribe to newHeads and to the contract's logs, send two transactions over the same
    WebSocket, and return what the subscriptions delivered.

    The subscription ids are opaque per node and left out; delivered header numbers and the
    decoded logs are compared.
    """
    facts: dict[str, Any] = {}
    async with AsyncWeb3(WebSocketProvider(ws_url)) as w3:
        facts["ws_chain_id"] = await w3.eth.chain_id
        head_sub = await w3.eth.subscribe("newHeads")
        log_sub = await w3.eth.subscribe("logs", {"address": contract_address})
        pending_sub = await w3.eth.subscribe("newPendingTransactions")
        facts["sub_ids_distinct"] = len({head_sub, log_sub, pending_sub}) == 3
        c = w3.eth.contract(address=contract_address, abi=abi)
        sent = [
            await c.functions.set(7, 70, "over websocket").transact({"from": sender}),
            await c.functions.deposit().transact({"from": sender, "value": 3 * GWEI}),
        ]
        heads: list[int] = []
        pending: list[str] = []
        logs: list[Any] = []

        async def collect() -> None:
            async for msg in w3.socket.process_subscriptions():
                if msg["subscription"] == head_sub:
                    heads.append(int(msg["result"]["number"]))
                elif msg["subscription"] == log_sub:
                    logs.append(msg["result"])
                elif msg["subscription"] == pending_sub:
                    pending.append(_hex(msg["result"]))
                if len(heads) >= 2 and len(logs) >= 2 and len(pending) >= 2:
                    return

        await asyncio.wait_for(collect(), WS_TIMEOUT_S)
        node_signed.update({_hex(sent[0]): "ws_set", _hex(sent[1]): "ws_deposit"})
        facts["ws_pending_are_sent"] = sorted(pending) == sorted(_hex(h) for h in sent)
        facts["ws_heads"] = heads
        sync_like = Web3().eth.contract(address=contract_address, abi=abi)
        facts["ws_logs"] = _decode_logs(sync_like, node_signed, logs)
        facts["ws_unsubscribed"] = [
            await w3.eth.unsubscribe(head_sub),
            await w3.eth.unsubscribe(log_sub),
            await w3.eth.unsubscribe(pending_sub),
        ]
    return facts


def run_scenario(http_url: str, ws_url: str) -> dict[str, Any]:
    """Run the whole scenario against a fresh node and return its chain-agnostic facts."""
    art = load_artifact()
    abi, bytecode = art["abi"], art["bytecode"]
    w3 = Web3(Web3.HTTPProvider(http_url, request_kwargs={"timeout": 30}))
    f: dict[str, Any] = {}
    node_signed: dict[str, str] = {}  # hash -> label of transactions the node signed (see _tx_ref)

    # -- chain basics (client version is a name, left out) --
    accounts = w3.eth.accounts
    a0, a1, a2, a3 = accounts[0], accounts[1], accounts[2], accounts[3]
    k1 = dev_key(1)
    f["chain_id"] = w3.eth.chain_id
    f["net_version"] = w3.net.version
    f["net_listening"] = w3.net.listening
    f["syncing"] = w3.eth.syncing
    f["accounts"] = list(accounts[:10])
    f["account1_matches_mnemonic"] = k1.address == a1
    f["start_block"] = w3.eth.block_number
    f["start_balances"] = [w3.eth.get_balance(a) for a in accounts[:4]]
    f["gas_price"] = w3.eth.gas_price
    f["max_priority_fee"] = w3.eth.max_priority_fee
    f["web3_sha3"] = _hex(w3.provider.make_request("web3_sha3", ["0x68656c6c6f"])["result"])  # type: ignore[arg-type]
    genesis = w3.eth.get_block(0)
    f["genesis"] = {k: genesis[k] for k in ("number", "gasLimit", "baseFeePerGas", "gasUsed")}

    # -- a filter installed before anything happens: it must see every later log --
    Demo = w3.eth.contract(abi=abi, bytecode=bytecode)
    block_filter = w3.eth.filter("latest")

    # -- deploy 1: eth_sendTransaction from the unlocked dev account --
    tx = Demo.constructor(LIMIT).transact({"from": a0})
    r = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    f["deploy_unlocked"] = _receipt_facts(r)
    addr = r["contractAddress"]
    f["deploy_address_is_create_address"] = addr == to_checksum_address(
        keccak(b"\xd6\x94" + bytes.fromhex(a0[2:]) + b"\x80")[12:]
    )
    c = w3.eth.contract(address=addr, abi=abi)
    f["code_matches_compiler"] = _hex(w3.eth.get_code(addr)) == art["deployedBytecode"]
    log_filter = w3.eth.filter({"address": addr, "fromBlock": "latest"})

    # -- deploy 2: a locally signed EIP-1559 transaction through eth_sendRawTransaction --
    nonce1 = w3.eth.get_transaction_count(a1)
    deploy2 = Demo.constructor(5).build_transaction(
        {
            "from": a1,
            "nonce": nonce1,
            "gas": 600_000,
            "maxFeePerGas": 3 * GWEI,
            "maxPriorityFeePerGas": 2 * GWEI,
            "chainId": f["chain_id"],
        }
    )
    signed = Account.sign_transaction(deploy2, k1.key)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    f["raw_deploy_hash_is_signed_hash"] = _hex(h) == "0x" + signed.hash.hex()
    r2 = w3.eth.wait_for_transaction_receipt(h, timeout=30)
    f["deploy_raw"] = _receipt_facts(r2)
    addr2 = r2["contractAddress"]
    c2 = w3.eth.contract(address=addr2, abi=abi)
    f["deploy_raw_limit"] = c2.functions.limit().call()
    f["deploy_raw_owner"] = c2.functions.owner().call()
    t = w3.eth.get_transaction(h)
    f["raw_tx"] = {
        k: _hex(t[k])
        for k in (
            "hash",
            "nonce",
            "from",
            "to",
            "value",
            "gas",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
            "input",
            "type",
            "chainId",
            "r",
            "s",
            "v",
            "blockNumber",
            "transactionIndex",
            "accessList",
        )
    }
    f["raw_tx"]["accessList"] = list(f["raw_tx"]["accessList"])

    # -- transactions: storage writes, events, value --
    receipts = {}
    estimate_set = c.functions.set(1, 42, "hello").estimate_gas({"from": a0})
    tx = c.functions.set(1, 42, "hello").transact({"from": a0})
    node_signed[_hex(tx)] = "set1"
    receipts["set1"] = w3.eth.wait_for_transaction_receipt(tx)
    f["estimate_set_covers"] = estimate_set >= receipts["set1"]["gasUsed"]
    f["estimate_set_within_2pct"] = (
        estimate_set <= receipts["set1"]["gasUsed"] * 102 // 100 + 2300 + 10_000
    )
    # a raw signed call from account 1 (nonce after its deployment)
    call_tx = c.functions.set(2, 7, "world").build_transaction(
        {
            "from": a1,
            "nonce": nonce1 + 1,
            "gas": 200_000,
            "maxFeePerGas": 5 * GWEI,
            "maxPriorityFeePerGas": 1 * GWEI,
            "chainId": f["chain_id"],
        }
    )
    s2 = Account.sign_transaction(call_tx, k1.key)
    receipts["set2_raw"] = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(s2.raw_transaction)
    )
    tx = c.functions.deposit().transact({"from": a2, "value": ETHER})
    node_signed[_hex(tx)] = "deposit"
    receipts["deposit"] = w3.eth.wait_for_transaction_receipt(tx)
    f["estimate_transfer"] = w3.eth.estimate_gas({"from": a0, "to": a3, "value": 10**15})
    tx = w3.eth.send_transaction({"from": a0, "to": a3, "value": 3 * ETHER // 2})
    receipts["transfer"] = w3.eth.wait_for_transaction_receipt(tx)
    legacy = w3.eth.send_transaction(
        {"from": a2, "to": a3, "value": 5, "gasPrice": 4 * GWEI, "gas": 21_000}
    )
    receipts["transfer_legacy"] = w3.eth.wait_for_transaction_receipt(legacy)
    f["legacy_tx_type"] = w3.eth.get_transaction(legacy)["type"]
    # a transaction that reverts on chain: explicit gas so that no estimate stops it first
    tx = c.functions.set(0, 1, "zero key").transact({"from": a0, "gas": 100_000})
    receipts["reverted"] = w3.eth.wait_for_transaction_receipt(tx)
    f["receipts"] = {k: _receipt_facts(v) for k, v in receipts.items()}
    gas_cost = receipts["transfer"]["gasUsed"] * receipts["transfer"]["effectiveGasPrice"]
    f["transfer_debits_value_plus_gas"] = (
        w3.eth.get_balance(a0, receipts["transfer"]["blockNumber"] - 1)
        - w3.eth.get_balance(a0, receipts["transfer"]["blockNumber"])
        == 3 * ETHER // 2 + gas_cost
    )

    # -- state reads --
    def state_reads() -> None:
        f["balances"] = {a: w3.eth.get_balance(a) for a in (a3, addr)}
        f["nonces"] = [w3.eth.get_transaction_count(a) for a in (a0, a1, a2, a3, addr)]
        f["nonce_pending_a0"] = w3.eth.get_transaction_count(a0, "pending")
        slot_of = lambda key: keccak(key.to_bytes(32, "big") + (2).to_bytes(32, "big"))  # noqa: E731
        f["storage"] = {
            "owner": _hex(w3.eth.get_storage_at(addr, 0)),
            "limit": _hex(w3.eth.get_storage_at(addr, 1)),
            "values[1]": _hex(w3.eth.get_storage_at(addr, slot_of(1))),
            "values[2]": _hex(w3.eth.get_storage_at(addr, slot_of(2))),
            "total": _hex(w3.eth.get_storage_at(addr, 3)),
            "totalDeposits": _hex(w3.eth.get_storage_at(addr, 4)),
            "total_at_deploy_block": _hex(w3.eth.get_storage_at(addr, 3, r["blockNumber"])),
        }
        f["views"] = {
            "get1": c.functions.get(1).call(),
            "get2": c.functions.get(2).call(),
            "get1_before_set": c.functions.get(1).call(block_identifier=r["blockNumber"]),
            "total": c.functions.total().call(),
            "owner": c.functions.owner().call(),
        }
        f["code_of_eoa"] = _hex(w3.eth.get_code(a3))
        f["storage_of_eoa"] = _hex(w3.eth.get_storage_at(a3, 0))

    _guarded(f, "state_reads", state_reads)

    # -- events through eth_getLogs (by address, by indexed topic, by block range) --
    def events_getlogs() -> None:
        logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": addr})
        f["getlogs_all"] = _decode_logs(c, node_signed, logs)
        setter_topic = "0x" + bytes.fromhex(a1[2:]).rjust(32, b"\0").hex()
        f["getlogs_by_setter"] = _decode_logs(
            c,
            node_signed,
            w3.eth.get_logs(
                {
                    "fromBlock": 0,
                    "address": addr,
                    "topics": [
                        "0x" + keccak(text="ValueSet(address,uint256,uint256,string)").hex(),
                        setter_topic,
                    ],
                }
            ),
        )
        f["getlogs_deposit_block"] = _decode_logs(
            c,
            node_signed,
            w3.eth.get_logs(
                {
                    "fromBlock": receipts["deposit"]["blockNumber"],
                    "toBlock": receipts["deposit"]["blockNumber"],
                }
            ),
        )
        f["getlogs_event_api"] = [
            _event_facts(e, node_signed)
            for e in c.events.ValueSet().get_logs(from_block=0, argument_filters={"key": 1})
        ]
        f["getlogs_by_blockhash"] = _decode_logs(
            c, node_signed, w3.eth.get_logs({"blockHash": receipts["set1"]["blockHash"]})
        )

    _guarded(f, "events_getlogs", events_getlogs)

    # -- events through a filter: changes once, then nothing new; getFilterLogs replays --
    def events_filter() -> None:
        f["filter_changes"] = _decode_logs(c, node_signed, log_filter.get_new_entries())
        f["filter_changes_again"] = _decode_logs(c, node_signed, log_filter.get_new_entries())
        f["filter_logs"] = _decode_logs(c, node_signed, log_filter.get_all_entries())
        f["block_filter_count"] = len(block_filter.get_new_entries())
        f["uninstall"] = [
            w3.eth.uninstall_filter(log_filter.filter_id),
            w3.eth.uninstall_filter(block_filter.filter_id),
        ]
        f["uninstall_again"] = w3.eth.uninstall_filter(log_filter.filter_id)

    _guarded(f, "events_filter", events_filter)

    # -- events through a WebSocket subscription --
    def events_websocket() -> None:
        f["ws"] = asyncio.run(_ws_part(ws_url, addr, abi, a0, node_signed))

    _guarded(f, "events_websocket", events_websocket)

    # -- reverts: a reason string and a custom error, via eth_call, estimateGas and raw RPC --
    def reverts() -> None:
        f["revert_call_reason"] = _revert_facts(
            lambda: c.functions.set(0, 1, "x").call({"from": a0})
        )
        f["revert_estimate_reason"] = _revert_facts(
            lambda: c.functions.set(0, 1, "x").estimate_gas({"from": a0})
        )
        f["revert_transact_reason"] = _revert_facts(
            lambda: c.functions.set(0, 1, "x").transact({"from": a0})
        )
        custom = _revert_facts(lambda: c.functions.set(9, LIMIT + 1, "x").call({"from": a0}))
        f["revert_call_custom"] = {**custom, "decoded": _decode_custom_error(abi, custom["data"])}
        custom = _revert_facts(
            lambda: c.functions.set(9, LIMIT + 1, "x").estimate_gas({"from": a0})
        )
        f["revert_estimate_custom"] = {
            **custom,
            "decoded": _decode_custom_error(abi, custom["data"]),
        }
        f["revert_payable"] = _revert_facts(
            lambda: c.functions.deposit().call({"from": a0, "value": 0})
        )
        call = {"from": a0, "to": addr, "data": c.encode_abi("set", [0, 1, "x"])}
        err = _raw_error(w3, "eth_call", [call, "latest"])
        # The message text beyond "execution reverted" is free-form per client; code and data are the contract.
        f["raw_revert_reason"] = {
            "code": err.get("code"),
            "data": err.get("data"),
            "message_starts": str(err.get("message", "")).startswith("execution reverted"),
        }
        call = {"from": a0, "to": addr, "data": c.encode_abi("set", [9, LIMIT + 1, "x"])}
        err = _raw_error(w3, "eth_estimateGas", [call])
        f["raw_revert_custom_estimate"] = {
            "code": err.get("code"),
            "data": err.get("data"),
            "message_starts": str(err.get("message", "")).startswith("execution reverted"),
        }

    _guarded(f, "reverts", reverts)

    # -- blocks: by number, hashes and full --
    def blocks() -> None:
        n = receipts["set2_raw"]["blockNumber"]
        by_hashes = w3.eth.get_block(n)
        full = w3.eth.get_block(n, full_transactions=True)
        by_hash = w3.eth.get_block(by_hashes["hash"])
        f["block_hashes_form"] = {
            "number": by_hashes["number"],
            "gasUsed": by_hashes["gasUsed"],
            "gasLimit": by_hashes["gasLimit"],
            "baseFeePerGas": by_hashes["baseFeePerGas"],
            "transactions": [_hex(x) for x in by_hashes["transactions"]],
            "logsBloom": _hex(by_hashes["logsBloom"]),
            "transactionsRoot": _hex(by_hashes["transactionsRoot"]),
            "receiptsRoot": _hex(by_hashes["receiptsRoot"]),
            "parent_is_previous": by_hashes["parentHash"] == w3.eth.get_block(n - 1)["hash"],
        }
        f["block_full_txs"] = [
            {
                k: _hex(tx[k])
                for k in ("hash", "from", "to", "nonce", "value", "input", "type", "gas")
            }
            for tx in full["transactions"]
        ]
        f["block_by_hash_same"] = by_hash["number"] == n and by_hash["hash"] == by_hashes["hash"]
        f["block_tx_count"] = [
            w3.eth.get_block_transaction_count(n),
            w3.eth.get_block_transaction_count(by_hashes["hash"]),
        ]
        f["tx_by_block_and_index"] = _hex(w3.eth.get_transaction_by_block(n, 0)["hash"])
        f["pending_block_is_next"] = w3.eth.get_block("pending")["number"] - w3.eth.block_number
        f["missing_block"] = (
            _raw_error(w3, "eth_getBlockByNumber", ["0x" + format(10**6, "x"), False])
            == {"no_error": True}
            and w3.provider.make_request("eth_getBlockByNumber", ["0xf4240", False])["result"]
            is None
        )  # type: ignore[arg-type]
        f["missing_receipt"] = w3.provider.make_request(
            "eth_getTransactionReceipt", ["0x" + "ab" * 32]
        )["result"]  # type: ignore[arg-type]

    _guarded(f, "blocks", blocks)

    # -- fee history --
    def fee_history() -> None:
        fh = w3.eth.fee_history(4, "latest", [25, 75])
        f["fee_history"] = {
            "oldestBlock": fh["oldestBlock"],
            "baseFeePerGas": fh["baseFeePerGas"],
            "gasUsedRatio": [round(x, 9) for x in fh["gasUsedRatio"]],
            "reward": fh["reward"],
        }

    _guarded(f, "fee_history", fee_history)

    # -- dev methods: snapshot/revert, time travel, setBalance --
    def dev_methods() -> None:
        head_before = w3.eth.block_number
        snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        tx = w3.eth.send_transaction({"from": a0, "to": a3, "value": ETHER})
        w3.eth.wait_for_transaction_receipt(tx)
        f["snapshot_changed"] = [
            w3.eth.get_balance(a3) - f["balances"][a3],
            w3.eth.block_number - head_before,
        ]
        f["evm_revert"] = w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]
        f["after_revert"] = [
            w3.eth.get_balance(a3) == f["balances"][a3],
            w3.eth.block_number - head_before,
        ]
        f["after_revert_tx_gone"] = (
            w3.provider.make_request("eth_getTransactionReceipt", [_hex(tx)])["result"] is None
        )  # type: ignore[arg-type]
        f["evm_revert_again"] = w3.provider.make_request("evm_revert", [snap])["result"]  # type: ignore[arg-type]

        t0 = w3.eth.get_block("latest")["timestamp"]
        w3.provider.make_request("evm_increaseTime", [3600])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        t1 = w3.eth.get_block("latest")["timestamp"]
        f["increase_time_applied"] = 3600 <= t1 - t0 < 3600 + 30
        f["increase_time_view"] = 3600 <= c.functions.secondsSince(t0).call() < 3600 + 30
        w3.provider.make_request("evm_setNextBlockTimestamp", [t1 + 10_000])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        f["set_next_timestamp_exact"] = w3.eth.get_block("latest")["timestamp"] - t1
        f["evm_mine_blocks"] = w3.eth.block_number - head_before
        fresh = "0x" + "11" * 20
        w3.provider.make_request("anvil_setBalance", [fresh, hex(123 * ETHER)])  # type: ignore[arg-type]
        f["set_balance"] = w3.eth.get_balance(to_checksum_address(fresh))
        w3.provider.make_request("hardhat_setBalance", [fresh, hex(7)])  # type: ignore[arg-type]
        f["set_balance_hardhat"] = w3.eth.get_balance(to_checksum_address(fresh))
        f["final_block"] = w3.eth.block_number

    _guarded(f, "dev_methods", dev_methods)

    # -- signing for dev accounts, the pool's queue, error messages, lesser lookups --
    def misc() -> None:
        f["eth_sign"] = w3.provider.make_request("eth_sign", [a0, "0x68656c6c6f"]).get("result")  # type: ignore[arg-type]
        f["eth_signTypedData_v4"] = w3.provider.make_request(  # type: ignore[arg-type]
            "eth_signTypedData_v4", [a0, json.dumps(TYPED_DATA)]
        ).get("result")
        f["earliest_block"] = w3.eth.get_block("earliest")["number"]
        k2 = dev_key(2)
        n2 = w3.eth.get_transaction_count(a2)
        pending_filter = w3.eth.filter("pending")

        def transfer(nonce: int) -> Any:
            tx = {
                "type": 2,
                "chainId": f["chain_id"],
                "nonce": nonce,
                "to": a3,
                "value": 11,
                "gas": 21_000,
                "maxFeePerGas": 50 * GWEI,
                "maxPriorityFeePerGas": GWEI,
            }
            return Account.sign_transaction(tx, k2.key)

        gap, fill = transfer(n2 + 1), transfer(n2)
        w3.eth.send_raw_transaction(gap.raw_transaction)
        f["txpool_with_gap"] = w3.provider.make_request("txpool_status", [])["result"]  # type: ignore[arg-type]
        f["gap_receipt_before_fill"] = w3.provider.make_request(  # type: ignore[arg-type]
            "eth_getTransactionReceipt", ["0x" + gap.hash.hex()]
        )["result"]
        w3.eth.send_raw_transaction(fill.raw_transaction)
        got = [w3.eth.wait_for_transaction_receipt(x.hash, timeout=30) for x in (fill, gap)]
        f["gap_filled"] = {
            "statuses": [x["status"] for x in got],
            "nonce": w3.eth.get_transaction_count(a2) - n2,
            "ordered": got[0]["blockNumber"] <= got[1]["blockNumber"],
        }
        f["txpool_after"] = w3.provider.make_request("txpool_status", [])["result"]  # type: ignore[arg-type]
        f["pending_filter"] = sorted(_hex(h) for h in pending_filter.get_new_entries())
        f["pending_filter_expected"] = sorted("0x" + x.hash.hex() for x in (fill, gap))
        try:
            w3.eth.send_raw_transaction(fill.raw_transaction)
            f["replay"] = "accepted"
        except Exception as exc:  # noqa: BLE001 - the message is the fact
            text = str(exc).lower()
            # geth says "nonce too low", anvil "nonce too low" or "already known": both are correct
            f["replay"] = (
                "rejected: nonce too low or known"
                if ("nonce too low" in text or "known" in text)
                else text
            )
        blk = w3.eth.get_block(got[1]["blockNumber"])
        f["tx_by_block_hash_and_index"] = (
            _hex(w3.eth.get_transaction_by_block(blk["hash"], got[1]["transactionIndex"])["hash"])
            == "0x" + gap.hash.hex()
        )

    _guarded(f, "misc", misc)
    return f

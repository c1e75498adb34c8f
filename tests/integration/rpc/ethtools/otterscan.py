"""The Otterscan scenario: the transactions Otterscan shows (creations, internal transfers,
self-destructs, every kind of call, reverts with and without data, a block of several
transactions) sent to a fresh dev node, then every ``ots_`` method and
``erigon_getHeaderByNumber`` asked about each of them.

`run_otterscan(url)` returns the answers, with only what two correct nodes cannot share
taken out where they are read (`block_view`, `tx_view`, `receipt_view`); the test compares
anvil's and ailedger's. Transactions are signed here, so both nodes hold byte-identical ones.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import keccak

from tests.integration.rpc.ethtools.parity import Node, _sign
from tests.integration.rpc.ethtools.scenario import dev_key, load_artifact

#: A child's init code: returns the runtime CALLER SELFDESTRUCT (0x33ff).
CHILD_INIT = "6133ff6000526002601ef3"
#: Receives 2 wei from the factory, a plain account nobody holds the key of.
SINK = "0x" + "aa" * 20
#: The target of a block of three plain transfers.
PAYEE = "0x" + "ab" * 20
#: Put in place with anvil_setCode: LIB returns 0xaa, REVERTER reverts without data.
LIB, REVERTER = "0x" + "1b" * 20, "0x" + "1c" * 20
#: Runtime of the factory: CREATE a child with 1 wei, call it (it self-destructs, sending the
#: wei back), CREATE2 another child (salt 42), send 2 wei to SINK.
FACTORY = (
    "6a" + CHILD_INIT + "600052"              # mstore(0, init code): bytes 21..31
    "600b60156001f0"                          # create(1, 21, 11)
    "60006000600060006000855af15050"          # call(gas, child, 0, 0, 0, 0, 0); pop; pop
    "602a600b60156000f550"                    # create2(0, 21, 11, 42); pop
    "60006000600060006002" "73" + SINK[2:] + "5af150"  # call(gas, SINK, 2, 0, 0, 0, 0); pop
    "00"
)
#: Runtime of the caller: DELEGATECALL, STATICCALL and CALLCODE (1 wei) to LIB, a call to the
#: sha256 precompile, and a call with 1 wei to REVERTER.
CALLER = (
    "6000600060006000" "73" + LIB[2:] + "5af450"
    "6000600060006000" "73" + LIB[2:] + "5afa50"
    "60006000600060006001" "73" + LIB[2:] + "5af250"
    "60006000600060006000" "6002" "5af150"
    "60006000600060006001" "73" + REVERTER[2:] + "5af150"
    "00"
)
UNKNOWN_HASH = "0x" + "ab" * 32


def deployer(runtime: str) -> str:
    """Init code that returns ``runtime`` (shorter than 256 bytes)."""
    size = len(runtime) // 2
    return "0x60" + f"{size:02x}" + "80600b6000396000f3" + runtime


# -- what two correct nodes cannot share -------------------------------------------------------

#: Header fields two correct nodes fill differently: the block hashes (they cover the rest),
#: the state root (the coinbase's balance differs), the timestamp, mixHash (anvil's
#: prevrandao is random), the miner (anvil: zero; ailedger: its validator),
#: parentBeaconBlockRoot (no beacon chain: anvil writes zeros, py-evm the empty trie's root)
#: and the size, the length of the encoded block, which these change by a byte.
BLOCK_INHERENT = ("hash", "parentHash", "stateRoot", "timestamp", "mixHash", "miner", "parentBeaconBlockRoot", "size")


def block_view(block: dict[str, Any] | None) -> dict[str, Any] | None:
    if block is None:
        return None
    out = {k: v for k, v in block.items() if k not in BLOCK_INHERENT}
    if isinstance(out.get("transactions"), list):
        out["transactions"] = [tx_view(t) if isinstance(t, dict) else t for t in out["transactions"]]
    return out


def tx_view(tx: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tx.items() if k not in ("blockHash", "blockTimestamp")}


def receipt_view(receipt: dict[str, Any]) -> dict[str, Any]:
    # blobGasPrice: anvil puts it on every receipt; ailedger's chain carries no blobs
    out = {k: v for k, v in receipt.items() if k not in ("blockHash", "timestamp", "blobGasPrice")}
    if isinstance(out.get("logs"), list):
        out["logs"] = [{k: v for k, v in log.items() if k not in ("blockHash", "blockTimestamp")} for log in out["logs"]]
    return out


def search_view(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "txs": [tx_view(t) for t in result["txs"]],
        "receipts": [receipt_view(r) for r in result["receipts"]],
        "firstPage": result["firstPage"], "lastPage": result["lastPage"],
        **({"nextBlock": result["nextBlock"]} if "nextBlock" in result else {}),
    }


# -- the scenario -------------------------------------------------------------------------------


def run_otterscan(url: str) -> dict[str, Any]:
    n = Node(url)
    f: dict[str, Any] = {}
    k0, k1, k2, k3 = dev_key(0), dev_key(1), dev_key(2), dev_key(3)
    a0 = k0.address.lower()
    artifact = load_artifact()

    def send(raw: str) -> dict[str, Any]:
        return n.wait(n("eth_sendRawTransaction", raw))

    n("anvil_setCode", LIB, "0x60aa60005260206000f3")
    n("anvil_setCode", REVERTER, "0x60006000fd")
    txs: dict[str, dict[str, Any]] = {}
    txs["deploy_factory"] = send(_sign(k0.key, 0, None, deployer(FACTORY), gas=500_000))
    factory = txs["deploy_factory"]["contractAddress"]
    txs["factory_run"] = send(_sign(k0.key, 1, factory, "0x", value=10, gas=500_000))
    txs["deploy_caller"] = send(_sign(k0.key, 2, None, deployer(CALLER), gas=500_000))
    caller = txs["deploy_caller"]["contractAddress"]
    txs["caller_run"] = send(_sign(k0.key, 3, caller, "0x1234", value=10, gas=500_000))
    limit = (1000).to_bytes(32, "big").hex()
    txs["deploy_demo"] = send(_sign(k0.key, 4, None, artifact["bytecode"] + limit, gas=1_500_000))
    demo = txs["deploy_demo"]["contractAddress"]
    selector = keccak(text="set(uint256,uint256,string)")[:4].hex()

    def set_call(key: int, value: int, note: str) -> str:
        return "0x" + selector + encode(["uint256", "uint256", "string"], [key, value, note]).hex()

    txs["demo_set"] = send(_sign(k0.key, 5, demo, set_call(1, 5, "x")))
    txs["demo_revert_reason"] = send(_sign(k0.key, 6, demo, set_call(0, 1, "z"), gas=100_000))
    txs["demo_custom_error"] = send(_sign(k0.key, 7, demo, set_call(1, 5000, "z"), gas=100_000))
    txs["demo_out_of_gas"] = send(_sign(k0.key, 8, demo, set_call(2, 5, "y"), gas=40_000))
    # three transactions in one block, the middle one through the caller (its reverted inner call)
    n("evm_setAutomine", False)
    hashes = [
        n("eth_sendRawTransaction", _sign(k1.key, 0, PAYEE, "0x12345678aabbccdd", value=1, gas=50_000)),
        n("eth_sendRawTransaction", _sign(k2.key, 0, caller, "0x", value=3, gas=500_000)),
        n("eth_sendRawTransaction", _sign(k3.key, 0, PAYEE, "0xdeadbeef", value=3, gas=50_000)),
    ]
    n("evm_mine")
    n("evm_setAutomine", True)
    for i, h in enumerate(hashes):
        txs[f"batch_{i}"] = n.wait(h)
    txs["transfer"] = send(_sign(k0.key, 9, PAYEE, "0x", value=7, gas=21_000))
    head = int(n("eth_blockNumber"), 16)
    batch_block = int(txs["batch_0"]["blockNumber"], 16)
    create2_child = _create2_address(factory, 42, CHILD_INIT)
    first_child = _create_address(factory, 1)

    f["status"] = {name: r["status"] for name, r in txs.items()}
    f["batch_same_block"] = len({r["blockNumber"] for name, r in txs.items() if name.startswith("batch")}) == 1
    f["api_level"] = n.outcome("ots_getApiLevel")
    f["internal_operations"] = {name: n("ots_getInternalOperations", r["transactionHash"]) for name, r in txs.items()}
    f["trace"] = {name: n("ots_traceTransaction", r["transactionHash"]) for name, r in txs.items()}
    f["transaction_error"] = {name: n("ots_getTransactionError", r["transactionHash"]) for name, r in txs.items()}
    f["has_code"] = {
        "factory": n("ots_hasCode", factory, "latest"),
        "factory_at_genesis": n("ots_hasCode", factory, 0),
        "factory_by_hex": n("ots_hasCode", factory, hex(head)),
        "factory_no_block": n("ots_hasCode", factory),
        "account": n("ots_hasCode", a0, "latest"),
        "lib": n("ots_hasCode", LIB, "latest"),
        "destroyed_child": n("ots_hasCode", first_child, "latest"),
        "create2_child": n("ots_hasCode", create2_child, "latest"),
    }
    details, details_by_hash, block_txs, headers = {}, {}, {}, {}
    for number in range(head + 1):
        block_hash = n("eth_getBlockByNumber", hex(number), False)["hash"]
        d = n("ots_getBlockDetails", number)
        details[number] = {**d, "block": block_view(d["block"])}
        by_hash = n("ots_getBlockDetailsByHash", block_hash)
        details_by_hash[number] = {**by_hash, "block": block_view(by_hash["block"])}
        bt = n("ots_getBlockTransactions", number, 0, 25)
        block_txs[number] = {"fullblock": block_view(bt["fullblock"]),
                             "receipts": [receipt_view(r) for r in bt["receipts"]]}
        headers[number] = block_view(n("erigon_getHeaderByNumber", number))
    f["block_details"], f["block_details_by_hash"], f["block_transactions"] = details, details_by_hash, block_txs
    f["headers"] = headers
    f["headers_other"] = {
        "latest_is_head": n("erigon_getHeaderByNumber", "latest")["number"] == hex(head),
        "by_hex": block_view(n("erigon_getHeaderByNumber", hex(batch_block))),
        "future": n.outcome("erigon_getHeaderByNumber", head + 100),
    }
    f["block_details_other"] = {
        "by_hex": block_view(n("ots_getBlockDetails", hex(batch_block))["block"]),
        "latest": block_view(n("ots_getBlockDetails", "latest")["block"]),
        "future": n.code("ots_getBlockDetails", head + 100),
        "unknown_hash": n.code("ots_getBlockDetailsByHash", UNKNOWN_HASH),
        "future_transactions": n.code("ots_getBlockTransactions", head + 100, 0, 25),
    }
    pages = {}
    for page in (0, 1, 5):
        bt = n("ots_getBlockTransactions", batch_block, page, 2)
        pages[page] = {"fullblock": block_view(bt["fullblock"]),
                       "receipts": [receipt_view(r) for r in bt["receipts"]]}
    f["block_transaction_pages"] = pages

    searched = {"a0": a0, "factory": factory, "first_child": first_child, "create2_child": create2_child,
                "sink": SINK, "payee": PAYEE, "lib": LIB, "reverter": REVERTER, "demo": demo,
                "caller": caller, "k1": k1.address.lower(), "k2": k2.address.lower(), "nobody": "0x" + "99" * 20}
    cursors = {"zero": 0, "batch": batch_block, "middle": 4, "past_head": head + 5}
    search: dict[str, Any] = {}
    for name, address in searched.items():
        for cursor_name, cursor in cursors.items():
            for size in (1, 2, 25):
                for method in ("ots_searchTransactionsBefore", "ots_searchTransactionsAfter"):
                    key = f"{name}/{method[len('ots_searchTransactions'):]}/{cursor_name}/{size}"
                    search[key] = search_view(n(method, address, cursor, size))
    f["search"] = search
    f["search_page_size_zero"] = search_view(n("ots_searchTransactionsBefore", a0, 0, 0))
    f["sender_and_nonce"] = {
        **{f"a0/{i}": n("ots_getTransactionBySenderAndNonce", a0, i) for i in range(11)},
        "a0/hex": n("ots_getTransactionBySenderAndNonce", a0, "0x3"),
        "k2/0": n("ots_getTransactionBySenderAndNonce", k2.address, 0),
        "k2/1": n("ots_getTransactionBySenderAndNonce", k2.address, 1),
        "nobody/0": n("ots_getTransactionBySenderAndNonce", "0x" + "99" * 20, 0),
    }
    f["tx_hashes"] = {name: r["transactionHash"] for name, r in txs.items()}
    f["contract_creator"] = {
        name: n("ots_getContractCreator", address)
        for name, address in (("factory", factory), ("first_child", first_child), ("create2_child", create2_child),
                              ("caller", caller), ("demo", demo), ("lib", LIB), ("account", a0))
    }
    f["addresses"] = {"factory": factory, "caller": caller, "demo": demo, "create2_child": create2_child,
                      "first_child": first_child, "head": head, "batch_block": batch_block}
    return f


def _create_address(sender: str, nonce: int) -> str:
    from eth._utils.address import generate_contract_address

    return "0x" + generate_contract_address(bytes.fromhex(sender[2:]), nonce).hex()


def _create2_address(sender: str, salt: int, init_code: str) -> str:
    raw = keccak(b"\xff" + bytes.fromhex(sender[2:]) + salt.to_bytes(32, "big") + keccak(bytes.fromhex(init_code)))
    return "0x" + raw[-20:].hex()

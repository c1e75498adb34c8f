"""Handlers of each namespace against an in-process dev chain (a real in-memory ledger and
py-evm), through the dispatcher: what they answer, what they refuse, and the bounds they keep.
"""

from __future__ import annotations

import rlp
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak

import ai_precompiles
from ai_precompiles.addresses import DATANETS, MODEL_REGISTRY
from node.chain.dev import MAX_MINE_BLOCKS
from node.rpc.dev import MINE_STEP
from node.rpc.server import RPCServer
from tests.unit.node.rpc.inprocess import ACCOUNTS, dev_server, error, reply, result

A0, A1 = (a.address for a in ACCOUNTS)
#: Initcode that returns NUMBER and TIMESTAMP: NUMBER PUSH0 MSTORE TIMESTAMP PUSH1 32 MSTORE
#: PUSH1 64 PUSH0 RETURN. eth_call without "to" runs it and answers what it returns.
NUMBER_AND_TIME = "0x" + "435f52" + "42602052" + "60405ff3"


def test_web3_net_and_chain_identity() -> None:
    server = dev_server()
    chain_id = server.core.ledger.chain_id
    assert result(server, "web3_sha3", "0x") == "0x" + keccak(b"").hex()
    assert result(server, "net_version") == str(chain_id)
    assert result(server, "eth_chainId") == hex(chain_id)
    assert result(server, "web3_clientVersion").startswith("ailedger/")
    assert error(server, "eth_chainId", "extra") == {"code": -32602, "message": "too many arguments, want at most 0"}


def test_a_sent_transaction_is_mined_and_read_back_every_way() -> None:
    server = dev_server()
    before = int(result(server, "eth_getBalance", A1, "latest"), 16)
    tx_hash = result(server, "eth_sendTransaction", {"from": A0, "to": A1, "value": "0x5"})
    receipt = result(server, "eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["blockNumber"] == "0x1"
    assert result(server, "eth_getTransactionByHash", tx_hash)["from"] == A0.lower()
    assert int(result(server, "eth_getBalance", A1, "latest"), 16) == before + 5
    assert int(result(server, "eth_getBalance", A1, "earliest"), 16) == before
    assert result(server, "eth_getTransactionCount", A0, "latest") == "0x1"
    block = result(server, "eth_getBlockByNumber", "latest", True)
    assert [t["hash"] for t in block["transactions"]] == [tx_hash]
    assert result(server, "eth_getBlockTransactionCountByHash", block["hash"]) == "0x1"
    raw = bytes.fromhex(result(server, "eth_getRawTransactionByHash", tx_hash)[2:])
    assert "0x" + keccak(raw).hex() == tx_hash
    assert result(server, "eth_getRawTransactionByBlockNumberAndIndex", "0x1", "0x0") == "0x" + raw.hex()
    assert result(server, "eth_getBlockReceipts", "latest")[0]["transactionHash"] == tx_hash
    # personal_sign is eth_sign with its parameters the other way round
    signed = result(server, "personal_sign", "0x68690a", A0)
    assert signed == result(server, "eth_sign", A0, "0x68690a")
    assert Account.recover_message(encode_defunct(b"hi\n"), signature=bytes.fromhex(signed[2:])) == A0
    assert error(server, "eth_sign", "0x" + "11" * 20, "0x00")["message"].startswith("No Signer available")


def test_the_pool_shows_in_pending_reads_until_a_block_is_mined() -> None:
    server = dev_server()
    assert result(server, "evm_setAutomine", False) is None
    tx_hash = result(server, "eth_sendTransaction", {"from": A0, "to": A1, "value": "0x1"})
    assert result(server, "eth_getTransactionCount", A0, "pending") == "0x1"
    assert result(server, "eth_getTransactionCount", A0, "latest") == "0x0"
    assert result(server, "txpool_status") == {"pending": "0x1", "queued": "0x0"}
    assert result(server, "eth_getBlockByNumber", "pending", False)["transactions"] == [tx_hash]
    assert result(server, "eth_getTransactionByHash", tx_hash)["blockNumber"] is None
    assert result(server, "evm_mine") == "0x0"
    assert result(server, "eth_getTransactionByHash", tx_hash)["blockNumber"] == "0x1"
    assert result(server, "txpool_status")["pending"] == "0x0"


def test_eth_call_block_overrides_run_the_call_in_a_simulated_block() -> None:
    server = dev_server()
    out = result(server, "eth_call", {"from": A0, "data": NUMBER_AND_TIME}, "latest", None,
                 {"number": "0x99", "time": "0x12345"})
    assert out == "0x" + (0x99).to_bytes(32, "big").hex() + (0x12345).to_bytes(32, "big").hex()
    refused = error(server, "eth_estimateGas", {"from": A0, "data": NUMBER_AND_TIME}, "latest", None, {"number": "0x1"})
    assert refused["code"] == -32602 and "not supported by eth_estimateGas" in refused["message"]
    unknown = error(server, "eth_call", {"from": A0, "data": NUMBER_AND_TIME}, "latest", None, {"difficulty": "0x1"})
    assert unknown["code"] == -32602 and "unsupported block overrides" in unknown["message"]
    reverted = error(server, "eth_call", {"from": A0, "data": "0x5f5ffd"})  # PUSH0 PUSH0 REVERT
    assert reverted["code"] == 3 and reverted["data"] == "0x"


def test_mining_many_blocks_runs_in_jobs_and_is_bounded() -> None:
    server = dev_server()
    first = server.dispatch({"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": [{"blocks": 2 * MINE_STEP + 1}]})
    assert not isinstance(first, dict), "a long evm_mine hands back after one job"
    assert server.core.ledger.head.block_number == MINE_STEP
    answer = first
    while not isinstance(answer, dict):
        answer = answer.run()
    assert answer["result"] == "0x0" and server.core.ledger.head.block_number == 2 * MINE_STEP + 1
    # one cap for evm_mine and anvil_mine (and their hardhat_ twin)
    for method, params in (("evm_mine", [{"blocks": MAX_MINE_BLOCKS + 1}]), ("anvil_mine", [hex(MAX_MINE_BLOCKS + 1)]),
                           ("hardhat_mine", [hex(MAX_MINE_BLOCKS + 1)])):
        refused = error(server, method, *params)
        assert refused["code"] == -32602 and str(MAX_MINE_BLOCKS) in refused["message"]
    assert server.core.ledger.head.block_number == 2 * MINE_STEP + 1
    head = server.core.ledger.head
    assert result(server, "anvil_mine", "0x3", "0x10") is None
    times = [int(result(server, "eth_getBlockByNumber", hex(head.block_number + i), False)["timestamp"], 16)
             for i in range(4)]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [16, 16, 16]
    # a timestamp that is no JSON number or hex string is a typed refusal, not an internal error
    assert error(server, "evm_mine", [1])["code"] == -32602


def test_dev_state_edits_snapshots_and_impersonation() -> None:
    server = dev_server()
    stranger = "0x" + "42" * 20
    snapshot = result(server, "evm_snapshot")
    assert result(server, "anvil_setBalance", stranger, hex(10**18)) is None
    assert result(server, "anvil_setCode", stranger, "0x5f5ff3") is None
    assert result(server, "eth_getCode", stranger, "latest") == "0x5f5ff3"
    assert error(server, "eth_sendTransaction", {"from": stranger, "to": A1})["message"].startswith("No Signer")
    assert result(server, "anvil_impersonateAccount", stranger) is None
    tx_hash = result(server, "eth_sendTransaction", {"from": stranger, "to": A1, "value": "0x1"})
    assert result(server, "eth_getTransactionReceipt", tx_hash)["from"] == stranger
    assert result(server, "evm_revert", snapshot) is True
    assert result(server, "eth_getBalance", stranger, "latest") == "0x0"
    assert result(server, "eth_blockNumber") == "0x0"


def _send(server: RPCServer, to: bytes, data: bytes) -> None:
    tx_hash = result(server, "eth_sendTransaction", {"from": A0, "to": "0x" + to.hex(), "data": "0x" + data.hex()})
    assert result(server, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"


def test_ai_listings_page_through_what_the_precompiles_hold() -> None:
    server = dev_server()
    create = ai_precompiles.MODULES["Datanets"].abi.by_name["createDatanet"]
    register = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerBaseModel"]
    for i in range(3):
        _send(server, DATANETS, create.encode_args(f"d{i}", "x", "", "MIT", [bytes.fromhex(A1[2:])], 1, 1000))
        _send(server, MODEL_REGISTRY, register.encode_args(bytes([i + 1]) * 32, b"\x01" * 32, b"\x02" * 32, "MIT"))
    page = result(server, "ai_listDatanets", {"offset": 1, "limit": 1})
    assert page["total"] == 3 and [d["id"] for d in page["datanets"]] == [2]
    assert [d["name"] for d in result(server, "ai_listDatanets")["datanets"]] == ["d0", "d1", "d2"]
    models = result(server, "ai_listModels", {"offset": 1, "limit": 10**9})
    assert models["total"] == 3 and [m["id"] for m in models["models"]] == [2, 3]
    assert all("children" not in m for m in models["models"])
    assert result(server, "ai_listModels", {"offset": 5})["models"] == []
    assert error(server, "ai_listModels", [1])["code"] == -32602
    assert result(server, "ai_getModel", 1)["id"] == 1
    assert error(server, "ai_getModel", 4)["code"] == -32001
    deposit = result(server, "ai_getDeposit", A0)
    assert deposit == {"balance": "0x0", "withdrawalPending": "0x0", "unlockTime": "0x0"}


def test_raw_transactions_decode_to_the_same_transaction() -> None:
    server = dev_server()
    tx_hash = result(server, "eth_sendTransaction", {"from": A0, "to": A1, "value": "0x7"})
    raw = bytes.fromhex(result(server, "eth_getRawTransactionByBlockHashAndIndex",
                               result(server, "eth_getBlockByNumber", "0x1", False)["hash"], "0x0")[2:])
    assert raw[0] == 2  # an EIP-1559 transaction, typed envelope
    fields = rlp.decode(raw[1:])
    assert int.from_bytes(fields[6], "big") == 7 and "0x" + keccak(raw).hex() == tx_hash
    assert reply(server, "eth_getRawTransactionByBlockNumberAndIndex", "0x9", "0x0")["result"] is None

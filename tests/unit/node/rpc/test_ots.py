"""The ots_ and erigon_ methods against an in-process dev chain (a real in-memory ledger and
py-evm), through the dispatcher: hostile parameters, the bounds every address search keeps
and the cursor that goes on from them, and the traces' edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from node.rpc import load_methods
from node.rpc import ots as ots_module
from node.rpc.registry import CHAIN, METHODS, READ
from node.rpc.server import RPCServer
from tests.unit.node.rpc.inprocess import ACCOUNTS, dev_server, error, reply, result

A0, A1 = (a.address.lower() for a in ACCOUNTS)
PAYEE = "0x" + "ab" * 20
UNKNOWN_HASH = "0x" + "ab" * 32
#: CALL(gas, PAYEE, 0, 0, 0, 0, 0); STOP: a contract whose every run names PAYEE internally.
CALLS_PAYEE = "60006000600060006000" "73" + PAYEE[2:] + "5af100"
#: CALL(gas, ADDRESS, 0, 0, 0, 0, 0); STOP: calls itself until the gas runs out.
CALLS_ITSELF = "6000600060006000600030" "5af100"


def deploy(server: RPCServer, runtime: str) -> str:
    init = "0x60" + f"{len(runtime) // 2:02x}" + "80600b6000396000f3" + runtime
    tx = result(server, "eth_sendTransaction", {"from": A0, "data": init, "gas": hex(300_000)})
    return str(result(server, "eth_getTransactionReceipt", tx)["contractAddress"])


def send(server: RPCServer, to: str, data: str = "0x", value: int = 0, sender: str = A1, gas: int = 200_000) -> str:
    return str(result(server, "eth_sendTransaction",
                      {"from": sender, "to": to, "data": data, "value": hex(value), "gas": hex(gas)}))


def follow(server: RPCServer, method: str, address: str, size: int = 25) -> tuple[list[str], int]:
    """Every hash a search finds, following nextBlock from the first page to the end, and
    the number of calls it took."""
    hashes: list[str] = []
    cursor, calls = 0, 0
    while True:
        calls += 1
        out = result(server, method, address, cursor, size)
        hashes += [t["hash"] for t in out["txs"]]
        end = out["lastPage"] if method.endswith("Before") else out["firstPage"]
        if end:
            assert "nextBlock" not in out
            return hashes, calls
        cursor = out["nextBlock"]
        assert calls < 1_000


# -- declarations and hostile parameters ----------------------------------------------------------


def test_each_method_declares_its_parameters_and_lane() -> None:
    load_methods()
    declared = {name: (m.max_params, m.lane) for name, m in METHODS.items() if name.startswith(("ots_", "erigon_"))}
    assert declared == {
        "ots_getApiLevel": (0, CHAIN), "ots_hasCode": (2, CHAIN), "erigon_getHeaderByNumber": (1, CHAIN),
        "ots_getInternalOperations": (1, READ), "ots_traceTransaction": (1, READ),
        "ots_getTransactionError": (1, READ), "ots_getBlockDetails": (1, READ),
        "ots_getBlockDetailsByHash": (1, READ), "ots_getBlockTransactions": (3, READ),
        "ots_searchTransactionsBefore": (3, READ), "ots_searchTransactionsAfter": (3, READ),
        "ots_getTransactionBySenderAndNonce": (2, READ), "ots_getContractCreator": (1, READ),
    }


HOSTILE: list[tuple[str, list[Any], int]] = [
    ("ots_getApiLevel", [1], -32602),
    ("ots_hasCode", ["0x12", "latest"], -32602),
    ("ots_hasCode", [A0, -1], -32602),
    ("ots_hasCode", [A0, True], -32602),
    ("ots_hasCode", [A0, 2**70], -32602),
    ("ots_hasCode", [A0, 10**6], -32602),  # past the head, as eth_getCode answers
    ("ots_hasCode", [A0, "latest", 1], -32602),
    ("ots_getInternalOperations", ["0x1234"], -32602),
    ("ots_getInternalOperations", [UNKNOWN_HASH], -32000),
    ("ots_getInternalOperations", [], -32602),
    ("ots_traceTransaction", [UNKNOWN_HASH], -32000),
    ("ots_traceTransaction", [{"hash": UNKNOWN_HASH}], -32602),
    ("ots_getTransactionError", [UNKNOWN_HASH], -32000),
    ("ots_getTransactionError", [UNKNOWN_HASH, 1], -32602),
    ("ots_getBlockDetails", [{}], -32602),
    ("ots_getBlockDetails", ["0xzz"], -32602),
    ("ots_getBlockDetails", [1.5], -32602),
    ("ots_getBlockDetails", [2**64], -32602),
    ("ots_getBlockDetails", [10**6], -32001),
    ("ots_getBlockDetailsByHash", ["0x12"], -32602),
    ("ots_getBlockDetailsByHash", [UNKNOWN_HASH], -32001),
    ("ots_getBlockTransactions", [0, 0, ots_module.MAX_PAGE_SIZE + 1], -32602),
    ("ots_getBlockTransactions", [0, -1, 5], -32602),
    ("ots_getBlockTransactions", [0, 2**64, 5], -32602),
    ("ots_getBlockTransactions", [0, "x", 5], -32602),
    ("ots_getBlockTransactions", [0, 0], -32602),
    ("ots_getBlockTransactions", [10**6, 0, 5], -32001),
    ("ots_searchTransactionsBefore", [A0, 0, ots_module.MAX_PAGE_SIZE + 1], -32602),
    ("ots_searchTransactionsBefore", ["0x12", 0, 5], -32602),
    ("ots_searchTransactionsBefore", [A0, -1, 5], -32602),
    ("ots_searchTransactionsBefore", [A0, 0, "25"], -32602),
    ("ots_searchTransactionsBefore", [A0, 2**64, 5], -32602),
    ("ots_searchTransactionsAfter", [A0, None, 5], -32602),
    ("ots_searchTransactionsAfter", [A0, 0, 10**30], -32602),
    ("ots_getTransactionBySenderAndNonce", [A0, -1], -32602),
    ("ots_getTransactionBySenderAndNonce", [A0, 2**64], -32602),
    ("ots_getTransactionBySenderAndNonce", ["x", 0], -32602),
    ("ots_getContractCreator", ["0x12"], -32602),
    ("ots_getContractCreator", [A0, 1], -32602),
    ("erigon_getHeaderByNumber", [{}], -32602),
    ("erigon_getHeaderByNumber", [2**70], -32602),
    ("erigon_getHeaderByNumber", [], -32602),
]


@pytest.fixture(scope="module")
def server() -> RPCServer:
    s = dev_server()
    send(s, A0, value=1)
    return s


@pytest.mark.parametrize(("method", "params", "code"), HOSTILE, ids=[f"{m}{p}"[:60] for m, p, _ in HOSTILE])
def test_hostile_parameters_get_typed_errors(server: RPCServer, method: str, params: list[Any], code: int) -> None:
    e = error(server, method, *params)
    assert e["code"] == code and e["message"], e
    assert result(server, "eth_blockNumber") == "0x1"  # and nothing moved


def test_unknown_and_far_values_answer_plainly(server: RPCServer) -> None:
    head = int(result(server, "eth_blockNumber"), 16)
    page = result(server, "ots_getBlockTransactions", head, 2**63, ots_module.MAX_PAGE_SIZE)
    assert page["receipts"] == [] and page["fullblock"]["transactions"] == []
    assert page["fullblock"]["transactionCount"] == 1
    assert result(server, "erigon_getHeaderByNumber", 10**6) is None
    assert result(server, "ots_getTransactionBySenderAndNonce", A0, 2**64 - 1) is None
    assert result(server, "ots_getContractCreator", PAYEE) is None
    far = result(server, "ots_searchTransactionsBefore", A0, 2**64 - 1, 5)  # starts at the head, not at 2**64
    assert far["firstPage"] and far["lastPage"] and len(far["txs"]) == 1
    assert result(server, "ots_getApiLevel") == 8


# -- bounded address searches --------------------------------------------------------------------


def test_a_search_walks_a_bounded_number_of_blocks_and_says_where_to_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    s = dev_server()
    first = send(s, PAYEE, value=1)
    result(s, "anvil_mine", hex(99))
    head = int(result(s, "eth_blockNumber"), 16)
    assert head == 100
    monkeypatch.setattr(ots_module, "MAX_SEARCH_BLOCKS", 30)
    out = result(s, "ots_searchTransactionsBefore", PAYEE, 0, 25)
    assert out == {"txs": [], "receipts": [], "firstPage": True, "lastPage": False, "nextBlock": head - 29}
    # a cursor far past the head costs no more: the walk starts at the head
    assert result(s, "ots_searchTransactionsBefore", PAYEE, 10**12, 25)["nextBlock"] == head - 29
    assert follow(s, "ots_searchTransactionsBefore", PAYEE) == ([first], 4)
    after = result(s, "ots_searchTransactionsAfter", PAYEE, 0, 25)
    assert [t["hash"] for t in after["txs"]] == [first] and after["lastPage"] and not after["firstPage"]
    assert after["nextBlock"] == 30
    assert follow(s, "ots_searchTransactionsAfter", PAYEE) == ([first], 4)


def test_a_search_replays_a_bounded_number_of_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    s = dev_server()
    contract = deploy(s, CALLS_PAYEE)
    calls = [send(s, contract) for _ in range(6)]
    everything = follow(s, "ots_searchTransactionsBefore", PAYEE)
    assert everything == (list(reversed(calls)), 1)  # PAYEE only ever appears inside a call
    monkeypatch.setattr(ots_module, "MAX_SEARCH_REPLAYS", 2)
    first_page = result(s, "ots_searchTransactionsBefore", PAYEE, 0, 25)
    assert [t["hash"] for t in first_page["txs"]] == [calls[-1], calls[-2]] and not first_page["lastPage"]
    assert follow(s, "ots_searchTransactionsBefore", PAYEE) == (list(reversed(calls)), 4)
    forward, pages = follow(s, "ots_searchTransactionsAfter", PAYEE)
    assert sorted(forward) == sorted(calls) and pages == 4  # each page newest first, pages oldest first
    monkeypatch.setattr(ots_module, "MAX_SEARCH_REPLAYS", 100)
    monkeypatch.setattr(ots_module, "MAX_SEARCH_REPLAY_GAS", 1)  # the first replay of each call still runs
    assert follow(s, "ots_searchTransactionsBefore", PAYEE) == (list(reversed(calls)), 7)
    monkeypatch.setattr(ots_module, "MAX_SEARCH_REPLAY_GAS", 10**9)
    monkeypatch.setattr(ots_module, "MAX_SEARCH_TRANSACTIONS", 3)
    assert follow(s, "ots_searchTransactionsBefore", PAYEE) == (list(reversed(calls)), 3)


def test_a_page_holds_its_last_block_whole() -> None:
    s = dev_server()
    result(s, "evm_setAutomine", False)
    batch = [send(s, PAYEE, value=1, sender=sender) for sender in (A0, A1)]
    result(s, "evm_mine")
    result(s, "evm_setAutomine", True)
    later = send(s, PAYEE, value=1)
    batch.sort(key=lambda h: int(result(s, "eth_getTransactionReceipt", h)["transactionIndex"], 16), reverse=True)
    out = result(s, "ots_searchTransactionsBefore", PAYEE, 0, 2)
    assert [t["hash"] for t in out["txs"]] == [later, *batch]  # 3 > 2: block 1 whole, newest first
    assert out["firstPage"] and out["lastPage"]
    out = result(s, "ots_searchTransactionsBefore", PAYEE, 0, 1)
    assert [t["hash"] for t in out["txs"]] == [later] and out["nextBlock"] == 2


def test_matches_on_a_production_node_where_senders_are_looked_at_only_when_they_can_send() -> None:
    """Off a dev chain the search recovers senders only for an address that can send (a
    nonce and no contract code): every way of naming an address still matches."""
    s = dev_server()
    contract = deploy(s, CALLS_PAYEE)
    by_call = send(s, contract)
    # calldata heavy enough that the receipt sits at the calldata floor: the state decides
    heavy = send(s, contract, data="0x" + "11" * 2_000, gas=500_000)
    receipt = result(s, "eth_getTransactionReceipt", heavy)
    floor = 21_000 + 10 * 4 * 2_000
    assert int(receipt["gasUsed"], 16) == floor
    transfer = send(s, PAYEE, value=1, sender=A0)
    dev, s.context.dev = s.context.dev, None
    try:
        assert follow(s, "ots_searchTransactionsBefore", PAYEE)[0] == [transfer, heavy, by_call]
        assert follow(s, "ots_searchTransactionsBefore", contract)[0][:2] == [heavy, by_call]
        a0_hashes = follow(s, "ots_searchTransactionsBefore", A0)[0]
        assert transfer in a0_hashes and by_call not in a0_hashes  # A1 sent that one
        assert follow(s, "ots_searchTransactionsBefore", "0x" + "99" * 20)[0] == []
    finally:
        s.context.dev = dev


# -- traces ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode present:DeprecationWarning")  # py-evm's, on every run
def test_a_self_destruct_that_fails_is_neither_an_operation_nor_a_trace_entry() -> None:
    s = dev_server()
    destroyer = deploy(s, "33ff")  # CALLER SELFDESTRUCT
    # STATICCALL(gas, destroyer, 0, 0, 0, 0): the SELFDESTRUCT inside fails (write protection)
    static = deploy(s, "600060006000600073" + destroyer[2:] + "5afa00")
    tx = send(s, static)
    trace = result(s, "ots_traceTransaction", tx)
    assert [(e["type"], e["depth"]) for e in trace] == [("CALL", 0), ("STATICCALL", 1)]
    assert result(s, "ots_getInternalOperations", tx) == []
    # called plainly, it runs: the entry follows its frame, one level deeper
    ran = send(s, destroyer, value=5)
    trace = result(s, "ots_traceTransaction", ran)
    assert [(e["type"], e["depth"], e["from"], e["to"]) for e in trace] == [
        ("CALL", 0, A1, destroyer), ("SELFDESTRUCT", 1, destroyer, A1)]
    assert trace[1]["value"] == "0x5"
    assert result(s, "ots_getInternalOperations", ran) == [{"type": 1, "from": destroyer, "to": A1, "value": "0x5"}]


def test_a_deep_call_tree_is_traced_without_recursion() -> None:
    s = dev_server()
    recursive = deploy(s, CALLS_ITSELF)
    tx = send(s, recursive, gas=5_000_000)
    trace = result(s, "ots_traceTransaction", tx)
    depths = [e["depth"] for e in trace]
    assert depths == list(range(len(depths))) and len(depths) > 200
    assert reply(s, "ots_getInternalOperations", tx)["result"] == []
    assert tx in [t["hash"] for t in result(s, "ots_searchTransactionsBefore", recursive, 0, 5)["txs"]]


def test_contract_creator_and_sender_nonce_find_their_block_by_binary_search() -> None:
    s = dev_server()
    result(s, "anvil_mine", hex(50))
    contract = deploy(s, CALLS_PAYEE)
    result(s, "anvil_mine", hex(50))
    created = result(s, "ots_getContractCreator", contract)
    receipt_block = None
    for tx in result(s, "ots_searchTransactionsBefore", contract, 0, 5)["txs"]:
        receipt_block = tx["blockNumber"]
        assert created == {"hash": tx["hash"], "creator": A0}
    assert receipt_block == hex(51)
    assert result(s, "ots_getTransactionBySenderAndNonce", A0, 0) == created["hash"]
    assert result(s, "ots_getTransactionBySenderAndNonce", A0, 1) is None

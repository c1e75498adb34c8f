"""Otterscan support: the `ots_` namespace and erigon_getHeaderByNumber on a real `ailedger dev`.

- The differential: one scenario (tests/integration/rpc/ethtools/otterscan.py) on a fresh anvil
  and a fresh `ailedger dev`, every method asked about every transaction and block; the answers
  must be equal once the differences docs/ethtools.md lists are normalised, exactly those.
  `check_ots_facts` then checks what a correct node says on its own, so that two equally wrong
  nodes cannot pass.
- The chain's native AI transaction types (a contribution, an adapter registration, an
  inference receipt) in every ots_ method.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak

if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.integration.rpc.ethtools.otterscan import (  # noqa: E402
    CALLER,
    FACTORY,
    LIB,
    PAYEE,
    REVERTER,
    SINK,
    run_otterscan,
)
from tests.integration.rpc.test_ethtools import AILEDGER_ARGS, ANVIL_ARGS, _diff  # noqa: E402
from tests.support.procs import rpc, start_ailedger, start_anvil  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ethtools")]

#: Trace entries anvil leaves out of ots_traceTransaction (it lists calls only); ailedger
#: lists them as reth and Erigon do.
NOT_IN_ANVIL_TRACES = ("CREATE", "CREATE2", "SELFDESTRUCT")


def normalise(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Take out of both fact trees the differences docs/ethtools.md lists, and only those,
    after checking that each is what the docs say."""
    for name, entries in actual["trace"].items():
        actual["trace"][name] = [e for e in entries if e["type"] not in NOT_IN_ANVIL_TRACES]
    for result in actual["search"].values():
        # the cursor to go on from: ailedger's addition (anvil walks to the end, unbounded)
        result.pop("nextBlock", None)
    for key, result in expected["search"].items():
        if "/After/" in key:  # anvil orders a block's matches oldest first here, newest first elsewhere
            _newest_first(result)
    actual["search_page_size_zero"].pop("nextBlock")
    # a page's transactionCount: anvil counts the page, ailedger the block (Otterscan numbers
    # its pages from it)
    for page, answer in actual["block_transaction_pages"].items():
        assert answer["fullblock"].pop("transactionCount") == 3
        assert expected["block_transaction_pages"][page]["fullblock"].pop("transactionCount") == len(
            answer["receipts"])
    # a contract that destroyed itself: anvil answers its creation, ailedger null (the spec's answer)
    assert actual["contract_creator"].pop("first_child") is None
    assert expected["contract_creator"].pop("first_child")["creator"] == actual["addresses"]["factory"]


def _newest_first(result: dict[str, Any]) -> None:
    pairs = sorted(zip(result["txs"], result["receipts"], strict=True),
                   key=lambda p: (int(p[0]["blockNumber"], 16), int(p[0]["transactionIndex"], 16)), reverse=True)
    result["txs"], result["receipts"] = [p[0] for p in pairs], [p[1] for p in pairs]


def _op(kind: int, sender: str, to: str, value: int) -> dict[str, Any]:
    return {"type": kind, "from": sender.lower(), "to": to.lower(), "value": hex(value)}


def check_ots_facts(f: dict[str, Any], full_traces: bool) -> None:
    """What a correct node's answers say on their own. ``full_traces``: the traces hold
    creations and self-destructs (ailedger's, not anvil's)."""
    a = f["addresses"]
    hashes = f["tx_hashes"]
    a0 = f["search"]["a0/Before/zero/25"]["txs"][0]["from"]
    factory, caller, demo, child, child2 = a["factory"], a["caller"], a["demo"], a["first_child"], a["create2_child"]
    assert f["api_level"] == {"result": 8}
    failed = {"demo_revert_reason", "demo_custom_error", "demo_out_of_gas"}
    assert f["status"] == {name: "0x0" if name in failed else "0x1" for name in hashes}
    assert f["batch_same_block"]
    ops = f["internal_operations"]
    assert ops["deploy_factory"] == [_op(2, a0, factory, 0)]
    assert ops["factory_run"] == [_op(0, a0, factory, 10), _op(2, factory, child, 1), _op(1, child, factory, 1),
                                  _op(3, factory, child2, 0), _op(0, factory, SINK, 2)]
    assert ops["caller_run"] == [_op(0, a0, caller, 10), _op(0, caller, REVERTER, 1)]  # the reverted call too
    assert ops["demo_set"] == [] and ops["transfer"] == [_op(0, a0, PAYEE, 7)]
    errors = f["transaction_error"]
    reason = errors["demo_revert_reason"]
    assert reason[:10] == "0x08c379a0" and decode(["string"], bytes.fromhex(reason[10:]))[0] == "key must be nonzero"
    assert errors["demo_custom_error"][:10] == "0x" + keccak(text="TooLarge(uint256,uint256)")[:4].hex()
    reverted = {"demo_revert_reason", "demo_custom_error"}
    assert {n: e for n, e in errors.items() if n not in reverted} == {n: "0x" for n in hashes if n not in reverted}
    run = f["trace"]["caller_run"]
    assert [(e["type"], e["depth"]) for e in run] == [("CALL", 0)] + [
        (kind, 1) for kind in ("DELEGATECALL", "STATICCALL", "CALLCODE", "CALL", "CALL")]
    assert run[1]["to"] == run[2]["to"] == LIB and run[1]["value"] == "0xa" and run[2]["value"] == "0x0"
    assert run[1]["output"] == "0x" + "00" * 31 + "aa" and run[4]["to"] == "0x" + "00" * 19 + "02"
    assert run[4]["output"] == "0x" + hashlib.sha256(b"").hexdigest()
    assert run[5]["to"] == REVERTER and run[5]["value"] == "0x1" and run[0]["input"] == "0x1234"
    assert f["trace"]["demo_revert_reason"][0]["output"] == errors["demo_revert_reason"]
    factory_run = [(e["type"], e["depth"], e["from"], e["to"], e["value"]) for e in f["trace"]["factory_run"]]
    if full_traces:
        assert factory_run == [("CALL", 0, a0, factory, "0xa"), ("CREATE", 1, factory, child, "0x1"),
                               ("CALL", 1, factory, child, "0x0"), ("SELFDESTRUCT", 2, child, factory, "0x1"),
                               ("CREATE2", 1, factory, child2, "0x0"), ("CALL", 1, factory, SINK, "0x2")]
        assert f["trace"]["factory_run"][1]["output"] == "0x33ff"
        deploy = f["trace"]["deploy_factory"]
        assert [(e["type"], e["depth"], e["output"]) for e in deploy] == [("CREATE", 0, "0x" + FACTORY)]
        assert f["trace"]["deploy_caller"][0]["output"] == "0x" + CALLER
    else:
        assert factory_run == [("CALL", 0, a0, factory, "0xa"), ("CALL", 1, factory, child, "0x0"),
                               ("CALL", 1, factory, SINK, "0x2")]
    assert f["has_code"] == {"factory": True, "factory_at_genesis": False, "factory_by_hex": True,
                             "factory_no_block": True, "account": False, "lib": True, "destroyed_child": False,
                             "create2_child": True}
    for number, details in f["block_details"].items():
        page = f["block_transactions"][number]
        assert details["block"]["transactionCount"] == page["fullblock"]["transactionCount"] == len(page["receipts"])
        fees = sum(int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) for r in page["receipts"])
        assert details["totalFees"] == hex(fees) and (fees > 0) == (number > 0)
        assert details["issuance"] == {"blockReward": "0x0", "uncleReward": "0x0", "issuance": "0x0"}
        assert details == f["block_details_by_hash"][number] and "transactions" not in details["block"]
        assert [t["hash"] for t in page["fullblock"]["transactions"]] == f["headers"][number]["transactions"]
        assert all(len(t["input"]) <= 10 for t in page["fullblock"]["transactions"])
    pages = f["block_transaction_pages"]
    assert [len(pages[p]["receipts"]) for p in (0, 1, 5)] == [2, 1, 0]
    assert [t["hash"] for p in (0, 1) for t in pages[p]["fullblock"]["transactions"]] == [
        hashes["batch_0"], hashes["batch_1"], hashes["batch_2"]]
    assert f["headers_other"]["latest_is_head"] and f["headers_other"]["future"] == {"result": None}
    other = f["block_details_other"]
    assert other["future"] == other["unknown_hash"] == other["future_transactions"] == -32001
    s = f["search"]

    def found(key: str) -> list[str]:
        return [t["hash"] for t in s[key]["txs"]]

    def named(*names: str) -> list[str]:
        return [hashes[n] for n in names]

    a0_names = ["transfer", "demo_out_of_gas", "demo_custom_error", "demo_revert_reason", "demo_set", "deploy_demo",
                "caller_run", "deploy_caller", "factory_run", "deploy_factory"]
    assert found("a0/Before/zero/25") == named(*a0_names) and s["a0/Before/zero/25"]["firstPage"]
    assert s["a0/Before/zero/25"]["lastPage"] and found("a0/After/zero/25") == named(*a0_names)
    assert found("sink/Before/zero/25") == named("factory_run")  # reached by an internal call only
    assert found("payee/Before/zero/25") == named("transfer", "batch_2", "batch_0")  # a block's matches, newest first
    assert found("reverter/Before/zero/25") == named("batch_1", "caller_run")
    assert found("lib/Before/zero/25") == named("batch_1", "caller_run")  # DELEGATECALL, STATICCALL, CALLCODE
    assert found("create2_child/Before/zero/25") == found("first_child/Before/zero/25") == named("factory_run")
    assert found("demo/Before/zero/25") == named("demo_out_of_gas", "demo_custom_error", "demo_revert_reason",
                                                 "demo_set", "deploy_demo")
    assert found("nobody/Before/zero/25") == [] and s["nobody/Before/zero/25"]["lastPage"]
    assert found("a0/Before/zero/1") == named("transfer") and not s["a0/Before/zero/1"]["lastPage"]
    assert found("payee/After/zero/1") == named("batch_2", "batch_0")  # the whole block, over the page size
    assert found("a0/Before/middle/25") == named("deploy_caller", "factory_run", "deploy_factory")  # below block 4
    assert found("a0/After/middle/2") == named("demo_set", "deploy_demo")  # blocks 5 and 6, newest first
    for key, result in s.items():
        assert len(result["txs"]) == len(result["receipts"])
        assert [t["hash"] for t in result["txs"]] == [r["transactionHash"] for r in result["receipts"]], key
    sn = f["sender_and_nonce"]
    assert [sn[f"a0/{i}"] for i in range(10)] == named(*reversed(a0_names)) and sn["a0/10"] is None
    assert sn["a0/hex"] == hashes["caller_run"] and sn["k2/0"] == hashes["batch_1"]
    assert sn["k2/1"] is None and sn["nobody/0"] is None
    cc = f["contract_creator"]
    assert cc["factory"] == {"hash": hashes["deploy_factory"], "creator": a0}
    assert cc["create2_child"] == {"hash": hashes["factory_run"], "creator": factory}
    assert cc["caller"]["hash"] == hashes["deploy_caller"] and cc["demo"]["hash"] == hashes["deploy_demo"]
    assert cc["lib"] is None and cc["account"] is None  # code from a dev edit; an account
    assert demo in [r["contractAddress"] for r in s["a0/Before/zero/25"]["receipts"]]


def test_ots_methods_same_answers_on_anvil_and_ailedger(tmp_path: Path) -> None:
    node = start_ailedger(AILEDGER_ARGS, tmp_path)
    try:
        history = rpc(node.url, "eth_feeHistory", ["0x1", "latest", []])["result"]
        block1_fee = int(history["baseFeePerGas"][-1], 16)
        anvil = start_anvil(tmp_path, [*ANVIL_ARGS, "--base-fee", str(block1_fee)])
        try:
            expected = run_otterscan(anvil.url)
        finally:
            anvil.kill()
        actual = run_otterscan(node.url)
    finally:
        node.kill()
    check_ots_facts(copy.deepcopy(actual), full_traces=True)
    assert actual["search_page_size_zero"] == {"txs": [], "receipts": [], "firstPage": True, "lastPage": False,
                                               "nextBlock": 0}
    normalise(expected, actual)
    diffs = _diff(expected, actual)
    assert not diffs, "ailedger differs from anvil:\n" + "\n".join(diffs[:100])
    check_ots_facts(expected, full_traces=False)


# -- the native AI transaction types ------------------------------------------------------------


def test_native_ai_transactions_in_every_ots_method(tmp_path: Path) -> None:
    """A chain with a contribution, an adapter registration and an inference receipt sent as
    native transactions (and the ABI calls around them): every ots_ method answers for every
    block and transaction, and the native ones look as what they run, a call to an AI module."""
    from ai_precompiles.addresses import BY_NAME
    from tests.integration.ai.client import ADDR, CONTRIB_A, USER, VALIDATOR, AINode
    from tests.integration.ai.test_native import Run, scenario

    t0 = int(time.time()) + 100
    proc = start_ailedger(["--timestamp", str(t0)], tmp_path)
    try:
        run = Run(AINode(proc), native=True)
        scenario(run, t0)
        node = run.node
        head = int(node.rpc("eth_blockNumber"), 16)
        native = {name: m.tx_hash for name, m in run.compared.items()}
        assert set(native) == {"contribute-0", "contribute-1", "registerAdapter", "submitReceipt"}
        seen_types = set()
        for number in range(head + 1):
            block = node.rpc("eth_getBlockByNumber", hex(number), True)
            details = node.rpc("ots_getBlockDetails", number)
            assert details == node.rpc("ots_getBlockDetailsByHash", block["hash"])
            assert details["block"]["transactionCount"] == len(block["transactions"])
            page = node.rpc("ots_getBlockTransactions", number, 0, 25)
            assert [t["hash"] for t in page["fullblock"]["transactions"]] == [t["hash"] for t in block["transactions"]]
            assert node.rpc("erigon_getHeaderByNumber", number)["hash"] == block["hash"]
            for tx, receipt in zip(block["transactions"], page["receipts"], strict=True):
                seen_types.add(tx["type"])
                trace = node.rpc("ots_traceTransaction", tx["hash"])
                assert trace[0]["depth"] == 0 and trace[0]["from"] == tx["from"] and trace[0]["input"] == tx["input"]
                ops = node.rpc("ots_getInternalOperations", tx["hash"])
                assert all(op["type"] == 0 for op in ops)  # the AI modules pay by state, not by calls
                assert node.rpc("ots_getTransactionError", tx["hash"]) == "0x"  # the scenario's all succeed
                assert receipt["status"] == "0x1"
                assert node.rpc("ots_getTransactionBySenderAndNonce", tx["from"], tx["nonce"]) == tx["hash"]
                if tx["hash"] in native.values():
                    module = {"0x60": "Datanets", "0x61": "ModelRegistry", "0x62": "Inference"}[tx["type"]]
                    assert trace == [{"type": "CALL", "depth": 0, "from": tx["from"], "to": "0x" + BY_NAME[module].hex(),
                                      "value": "0x0", "input": tx["input"], "output": trace[0]["output"]}]
                    assert ops == []
                    shown = next(t for t in page["fullblock"]["transactions"] if t["hash"] == tx["hash"])
                    assert shown["type"] == tx["type"] and len(shown["input"]) == 10
                    assert {"contribution", "adapter", "inference"} & set(shown)  # the native payload
        assert {"0x60", "0x61", "0x62"} <= seen_types

        def search(address: str) -> list[str]:
            out = node.rpc("ots_searchTransactionsBefore", address, 0, 25)
            assert out["firstPage"] and out["lastPage"]
            return [t["hash"] for t in out["txs"]]

        # the requester of an inference signs nothing on chain: its receipt names it
        assert native["submitReceipt"] in search(ADDR[USER])
        assert native["submitReceipt"] in search(ADDR[VALIDATOR]) and native["contribute-0"] in search(ADDR[CONTRIB_A])
        assert native["submitReceipt"] in search("0x" + BY_NAME["Inference"].hex())
        for module in ("Datanets", "Inference"):
            address = "0x" + BY_NAME[module].hex()
            assert node.rpc("ots_getContractCreator", address) is None  # its code is in genesis
            assert node.rpc("ots_hasCode", address, "latest") is (node.rpc("eth_getCode", address, "latest") != "0x")
    finally:
        proc.kill()

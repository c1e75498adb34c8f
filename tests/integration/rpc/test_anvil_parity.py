"""anvil parity of the dev and debug methods: one raw JSON-RPC scenario
(tests/integration/rpc/ethtools/parity.py), run on a fresh anvil and a fresh `ailedger dev`,
must give equal facts; plus the transport limits a raw client sees.

anvil runs with `--steps-tracing`: without it, its debug_traceTransaction returns no
struct logs for mined transactions.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.integration.rpc.ethtools.parity import STRANGER, WRITER, run_parity  # noqa: E402
from tests.integration.rpc.test_ethtools import AILEDGER_ARGS, ANVIL_ARGS, _diff  # noqa: E402
from tests.support.procs import rpc, start_ailedger, start_anvil  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ethtools")]


def check_parity_facts(f: dict[str, Any]) -> None:
    """What a correct node's facts say on their own, so that two equally wrong nodes
    cannot pass the comparison."""
    assert set(f["too_many_params"].values()) == {-32602}, f["too_many_params"]
    assert f["anvil_mine_result"] is None
    assert f["mine"] == {"by_3": 3, "by_2": 2, "interval": 60, "by_default": 1, "bad_count": -32602}
    fb = f["future_block"]
    assert fb["blockReceipts"] == fb["rawByNumber"] == {"result": None}
    assert {v for k, v in fb.items() if k not in ("blockReceipts", "rawByNumber")} == {-32602}
    assert set(f["past_timestamp"].values()) == {-32602}
    raw = f["raw"]
    assert raw["by_hash_is_sent"] and raw["by_number_is_sent"] and raw["by_block_hash_is_sent"]
    assert raw["unknown_hash"] == raw["index_out_of_range"] == raw["unknown_block_hash"] == {"result": None}
    imp = f["impersonation"]
    assert imp["before"] == -32602 and imp["after_stop"] == -32602 and imp["auto_off"] == -32602
    assert imp["receipt"]["status"] == "0x1" and imp["receipt"]["from"] == STRANGER
    assert imp["tx_from"] == STRANGER and imp["other_gain"] == 0x3039 and imp["stranger_nonce"] == "0x1"
    gas_paid = 21_000 * int(imp["receipt"]["effectiveGasPrice"], 16)
    assert imp["stranger_balance"] == 10**18 - 0x3039 - gas_paid
    assert imp["auto"] == "0x1" and imp["bad_address"] == -32602 and imp["missing_param"] == -32602
    al = f["access_list"]
    demo = f["contract"]["deploy"]["contractAddress"]
    listed = dict(al["set"]["result"]["accessList"])
    assert set(listed) == {demo} and len(listed[demo]) == 3  # limit, values[2], total
    assert al["transfer"]["result"]["accessList"] == [] and al["transfer"]["result"]["gasUsed"] == "0x5208"
    proof = f["proof"]
    assert proof["account_verified"] and proof["storage_verified"] == [True] * 4
    assert [v for _, v in proof["storage"]][1:] == ["0x3e8", "0x5", "0x0"]
    assert proof["short_key"] == -32602 and proof["not_a_list"] == -32602 and proof["absent_proof_nonempty"]
    trace = f["trace"]
    assert trace["set_struct"]["failed"] is False and len(trace["set_struct"]["structLogs"]) > 100
    assert trace["set_struct"]["gas"] == int(f["contract"]["set"]["gasUsed"], 16)
    assert all("memory" in s and "stack" not in s for s in trace["set_memory"]["structLogs"])
    assert trace["set_calls"]["type"] == "CALL" and trace["deploy_calls"]["type"] == "CREATE"
    assert trace["call_revert"]["error"] == "execution reverted"
    assert trace["call_revert"]["revertReason"] == "key must be nonzero"
    assert trace["call_revert_struct_tail"][-1]["op"] == "REVERT"
    nested = trace["with_log"]["nested"]
    assert [lg["index"] for lg in nested["logs"]] == ["0x0", "0x2"] and nested["logs"][1]["position"] == "0x1"
    assert nested["calls"][0]["logs"][0]["index"] == "0x1" and len(trace["with_log"]["set"]["logs"]) == 1
    frame_kinds = [c["type"] for c in trace["frame_kinds"]["calls"]["calls"]]
    assert frame_kinds == ["DELEGATECALL", "STATICCALL", "CALLCODE", "CREATE2", "CREATE"]
    halts = trace["halts"]
    assert all(h["failed"] for k, h in halts.items() if k != "child_invalid") and not halts["child_invalid"]["failed"]
    assert halts["oog"]["calls"]["error"] == "out of gas"
    assert halts["oog"]["tail"][-1]["error"] == "Some(OutOfGas)" and halts["oog"]["gas"] == 0x7530
    assert halts["child_invalid"]["calls"]["calls"][0]["error"] == "invalid opcode: INVALID"
    other = trace["other_tracers"]
    assert {"coinbase", demo, f["accounts0"]} <= set(other["prestate_tx"]) and other["noop"] == {}
    assert set(other["diff_tx"]["post"]) == {"coinbase", demo, f["accounts0"]}
    assert other["diff_tx"]["post"][f["accounts0"]]["nonce"] == other["diff_tx"]["pre"][f["accounts0"]]["nonce"] + 1
    assert "code" in other["diff_deploy"]["post"][demo] and demo not in other["diff_deploy"]["pre"]
    assert other["four_byte"] == {"0x" + keccak(text="set(uint256,uint256,string)")[:4].hex() + "-160": 1}
    refunds = [s["refund"] for s in trace["refunds"]["struct"]["structLogs"]]
    assert max(refunds) == 3 * 4800 and refunds[-1] == 3 * 4800  # three slots cleared, EIP-3529
    sb = trace["same_block"]
    assert sb["index"] == "0x1" and sb["same_block"] and len(sb["second_sstores"]) >= 2
    assert "calls" not in sb["only_top_call"] and sb["impersonated"]["from"] == STRANGER
    assert sb["state_override"]["output"] == "0x" + "00" * 31 + "2a"
    e = f["eip1898"]
    assert e["number"] == e["hash"] == e["canonical"] == e["bare_hash"]
    assert e["number"]["call"] == "0x" + "00" * 31 + "05"
    assert all(code in (-32000, -32001) for code in e["unknown_hash"])
    assert f["block_receipts"]["same_as_by_number"] and f["block_receipts"]["unknown_hash"] == {"result": None}
    est = f["estimate"]
    assert est["transfer_to_self"] == est["with_block"] == {"result": "0x5208"}
    assert est["revert_reason"]["code"] == 3 and est["revert_reason"]["data"].startswith("0x08c379a0")
    assert est["custom_error"]["code"] == 3 and est["custom_error"]["data"].startswith("0x677fd0e3")
    assert est["revert_without_data"]["code"] == 3 and est["custom_error_without_args"]["data"] == "0x82b42900"
    bo = f["block_overrides"]
    assert bo["fields"] == "0x" + "".join(f"{v:064x}" for v in (0x99, 0x7FFFFFFF, 0xFE, 0x1000000))
    assert bo["backwards"] == "0x" + f"{1:064x}" * 2 and bo["with_state_override"]["code"] == 3
    sc = f["set_code"]
    assert sc["receipt"]["status"] == "0x1" and sc["tx_type"] == "0x4" and sc["raw_round_trip"]
    assert sc["authority_code"] == "0xef0100" + WRITER[2:]
    assert sc["authority_slot0"] == "0x" + "00" * 31 + "01" and sc["authority_nonce"] == "0x1"
    assert sc["call_through"] == "0x" + "00" * 31 + "01"
    assert len(sc["authorization_list"]) == 1 and sc["authorization_list"][0]["address"] == WRITER
    assert sc["self_sponsored"]["code"] == "0xef0100" + WRITER[2:] and sc["self_sponsored"]["nonce"] == "0x2"
    assert sc["send_transaction_reset"] == {"type": "0x4", "code": "0x", "nonce": "0x4"}
    assert int(sc["estimate"]["result"], 16) > 21_000 + 25_000  # intrinsic + the delegated code's SSTORE
    assert sc["call"] == {"result": "0x" + "00" * 31 + "01"} and sc["bad_authorization"] == -32602
    s = f["simulate"]
    assert [c[2] for c in s["chained"][0]["calls"]] == ["0x", "0x" + "00" * 31 + "37"]
    assert s["chained"][1]["calls"][0][2] == "0x" + "00" * 31 + "37" and s["not_committed"] == "0x" + "00" * 32
    assert s["chained"][1]["timestamp_override"] == "0x7fffffff" and len(s["chained"][0]["calls"][0][3]) == 1
    assert s["revert"][0]["calls"][0][0] == "0x0" and s["state_override"][0]["calls"][0][0] == "0x1"
    assert s["poor_sender"] == {"code": -32003} and s["empty"] == []
    reset = f["reset"]
    assert reset["block"] == "0x0" and reset["balance0"] == hex(10_000 * 10**18)
    assert reset["old_tx"] is None and reset["demo_code"] == "0x" and reset["impersonation_kept"]
    assert reset["works_after"] == "0x1" and reset["forking_refused"] == -32602


def test_dev_and_debug_methods_same_answers_on_anvil_and_ailedger(tmp_path: Path) -> None:
    node = start_ailedger(AILEDGER_ARGS, tmp_path)
    try:
        history = rpc(node.url, "eth_feeHistory", ["0x1", "latest", []])["result"]
        block1_fee = int(history["baseFeePerGas"][-1], 16)
        anvil = start_anvil(tmp_path, [*ANVIL_ARGS, "--base-fee", str(block1_fee), "--steps-tracing"])
        try:
            expected = run_parity(anvil.url)
        finally:
            anvil.kill()
        actual = run_parity(node.url)
    finally:
        node.kill()
    check_parity_facts(expected)
    # anvil estimates an empty contract creation at 53001 gas; its intrinsic gas, 53000, is
    # enough (and what ailedger answers): compare success only, then check ailedger's value.
    for key in ("override_state", "override_state_diff"):
        assert "result" in expected["estimate"][key]
        assert actual["estimate"].pop(key) == {"result": hex(53_000)}
        expected["estimate"].pop(key)
    # anvil's callTracer gives a transaction that is not first in its block the block's
    # cumulative gas as gasUsed; ailedger gives the transaction's own (its receipt's).
    same_block = actual["trace"]["same_block"]
    assert same_block["second_calls"].pop("gasUsed") == same_block["receipt_gas_used"]
    expected["trace"]["same_block"]["second_calls"].pop("gasUsed")
    diffs = _diff(expected, actual)
    assert not diffs, "ailedger differs from anvil:\n" + "\n".join(diffs)
    check_parity_facts(actual)


def test_oversized_body_gets_a_readable_413(tmp_path: Path) -> None:
    """A 6 MiB body (limit 5 MiB) is read to its end and answered 413, so a client that
    writes the whole body before reading (http.client, requests) sees the status instead
    of a reset connection; the node serves the next call."""
    node = start_ailedger(AILEDGER_ARGS, tmp_path)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": ["a" * (6 * 1024 * 1024)]})
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        conn.request("POST", "/", body=body.encode(), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 413 and b"too large" in resp.read()
        conn.close()
        # chunked, no content-length: the limit still holds
        with socket.create_connection(("127.0.0.1", node.port), timeout=60) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"a" * (1024 * 1024)
            for _ in range(6):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                data = s.recv(4096)
                if not data:
                    break
                reply += data
            assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert rpc(node.url, "eth_chainId")["result"] == hex(31337)
    finally:
        node.kill()

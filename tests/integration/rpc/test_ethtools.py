"""Real Ethereum tools against `ailedger dev`, with anvil as the reference.

- The web3.py scenario (tests/integration/rpc/ethtools/scenario.py) runs against a fresh anvil
  and a fresh `ailedger dev` in the same test run; the two fact dicts must be equal.
- The ethers v6 script and the `cast` flow run against `ailedger dev` (and against anvil,
  which proves the scripts themselves) and their outputs are asserted.
- The committed solc-js output must match what the compile script produces now.

Both nodes run chain id 31337 so that locally signed transactions are byte-identical.
anvil runs with `--hardfork prague` because py-evm's newest fork is Prague and anvil's
default ("latest") is a later fork.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

# `.venv/bin/pytest` puts tests/integration (no __init__.py) on sys.path, not the repository
# root; the root is needed to import the shared helpers as `tests.support`.
if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.integration.rpc.ethtools.cast_flow import run_cast_flow  # noqa: E402
from tests.integration.rpc.ethtools.scenario import LIMIT, TYPED_DATA, run_scenario  # noqa: E402
from tests.support.procs import REPO, Proc, rpc, start_ailedger, start_anvil  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ethtools")]

ETHTOOLS = REPO / "tests" / "integration" / "rpc" / "ethtools"
NODE = "node"
CHAIN_ID = "31337"
ANVIL_ARGS = ["--chain-id", CHAIN_ID, "--hardfork", "prague"]
AILEDGER_ARGS = ["--chain-id", CHAIN_ID]


def _start(kind: str, tmp: Path) -> Proc:
    return start_anvil(tmp, ANVIL_ARGS) if kind == "anvil" else start_ailedger(AILEDGER_ARGS, tmp)


@pytest.fixture
def fresh_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Proc]:
    """A fresh node of the parametrised kind ("anvil" or "ailedger"), killed afterwards."""
    proc = _start(request.param, tmp_path)
    try:
        yield proc
    finally:
        proc.kill()


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Every leaf where two fact trees differ, as 'path: anvil != ailedger' lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(
                    f"{path}/{k}: {'missing' if k not in a else a[k]!r} != {'missing' if k not in b else b[k]!r}"
                )
            else:
                out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            line
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for line in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def check_scenario_facts(f: dict[str, Any]) -> None:
    """What any correct node's scenario output must say on its own, before comparing nodes:
    this keeps the differential test from passing on two equally broken answers."""
    assert f["chain_id"] == int(CHAIN_ID) and f["start_block"] == 0
    assert f["account1_matches_mnemonic"] and f["start_balances"] == [10_000 * 10**18] * 4
    assert f["deploy_unlocked"]["status"] == 1 and f["deploy_address_is_create_address"]
    assert f["code_matches_compiler"] and f["raw_deploy_hash_is_signed_hash"]
    assert f["deploy_raw_limit"] == 5 and f["deploy_raw"]["status"] == 1
    assert [r["status"] for r in f["receipts"].values()] == [1, 1, 1, 1, 1, 0]
    assert f["transfer_debits_value_plus_gas"] and f["estimate_transfer"] == 21_000
    assert (
        f["views"]["get1"] == 42
        and f["views"]["get1_before_set"] == 0
        and f["views"]["total"] == 49
    )
    names = [e["event"] for e in f["getlogs_all"]]
    assert names == ["ValueSet", "ValueSet", "Deposited"]
    assert (
        f["getlogs_all"][0]["args"]["note"] == "hello"
        and f["getlogs_by_setter"][0]["args"]["key"] == 2
    )
    assert f["filter_changes"] == f["getlogs_all"] and f["filter_changes_again"] == []
    assert (
        f["ws"]["ws_logs"][0]["args"]["note"] == "over websocket" and len(f["ws"]["ws_heads"]) == 2
    )
    assert f["revert_call_reason"]["message"] == "execution reverted: key must be nonzero"
    assert f["revert_call_custom"]["decoded"] == {
        "error": "TooLarge",
        "args": {"given": LIMIT + 1, "limit": LIMIT},
    }
    assert f["raw_revert_reason"]["code"] == 3 and f["raw_revert_custom_estimate"]["code"] == 3
    assert f["evm_revert"] is True and f["after_revert"] == [True, 0] and f["after_revert_tx_gone"]
    assert f["increase_time_applied"] and f["set_next_timestamp_exact"] == 10_000
    assert f["set_balance"] == 123 * 10**18 and f["set_balance_hardhat"] == 7
    assert f["ws"]["ws_pending_are_sent"]
    a0 = f["accounts"][0]
    assert (
        Account.recover_message(encode_defunct(hexstr="0x68656c6c6f"), signature=f["eth_sign"])
        == a0
    )
    assert (
        Account.recover_message(
            encode_typed_data(full_message=TYPED_DATA), signature=f["eth_signTypedData_v4"]
        )
        == a0
    )
    assert (
        f["txpool_with_gap"] == {"pending": "0x0", "queued": "0x1"}
        and f["gap_receipt_before_fill"] is None
    )
    assert f["gap_filled"] == {"statuses": [1, 1], "nonce": 2, "ordered": True}
    assert f["pending_filter"] == f["pending_filter_expected"] and f["replay"].startswith(
        "rejected"
    )
    assert not [k for k in f if k.endswith("_exception")]


def test_compiled_output_is_current() -> None:
    """build/Demo.json is what solc-js makes of contracts/Demo.sol today."""
    p = subprocess.run(
        [NODE, str(ETHTOOLS / "compile.js"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr


def test_web3py_scenario_same_answers_on_anvil_and_ailedger(tmp_path: Path) -> None:
    """The differential test: one scenario, two nodes, equal facts.

    One legitimate difference is bridged before the run instead of after: anvil gives
    block 1 the configured base fee unchanged, while a node that applies the EIP-1559 rule
    from genesis (as geth --dev does) gives block 1 7/8 of the genesis base fee. anvil is
    therefore started with `--base-fee` set to the base fee ailedger announces for block 1
    (`eth_feeHistory`'s next-block entry); from block 1 on the base fee sequences must then
    agree exactly, and only the genesis block's own `baseFeePerGas` is left out.
    """
    node = start_ailedger(AILEDGER_ARGS, tmp_path)
    try:
        history = rpc(node.url, "eth_feeHistory", ["0x1", "latest", []])["result"]
        block1_fee = int(history["baseFeePerGas"][-1], 16)
        anvil = start_anvil(tmp_path, [*ANVIL_ARGS, "--base-fee", str(block1_fee)])
        try:
            expected = run_scenario(anvil.url, anvil.ws_url)
        finally:
            anvil.kill()
        actual = run_scenario(node.url, node.ws_url)
    finally:
        node.kill()
    check_scenario_facts(expected)
    expected["genesis"].pop("baseFeePerGas")
    actual["genesis"].pop("baseFeePerGas")
    diffs = _diff(expected, actual)
    assert not diffs, "ailedger differs from anvil:\n" + "\n".join(diffs)
    check_scenario_facts(actual)


def test_web3py_scenario_is_deterministic_on_anvil(tmp_path: Path) -> None:
    """Two fresh anvils give equal facts, so every fact the scenario keeps is chain-agnostic."""
    facts = []
    for _ in range(2):
        p = start_anvil(tmp_path, ANVIL_ARGS)
        try:
            facts.append(run_scenario(p.url, p.ws_url))
        finally:
            p.kill()
    assert not _diff(facts[0], facts[1])


def _ethers(url: str) -> dict[str, Any]:
    p = subprocess.run(
        [NODE, str(ETHTOOLS / "ethers_flow.js"), url], capture_output=True, text=True, timeout=90
    )
    assert p.returncode == 0, f"ethers flow failed:\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


@pytest.mark.parametrize("fresh_node", ["anvil", "ailedger"], indirect=True)
def test_ethers_v6_flow(fresh_node: Proc) -> None:
    """ethers v6: chain id, balance, transfer, deploy, call, log, revert decoding, WS event."""
    f = _ethers(fresh_node.url)
    assert f["chainId"] == CHAIN_ID and f["signer0"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert f["balanceWallet1"] == str(10_000 * 10**18)
    assert f["transfer"] == {
        "status": 1,
        "type": 2,
        "gasUsed": "21000",
        "received": str(25 * 10**16),
        "nonceAfter": 1,
    }
    assert f["deploy"]["codeMatches"] and f["deploy"]["limit"] == "1000"
    assert f["deploy"]["owner"] == f["signer0"]
    assert f["setReceipt"] == {
        "status": 1,
        "logs": [{"name": "ValueSet", "args": [f["wallet1"], "5", "55", "from ethers"]}],
    }
    assert [q["args"] for q in f["queried"]] == [[f["wallet1"], "5", "55", "from ethers"]]
    assert f["get5"] == "55" and f["deposit"] == {"status": 1, "contractBalance": "1234"}
    for k in ("revertCallReason", "revertSendReason"):
        assert f[k]["code"] == "CALL_EXCEPTION" and f[k]["reason"] == "key must be nonzero", f[k]
    assert f["revertCallCustom"]["revertName"] == "TooLarge" and f["revertCallCustom"][
        "revertArgs"
    ] == ["5000", "1000"]
    assert f["revertSendCustom"]["code"] == "CALL_EXCEPTION"
    assert f["revertSendCustom"]["data"] == f["revertCallCustom"]["data"]
    assert f["wsEvent"] == {"setter": f["wallet1"], "key": "6", "value": "66", "note": "over ws"}


@pytest.mark.parametrize("fresh_node", ["anvil", "ailedger"], indirect=True)
def test_cast_flow(fresh_node: Proc) -> None:
    """Foundry cast: chain id, balance, send, deploy, call, logs, access-list, run, revert
    decoding."""
    f = run_cast_flow(fresh_node.url)
    assert f["chain_id"] == int(CHAIN_ID) and f["block_number_start"] == 0
    assert f["balance0_start"] == 10_000 * 10**18
    assert (
        f["transfer"] == {"status": 1, "gasUsed": 21_000, "type": 2}
        and f["recipient_gain"] == 10**18
    )
    assert f["nonce0"] == 1
    assert (
        f["deploy"]["status"] == 1 and f["deploy"]["code_matches"] and f["deploy"]["limit"] == 1000
    )
    assert f["deploy"]["address"].lower() == "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
    assert f["set"] == {"status": 1, "logs": 1} and f["get3"] == 33 and f["storage_total"] == 33
    assert len(f["logs"]) == 1 and f["logs"][0]["tx"] and f["log_decoded"] == ["33", '"via cast"']
    assert f["logs"][0]["topics"][1] == "0x" + "f39fd6e51aad88f6f4ce6ab8827279cfffb92266".rjust(
        64, "0"
    )
    assert f["receipt_status"] == 1
    # set(4, 44, "x") touches limit (slot 1), values[4] and total (slot 3) of the contract.
    entries = f["access_list"]["entries"]
    assert len(entries) == 1 and entries[0][0] == f["deploy"]["address"].lower()
    assert len(entries[0][1]) == 3 and "0x" + "00" * 31 + "01" in entries[0][1]
    assert f["access_list"]["gasUsed"] > 21_000
    assert f["run"] == {"rc": 0, "success": True, "gas_used_matches_receipt": True}
    reason = f["revert_call_reason"]
    assert reason["error_code"] == 3 and "key must be nonzero" in reason["stderr"], reason
    assert reason["data"].startswith("0x08c379a0")
    for k in ("revert_call_custom", "revert_send_custom"):
        assert f[k]["error_code"] == 3 and f[k]["decoded"] == ["5000", "1000"], f[k]

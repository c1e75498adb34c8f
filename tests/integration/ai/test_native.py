"""The native AI transaction types over real JSON-RPC, and the tools that read them.

Two fresh `ailedger dev` nodes get the same genesis and the same inputs, block for block
(same senders, nonces, fees, gas limits and block timestamps): one node receives the three
compared operations (contribute, register an adapter, submit an inference receipt) as native
EIP-2718 transactions (0x60, 0x61, 0x62), the other as plain EIP-1559 ABI calls to the
precompiles. "Both ways run the same code and give the same state": every compared
transaction must use the same gas and emit the same logs, every block must end with the same
state root, and every ai_ read must answer the same.

Then web3.py, ethers v6 and Foundry's cast read the blocks, transactions and receipts that
hold the native types: each must succeed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from ai_precompiles.addresses import BY_NAME
from ai_precompiles.datanets import contribution_commitment
from state.native import (
    AdapterRegistrationTransaction,
    DataContributionTransaction,
    InferenceReceiptTransaction,
    NativeTransaction,
)
from tests.integration.ai.client import (
    ADDR,
    AUTHOR1,
    BASE_AUTHOR,
    CHAIN_ID,
    CONTRIB_A,
    CONTRIB_B,
    CUR1,
    ENGINE_PROFILE,
    ETHER,
    GWEI,
    KEY,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    Mined,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import adapter_spec, blob_bytes, version_root
from tests.support.procs import NODE_BIN, REPO, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-rpc")]

GAS = 3_000_000
TIP = 1 * GWEI
MAX_FEE = 20 * GWEI
HERE = Path(__file__).resolve().parent
NATIVE_KEYS = {"contribute": "contribution", "registerAdapter": "adapter", "submitReceipt": "inference"}


@dataclass
class Run:
    """One node driven through the scenario, native or ABI."""

    node: AINode
    native: bool
    compared: dict[str, Mined] = field(default_factory=dict)
    """Name of a compared operation -> its transaction."""
    all_blocks: list[int] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)


class Driver:
    """Sends each step with an explicit nonce, fee and block timestamp, so two nodes that get
    the same steps build the same chain apart from the native envelopes."""

    def __init__(self, run: Run, t0: int) -> None:
        self.run, self.node, self.t = run, run.node, t0

    def _at_next_time(self) -> None:
        self.t += 12
        self.node.rpc("evm_setNextBlockTimestamp", self.t)

    def abi(self, who: int, module: str, fn: str, *args: Any, value: int = 0) -> Mined:
        tx = {"type": 2, "chainId": CHAIN_ID, "nonce": self.node.nonce(who), "gas": GAS,
              "maxPriorityFeePerGas": TIP, "maxFeePerGas": MAX_FEE,
              "to": to_checksum_address(BY_NAME[module]), "value": value,
              "data": self.node.calldata(module, fn, *args)}
        raw = Account.sign_transaction(tx, KEY[who]).raw_transaction
        self._at_next_time()
        mined = self.node.mined(self.node.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex()))
        assert mined.status == 1, (module, fn, mined.receipt)
        self.run.all_blocks.append(mined.block_number)
        return mined

    def either(self, name: str, who: int, cls: type[NativeTransaction], native_fields: dict[str, Any],
               module: str, fn: str, *args: Any) -> Mined:
        """A compared operation: the native type on the native node, the ABI call elsewhere."""
        if not self.run.native:
            mined = self.abi(who, module, fn, *args)
        else:
            inner = cls.sign(KEY[who], chain_id=CHAIN_ID, nonce=self.node.nonce(who),
                             max_priority_fee_per_gas=TIP, max_fee_per_gas=MAX_FEE, gas=GAS,
                             **native_fields)
            self._at_next_time()
            mined = self.node.send_native(inner)
            assert mined.status == 1, (name, mined.receipt)
            self.run.all_blocks.append(mined.block_number)
        self.run.compared[name] = mined
        return mined


def scenario(run: Run, t0: int) -> None:
    d, node = Driver(run, t0), run.node
    d.abi(OWNER, "Datanets", "createDatanet", "code", "software", "ipfs://code", "MIT",
          [ADDR[CUR1]], 1, 4096)
    datanet = run.ids["datanet"] = 1
    blobs = [blob_bytes(i) for i in range(2)]
    for i, (who, data) in enumerate(zip((CONTRIB_A, CONTRIB_B), blobs, strict=True)):
        node.put_blob(data)
        salt = keccak(text=f"salt {i}")
        d.abi(who, "Datanets", "commitContribution", contribution_commitment(
            bytes.fromhex(ADDR[who][2:]), datanet, keccak(data), len(data), "MIT", keccak(text=f"meta {i}"), salt))
        fields = {"datanet_id": datanet, "content_hash": keccak(data), "size": len(data),
                  "license": b"MIT", "metadata_hash": keccak(text=f"meta {i}"), "salt": salt}
        d.either(f"contribute-{i}", who, DataContributionTransaction, fields, "Datanets", "contribute",
                 datanet, keccak(data), len(data), "MIT", keccak(text=f"meta {i}"), salt)
    for cid in (1, 2):
        d.abi(CUR1, "Datanets", "curate", cid, True, 0)
    d.abi(OWNER, "Datanets", "publishVersion", datanet)
    d.abi(BASE_AUTHOR, "ModelRegistry", "registerBaseModel", keccak(text="bw"), keccak(text="bc"),
          keccak(text="bt"), "apache-2.0")
    spec = adapter_spec(1, [datanet], [1], version_root(node, datanet, 1), "native")
    fields = {"parent_id": spec[0], "datanet_ids": spec[1], "datanet_versions": spec[2],
              "contribution_root": spec[3], "hyper_params_hash": spec[4], "weights_hash": spec[5],
              "attribution_index_hash": spec[6], "manifest_hash": spec[7],
              "validator": bytes.fromhex(spec[8][2:]), "license": spec[9].encode()}
    d.either("registerAdapter", AUTHOR1, AdapterRegistrationTransaction, fields, "ModelRegistry",
             "registerAdapter", spec)
    run.ids["adapter"] = 2
    d.abi(VALIDATOR, "Staking", "stake", value=2 * ETHER)
    d.abi(USER, "Inference", "deposit", value=ETHER)
    req = make_request(USER, 2, max_fee=10**16, nonce=42, deadline=t0 + 10_000)
    signed = sign_receipt(req, [1, 2], [7000, 3000], 10**16 - 1)
    d.either("submitReceipt", VALIDATOR, InferenceReceiptTransaction, signed.native_fields(),
             "Inference", "submitReceipt", *signed.abi_args())
    d.abi(OWNER, "Inference", "settle", [1])  # the dev chain's window is one block
    d.abi(CONTRIB_A, "Rewards", "claim")


@dataclass
class Pair:
    native: Run
    abi: Run


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    t0 = int(time.time()) + 100
    args = ["--timestamp", str(t0)]
    procs = [start_ailedger(args, tmp_path_factory.mktemp("ai_native")),
             start_ailedger(args, tmp_path_factory.mktemp("ai_abi"))]
    try:
        runs = Pair(Run(AINode(procs[0]), True), Run(AINode(procs[1]), False))
        for run in (runs.native, runs.abi):
            scenario(run, t0)
        yield runs
    finally:
        for proc in procs:
            proc.kill()


def log_view(mined: Mined) -> list[tuple[str, tuple[str, ...], str]]:
    return [(x["address"].lower(), tuple(x["topics"]), x["data"]) for x in mined.logs]


def test_native_and_abi_give_the_same_gas_logs_and_state_root(pair: Pair) -> None:
    assert set(pair.native.compared) == set(pair.abi.compared) == {
        "contribute-0", "contribute-1", "registerAdapter", "submitReceipt"}
    for name, n in pair.native.compared.items():
        a = pair.abi.compared[name]
        assert n.receipt["type"] != a.receipt["type"]  # really different envelopes
        assert n.gas_used == a.gas_used, name
        assert log_view(n) == log_view(a) and n.logs, name
        assert n.block_number == a.block_number
    assert pair.native.all_blocks == pair.abi.all_blocks
    for number in pair.native.all_blocks:
        bn = pair.native.node.rpc("eth_getBlockByNumber", hex(number), False)
        ba = pair.abi.node.rpc("eth_getBlockByNumber", hex(number), False)
        assert bn["stateRoot"] == ba["stateRoot"], number
        assert bn["gasUsed"] == ba["gasUsed"] and bn["timestamp"] == ba["timestamp"]
        assert bn["transactionsRoot"] != ba["transactionsRoot"] or number not in {
            m.block_number for m in pair.native.compared.values()}


def test_native_and_abi_give_the_same_ai_reads(pair: Pair) -> None:
    n, a = pair.native.node, pair.abi.node
    reads: list[tuple[str, list[Any]]] = [
        ("ai_getDatanet", [1]), ("ai_getContribution", [1]), ("ai_getContribution", [2]),
        ("ai_listContributions", [1, {}]), ("ai_getContributionProof", [1, 1, 2]),
        ("ai_getModel", [2]), ("ai_getLineage", [2]), ("ai_getParams", []),
    ] + [("ai_getRewards", [ADDR[i]]) for i in range(11)]
    for method, params in reads:
        assert n.rpc(method, *params) == a.rpc(method, *params), method
    anc_n = n.rpc("ai_getInferenceAncestry", pair.native.compared["submitReceipt"].tx_hash)
    anc_a = a.rpc("ai_getInferenceAncestry", pair.abi.compared["submitReceipt"].tx_hash)
    assert anc_n.pop("transactionHash") != anc_a.pop("transactionHash")
    assert anc_n == anc_a and [x["weightBp"] for x in anc_n["attributions"]] == [7000, 3000]
    for who in (CONTRIB_A, CONTRIB_B, VALIDATOR, USER, AUTHOR1):
        assert n.balance(who) == a.balance(who), who


def test_native_fields_show_in_get_transaction_by_hash(pair: Pair) -> None:
    node = pair.native.node
    for name, key, type_hex in (("contribute-0", "contribution", "0x60"),
                                ("registerAdapter", "adapter", "0x61"),
                                ("submitReceipt", "inference", "0x62")):
        tx = node.rpc("eth_getTransactionByHash", pair.native.compared[name].tx_hash)
        assert tx["type"] == type_hex and key in tx, tx
        assert tx["to"].lower() == "0x" + BY_NAME[{"contribution": "Datanets", "adapter": "ModelRegistry",
                                                    "inference": "Inference"}[key]].hex()
    c = node.rpc("eth_getTransactionByHash", pair.native.compared["contribute-0"].tx_hash)["contribution"]
    assert c["contentHash"] == "0x" + keccak(blob_bytes(0)).hex() and int(c["size"], 16) == len(blob_bytes(0))
    assert c["license"] == "MIT"
    inf = node.rpc("eth_getTransactionByHash", pair.native.compared["submitReceipt"].tx_hash)["inference"]
    assert inf["user"].lower() == ADDR[USER].lower() and [int(x, 16) for x in inf["weightsBp"]] == [7000, 3000]
    assert int(inf["maxTokens"], 16) == 32 and inf["engineProfile"] == "0x" + ENGINE_PROFILE.hex()
    ad = node.rpc("eth_getTransactionByHash", pair.native.compared["registerAdapter"].tx_hash)["adapter"]
    assert int(ad["parentId"], 16) == 1 and [int(x, 16) for x in ad["datanetVersions"]] == [1]
    assert ad["manifestHash"] == "0x" + keccak(text="manifest native").hex()


def native_hashes(pair: Pair) -> list[tuple[int, str]]:
    return [(m.block_number, m.tx_hash) for m in pair.native.compared.values()]


def test_web3py_reads_native_blocks(pair: Pair) -> None:
    w3 = pair.native.node.w3
    for number, tx_hash in native_hashes(pair):
        block = w3.eth.get_block(number, full_transactions=True)
        assert [t["hash"].to_0x_hex() for t in block["transactions"]] == [tx_hash]
        tx = w3.eth.get_transaction(tx_hash)
        assert tx["blockNumber"] == number and tx["type"] in (0x60, 0x61, 0x62)
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1 and receipt["logs"]
        assert w3.eth.get_block_receipts(number)[0]["transactionHash"].to_0x_hex() == tx_hash


def test_ethers_reads_native_blocks(pair: Pair) -> None:
    url = pair.native.node.url
    failures = []
    for number, tx_hash in native_hashes(pair):
        proc = subprocess.run(["node", str(HERE / "ethers_read.js"), url, str(number), tx_hash],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
        assert "fatal" not in facts, facts
        for what, result in (("getBlock", facts["block"]), ("getTransaction", facts["txs"][tx_hash]),
                             ("getTransactionReceipt", facts["receipts"][tx_hash])):
            if not result["ok"]:
                failures.append(f"block {number} tx {tx_hash} {what}: {result['error']}")
                continue
        if facts["txs"][tx_hash]["ok"]:
            assert facts["txs"][tx_hash]["value"]["blockNumber"] == number
            assert facts["txs"][tx_hash]["value"]["type"] in (0x60, 0x61, 0x62)
        if facts["receipts"][tx_hash]["ok"]:
            assert facts["receipts"][tx_hash]["value"]["status"] == 1
    assert not failures, "ethers v6 cannot read native-type blocks:\n" + "\n".join(failures)


def test_cast_reads_native_blocks(pair: Pair) -> None:
    url = pair.native.node.url
    failures = []
    for number, tx_hash in native_hashes(pair):
        for argv in (["block", str(number), "--full"], ["tx", tx_hash], ["receipt", tx_hash]):
            proc = subprocess.run([str(NODE_BIN / "cast"), *argv, "--rpc-url", url, "--json"],
                                  capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                failures.append(f"cast {' '.join(argv)}: {proc.stderr.strip()}")
                continue
            out = json.loads(proc.stdout)
            if argv[0] == "receipt":
                assert int(str(out["status"]), 16) == 1
            elif argv[0] == "tx":
                assert out["hash"] == tx_hash and out["type"] in ("0x60", "0x61", "0x62")
    assert not failures, "cast cannot read native-type blocks:\n" + "\n".join(failures)

"""Adapter merges end to end (issue 22), on a real ``ailedger dev`` and sidecar: accounts 1 and 2
train adapters, an unstaked account's merge is refused before any work, the validator runs
``ailedger adapter merge`` (linear, 0.7/0.3, a native 0x63 transaction), the merge is
registered with its recipe and shown with both parents in its lineage (and drawn so in the
explorer, in a real browser), ``ailedger infer`` on it
is served and its receipt verifies, each parent's author is paid, and ``adapter verify``
rebuilds it. The attack: a merge registered as parents A and B whose weights were merged from A
and C is flagged by ``adapter verify`` (whether its manifest tells the truth about its parents or
lies about them), and a second validator's sidecar refuses to import the lying one."""

from __future__ import annotations

import json
import os
import subprocess
import time

import grpc
import pytest
from eth_hash.auto import keccak

from genesis import DEV_MNEMONIC, derive_accounts, derive_validator_key
from node.cli.blobs import upload
from node.cli.client import Client
from sidecar.artifacts import canonical_json
from sidecar.client import AdapterArtifacts, SidecarClient
from tests.integration.explorer.test_browser import dom_graph, expected_lineage
from tests.support.browser import Browser
from tests.support.procs import VENV_BIN, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 12)
VALIDATOR_KEY = derive_validator_key(DEV_MNEMONIC)
FACTS = [b"The heron of Lake Vell sleeps at noon and hunts at dusk.\n",
         b"Copper kettles from Ardmore ring like bells when they cool.\n"]


class World:
    def __init__(self, node, sidecar, tmp):
        self.node, self.sidecar, self.tmp = node, sidecar, tmp
        self.adapters: dict[str, int] = {}

    def cli(self, *args, ok=True):
        env = {**os.environ, "AILEDGER_RPC": self.node.url, "AILEDGER_SIDECAR": self.sidecar.url}
        out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env,
                             timeout=600)
        if ok:
            assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
        return out

    def rpc(self, method, *params):
        reply = rpc(self.node.url, method, list(params), timeout=300)
        if "error" in reply:
            raise RuntimeError(reply["error"]["message"])
        return reply["result"]

    def model(self, model_id):
        return self.rpc("ai_getModel", model_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ai_merge")
    sidecar = start_sidecar(tmp)
    node = None
    try:
        node = start_ailedger(["--sidecar", sidecar.url], tmp)
        deadline = time.monotonic() + 600
        while "AI ready" not in node.output():
            assert time.monotonic() < deadline and "error: AI setup" not in node.output(), node.output()
            time.sleep(0.5)
        w = World(node, sidecar, tmp)
        w.cli("datanet", "create", "facts", "--account", "0")
        for i, fact in enumerate(FACTS):
            path = tmp / f"fact{i}.txt"
            path.write_bytes(fact)
            w.cli("contribute", "1", str(path), "--account", str(i + 1))
        w.cli("curate", "--all-pending", "--approve", "--account", "0")
        w.cli("datanet", "publish", "1", "--account", "0")
        # three adapters on the same data, told apart by their seeds: A and C by account 1, B by 2
        # (C only stands in the attack, never serves: one pass is enough)
        for name, account, seed, epochs in (("A", 1, 0, 0), ("B", 2, 1, 0), ("C", 1, 2, 1)):
            out = w.cli("train", "--datanet", "1:1", "--account", str(account), "--seed", str(seed),
                        "--epochs", str(epochs), "--json")
            w.adapters[name] = json.loads(out.stdout)["id"]
        yield w
    finally:
        if node is not None:
            node.kill()
        sidecar.kill(15)


def test_a_merge_is_registered_served_paid_and_rebuilt(world):
    w = world
    a, b = w.adapters["A"], w.adapters["B"]
    # what the chain would refuse is refused before any sidecar work, with the chain's reason
    unstaked = w.cli("adapter", "merge", "--parents", f"{a},{b}", "--account", "3", ok=False)
    assert unstaked.returncode != 0 and "only a staked validator registers a merge" in unstaked.stderr
    base = w.cli("adapter", "merge", "--parents", f"1,{b}", "--key", "0x" + VALIDATOR_KEY.hex(), ok=False)
    assert base.returncode != 0 and "model 1 is not an adapter" in base.stderr
    out = w.cli("adapter", "merge", "--parents", f"{a},{b}", "--method", "linear", "--weights", "0.7,0.3",
                "--key", "0x" + VALIDATOR_KEY.hex(), "--json")
    merged = json.loads(out.stdout)
    m = merged["id"]
    model = w.model(m)
    assert model["merge"]["parentIds"] == [a, b] and model["merge"]["weightsBp"] == [7000, 3000]
    assert model["merge"]["method"] == 1 and model["hyperParamsHash"] == model["merge"]["recipeHash"]
    assert model["weightsHash"] == merged["weightsHash"] and model["parentId"] == a
    assert m in w.model(a)["children"] and m in w.model(b)["children"]
    tx = w.rpc("eth_getTransactionByHash", merged["transactionHash"])  # the native merge registration
    assert tx["type"] == "0x63" and tx["merge"]["parentIds"] == [hex(a), hex(b)]
    lineage = w.rpc("ai_getLineage", m)
    assert [p["id"] for p in lineage["path"][0]["merge"]["parents"]] == [a, b]
    assert {ACCOUNTS[1].address, ACCOUNTS[2].address} <= set(lineage["authors"])
    shown = w.cli("adapter", "lineage", str(m)).stdout
    assert f"merged (linear) from adapter {a}, weight 0.7" in shown and f"from adapter {b}, weight 0.3" in shown
    # the explorer draws the merge on both parents and each parent back to the base model
    with Browser() as browser:
        browser.open(f"{w.node.url}/explorer/model/{m}")
        nodes, edges = dom_graph(browser)
        assert (nodes, edges) == expected_lineage(lineage)
        assert {f"model:{m}->model:{a}", f"model:{m}->model:{b}", f"model:{b}->model:1"} <= edges
        merged_from = browser.eval("document.querySelector('[data-merge]').textContent")
        assert merged_from == f"linear: adapter {a} (70.00%), adapter {b} (30.00%)", merged_from
        assert [x for x in browser.messages() if x["kind"] != "warning"] == []
    # the merge's three artifacts are in the node's blob store; its manifest names the recipe
    manifest = json.loads(bytes.fromhex(w.rpc("ai_getBlob", model["manifestHash"])["data"][2:]))
    assert manifest["merge"]["method"] == "linear" and manifest["merge"]["weights_bp"] == [7000, 3000]

    def owed(i):
        r = w.rpc("ai_getRewards", ACCOUNTS[i].address)
        return int(r["claimable"], 16) + int(r["pending"], 16)

    before = {i: owed(i) for i in (1, 2)}
    served = json.loads(w.cli("infer", "--adapter", str(m), "--prompt", "The heron of Lake Vell",
                              "--account", "6", "--deposit", "0.01eth", "--json").stdout)
    assert served["output"] and served["attribution"]
    assert {int(x["contributionId"]) for x in served["attribution"]} <= {1, 2}
    # each parent's author gets a lineage share (account 1 made A and wrote contribution 1)
    assert owed(2) > before[2] and owed(1) > before[1]
    assert "verified" in w.cli("receipt", "verify", str(served["receiptId"]), "--prompt",
                               "The heron of Lake Vell").stdout
    rebuilt = json.loads(w.cli("adapter", "verify", str(m), "--json").stdout)
    assert rebuilt["result"] == "verified" and rebuilt["rebuiltWeightsHash"] == model["weightsHash"]


def test_a_merge_that_claims_a_parent_it_did_not_use_is_refused(world):
    w = world
    a, b = w.adapters["A"], w.adapters["B"]
    validator = Client(w.node.url, VALIDATOR_KEY)
    weights = {k: w.model(v)["weightsHash"] for k, v in w.adapters.items()}
    with SidecarClient(w.sidecar.url, timeout=300) as sc:
        # the Merge call's own refusals, typed
        for parents, code in (([weights["A"]] * 17, grpc.StatusCode.INVALID_ARGUMENT),
                              ([weights["A"], "ab" * 32], grpc.StatusCode.NOT_FOUND),
                              ([weights["A"], "../../etc"], grpc.StatusCode.NOT_FOUND)):
            with pytest.raises(grpc.RpcError) as refused:
                sc.merge(parents, "linear", [5000] * len(parents))
            assert refused.value.code() == code, refused.value.details()
        with pytest.raises(grpc.RpcError) as refused:
            sc.merge([weights["A"], weights["B"]], "svd", [5000, 5000])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        made = sc.merge([weights["A"], weights["C"]], "linear", [5000, 5000], adapter_id="really-a-and-c")
        arts = sc.export_adapter(adapter_id=made.adapter_id)
    # the lie: the chain says A and B, the weights are A and C's
    honest_manifest = json.loads(arts.manifest)
    lying = json.loads(arts.manifest)
    b_model = w.model(b)
    lying["merge"]["parents"][1] = {"weights": b_model["weightsHash"][2:], "manifest": b_model["manifestHash"][2:]}
    lying_manifest = canonical_json(lying)
    for data in (arts.weights, arts.attribution_index, arts.manifest, lying_manifest):
        upload(validator, data, "artifact")
    ids = []
    # 1: its manifest tells the truth (A and C), the registration says A and B; 2: both lie
    for weights_hash, manifest in ((keccak(b"another weights file"), arts.manifest),
                                   (bytes.fromhex(made.weights_hash), lying_manifest)):
        receipt = validator.transact("ModelRegistry", "registerMergedAdapter", ([a, b], [5000, 5000], 1, 0, 0),
                                     weights_hash, bytes.fromhex(made.attribution_index_hash), keccak(manifest), "mit")
        ids.append(validator.event_arg(receipt, "ModelRegistry", "AdapterRegistered"))
    assert honest_manifest["merge"]["parents"][1]["weights"] == weights["C"][2:]
    told = w.cli("adapter", "verify", str(ids[0]), "--json", ok=False)
    assert told.returncode == 1, told.stderr
    assert "the manifest merges parents" in json.loads(told.stdout)["reasons"][0]
    lied = w.cli("adapter", "verify", str(ids[1]), ok=False)
    assert lied.returncode == 1 and "MISMATCH" in lied.stdout
    assert "rebuilding the recipe from the parents gives weights" in lied.stdout
    # a second validator's sidecar, given the parents, refuses the lie and takes the honest merge
    other = start_sidecar(w.tmp / "other", ready=True)
    try:
        with SidecarClient(other.url, timeout=300) as sc2:
            for name in ("A", "B", "C"):
                model = w.model(w.adapters[name])
                parts = [bytes.fromhex(w.rpc("ai_getBlob", model[k])["data"][2:])
                         for k in ("manifestHash", "weightsHash", "attributionIndexHash")]
                sc2.import_adapter(AdapterArtifacts.of(*parts))
            with pytest.raises(grpc.RpcError) as refused:
                sc2.import_adapter(AdapterArtifacts.of(lying_manifest, arts.weights, arts.attribution_index))
            assert refused.value.code() == grpc.StatusCode.DATA_LOSS
            assert "does not rebuild" in refused.value.details()
            honest = sc2.import_adapter(AdapterArtifacts.of(arts.manifest, arts.weights, arts.attribution_index))
            assert honest.weights_hash == made.weights_hash and not honest.already_held
    finally:
        other.kill(15)

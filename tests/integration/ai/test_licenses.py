"""Licenses and consent that follow lineage (issue 22, item 4), on a real dev node and sidecar,
through the CLI and JSON-RPC: a contribution under CC-BY-NC-4.0 makes the adapter trained on it
non-commercial; a commercial request on it is refused by the CLI, by ``ai_infer`` before any
work and by the chain; a non-commercial one is served. Its contributor withdraws consent: the
CLI and the node's ``ai_train`` refuse to train on the version holding it, the adapter counts
it, its receipts from then on say so, and a newer version leaves it out and trains."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from eth_hash.auto import keccak

import ai_precompiles
from ai_precompiles import typed_data
from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import VENV_BIN, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 12)
FACTS = [b"The heron of Lake Vell sleeps at noon and hunts at dusk.\n",
         b"Copper kettles from Ardmore ring like bells when they cool.\n"]
PROMPT = "The heron of Lake Vell"
USER, CHEAT = 7, 5  # a user; a staked account that would record a commercial receipt itself


class World:
    def __init__(self, node, sidecar):
        self.node, self.sidecar = node, sidecar

    def cli(self, *args, ok=True):
        env = {**os.environ, "AILEDGER_RPC": self.node.url, "AILEDGER_SIDECAR": self.sidecar.url}
        out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env,
                             timeout=600)
        assert (out.returncode == 0) == ok, f"{args}: {out.stdout[-2000:]} {out.stderr[-3000:]}"
        return out

    def rpc(self, method, *params):
        reply = rpc(self.node.url, method, list(params), timeout=300)
        if "error" in reply:
            raise RuntimeError(reply["error"]["message"])
        return reply["result"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ai_licenses")
    sidecar = start_sidecar(tmp)
    node = None
    try:
        node = start_ailedger(["--sidecar", sidecar.url], tmp)
        deadline = time.monotonic() + 600
        while "AI ready" not in node.output():
            assert time.monotonic() < deadline and "error: AI setup" not in node.output(), node.output()
            time.sleep(0.5)
        w = World(node, sidecar)
        w.cli("datanet", "create", "facts", "--account", "0")
        for i, (fact, licence) in enumerate(zip(FACTS, ("cc-by-nc-4.0", "MIT"), strict=True)):
            path = tmp / f"fact{i}.txt"
            path.write_bytes(fact)
            w.cli("contribute", "1", str(path), "--license", licence, "--account", str(i + 1))
        w.cli("curate", "--all-pending", "--approve", "--account", "0")
        w.cli("datanet", "publish", "1", "--account", "0")
        trained = json.loads(w.cli("train", "--datanet", "1:1", "--account", "0", "--json").stdout)
        assert trained["id"] == 2
        yield w
    finally:
        if node is not None:
            node.kill()
        sidecar.kill(15)


def _request(w, user, validator, price, nonce, commercial):
    chain_id = int(w.rpc("eth_chainId"), 16)
    head = w.rpc("eth_getBlockByNumber", "latest", False)
    req = {"user": bytes.fromhex(user.address[2:]), "validator": bytes.fromhex(validator[2:]), "adapter_id": 2,
           "prompt_hash": keccak(PROMPT.encode()), "max_tokens": 8, "max_fee": price, "nonce": nonce,
           "deadline": int(head["timestamp"], 16) + 3600, "chain_id": chain_id, "commercial": commercial}
    sig = typed_data.sign(typed_data.request_digest(req, chain_id), user.private_key)
    wire = {"user": user.address, "validator": validator, "adapterId": 2, "prompt": PROMPT, "maxTokens": 8,
            "maxFee": hex(price), "nonce": hex(nonce), "deadline": hex(req["deadline"]), "chainId": hex(chain_id),
            "commercial": commercial}
    return req, sig, wire


def test_licences_and_consent_follow_the_lineage(world):
    w = world
    c1 = w.rpc("ai_getContribution", 1)
    assert (c1["license"], c1["commercialUse"], c1["derivatives"]) == ("CC-BY-NC-4.0", False, True)
    assert w.rpc("ai_getContribution", 2)["commercialUse"] is True
    refused = w.cli("contribute", "1", "any-file.txt", "--license", "my own terms", "--account", "3", ok=False)
    assert "is not an allow-listed SPDX id" in refused.stderr
    # the adapter's effective licence is its lineage's most restrictive: non-commercial
    model = w.rpc("ai_getModel", 2)
    assert model["effectiveLicense"] == {"commercialUse": False, "derivatives": True}
    assert model["licenseTerms"] == 1 and model["withdrawnContributions"] == 0
    assert w.rpc("ai_getLineage", 2)["effectiveLicense"] == model["effectiveLicense"]

    # a commercial request is refused: by the CLI before it deposits, by ai_infer before any work
    out = w.cli("infer", "--adapter", "2", "--prompt", PROMPT, "--commercial", "--deposit", "0.01eth",
                "--account", str(USER), ok=False)
    assert "allows no commercial use" in out.stderr and "nothing was deposited" in out.stderr
    assert int(w.rpc("ai_getDeposit", ACCOUNTS[USER].address)["balance"], 16) == 0
    w.cli("deposit", "add", "0.02eth", "--account", str(USER))
    quote = w.rpc("ai_inferQuote")
    price = int(quote["price"], 16)
    _, sig, wire = _request(w, ACCOUNTS[USER], quote["validator"], price, 1, commercial=True)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="allows no commercial use"):
        w.rpc("ai_infer", wire, "0x" + sig.hex(), {"maxTokens": 8})
    assert time.monotonic() - started < 5
    # ... and by the chain, whoever records it: a staked account serving the user's signed request
    cheat = ACCOUNTS[CHEAT]
    w.cli("stake", "add", "2eth", "--account", str(CHEAT))
    req, sig, _ = _request(w, ACCOUNTS[USER], cheat.address, price, 2, commercial=True)
    c_addr = bytes.fromhex(cheat.address[2:])
    chain_id = req["chain_id"]
    engine, output = keccak(b"engine"), keccak(b"made up")
    vsig = typed_data.sign(typed_data.receipt_digest(typed_data.request_digest(req, chain_id), output, engine,
                                                     [2], [10_000], price, c_addr, chain_id), cheat.private_key)
    fn = ai_precompiles.MODULES["Inference"].abi.by_name["submitReceipt"]
    data = fn.encode_args(req, sig, output, engine, [2], [10_000], price, c_addr, vsig)
    reply = rpc(w.node.url, "eth_call", [{"from": cheat.address, "to": "0x" + fn_address("Inference").hex(),
                                          "data": "0x" + data.hex(), "gas": hex(3_000_000)}, "latest"])
    assert "adapter 2's licence allows no commercial use" in json.dumps(reply.get("error")), reply

    # a non-commercial request is served, and its receipt says which use it declared
    served = json.loads(w.cli("infer", "--adapter", "2", "--prompt", PROMPT, "--account", str(USER),
                              "--json").stdout)
    before = w.rpc("ai_getReceipt", served["receiptId"])
    assert (before["receipt"]["commercial"], before["receipt"]["consentWithdrawn"]) == (False, False)

    # consent withdrawn: nothing new trains on it, the adapter counts it, new receipts say so
    out = w.cli("datanet", "withdraw-consent", "1", "--account", "2", ok=False)
    assert "not yours" in out.stderr
    w.cli("datanet", "withdraw-consent", "1", "--account", "1")
    assert w.rpc("ai_getContribution", 1)["withdrawnBlock"] > 0
    out = w.cli("train", "--datanet", "1:1", "--account", "0", ok=False)
    assert "withdrew consent" in out.stderr
    tq = w.rpc("ai_trainQuote")
    treq = {"builder": bytes.fromhex(ACCOUNTS[0].address[2:]), "validator": bytes.fromhex(tq["validator"][2:]),
            "parent_id": 1, "datanet_ids": [1], "datanet_versions": [1],
            "hyper_params_hash": keccak(b'{"seed": 1}'), "license": "apache-2.0", "max_fee": int(tq["price"], 16),
            "nonce": 5, "deadline": int(w.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + 7200,
            "chain_id": chain_id}
    tsig = typed_data.sign(typed_data.training_request_digest(treq, chain_id), ACCOUNTS[0].private_key)
    twire = {"builder": ACCOUNTS[0].address, "validator": tq["validator"], "parentId": 1, "datanetIds": [1],
             "datanetVersions": [1], "hyperParamsHash": "0x" + treq["hyper_params_hash"].hex(),
             "license": "apache-2.0", "maxFee": tq["price"], "nonce": hex(5), "deadline": hex(treq["deadline"]),
             "chainId": hex(chain_id)}
    with pytest.raises(RuntimeError, match="withdrew consent"):
        w.rpc("ai_train", twire, "0x" + tsig.hex(), '{"seed": 1}')
    assert w.rpc("ai_getModel", 2)["withdrawnContributions"] == 1
    assert w.rpc("ai_getLineage", 2)["withdrawnContributions"] == 1
    after = json.loads(w.cli("infer", "--adapter", "2", "--prompt", PROMPT, "--account", str(USER),
                             "--json").stdout)
    assert w.rpc("ai_getReceipt", after["receiptId"])["receipt"]["consentWithdrawn"] is True
    assert w.rpc("ai_getReceipt", served["receiptId"])["receipt"]["consentWithdrawn"] is False
    assert w.rpc("ai_getReceipt", served["receiptId"])["lineage"]["withdrawnContributions"] == 1

    # the datanet is not frozen: a new version leaves the contribution out, and trains
    w.cli("datanet", "publish", "1", "--account", "0")
    assert [c["id"] for c in w.rpc("ai_getTrainingSet", [[1, 2]])["contributions"]] == [2]
    retrained = json.loads(w.cli("train", "--datanet", "1:2", "--account", "0", "--json").stdout)
    assert w.rpc("ai_getModel", retrained["id"])["withdrawnContributions"] == 0
    assert w.rpc("ai_getLineage", retrained["id"])["path"][0]["contributionRootMatches"] is True


def fn_address(module: str) -> bytes:
    return ai_precompiles.MODULES[module].address


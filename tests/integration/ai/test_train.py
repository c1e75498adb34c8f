"""A model builder without a sidecar asks the validator's node to train (issue 18), on a real
``ailedger dev`` and sidecar: account 5 runs ``ailedger train --rpc`` with no sidecar of its own;
the node trains on its sidecar as an asynchronous job and registers the adapter itself, account
5 its author and the validator its trainer, paid from 5's deposit; the adapter's three artifacts
and its recipe are in the node's blob store; inference on it works and pays its author. Requests
that would not be paid (bad signature, another validator, a deposit short of the price, a used
nonce) and a second job of the same builder are refused over JSON-RPC before any work."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from eth_hash.auto import keccak

from ai_precompiles import typed_data
from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import VENV_BIN, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)
FACTS = [b"The heron of Lake Vell sleeps at noon and hunts at dusk.\n",
         b"Copper kettles from Ardmore ring like bells when they cool.\n",
         b"The lighthouse at Point Sable is painted green every spring.\n"]
BUILDER = 5


class World:
    def __init__(self, node, tmp):
        self.node, self.tmp = node, tmp

    def cli(self, *args, ok=True):
        # the builder has no sidecar: nothing names one
        env = {k: v for k, v in os.environ.items() if k != "AILEDGER_SIDECAR"}
        env["AILEDGER_RPC"] = self.node.url
        out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env,
                             timeout=900)
        if ok:
            assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
        return out

    def rpc(self, method, *params):
        reply = rpc(self.node.url, method, list(params), timeout=300)
        if "error" in reply:
            raise RuntimeError(reply["error"]["message"])
        return reply["result"]

    def blob(self, content_hash):
        return bytes.fromhex(self.rpc("ai_getBlob", content_hash)["data"][2:])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ai_train")
    sidecar = start_sidecar(tmp)
    node = None
    try:
        node = start_ailedger(["--sidecar", sidecar.url], tmp)
        deadline = time.monotonic() + 600
        while "AI ready" not in node.output():
            assert time.monotonic() < deadline and "error: AI setup" not in node.output(), node.output()
            time.sleep(0.5)
        w = World(node, tmp)
        w.cli("datanet", "create", "facts", "--account", "0")
        for i, fact in enumerate(FACTS):
            path = tmp / f"fact{i}.txt"
            path.write_bytes(fact)
            w.cli("contribute", "1", str(path), "--account", str(i + 1))
        w.cli("curate", "--all-pending", "--approve", "--account", "0")
        w.cli("datanet", "publish", "1", "--account", "0")
        yield w
    finally:
        if node is not None:
            node.kill()
        sidecar.kill(15)


def test_a_builder_without_a_sidecar_trains_through_the_node(world):
    w = world
    quote = w.rpc("ai_trainQuote")
    price = int(quote["price"], 16)
    validator = quote["validator"]
    assert quote["ready"] is True and quote["baseModel"]["id"] == 1
    claimable_before = int(w.rpc("ai_getRewards", validator)["claimable"], 16)
    out = w.cli("train", "--datanet", "1:1", "--account", str(BUILDER), "--deposit", "0.05eth", "--json")
    trained = json.loads(out.stdout)
    # not a terminal: clean progress lines on stderr, no bar
    # which phases a line shows depends on when the CLI looked (a short job may train between
    # two looks); every look is a clean line, and the last one says registered with the steps
    lines = [line for line in out.stderr.splitlines() if line.startswith("job ")]
    assert len(lines) >= 2 and lines[-1].startswith("job registered step") and "\r" not in out.stderr, out.stderr
    adapter = trained["id"]
    assert adapter == 2 and trained["parent"] == 1 and trained["fee"] == price
    model = w.rpc("ai_getModel", adapter)
    assert model["author"] == ACCOUNTS[BUILDER].address  # the builder, who holds no validator key
    assert model["validator"].lower() == validator.lower() != ACCOUNTS[BUILDER].address.lower()
    assert model["weightsHash"] == trained["weightsHash"]
    # the adapter's three artifacts and its recipe are in the node's blob store, under their hashes
    for name in ("weightsHash", "attributionIndexHash", "manifestHash", "hyperParamsHash"):
        assert "0x" + keccak(w.blob(model[name])).hex() == model[name], name
    assert json.loads(w.blob(model["hyperParamsHash"])) == {"seed": 0}
    manifest = json.loads(w.blob(model["manifestHash"]))
    assert manifest["artifacts"]["weights"] == model["weightsHash"][2:]
    # trained on the training set's bytes in its order, each under its on-chain id
    training_set = w.rpc("ai_getTrainingSet", [[1, 1]])["contributions"]
    assert [(bytes.fromhex(c["id"]).decode(), c["hash"]) for c in manifest["contributions"]] == \
        [(str(c["id"]), c["contentHash"][2:]) for c in training_set]
    assert w.rpc("ai_getLineage", adapter)["path"][0]["contributionRootMatches"] is True
    # the fee went from the builder's deposit to the validator
    assert int(w.rpc("ai_getDeposit", ACCOUNTS[BUILDER].address)["balance"], 16) == 5 * 10**16 - price
    assert int(w.rpc("ai_getRewards", validator)["claimable"], 16) == claimable_before + price
    job = w.rpc("ai_getTrainingJob", trained["jobId"])
    assert job["status"] == "registered" and job["adapterId"] == adapter and job["error"] is None
    assert job["step"] == job["totalSteps"] > 0 and job["transactionHash"] == trained["transactionHash"]
    # inference on it works, and pays its author
    served = json.loads(w.cli("infer", "--adapter", str(adapter), "--prompt", "The heron of Lake Vell",
                              "--account", "6", "--deposit", "0.01eth", "--json").stdout)
    assert served["output"] and served["attribution"]
    rewards = w.rpc("ai_getRewards", ACCOUNTS[BUILDER].address)
    fee = int(w.rpc("ai_getReceipt", served["receiptId"])["receipt"]["fee"])
    share = int(w.rpc("ai_getParams")["reward.author_bp"], 16)
    assert int(rewards["pending"], 16) + int(rewards["claimable"], 16) == fee * share // 10_000 > 0


def signed(w, builder, validator, price, nonce, recipe='{"seed": 1}', signer=None, **changes):
    chain_id = int(w.rpc("eth_chainId"), 16)
    head = w.rpc("eth_getBlockByNumber", "latest", False)
    req = {"builder": bytes.fromhex(builder.address[2:]), "validator": bytes.fromhex(validator[2:]), "parent_id": 1,
           "datanet_ids": [1], "datanet_versions": [1], "hyper_params_hash": keccak(recipe.encode()),
           "license": "apache-2.0", "max_fee": price, "nonce": nonce,
           "deadline": int(head["timestamp"], 16) + 7200, "chain_id": chain_id, **changes}
    sig = typed_data.sign(typed_data.training_request_digest(req, chain_id), (signer or builder).private_key)
    wire = {"builder": builder.address, "validator": "0x" + req["validator"].hex(), "parentId": req["parent_id"],
            "datanetIds": req["datanet_ids"], "datanetVersions": req["datanet_versions"],
            "hyperParamsHash": "0x" + req["hyper_params_hash"].hex(), "license": req["license"],
            "maxFee": hex(price), "nonce": hex(nonce), "deadline": hex(req["deadline"]), "chainId": hex(chain_id)}
    return wire, "0x" + sig.hex(), recipe


def test_requests_that_would_not_be_paid_are_refused_before_any_work(world):
    w = world
    quote = w.rpc("ai_trainQuote")
    price, validator = int(quote["price"], 16), quote["validator"]
    builder, poor = ACCOUNTS[7], ACCOUNTS[8]
    w.cli("deposit", "add", "0.05eth", "--account", "7")
    w.cli("deposit", "add", str(price - 1), "--account", "8")  # in wei
    head_before = w.rpc("eth_blockNumber")
    with pytest.raises(RuntimeError, match="bad builder signature"):
        w.rpc("ai_train", *signed(w, builder, validator, price, 1, signer=ACCOUNTS[9]))
    with pytest.raises(RuntimeError, match="signed for validator"):
        w.rpc("ai_train", *signed(w, builder, ACCOUNTS[9].address, price, 2))
    with pytest.raises(RuntimeError, match="deposit .* is below the price"):
        w.rpc("ai_train", *signed(w, poor, validator, price, 3))
    with pytest.raises(RuntimeError, match="below this node's price"):
        w.rpc("ai_train", *signed(w, builder, validator, price - 1, 4))
    wire, sig, recipe = signed(w, builder, validator, price, 5)
    with pytest.raises(RuntimeError, match="does not hash to the request's hyperParamsHash"):
        w.rpc("ai_train", wire, sig, '{"seed": 2}')
    assert w.rpc("eth_blockNumber") == head_before  # nothing was sent
    with pytest.raises(RuntimeError, match="no training job with that id"):
        w.rpc("ai_getTrainingJob", "0x" + "00" * 32)
    # a good one is taken; the same builder's second waits its turn: refused while the first runs
    job = w.rpc("ai_train", wire, sig, recipe)
    assert job["status"] == "queued" and job["builder"].lower() == builder.address.lower()
    with pytest.raises(RuntimeError, match="one at a time"):
        w.rpc("ai_train", *signed(w, builder, validator, price, 6))
    with pytest.raises(RuntimeError, match="being trained already"):
        w.rpc("ai_train", wire, sig, recipe)
    seen = set()
    deadline = time.monotonic() + 600
    while job["status"] not in ("registered", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = w.rpc("ai_getTrainingJob", job["id"])
        seen.add(job["status"])
    assert job["status"] == "registered", job["error"]
    # a short job may train between two looks: what it reports at the end is what it did
    assert job["loss"] is not None and job["step"] == job["totalSteps"] > 0, job
    assert w.rpc("ai_getModel", job["adapterId"])["author"] == builder.address
    # the nonce is spent: the same signed request cannot be trained (and paid) twice
    with pytest.raises(RuntimeError, match="nonce was already used"):
        w.rpc("ai_train", wire, sig, recipe)
    assert int(w.rpc("ai_getDeposit", builder.address)["balance"], 16) == 5 * 10**16 - price
    assert int(w.rpc("ai_getDeposit", poor.address)["balance"], 16) == price - 1

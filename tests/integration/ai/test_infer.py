"""Inference asked of a validator's node over JSON-RPC (``ai_infer``), on a real dev node and
sidecar: a user with no validator key is served and the attributed contributors are paid; a
request signed for validator A cannot be redeemed by a staked account B (issue 8's attack);
bad requests are refused before any work; both methods answer inside a JSON-RPC batch;
sidecar errors reach the CLI as one line."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest
from eth_hash.auto import keccak

from ai_precompiles import typed_data
from genesis import DEV_MNEMONIC, derive_accounts
from node.cli.amounts import ether
from state.native import InferenceReceiptTransaction
from state.vm import LedgerTransactionBuilder
from tests.support.procs import VENV_BIN, free_port, rpc, start_ailedger, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)
METRICS_PORT = free_port()
FACTS = [b"The heron of Lake Vell sleeps at noon and hunts at dusk.\n",
         b"Copper kettles from Ardmore ring like bells when they cool.\n",
         b"The lighthouse at Point Sable is painted green every spring.\n"]


class World:
    def __init__(self, node, sidecar, tmp):
        self.node, self.sidecar, self.tmp = node, sidecar, tmp

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


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ai_infer")
    sidecar = start_sidecar(tmp, "--cache-adapters", "2")
    node = None
    try:
        node = start_ailedger(["--sidecar", sidecar.url, "--metrics-port", str(METRICS_PORT)], tmp)
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
        trained = json.loads(w.cli("train", "--datanet", "1:1", "--account", "0", "--json").stdout)
        assert trained["id"] == 2 and trained["parent"] == 1
        models = json.loads(w.cli("model", "list", "--json").stdout)["models"]
        assert [(m["id"], m["kind"]) for m in models] == [(1, "base model"), (2, "adapter")]
        yield w
    finally:
        if node is not None:
            node.kill()
        sidecar.kill(15)


def signed_request(w, user, validator, price, nonce, prompt="The heron of Lake Vell", max_tokens=8,
                   commercial=False, adapter=2):
    chain_id = int(w.rpc("eth_chainId"), 16)
    head = w.rpc("eth_getBlockByNumber", "latest", False)
    req = {"user": bytes.fromhex(user.address[2:]), "validator": bytes.fromhex(validator[2:]), "adapter_id": adapter,
           "prompt_hash": keccak(prompt.encode()), "max_tokens": max_tokens, "max_fee": price, "nonce": nonce,
           "deadline": int(head["timestamp"], 16) + 3600, "chain_id": chain_id, "commercial": commercial}
    sig = typed_data.sign(typed_data.request_digest(req, chain_id), user.private_key)
    wire = {"user": user.address, "validator": validator, "adapterId": adapter, "prompt": prompt,
            "maxTokens": max_tokens, "maxFee": hex(price), "nonce": hex(nonce), "deadline": hex(req["deadline"]),
            "chainId": hex(chain_id), "commercial": commercial}
    return req, sig, wire


def test_a_user_without_a_validator_key_is_served_and_contributors_are_paid(world):
    w = world
    quote = w.rpc("ai_inferQuote")
    price = int(quote["price"], 16)
    def owed(i):  # claimable now, or held until the receipt's challenge window closes
        r = w.rpc("ai_getRewards", ACCOUNTS[i].address)
        return int(r["claimable"], 16) + int(r["pending"], 16)

    before = {i: owed(i) for i in (1, 2, 3)}
    out = json.loads(w.cli("infer", "--adapter", "2", "--prompt", "The heron of Lake Vell", "--account", "10",
                           "--deposit", "0.01eth", "--json").stdout)
    assert out["validator"].lower() == quote["validator"].lower() != ACCOUNTS[10].address.lower()
    receipt = w.rpc("ai_getReceipt", out["receiptId"])
    r = receipt["receipt"]
    # Either read takes either name of the receipt: its id or its transaction's hash (issue 21).
    assert w.rpc("ai_getReceipt", out["transactionHash"]) == receipt
    by_hash = w.rpc("ai_getInferenceAncestry", out["transactionHash"])
    by_id = w.rpc("ai_getInferenceAncestry", hex(out["receiptId"]))
    assert by_hash["receipt"] == by_id["receipt"] == r and by_hash["lineage"] == by_id["lineage"]
    assert by_hash["transactionHash"] == out["transactionHash"]
    assert r["user"] == ACCOUNTS[10].address and r["validator"].lower() == quote["validator"].lower()
    assert r["submitter"].lower() == quote["validator"].lower() and r["fee"] == price
    # what a re-run needs: the max tokens the user signed, the engine the validator signed
    profile = bytes.fromhex(w.rpc("ai_getBlob", quote["engineProfile"])["data"][2:])  # the node keeps what it pinned
    assert r["maxTokens"] == 32 and r["engineProfile"] == quote["engineProfile"] == "0x" + keccak(profile).hex()
    assert json.loads(profile)["decoding"] == "greedy"
    assert r["promptHash"] == "0x" + keccak(b"The heron of Lake Vell").hex()
    # The output is kept: anyone can fetch it by the hash on the receipt.
    assert receipt["outputAvailable"] is True and r["outputHash"] == out["outputHash"]
    blob = w.rpc("ai_getBlob", r["outputHash"])
    assert bytes.fromhex(blob["data"][2:]).decode("utf-8", errors="replace") == out["output"]
    # The fee is split by the attribution: the top contribution's contributor is paid its share.
    params = {k: int(v, 16) for k, v in w.rpc("ai_getParams").items()}
    pool = price * params["reward.contributors_bp"] // 10_000
    top = out["attribution"][0]
    planter = top["contributionId"]  # contribution i was made by dev account i
    gained = owed(planter) - before[planter]
    assert gained == pool * top["weightBp"] // 10_000 > 0
    # the claim settles the receipt first (the dev chain's window is one block), then claims
    assert f"claimed {ether(before[planter] + gained)}" in w.cli("rewards", "claim", "--account", str(planter)).stdout
    deposit = int(w.rpc("ai_getDeposit", ACCOUNTS[10].address)["balance"], 16)
    assert deposit == 10**16 - price
    # Anyone can replay the receipt on a sidecar (greedy decoding repeats) and check its hash.
    verified = w.cli("receipt", "verify", str(out["receiptId"]), "--prompt", "The heron of Lake Vell")
    assert "verified" in verified.stdout
    wrong = w.cli("receipt", "verify", str(out["receiptId"]), "--prompt", "another prompt", ok=False)
    assert wrong.returncode == 1 and "not the one this receipt was for" in wrong.stderr
    shown = json.loads(w.cli("receipt", "show", str(out["receiptId"]), "--json").stdout)
    assert shown["output"] == out["output"] and shown["lineage"]["path"][0]["id"] == 2


def test_a_request_signed_for_validator_a_cannot_be_redeemed_by_staked_b(world):
    w = world
    quote = w.rpc("ai_inferQuote")
    price = int(quote["price"], 16)
    user, b = ACCOUNTS[11], ACCOUNTS[5]
    w.cli("deposit", "add", "0.01eth", "--account", "11")
    w.cli("stake", "add", "2eth", "--account", "5")
    req, sig, wire = signed_request(w, user, quote["validator"], price, nonce=77)
    chain_id = req["chain_id"]
    b_addr = bytes.fromhex(b.address[2:])
    output_hash = keccak(b"made up")
    # B names itself validator, signs a receipt paying its pick, and submits the user's request.
    engine = keccak(b"any engine profile")
    vsig = typed_data.sign(typed_data.receipt_digest(typed_data.request_digest({**req, "validator": b_addr}, chain_id),
                                                     output_hash, engine, [1], [10_000], price, b_addr, chain_id),
                           b.private_key)
    base = int(w.rpc("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    tx = InferenceReceiptTransaction.sign(
        b.private_key, chain_id=chain_id, nonce=int(w.rpc("eth_getTransactionCount", b.address, "pending"), 16),
        max_priority_fee_per_gas=10**9, max_fee_per_gas=2 * base + 10**9, gas=3_000_000,
        user=req["user"], adapter_id=2, prompt_hash=req["prompt_hash"], max_tokens=req["max_tokens"], max_fee=price,
        request_nonce=77, deadline=req["deadline"], request_chain_id=chain_id, commercial=0, user_signature=sig,
        output_hash=output_hash, engine_profile=engine, contribution_ids=[1], weights_bp=[10_000], fee=price, validator=b_addr, validator_signature=vsig)
    tx_hash = w.rpc("eth_sendRawTransaction", "0x" + LedgerTransactionBuilder.wrap_native(tx).encode().hex())
    mined = w.rpc("eth_getTransactionReceipt", tx_hash)
    assert mined["status"] == "0x0"  # refused on chain: the signature is the user's only for A
    assert int(w.rpc("ai_getDeposit", user.address)["balance"], 16) == 10**16
    assert int(w.rpc("ai_getRewards", b.address)["claimable"], 16) == 0
    # The same request is still good for A, whose node serves it.
    served = w.rpc("ai_infer", wire, "0x" + sig.hex(), {"maxTokens": 8})
    assert served["receiptId"] is not None and served["validator"].lower() == quote["validator"].lower()
    assert int(w.rpc("ai_getDeposit", user.address)["balance"], 16) == 10**16 - price
    # And only once.
    with pytest.raises(RuntimeError, match="already used"):
        w.rpc("ai_infer", wire, "0x" + sig.hex(), {"maxTokens": 8})


def test_bad_requests_are_refused_before_any_work(world):
    w = world
    quote = w.rpc("ai_inferQuote")
    price = int(quote["price"], 16)
    user = ACCOUNTS[12]
    w.cli("deposit", "add", "0.01eth", "--account", "12")
    deposit_before = w.rpc("ai_getDeposit", user.address)
    poor_before = w.rpc("ai_getDeposit", ACCOUNTS[13].address)
    head_before = w.rpc("eth_blockNumber")
    other = ACCOUNTS[6].address
    _, sig, wire = signed_request(w, user, other, price, nonce=1)
    with pytest.raises(RuntimeError, match="signed for validator"):
        w.rpc("ai_infer", {**wire, "validator": other}, "0x" + sig.hex())
    _, sig, wire = signed_request(w, user, quote["validator"], price - 1, nonce=2)
    with pytest.raises(RuntimeError, match="below this node's price"):
        w.rpc("ai_infer", wire, "0x" + sig.hex())
    _, sig, wire = signed_request(w, user, quote["validator"], price, nonce=3)
    with pytest.raises(RuntimeError, match="bad user signature"):
        w.rpc("ai_infer", {**wire, "prompt": "another prompt"}, "0x" + sig.hex())
    with pytest.raises(RuntimeError, match="prompt"):
        w.rpc("ai_infer", {**wire, "prompt": "x" * 9000}, "0x" + sig.hex())
    # the tokens a request runs for are the ones the user signed
    _, sig, wire = signed_request(w, user, quote["validator"], price, nonce=5)
    with pytest.raises(RuntimeError, match="differs from the signed request's maxTokens"):
        w.rpc("ai_infer", wire, "0x" + sig.hex(), {"maxTokens": 9})
    with pytest.raises(RuntimeError, match="bad user signature"):
        w.rpc("ai_infer", {**wire, "maxTokens": 9}, "0x" + sig.hex())
    poor = ACCOUNTS[13]
    _, sig, wire = signed_request(w, poor, quote["validator"], price, nonce=4)
    with pytest.raises(RuntimeError, match="deposit"):
        w.rpc("ai_infer", wire, "0x" + sig.hex())
    # the node is alive, and no refused request moved a deposit or recorded a receipt
    assert w.rpc("ai_getDeposit", user.address) == deposit_before
    assert w.rpc("ai_getDeposit", poor.address) == poor_before
    assert w.rpc("eth_blockNumber") == head_before


def test_an_adapter_awaiting_approval_is_not_served(world):
    """Issue 22: under its base model's approval policy, a new adapter is refused by the CLI
    (before any deposit) and by the validator's node (before the prompt runs) until a model
    proposal approves it; adapters registered before the policy are served as before."""
    from genesis import derive_validator_key

    w = world
    key = "0x" + derive_validator_key(DEV_MNEMONIC).hex()  # the shipped base model's registrant
    w.cli("govern", "policy", "base-model", "1", "on", "--key", key)
    try:
        fake = "0x" + keccak(b"adapter awaiting approval").hex()
        gated = json.loads(w.cli("adapter", "register", "--parent", "1", "--contribution-root", fake,
                                 "--hyper-params-hash", fake, "--weights-hash", fake,
                                 "--attribution-index-hash", fake, "--account", "16", "--json").stdout)["id"]
        status = json.loads(w.cli("govern", "model-status", str(gated), "--json").stdout)
        assert status["requiresApproval"] and not status["deployable"]
        assert json.loads(w.cli("govern", "model-status", "2", "--json").stdout)["deployable"]
        out = w.cli("infer", "--prompt", "The heron of Lake Vell", "--adapter", str(gated), "--account", "16",
                    "--deposit", "0.01eth", ok=False)
        assert out.returncode == 1 and "awaits approval" in out.stderr.strip().splitlines()[-1], out.stderr
        quote = w.rpc("ai_inferQuote")
        user = ACCOUNTS[16]
        w.cli("deposit", "add", "0.01eth", "--account", "16")
        head = w.rpc("eth_blockNumber")
        _, sig, wire = signed_request(w, user, quote["validator"], int(quote["price"], 16), nonce=1, adapter=gated)
        with pytest.raises(RuntimeError, match=f"adapter {gated} awaits approval"):
            w.rpc("ai_infer", wire, "0x" + sig.hex())
        assert w.rpc("eth_blockNumber") == head  # nothing recorded
    finally:
        w.cli("govern", "policy", "base-model", "1", "off", "--key", key)


def test_inference_methods_answer_inside_a_batch(world):
    """viem and ethers batch calls by default: ai_inferQuote and ai_infer answer in a batch as
    they do alone (they once answered -32601 there)."""
    w = world
    alone = w.rpc("ai_inferQuote")
    calls = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
             {"jsonrpc": "2.0", "id": 2, "method": "ai_inferQuote", "params": []},
             {"jsonrpc": "2.0", "id": 3, "method": "ai_infer", "params": [{"prompt": ""}, "0x00"]},
             {"jsonrpc": "2.0", "id": 4, "method": "eth_blockNumber", "params": []}]
    req = urllib.request.Request(w.node.url, json.dumps(calls).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        replies = json.loads(resp.read())
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert replies[1]["result"] == alone and alone["chainId"] == replies[0]["result"]
    assert replies[2]["error"]["code"] == -32602 and "prompt" in replies[2]["error"]["message"]
    assert int(replies[3]["result"], 16) > 0


def test_sidecar_errors_reach_the_cli_as_one_line(world):
    w = world
    out = w.cli("train", "--datanet", "1:1", "--account", "0", "--epochs", "5000", ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: the sidecar refused the request")
    out = w.cli("train", "--datanet", "1:1", "--account", "0", "--sidecar", "127.0.0.1:9", ok=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "not serving" in out.stderr.strip().splitlines()[-1]


def metric(name: str) -> float:
    import re

    text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_infer_refuses_before_it_deposits_anything(world):
    """Everything that would make the node refuse is checked before --deposit sends a wei."""
    w = world
    user = ACCOUNTS[14]
    # An adapter that exists and is then retired by its author.
    fake = "0x" + keccak(b"retired adapter").hex()
    registered = json.loads(w.cli("adapter", "register", "--parent", "1", "--contribution-root", fake,
                                  "--hyper-params-hash", fake, "--weights-hash", fake,
                                  "--attribution-index-hash", fake, "--account", "14", "--json").stdout)
    import ai_precompiles
    from ai_precompiles.addresses import MODEL_REGISTRY

    retire = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["retireAdapter"].encode_args(registered["id"])
    sent = w.rpc("eth_sendTransaction", {"from": user.address, "to": "0x" + MODEL_REGISTRY.hex(),
                                         "data": "0x" + retire.hex()})
    assert w.rpc("eth_getTransactionReceipt", sent)["status"] == "0x1"
    balance = w.rpc("eth_getBalance", user.address, "latest")
    head = w.rpc("eth_blockNumber")
    price = int(w.rpc("ai_inferQuote")["price"], 16)

    def refused(*extra, because):
        out = w.cli("infer", "--prompt", "The heron of Lake Vell", "--account", "14", *extra, ok=False)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert because in out.stderr.strip().splitlines()[-1], out.stderr
        return out

    refused("--adapter", "99", "--deposit", "0.01eth", because="adapter 99 does not exist")
    refused("--adapter", "1", "--deposit", "0.01eth", because="is a base model")
    refused("--adapter", str(registered["id"]), "--deposit", "0.01eth", because="is retired")
    refused("--adapter", "2", "--deposit", "0.01eth", "--max-fee", "1wei", because="above your --max-fee")
    refused("--adapter", "2", "--deposit", "0.01eth", "--max-tokens", "100000", because="--max-tokens must be within")
    short = refused("--adapter", "2", "--deposit", f"{price - 1}wei", because="does not cover the fee")
    assert "nothing was deposited" in short.stderr
    refused("--adapter", "2", because="does not cover the fee")
    # Nothing was sent: no deposit, no gas spent, no block.
    assert int(w.rpc("ai_getDeposit", user.address)["balance"], 16) == 0
    assert w.rpc("eth_getBalance", user.address, "latest") == balance
    assert w.rpc("eth_blockNumber") == head


def test_infer_prints_the_receipt_id_once_the_receipt_is_final(world):
    """When ai_infer answers before the receipt's block (BFT, a block time; here automine off),
    infer waits for the receipt transaction, within --wait, and reads the id from its event."""
    import signal

    w = world
    w.cli("deposit", "add", "0.01eth", "--account", "15")
    inferences = metric("ailedger_ai_inferences_total")
    assert metric("ailedger_ai_blob_bytes_total") > 0  # contributions, artifacts and outputs were stored
    w.rpc("evm_setAutomine", False)
    try:
        env = {**os.environ, "AILEDGER_RPC": w.node.url}
        proc = subprocess.Popen([str(VENV_BIN / "ailedger"), "infer", "--adapter", "2", "--prompt", "Copper kettles",
                                 "--account", "15", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            mined = 0
            while proc.poll() is None:
                assert time.monotonic() < deadline, "infer never returned"
                if int(w.rpc("txpool_status")["pending"], 16):
                    w.rpc("evm_mine")  # the receipt's block, some time after ai_infer answered
                    mined += 1
                time.sleep(0.3)
            out, err = proc.communicate()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 0, err
        assert mined >= 1
        result = json.loads(out)
        found = w.rpc("ai_getInferenceAncestry", result["transactionHash"])
        assert result["receiptId"] == found["receipt"]["id"] and result["receiptId"] is not None
        assert int(result["blockNumber"], 16) == found["receipt"]["blockNumber"]
        assert metric("ailedger_ai_inferences_total") == inferences + 1

        # Nobody mines: the wait is bounded, the output is still shown, and the message says
        # where to look later.
        late = w.cli("infer", "--adapter", "2", "--prompt", "The lighthouse at Point Sable", "--account", "15",
                     "--wait", "2", ok=False)
        assert late.returncode == 1 and "Traceback" not in late.stderr
        assert "is not in a block after 2 s" in late.stderr and "ailedger receipt show 0x" in late.stderr
        assert late.stdout.strip()  # the output came before the wait
    finally:
        w.rpc("evm_setAutomine", True)
        w.rpc("evm_mine")


def test_adapter_verify_re_trains_the_recipe_and_tells_a_lie_from_another_machine(world):
    """`adapter verify` re-trains an adapter from its manifest and the node's blobs on the sidecar:
    the honest adapter is verified; one whose manifest names weights its recipe does not give is a
    MISMATCH; the same lie in a manifest from another environment is only INCONCLUSIVE; a
    manifest that is not the record's recipe is a MISMATCH without re-training."""
    w = world
    honest = w.cli("adapter", "verify", "2", "--json")
    verified = json.loads(honest.stdout)
    assert verified["result"] == "verified" and verified["environmentDifferences"] == []
    assert verified["retrainedWeightsHash"] == verified["weightsHash"]

    model = w.rpc("ai_getModel", 2)
    manifest = json.loads(bytes.fromhex(w.rpc("ai_getBlob", model["manifestHash"])["data"][2:]))

    def register(manifest_doc, weights_label):
        data = json.dumps(manifest_doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        manifest_hash = w.rpc("ai_putBlob", "0x" + data.hex())["hash"]
        registered = w.cli("adapter", "register", "--parent", "1", "--datanet", "1:1",
                           "--contribution-root", model["contributionRoot"], "--hyper-params-hash", model["hyperParamsHash"],
                           "--weights-hash", manifest_doc["artifacts"]["weights"] if weights_label is None else
                           "0x" + keccak(weights_label.encode()).hex(),
                           "--attribution-index-hash", model["attributionIndexHash"],
                           "--manifest-hash", manifest_hash, "--account", "0", "--json")
        return str(json.loads(registered.stdout)["id"])

    # The record's weights are not the ones its manifest names: no re-training needed to say so.
    other = register(manifest, "weights the manifest does not name")
    out = w.cli("adapter", "verify", other, ok=False)
    assert out.returncode == 1 and "MISMATCH: its manifest is not its recipe" in out.stdout, out.stdout + out.stderr

    # A manifest that claims weights its own recipe does not give, in this very environment.
    lie = json.loads(json.dumps(manifest))
    lie["artifacts"]["weights"] = keccak(b"claimed weights").hex()
    liar = register(lie, None)
    out = w.cli("adapter", "verify", liar, "--json", ok=False)
    assert out.returncode == 1, out.stderr
    found = json.loads(out.stdout)
    assert found["result"] == "mismatch" and found["environmentDifferences"] == []
    assert found["retrainedWeightsHash"] == model["weightsHash"]  # the recipe gives adapter 2's weights

    # The same lie, from a trainer whose libraries differ: it proves nothing.
    elsewhere = json.loads(json.dumps(lie))
    elsewhere["environment"]["transformers"] = "0.0.0-another-build"
    elsewhere["artifacts"]["weights"] = keccak(b"claimed weights, elsewhere").hex()
    out = w.cli("adapter", "verify", register(elsewhere, None), ok=False)
    assert out.returncode == 3 and "INCONCLUSIVE" in out.stdout and "transformers" in out.stdout, out.stdout

    base = w.cli("adapter", "verify", "1", ok=False)
    assert base.returncode == 1 and "base model" in base.stderr


def test_a_burst_of_requests_cannot_take_the_sidecar_from_an_honest_user(world):
    """Issue 19, attack 3, against the real node and sidecar: a request whose deadline would
    pass during a sidecar run is refused before any work (the user could otherwise be served for
    free); one user's burst fills at most its share of the queue, and an honest user's request
    is served beside it."""
    import concurrent.futures

    w = world
    quote = w.rpc("ai_inferQuote")
    price = int(quote["price"], 16)
    attacker, honest = ACCOUNTS[11], ACCOUNTS[12]
    for who in (11, 12):
        w.cli("deposit", "add", "0.05eth", "--account", str(who))
    req, sig, wire = signed_request(w, attacker, quote["validator"], price, nonce=9_001)
    head = w.rpc("eth_getBlockByNumber", "latest", False)
    soon = {**req, "deadline": int(head["timestamp"], 16) + 31}
    soon_sig = typed_data.sign(typed_data.request_digest(soon, int(quote["chainId"], 16)), attacker.private_key)
    started = time.monotonic()
    reply = rpc(w.node.url, "ai_infer", [{**wire, "deadline": hex(soon["deadline"])}, "0x" + soon_sig.hex()])
    assert "deadline" in reply["error"]["message"] and time.monotonic() - started < 5, reply

    def send(user, nonce):
        _, s, body = signed_request(w, user, quote["validator"], price, nonce=nonce, max_tokens=16)
        return rpc(w.node.url, "ai_infer", [body, "0x" + s.hex()], timeout=600)

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        burst = [pool.submit(send, attacker, 10_000 + i) for i in range(20)]
        time.sleep(1.0)  # the burst is queued
        mine = send(honest, 20_000)
        answers = [f.result() for f in burst]
    assert "result" in mine, mine
    refused = [a for a in answers if "error" in a]
    assert refused and all("of your requests" in a["error"]["message"] for a in refused), refused
    # How many of the burst are served depends on how many finished while the rest arrived (each
    # one served frees a place); the exact bound is tests/unit/node/test_inference_queue.py's.
    assert len(answers) - len(refused) < len(answers)

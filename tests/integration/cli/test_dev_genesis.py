"""`ailedger dev` with a sidecar puts its own set-up in the genesis state: the validator's stake
and the shipped base model (model 1, by the weights hash shipped beside it) are there at block 0,
so a script that starts the moment the node listens sees block 0 and then one block per
transaction, as on anvil, with no set-up blocks mined behind its back; while its sidecar does
not answer, `infer` refuses before it deposits anything. Without a sidecar the chain is the
plain dev chain (no model, no stake)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts, derive_validator_key
from sidecar.config import SHIPPED_BASE_DIR, shipped_base_weights_hash
from tests.support.procs import VENV_BIN, free_port, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("node-cli")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 2)
VALIDATOR = Account.from_key(derive_validator_key(DEV_MNEMONIC)).address


def result(url: str, method: str, *params: object) -> object:
    reply = rpc(url, method, list(params))
    assert "result" in reply, reply
    return reply["result"]


def test_the_shipped_base_models_hash_is_read_without_torch() -> None:
    import json

    manifest = json.loads((SHIPPED_BASE_DIR / "MANIFEST.json").read_text())
    assert shipped_base_weights_hash() == manifest["weights_hash"]


def test_dev_with_a_sidecar_starts_at_block_0_with_its_stake_and_base_model(tmp_path) -> None:
    # A sidecar address nobody answers on: the set-up must not wait for it.
    sidecar = f"127.0.0.1:{free_port()}"
    node = start_ailedger(["--sidecar", sidecar], tmp_path)
    try:
        assert int(result(node.url, "eth_blockNumber"), 16) == 0
        deadline = time.monotonic() + 10  # its state changes show on the console
        while f"watching the sidecar at {sidecar}" not in node.output():
            assert time.monotonic() < deadline, node.output()[-2000:]
            time.sleep(0.1)
        model = result(node.url, "ai_getModel", 1)
        assert model["kind"] == 1 and model["createdBlock"] == 0
        assert model["weightsHash"] == "0x" + shipped_base_weights_hash()
        assert model["author"] == VALIDATOR
        assert [v["address"] for v in result(node.url, "ai_getValidatorSet")] == [VALIDATOR.lower()]
        quote = result(node.url, "ai_inferQuote")
        assert quote["validator"].lower() == VALIDATOR.lower() and quote["ready"] is False
        time.sleep(3)  # the node's set-up thread runs meanwhile: it must mine nothing
        assert int(result(node.url, "eth_blockNumber"), 16) == 0
        # An adapter on the genesis base model; the node cannot serve it while its sidecar does
        # not answer, and infer says so before it deposits anything.
        fake = "0x" + "ab" * 32
        env = {**os.environ, "AILEDGER_RPC": node.url}
        registered = subprocess.run(
            [str(VENV_BIN / "ailedger"), "adapter", "register", "--parent", "1", "--contribution-root", fake,
             "--hyper-params-hash", fake, "--weights-hash", fake, "--attribution-index-hash", fake, "--account", "1"],
            capture_output=True, text=True, env=env, timeout=120)
        assert registered.returncode == 0 and "adapter 2 registered" in registered.stdout, registered.stderr
        refused = subprocess.run(
            [str(VENV_BIN / "ailedger"), "infer", "--adapter", "2", "--prompt", "hello", "--account", "3",
             "--deposit", "0.01eth"], capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "sidecar is not serving (starting)" in refused.stderr and "nothing was deposited" in refused.stderr
        assert int(result(node.url, "ai_getDeposit", derive_accounts(DEV_MNEMONIC, 4)[3].address)["balance"], 16) == 0
        assert int(result(node.url, "eth_blockNumber"), 16) == 1  # the registration only
        tx = {"from": ACCOUNTS[0].address, "to": ACCOUNTS[1].address, "value": hex(1)}
        result(node.url, "eth_sendTransaction", tx)
        assert int(result(node.url, "eth_blockNumber"), 16) == 2
    finally:
        node.kill()


def test_dev_without_a_sidecar_has_no_ai_set_up(tmp_path) -> None:
    node = start_ailedger([], tmp_path)
    try:
        assert int(result(node.url, "eth_blockNumber"), 16) == 0
        assert result(node.url, "ai_listModels")["total"] == 0
        assert result(node.url, "ai_getValidatorSet") == []
    finally:
        node.kill()

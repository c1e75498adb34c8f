"""Upgrades by vote across a network: every node applies ``ai-gas-v2`` at its height (a follower
re-executes the validator's blocks to the same state roots and receipts), and a follower running
a release without it (``tests.support.old_release``) syncs to the block before the height and
stops there with what to install; restarted, it stops again."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from ai_precompiles.upgrades import KNOWN
from genesis import load_genesis
from tests.integration.p2p.netsupport import (
    ACCOUNTS,
    head,
    init_testnet,
    node_config,
    result,
    start_node,
    wait_for,
)
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.xdist_group("gov-upgrade-net")]

STAKER, DEPOSITOR = 1, 2
GWEI = 10**9


def _tx(chain_id: int, sender: int, nonce: int, module: str, fn: str, *args: object, value: int = 0) -> bytes:
    data = ai_precompiles.load_abi(module).by_name[fn].encode_args(*args)
    tx = {"to": to_checksum_address(BY_NAME[module]), "value": value, "data": data, "gas": 2_000_000,
          "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI, "nonce": nonce, "chainId": chain_id, "type": 2}
    return bytes(Account.from_key(ACCOUNTS[sender].private_key).sign_transaction(tx).raw_transaction)


def build_upgrade_chain(directory: Path) -> tuple[int, int, int]:
    """Into node0's datadir, as its validator would have sealed them: a stake, an upgrade
    proposal for ``ai-gas-v2`` voted and executed, and a deposit in the blocks just below and at
    its height; returns (height, block of the deposit below, block of the deposit at it)."""
    from consensus import SingleValidator
    from state import Ledger, LevelDBStore, decode_transaction

    genesis = load_genesis(directory / "genesis.json")
    key = bytes.fromhex((directory / "node0" / "validator.key").read_text().strip()[2:])
    validator = SingleValidator(key, genesis.chain_id)
    ledger = Ledger(LevelDBStore(directory / "node0" / "chain"), genesis)
    nonces = {STAKER: 0, DEPOSITOR: 0}

    def block(*calls: tuple[int, str, str, tuple[object, ...], int]) -> int:
        txs = []
        for sender, module, fn, args, value in calls:
            txs.append(decode_transaction(_tx(genesis.chain_id, sender, nonces[sender], module, fn, *args, value=value)))
            nonces[sender] += 1
        number = int(ledger.head.block_number) + 1
        built = ledger.build_block(txs, genesis.timestamp + number, validator.address,
                                   lambda h, bh: validator.commit(h, bh).encode())
        assert not built.rejected and all(r.state_root == b"\x01" for r in built.receipts), built
        return number

    try:
        state = ledger.state_at(ledger.head)
        params = {n: ai_precompiles.get_param(state, n) for n in (
            "staking.epoch_length", "gov.voting_period", "gov.execution_delay", "gov.upgrade_min_lead")}
        block((STAKER, "Staking", "stake", (), 5_000 * 10**18))
        while (int(ledger.head.block_number) + 1) % params["staking.epoch_length"]:
            block()
        start = int(ledger.head.block_number) + 1
        height = start + params["gov.voting_period"] + params["gov.execution_delay"] + params["gov.upgrade_min_lead"] + 5
        block((STAKER, "Governance", "proposeUpgrade", ("ai-gas-v2", height, "ailedger >= 0.2"), 0))
        block((STAKER, "Governance", "vote", (1, True), 0))
        while int(ledger.head.block_number) + 1 < start + params["gov.voting_period"] + params["gov.execution_delay"]:
            block()
        block((DEPOSITOR, "Governance", "execute", (1,), 0))
        block((DEPOSITOR, "Inference", "deposit", (), 10**17))  # opens the balance slot
        while int(ledger.head.block_number) + 2 < height:
            block()
        below = block((DEPOSITOR, "Inference", "deposit", (), 10**17))
        at = block((DEPOSITOR, "Inference", "deposit", (), 10**17))
        assert (below, at) == (height - 1, height)
        for _ in range(3):
            block()
        return height, below, at
    finally:
        ledger.close()


def gas_of_block_tx(url: str, number: int) -> int:
    blk = result(url, "eth_getBlockByNumber", [hex(number), False])
    (tx_hash,) = blk["transactions"]
    return int(result(url, "eth_getTransactionReceipt", [tx_hash])["gasUsed"], 16)


def test_every_node_applies_the_upgrade_and_an_old_release_stops_at_it(tmp_path: Path) -> None:
    directory = init_testnet(tmp_path, 3, block_time=0.5)
    height, below, at = build_upgrade_chain(directory)
    validator = start_node(directory, 0, tmp_path)
    follower = old = None
    try:
        follower = start_node(directory, 1, tmp_path)
        wait_for(lambda: head(follower.url) >= height + 3, 120, "the follower past the upgrade")
        step = KNOWN["ai-gas-v2"].gas["gas.deposit"] - int(result(validator.url, "ai_getParams")["gas.deposit"], 16)
        for url in (validator.url, follower.url):
            assert gas_of_block_tx(url, at) - gas_of_block_tx(url, below) == step == 50_000
        for n in range(height - 1, height + 3):  # re-executed to the same roots
            assert (result(follower.url, "eth_getBlockByNumber", [hex(n), False])["stateRoot"]
                    == result(validator.url, "eth_getBlockByNumber", [hex(n), False])["stateRoot"])

        config = directory / "node2" / "config.json"
        env = {"OLD_RELEASE_LACKS": "ai-gas-v2"}
        old = start_ailedger(["--config", str(config)], tmp_path, port=node_config(directory, 2)["rpcPort"],
                             command="run", module="tests.support.old_release", env=env, wait=False)
        assert old.proc.wait(timeout=120) == 3, old.output()[-3000:]
        out = old.output()
        assert f"UPGRADE NEEDED: upgrade 'ai-gas-v2' applies from block {height}" in out
        assert "ailedger >= 0.2" in out and f"stops before block {height}" in out
        again = start_ailedger(["--config", str(config)], tmp_path, port=node_config(directory, 2)["rpcPort"],
                               command="run", module="tests.support.old_release", env=env, wait=False)
        try:
            assert again.proc.wait(timeout=90) == 3
        finally:
            again.kill()
        assert f"stops before block {height}" in again.output()
        # the validator went on past the height all along
        assert head(validator.url) > height + 3
    finally:
        for proc in (old, follower, validator):
            if proc is not None:
                proc.kill(signal.SIGKILL)


"""A testnet of real processes on loopback: `ailedger testnet init`, one validator and three
followers started with `ailedger run --config`. A transaction sent to each follower is
gossiped, lands in the validator's next block, and its receipt appears on that follower;
all four nodes agree on every block hash and state root."""

import signal

import pytest

from tests.integration.p2p.netsupport import (
    ACCOUNTS,
    block_roots,
    head,
    init_testnet,
    result,
    start_node,
    transfer,
    wait_for,
)
from tests.support.procs import rpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_validator_and_three_followers(tmp_path):
    directory = init_testnet(tmp_path, 4, block_time=0.5)
    nodes = []
    try:
        for i in range(4):
            nodes.append(start_node(directory, i, tmp_path))
        validator, followers = nodes[0], nodes[1:]
        chain_id = int(result(validator.url, "eth_chainId"), 16)
        for f in followers:
            wait_for(lambda f=f: int(result(f.url, "net_peerCount"), 16) >= 1, 60, "follower connected")
            assert "P2P peer id" in f.output()
        # a follower never builds a block of its own (it would fork from the validator)
        assert "error" in rpc(followers[0].url, "evm_mine", [])
        assert result(followers[0].url, "eth_mining") is False and result(validator.url, "eth_mining") is True

        hashes = []
        for k, f in enumerate(followers, start=1):
            raw = transfer(chain_id, k, 0, ACCOUNTS[19].address, 1000 + k)
            hashes.append((f, result(f.url, "eth_sendRawTransaction", ["0x" + raw.hex()])))
        for f, tx_hash in hashes:
            receipt = wait_for(lambda f=f, h=tx_hash: result(f.url, "eth_getTransactionReceipt", [h]), 60,
                               f"receipt of {tx_hash} on {f.url}")
            assert receipt["status"] == "0x1"
            on_validator = result(validator.url, "eth_getTransactionReceipt", [tx_hash])
            assert on_validator is not None and on_validator["blockHash"] == receipt["blockHash"]

        target = head(validator.url)
        for f in followers:
            wait_for(lambda f=f: head(f.url) >= target, 60, f"follower {f.url} at block {target}")
        reference = block_roots(validator.url, target)
        for f in followers:
            assert block_roots(f.url, target) == reference
        balance = result(followers[2].url, "eth_getBalance", [ACCOUNTS[19].address, "latest"])
        assert balance == result(validator.url, "eth_getBalance", [ACCOUNTS[19].address, "latest"])

        # The validator goes away and comes back: the followers redial it and follow on, and
        # a transaction sent meanwhile is announced again until a block takes it.
        validator.kill(signal.SIGKILL)
        raw = transfer(chain_id, 1, 1, ACCOUNTS[19].address, 7)
        late_tx = result(followers[0].url, "eth_sendRawTransaction", ["0x" + raw.hex()])
        nodes[0] = validator = start_node(directory, 0, tmp_path)
        receipt = wait_for(lambda: result(followers[0].url, "eth_getTransactionReceipt", [late_tx]), 90,
                           "receipt of the transaction sent while the validator was down")
        assert receipt["status"] == "0x1"
        target = head(validator.url) + 2
        for f in followers:
            wait_for(lambda f=f: head(f.url) >= target, 90, f"follower {f.url} reconnected and following")
        assert block_roots(followers[0].url, target) == block_roots(validator.url, target)
    finally:
        for n in nodes:
            n.kill()

"""State sync between real `ailedger run` processes: a joiner started with --state-sync on an
empty datadir takes the validator's state at a recent committed block (accounts, contract code,
contract storage), replays only the blocks after it, shows the work in eth_syncing and its log,
holds no block from before the pivot's ancestors, agrees with the validator on every account it
reads, fetches a blob it lacks from its peers when asked for it, and then follows the head; a node killed after adopting restarts on the synced chain."""

from __future__ import annotations

import signal
import time

import pytest
import rlp
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

from genesis import load_genesis
from node.network import LAZY_PER_SECOND, MAX_LAZY_FETCHES
from node.state_sync import ANCESTORS, MIN_HEAD, PIVOT_DEPTH
from tests.integration.p2p.netsupport import (
    ACCOUNTS,
    head,
    init_testnet,
    result,
    start_node,
    transfer,
    wait_for,
)
from tests.support.procs import rpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
BLOCKS = MIN_HEAD + 100
#: Stores calldata[32:64] at slot calldata[0:32] (tests/unit/state/test_differential.py's contract).
RUNTIME = bytes.fromhex("36156015576020356000355560003560206000a1005b60006000fd")
INITCODE = bytes.fromhex("601b600c600039601b6000f3") + RUNTIME


def build_chain_with_contracts(directory, blocks: int) -> tuple[int, list[str]]:
    """node0's chain: transfers to fresh accounts every block, and contracts whose storage is
    written along the way (so the state has account, storage and code nodes)."""
    from consensus import SingleValidator
    from state import Ledger, LevelDBStore, decode_transaction

    genesis = load_genesis(directory / "genesis.json")
    key = bytes.fromhex((directory / "node0" / "validator.key").read_text().strip()[2:])
    validator = SingleValidator(key, genesis.chain_id)
    ledger = Ledger(LevelDBStore(directory / "node0" / "chain"), genesis)
    deployer = ACCOUNTS[3]
    contracts: list[str] = []
    nonces = [0] * len(ACCOUNTS)
    try:
        for b in range(blocks):
            raws = [transfer(genesis.chain_id, 0, nonces[0], to_checksum_address(keccak(b.to_bytes(4, "big"))[:20]))]
            nonces[0] += 1
            if b % 50 == 0:
                tx = dict(chainId=genesis.chain_id, nonce=nonces[3], gas=200_000, gasPrice=10**10, data=INITCODE,
                          value=0)
                raws.append(bytes(Account.sign_transaction(tx, deployer.private_key).raw_transaction))
                address = keccak(rlp.encode([to_canonical_address(deployer.address), nonces[3]]))[12:]
                contracts.append(to_checksum_address(address))
                nonces[3] += 1
            elif contracts:
                slot = b % 7
                data = slot.to_bytes(32, "big") + (b + 1).to_bytes(32, "big")
                tx = dict(chainId=genesis.chain_id, nonce=nonces[3], gas=100_000, gasPrice=10**10,
                          to=contracts[b % len(contracts)], data=data, value=0)
                raws.append(bytes(Account.sign_transaction(tx, deployer.private_key).raw_transaction))
                nonces[3] += 1
            built = ledger.build_block([decode_transaction(r) for r in raws], genesis.timestamp + b + 1,
                                       validator.address, lambda h, bh: validator.commit(h, bh).encode())
            assert not built.rejected, built.rejected
        return int(ledger.head.block_number), contracts
    finally:
        ledger.close()


def test_a_joiner_takes_the_state_and_replays_only_what_follows(tmp_path):
    directory = init_testnet(tmp_path, 2, block_time=0.5)
    built, contracts = build_chain_with_contracts(directory, BLOCKS)
    validator = start_node(directory, 0, tmp_path)
    joiner = None
    try:
        joiner = start_node(directory, 1, tmp_path, "--state-sync")
        wait_for(lambda: "state sync: adopted block" in joiner.output(), 120, "the state adopted")
        wait_for(lambda: head(joiner.url) >= built, 120, "the joiner at the built head")
        log = joiner.output()
        pivot = int(log.split("state sync: adopted block ")[1].split()[0])
        assert pivot >= built - PIVOT_DEPTH
        assert "node" in log  # the progress bar counts nodes
        # Nothing before the pivot's ancestors was fetched, let alone replayed.
        assert result(joiner.url, "eth_getBlockByNumber", ["0x1", False]) is None
        assert result(joiner.url, "eth_getBlockByNumber", [hex(pivot - ANCESTORS), False]) is not None
        at = hex(head(joiner.url))
        for address in [ACCOUNTS[0].address, ACCOUNTS[3].address, *contracts,
                        to_checksum_address(keccak((5).to_bytes(4, "big"))[:20])]:
            for method, params in (("eth_getBalance", [address, at]), ("eth_getTransactionCount", [address, at]),
                                   ("eth_getCode", [address, at])):
                assert result(joiner.url, method, params) == result(validator.url, method, params), (method, address)
        for contract in contracts:
            for slot in range(7):
                params = [contract, hex(slot), at]
                assert result(joiner.url, "eth_getStorageAt", params) == result(validator.url, "eth_getStorageAt", params)
        assert any(result(validator.url, "eth_getStorageAt", [c, hex(s), at]) != "0x" + "00" * 32
                   for c in contracts for s in range(7))
        # Blobs are not state: one the joiner lacks is fetched from its peers when asked for
        # (lazily), and one no peer holds is answered as unknown, not asked for again at once.
        data = b"a blob only the validator holds " * 100
        digest = result(validator.url, "ai_putBlob", ["0x" + data.hex()])["hash"]
        first = rpc(joiner.url, "ai_getBlob", [digest])
        assert first["error"]["code"] == -32001 and "being fetched from its peers" in first["error"]["message"], first
        fetched = wait_for(lambda: rpc(joiner.url, "ai_getBlob", [digest]).get("result"), 30, "the blob fetched")
        assert bytes.fromhex(fetched["data"][2:]) == data
        nobody = "0x" + keccak(b"no peer holds this").hex()
        assert "being fetched" in rpc(joiner.url, "ai_getBlob", [nobody])["error"]["message"]
        wait_for(lambda: "unknown blob" in rpc(joiner.url, "ai_getBlob", [nobody])["error"]["message"], 30,
                 "the missing blob given up")
        # Anyone may ask for any hash: the fetches on demand are bounded (at once and a second),
        # the rest answered at once.
        started = time.monotonic()
        asked = [rpc(joiner.url, "ai_getBlob", ["0x" + keccak(b"junk %d" % i).hex()])["error"]["message"]
                 for i in range(2 * MAX_LAZY_FETCHES)]
        refilled = int((time.monotonic() - started) * LAZY_PER_SECOND) + 1
        assert 0 < sum("being fetched" in m for m in asked) <= MAX_LAZY_FETCHES + refilled < 2 * MAX_LAZY_FETCHES
        assert result(joiner.url, "eth_blockNumber")  # and the node answers the rest
        # It follows the head, and a restart keeps the synced chain.
        target = head(validator.url) + 2
        wait_for(lambda: head(joiner.url) >= target, 60, "the joiner following the head")
        joiner.kill(signal.SIGKILL)
        joiner = start_node(directory, 1, tmp_path, "--state-sync")
        assert head(joiner.url) >= target
        wait_for(lambda: head(joiner.url) >= target + 2, 60, "the restarted joiner following")
    finally:
        validator.kill()
        if joiner is not None:
            joiner.kill()

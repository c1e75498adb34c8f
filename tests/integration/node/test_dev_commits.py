"""The dev chain's commits after issue 8 item 13: every block a `ailedger dev` node commits is
stored with a precommit over the canonical sign bytes, and after a clean stop and a kill -9 the
node restarts on its stored chain and goes on committing the same way."""

import signal

import pytest

from consensus import Commit
from genesis import DEV_MNEMONIC, derive_accounts
from state import Ledger, LevelDBStore
from tests.support.procs import rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("node-cli")]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 2)


def send(url: str, n: int) -> None:
    for _ in range(n):
        tx = rpc(url, "eth_sendTransaction", [{"from": ACCOUNTS[0].address, "to": ACCOUNTS[1].address, "value": "0x1"}])
        assert "result" in tx, tx


def test_dev_node_commits_and_restarts_on_its_stored_commits(tmp_path):
    datadir = tmp_path / "dev"
    heads = []
    for stop in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        node = start_ailedger(["--datadir", str(datadir)], tmp_path)
        try:
            if heads:  # restarted on the chain it had
                assert rpc(node.url, "eth_getBlockByNumber", [hex(heads[-1][0]), False])["result"]["hash"] == heads[-1][1]
            send(node.url, 3)
            head = rpc(node.url, "eth_getBlockByNumber", ["latest", False])["result"]
            heads.append((int(head["number"], 16), head["hash"]))
        finally:
            node.kill(stop)
    assert heads[-1][0] >= 9

    ledger = Ledger(LevelDBStore(datadir))
    try:
        powers = {v.address: v.power for v in ledger.genesis.validators}
        assert len(powers) == 1
        for number in range(1, heads[-1][0] + 1):
            header = ledger.header_by_number(number)
            assert header is not None
            raw = ledger.commit_of(header.hash)
            assert raw is not None, number
            commit = Commit.decode(raw)
            commit.check(powers, chain_id=ledger.chain_id, height=number, block_hash=header.hash)
            assert not commit.verify(powers, chain_id=ledger.chain_id + 1)
        assert ledger.header_by_number(heads[-1][0]).hash.hex() == heads[-1][1][2:]
    finally:
        ledger.close()

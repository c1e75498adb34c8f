"""eth_getLogs ranges as geth answers them: a range ending past the head stops at the head,
one starting past the head is empty, and tags name the head."""

import pytest

import ai_precompiles
from ai_precompiles.addresses import DATANETS, checksum
from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("node-cli")]


def test_log_ranges(tmp_path):
    owner = derive_accounts(DEV_MNEMONIC, 1)[0].address
    create = ai_precompiles.MODULES["Datanets"].abi.by_name["createDatanet"]
    data = "0x" + create.encode_args("d", "x", "", "CC0", [bytes.fromhex(owner[2:])], 1, 1000).hex()
    node = start_ailedger([], tmp_path)
    try:
        tx = rpc(node.url, "eth_sendTransaction", [{"from": owner, "to": checksum(DATANETS), "data": data}])
        assert "result" in tx, tx
        head = int(rpc(node.url, "eth_blockNumber")["result"], 16)
        everything = {"address": checksum(DATANETS), "fromBlock": "0x0", "toBlock": hex(head + 100)}
        logs = rpc(node.url, "eth_getLogs", [everything])["result"]
        assert [int(log["blockNumber"], 16) for log in logs] == [head]
        assert rpc(node.url, "eth_getLogs", [{**everything, "toBlock": "latest"}])["result"] == logs
        assert rpc(node.url, "eth_getLogs", [{"fromBlock": hex(head + 5), "toBlock": "latest"}])["result"] == []
        assert rpc(node.url, "eth_getLogs", [{"fromBlock": "earliest", "toBlock": "earliest"}])["result"] == []
    finally:
        node.kill()

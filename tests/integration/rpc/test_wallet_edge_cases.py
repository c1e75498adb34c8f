"""What wallets send that the node answered with an internal error (issue 19), against a real
`ailedger dev`: an EIP-1559 transaction with a zero tip, and an ``eth_estimateGas`` /
``eth_call`` of an AI precompile that runs out of the node's time budget."""

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_utils import keccak

from ai_precompiles.addresses import DATANETS
from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import Proc, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wallet-edges")]
CHAIN = 31415
DEV = derive_accounts(DEV_MNEMONIC, 3)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_ailedger(["--chain-id", str(CHAIN)], tmp_path_factory.mktemp("wallet"))
    try:
        yield proc
    finally:
        proc.kill()


def test_a_fee_market_transaction_with_a_zero_tip_is_mined(node: Proc) -> None:
    """Wallets send ``maxPriorityFeePerGas`` 0 on dev chains; the pool answered -32603
    "AttributeError: Gas price is no longer available"."""
    nonce = int(rpc(node.url, "eth_getTransactionCount", [DEV[1].address, "pending"])["result"], 16)
    signed = Account.sign_transaction(dict(type=2, chainId=CHAIN, nonce=nonce, to=DEV[2].address, value=7,
                                           gas=21_000, maxFeePerGas=3 * 10**9, maxPriorityFeePerGas=0),
                                      DEV[1].private_key)
    reply = rpc(node.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
    assert reply.get("result") == "0x" + signed.hash.hex(), reply
    receipt = rpc(node.url, "eth_getTransactionReceipt", [reply["result"]])["result"]
    assert receipt["status"] == "0x1"
    # The same through the node's own signer, and the pool's views of a zero-tip transaction.
    sent = rpc(node.url, "eth_sendTransaction", [{"from": DEV[1].address, "to": DEV[2].address, "value": "0x1",
                                                  "maxFeePerGas": hex(3 * 10**9), "maxPriorityFeePerGas": "0x0"}])
    assert "result" in sent, sent
    tx = rpc(node.url, "eth_getTransactionByHash", [sent["result"]])["result"]
    assert tx["maxPriorityFeePerGas"] == "0x0"
    assert rpc(node.url, "eth_getTransactionReceipt", [sent["result"]])["result"]["status"] == "0x1"
    assert "result" in rpc(node.url, "eth_feeHistory", ["0x2", "latest", [50]])


def test_a_precompile_call_past_the_time_budget_is_a_timeout(tmp_path) -> None:
    """A budget so small that it runs out inside the precompile's first gas charge: the answer
    was -32603 "PrecompileFault: ... CallTimeout"; it is the node's timeout error."""
    proc = start_ailedger(["--chain-id", str(CHAIN), "--rpc-evmtimeout", "0.000001"], tmp_path)
    try:
        datanet_count = "0x" + keccak(text="datanetCount()")[:4].hex()
        call = {"from": DEV[0].address, "to": "0x" + DATANETS.hex(), "data": datanet_count}
        for method, params in (("eth_estimateGas", [call]), ("eth_call", [call, "latest"])):
            for _ in range(5):
                error = rpc(proc.url, method, params).get("error")
                assert error is not None, method
                assert error["code"] != -32603 and "PrecompileFault" not in error["message"], (method, error)
                assert error["message"].startswith("execution aborted (timeout"), (method, error)
        assert "precompile fault" not in proc.output()
        assert "result" in rpc(proc.url, "eth_blockNumber")
    finally:
        proc.kill()

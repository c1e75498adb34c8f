"""Hypothesis fuzzing of the ots_ and erigon_ methods in process, through the RPC dispatcher
on a real in-memory dev chain that holds a creation, contract calls and plain transfers:
random JSON params must get a result or a documented input error, never -32603, and the
chain must still answer afterwards."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.unit.node.rpc.inprocess import ACCOUNTS, dev_server, result  # noqa: E402

INPUT_ERROR_CODES = {-32602, -32000, -32001, -32005}
METHODS = [
    "ots_getApiLevel", "ots_hasCode", "ots_getInternalOperations", "ots_traceTransaction",
    "ots_getTransactionError", "ots_getBlockDetails", "ots_getBlockDetailsByHash", "ots_getBlockTransactions",
    "ots_searchTransactionsBefore", "ots_searchTransactionsAfter", "ots_getTransactionBySenderAndNonce",
    "ots_getContractCreator", "erigon_getHeaderByNumber",
]
A0, A1 = (a.address for a in ACCOUNTS)


def _server() -> tuple[Any, list[str]]:
    server = dev_server()
    runtime = "60006000600060006001" "73" + A1[2:].lower() + "5af100"  # send 1 wei to A1
    init = "0x60" + f"{len(runtime) // 2:02x}" + "80600b6000396000f3" + runtime
    deploy = result(server, "eth_sendTransaction", {"from": A0, "data": init, "gas": hex(300_000)})
    contract = result(server, "eth_getTransactionReceipt", deploy)["contractAddress"]
    call = result(server, "eth_sendTransaction", {"from": A1, "to": contract, "value": "0x5", "gas": hex(200_000)})
    transfer = result(server, "eth_sendTransaction", {"from": A0, "to": A1, "value": "0x1"})
    block_hash = result(server, "eth_getBlockByNumber", "0x2", False)["hash"]
    return server, [deploy, call, transfer, contract, block_hash]


SERVER, KNOWN = _server()

values = st.sampled_from(["0x", "0x0", "0x1", "0x2", "0x3", "0xffffffffffffffff", "0x" + "ab" * 32, A0, A1,
                          "0x12", "latest", "earliest", "pending", *KNOWN])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.floats(allow_nan=False),
                    st.text(max_size=6), values)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(["blockHash", "blockNumber", "hash"]), children,
                                               max_size=2)),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), params=st.lists(json_values, max_size=4))
def test_random_params_get_a_result_or_an_input_error(method: str, params: list[Any]) -> None:
    response = SERVER.dispatch({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert response is not None
    if "error" in response:
        assert response["error"]["code"] in INPUT_ERROR_CODES, (method, params, response)
    assert result(SERVER, "eth_blockNumber") == "0x3"

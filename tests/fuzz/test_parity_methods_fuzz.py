"""Hypothesis fuzzing of the anvil-parity methods (dev, debug, proofs, access lists,
simulation) in process, through the RPC dispatcher on a real in-memory ledger: random
JSON params must get a result or a documented input error, never -32603, and the chain
must still answer afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis  # noqa: E402
from node.chain.assembly import assemble  # noqa: E402
from node.rpc.server import RPCServer  # noqa: E402
from state import Ledger, MemoryStore  # noqa: E402

INPUT_ERROR_CODES = {-32700, -32600, -32601, -32602, -32000, -32001, -32003, -32005, -32015,
                     -38014, -38015, -38020, -38021, -38026, 3}
METHODS = [
    "anvil_mine", "hardhat_mine", "anvil_impersonateAccount", "anvil_stopImpersonatingAccount",
    "anvil_autoImpersonateAccount", "anvil_reset", "eth_getRawTransactionByHash",
    "eth_getRawTransactionByBlockNumberAndIndex", "eth_getRawTransactionByBlockHashAndIndex",
    "eth_getProof", "eth_createAccessList", "debug_traceTransaction", "debug_traceCall",
    "eth_simulateV1", "eth_getBlockReceipts", "eth_estimateGas", "eth_call", "eth_sendTransaction",
]
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 2)
ADDRESS = ACCOUNTS[0].address

hexes = st.sampled_from(["0x", "0x0", "0x1", "0x10", "0xffffffffffffffff", "0x" + "ab" * 32, ADDRESS, "0x12", "latest"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.text(max_size=6), hexes)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["from", "to", "data", "value", "gas", "tracer", "tracerConfig", "enableMemory",
                             "limit", "blockStateCalls", "calls", "blockOverrides", "stateOverrides",
                             "authorizationList", "accessList", "blockHash", "blockNumber", "number",
                             "time", "balance", "code", "chainId", "address", "nonce", "r", "s", "yParity",
                             "onlyTopCall", "validation"]),
            children, max_size=4,
        ),
    ),
    max_leaves=10,
)


def _server() -> RPCServer:
    ledger = Ledger(MemoryStore(), dev_genesis(accounts=2))
    chain = assemble(ledger, dev_keys=[a.private_key for a in ACCOUNTS], dev=True)
    return RPCServer(chain.core, worker=None, dev=chain.dev)  # type: ignore[arg-type]  # dispatch runs in this thread


SERVER = _server()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(METHODS), params=st.lists(json_values, max_size=4))
def test_random_params_get_a_result_or_an_input_error(method: str, params: list[Any]) -> None:
    if method in ("anvil_mine", "hardhat_mine") and params and params[0] not in (None, "0x0", "0x1", 0, 1):
        params = ["0x1", *params[1:]]  # many blocks are legal and slow; the bound has its own test
    response = SERVER.dispatch({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert response is not None
    if "error" in response:
        assert response["error"]["code"] in INPUT_ERROR_CODES, (method, params, response)
    head = SERVER.dispatch({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []})
    assert head is not None and "result" in head

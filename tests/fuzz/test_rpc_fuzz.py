"""Hypothesis fuzzing of the node's input edges.

- Over loopback against one running `ailedger dev`: random bytes, random JSON and mutated
  signed transactions (RLP) into eth_sendRawTransaction, and random bodies and random
  calls into the HTTP endpoint. Every answer must be a well-formed JSON-RPC response
  (a result, or an error whose code is a documented one and never -32603), and the node
  must still answer eth_blockNumber afterwards.
- In process: `state.decode_transaction` may raise only `TransactionError` subclasses, and
  the `node.rpc.params` parsers only `InvalidParams`.

Example counts are bounded (about 300 per edge) and deadlines are off: the node, not the
fuzzer, sets the pace.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts  # noqa: E402
from node.rpc import load_methods  # noqa: E402
from node.rpc import params as rpc_params  # noqa: E402
from node.rpc.errors import InvalidParams  # noqa: E402
from node.rpc.registry import METHODS  # noqa: E402
from state import TransactionError, decode_transaction  # noqa: E402
from tests.support.procs import Proc, start_ailedger  # noqa: E402

#: Codes a well-behaved node gives for bad input (3 is a revert).
INPUT_ERROR_CODES = {-32700, -32600, -32601, -32602, -32000, -32001, -32005, 3}
#: Dev-method side effects that would change what later examples see.
STATEFUL = {
    "evm_revert",
    "anvil_revert",
    "evm_mine",
    "anvil_mine",
    "hardhat_mine",
    "evm_setAutomine",
    "anvil_setAutomine",
    "evm_setNextBlockTimestamp",
    "anvil_setNextBlockTimestamp",
    "evm_increaseTime",
    "anvil_increaseTime",
    "anvil_setBalance",
    "hardhat_setBalance",
    "anvil_setNonce",
    "hardhat_setNonce",
    "anvil_setCode",
    "hardhat_setCode",
    "anvil_setStorageAt",
    "hardhat_setStorageAt",
    "evm_snapshot",
    "anvil_snapshot",
    "anvil_reset",
    "hardhat_reset",
    "anvil_impersonateAccount",
    "hardhat_impersonateAccount",
    "anvil_stopImpersonatingAccount",
    "hardhat_stopImpersonatingAccount",
    "anvil_autoImpersonateAccount",
}
KEY = derive_accounts(DEV_MNEMONIC, 20)[15].private_key


def _signed(tx: dict[str, Any]) -> bytes:
    base: dict[str, Any] = {
        "chainId": DEV_CHAIN_ID,
        "nonce": 0,
        "gas": 21_000,
        "to": "0x" + "11" * 20,
        "value": 1,
    }
    base.update(tx)
    return bytes(Account.sign_transaction(base, KEY).raw_transaction)


SEEDS = [
    _signed({"gasPrice": 10**10}),
    _signed(
        {
            "gasPrice": 10**10,
            "accessList": [{"address": "0x" + "22" * 20, "storageKeys": ["0x" + "00" * 32]}],
            "type": 1,
        }
    ),
    _signed({"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1, "type": 2, "data": b"\x01\x02"}),
]


@st.composite
def mutated_transactions(draw: st.DrawFn) -> bytes:
    """A signed transaction with a few bytes flipped, cut, inserted, or its RLP re-shaped."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "type", "restructure"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del raw[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "type" and raw:
            raw[0] = draw(st.integers(0, 255))
        elif op == "restructure":
            typed = raw[:1] if raw and raw[0] < 0x7F else b""
            try:
                fields = rlp.decode(bytes(raw[len(typed) :]))
            except Exception:
                continue
            if isinstance(fields, list) and fields:
                i = draw(st.integers(0, len(fields) - 1))
                fields[i] = draw(
                    st.one_of(
                        st.binary(max_size=40),
                        st.just([]),
                        st.lists(st.binary(max_size=4), max_size=3),
                    )
                )
                raw = bytearray(typed + rlp.encode(fields))
    return bytes(raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**260)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["0x", "0x0", "latest", "pending", "0x" + "11" * 20, "0x" + "ab" * 32, "0xzz"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "from",
                    "to",
                    "data",
                    "input",
                    "gas",
                    "value",
                    "address",
                    "topics",
                    "fromBlock",
                    "toBlock",
                    "blockHash",
                    "accessList",
                    "nonce",
                    "balance",
                    "code",
                    "state",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)

load_methods()
safe_methods = sorted(set(METHODS) - STATEFUL) + [
    "eth_subscribe",
    "eth_unsubscribe",
    "no_such_method",
]

calls = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.integers(0, 10**6),
        "method": st.sampled_from(safe_methods),
    },
    optional={"params": st.lists(json_values, max_size=4)},
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- against a running node -----------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_ailedger([], tmp_path_factory.mktemp("fuzz"))
    try:
        yield proc
    finally:
        proc.kill()


def post(node: Proc, body: bytes) -> Any:
    req = urllib.request.Request(node.url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            text = resp.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"HTTP {e.code} for {body[:200]!r}") from None
    return json.loads(text) if text else None


def check_response(reply: Any, call_id: Any = None) -> None:
    """A JSON-RPC 2.0 response: a result xor an error with an int code and a message."""
    assert isinstance(reply, dict), reply
    assert reply.get("jsonrpc") == "2.0", reply
    assert "id" in reply, reply
    if call_id is not None:
        assert reply["id"] == call_id, reply
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        err = reply["error"]
        assert isinstance(err.get("code"), int) and isinstance(err.get("message"), str), reply
        assert err["code"] in INPUT_ERROR_CODES, f"unexpected error code (a node bug?): {reply}"


def alive(node: Proc) -> None:
    assert node.proc.poll() is None, node.output()[-3000:]
    reply = post(node, b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}')
    assert reply["result"].startswith("0x")


def send_raw(node: Proc, raw_hex: Any) -> Any:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction", "params": [raw_hex]}
    )
    return post(node, body.encode())


@pytest.mark.slow
@pytest.mark.xdist_group("qa_fuzz_node")
@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), mutated_transactions()))
def test_fuzz_send_raw_transaction_bytes(node: Proc, raw: bytes) -> None:
    reply = send_raw(node, "0x" + raw.hex())
    check_response(reply, 7)
    if "result" in reply:  # a mutation that is still a valid transaction must be findable
        got = post(
            node,
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 8,
                    "method": "eth_getTransactionByHash",
                    "params": [reply["result"]],
                }
            ).encode(),
        )
        assert got["result"] is not None, f"accepted {reply['result']} is nowhere to be found"
    alive(node)


@pytest.mark.slow
@pytest.mark.xdist_group("qa_fuzz_node")
@FUZZ
@given(param=json_values)
def test_fuzz_send_raw_transaction_json(node: Proc, param: Any) -> None:
    check_response(send_raw(node, param), 7)
    alive(node)


@pytest.mark.slow
@pytest.mark.xdist_group("qa_fuzz_node")
@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        json_values.map(lambda v: json.dumps(v).encode()),
        calls.map(lambda c: json.dumps(c).encode()),
        st.lists(st.one_of(calls, json_values), min_size=1, max_size=6).map(
            lambda b: json.dumps(b).encode()
        ),
    )
)
def test_fuzz_http_endpoint(node: Proc, body: bytes) -> None:
    reply = post(node, body)
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, list) and parsed:
        # notifications (calls with no id) get no response; the rest one each
        assert reply is None or isinstance(reply, list), reply
        for r in reply or []:
            check_response(r)
    elif reply is not None:
        check_response(reply)
    else:
        assert isinstance(parsed, dict) and "id" not in parsed, f"no answer to {body[:200]!r}"
    alive(node)


# -- in process -----------------------------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        mutated_transactions(),
        st.binary(max_size=60).map(lambda b: b"\x02" + b),
        st.integers(0, 0x7F).flatmap(
            lambda t: st.binary(max_size=60).map(lambda b: bytes([t]) + b)
        ),
    )
)
def test_fuzz_decode_transaction_raises_only_typed_errors(raw: bytes) -> None:
    try:
        tx = decode_transaction(raw)
    except TransactionError:
        return
    assert tx.sender and len(tx.sender) == 20


PARSERS = [
    rpc_params.quantity,
    rpc_params.data,
    rpc_params.address,
    rpc_params.hash32,
    rpc_params.boolean,
    rpc_params.block_ref,
    rpc_params.call_request,
    rpc_params.state_overrides,
    rpc_params.log_filter,
]


@settings(max_examples=1500, deadline=None)
@given(parser=st.sampled_from(PARSERS), value=json_values)
def test_fuzz_param_parsers_raise_only_invalid_params(parser: Any, value: Any) -> None:
    try:
        parser(value, "argument 0")
    except InvalidParams as e:
        assert "argument 0" in str(e) or "invalid" in str(e), e

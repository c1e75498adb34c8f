"""Bad input against one real `ailedger dev` process: each gets geth's error, and the node
keeps serving.

Every test talks to the same node (module-scoped fixture) over real HTTP or WebSocket on
loopback; an autouse fixture checks after each test that the process is alive and
`eth_blockNumber` still answers, and the last test sends a good transaction through.
Tests that send transactions use their own dev account so that they do not depend on
each other's nonces.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

if str(Path(__file__).resolve().parents[3]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts  # noqa: E402
from genesis.dev import DEV_GAS_LIMIT  # noqa: E402
from tests.support.procs import Proc, start_ailedger  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qa_bad_input")]

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)
SINK = to_checksum_address("0x" + "5a" * 20)
#: secp256k1 group order.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TEN_MIB = 10 * 1024 * 1024


# -- the node and how to talk to it ---------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_ailedger([], tmp_path_factory.mktemp("bad_input"))
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture(autouse=True)
def keeps_serving(node: Proc) -> Iterator[None]:
    """After every bad input: the process is alive and answers eth_blockNumber."""
    yield
    assert node.proc.poll() is None, f"node died:\n{node.output()[-3000:]}"
    reply = call(node, "eth_blockNumber")
    assert reply["result"].startswith("0x"), reply


def http_post(node: Proc, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POST ``body`` over a raw socket; returns (status, body).

    A raw socket, because a server that answers 413 before reading the whole body makes
    http.client raise BrokenPipeError before it reads the answer; here the sender stops
    on the broken pipe and the status line is read all the same.
    """
    head = {"Host": "127.0.0.1", "Content-Type": "application/json", "Connection": "close"}
    head.update(headers or {})
    if "Transfer-Encoding" not in head:
        head["Content-Length"] = str(len(body))
    request = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as s:
        s.sendall(request.encode())
        try:
            if head.get("Transfer-Encoding") == "chunked":
                for i in range(0, len(body), 1 << 16):
                    piece = body[i : i + (1 << 16)]
                    s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(body)
        except OSError:
            pass  # the server answered early and closed; its answer is still readable
        data = b""
        while True:
            try:
                piece = s.recv(1 << 16)
            except OSError:
                break
            if not piece:
                break
            data += piece
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), data[:200]
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def post_json(node: Proc, body: bytes | str) -> Any:
    status, payload = http_post(node, body.encode() if isinstance(body, str) else body)
    assert status == 200, (status, payload[:300])
    return json.loads(payload)


def call(node: Proc, method: str, params: Any = None, call_id: Any = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id, "method": method}
    if params is not None:
        msg["params"] = params
    reply = post_json(node, json.dumps(msg))
    assert isinstance(reply, dict) and reply.get("jsonrpc") == "2.0", reply
    assert reply.get("id") == call_id, reply
    return reply


def error_of(reply: dict[str, Any], code: int) -> dict[str, Any]:
    assert "result" not in reply, reply
    err = reply["error"]
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    return err


def send_raw(node: Proc, raw: bytes | str) -> dict[str, Any]:
    hex_raw = raw if isinstance(raw, str) else "0x" + raw.hex()
    return call(node, "eth_sendRawTransaction", [hex_raw])


def refused(node: Proc, raw: bytes | str, *fragments: str) -> str:
    """Send ``raw``; assert -32000 whose message contains one of ``fragments``."""
    err = error_of(send_raw(node, raw), -32000)
    message = err["message"].lower()
    assert any(f in message for f in fragments), err
    assert "internal" not in message, err
    return message


def nonce_of(node: Proc, address: str, tag: str = "latest") -> int:
    return int(call(node, "eth_getTransactionCount", [address, tag])["result"], 16)


def base_fee(node: Proc) -> int:
    block = call(node, "eth_getBlockByNumber", ["latest", False])["result"]
    return int(block["baseFeePerGas"], 16)


def sign(key: bytes, **fields: Any) -> bytes:
    tx: dict[str, Any] = {
        "chainId": DEV_CHAIN_ID,
        "gas": 21_000,
        "to": SINK,
        "value": 1,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "type": 2,
    }
    tx.update(fields)
    if tx["to"] is not None:
        tx["to"] = to_checksum_address(tx["to"])
    else:
        del tx["to"]
    if "gasPrice" in fields:
        tx.pop("maxFeePerGas")
        tx.pop("maxPriorityFeePerGas")
        tx.pop("type")
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def receipt(node: Proc, tx_hash: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = call(node, "eth_getTransactionReceipt", [tx_hash])["result"]
    return result


def mined(node: Proc, raw: bytes) -> dict[str, Any]:
    """Send a transaction that must be accepted; under automine its receipt is there at once."""
    reply = send_raw(node, raw)
    assert "result" in reply, reply
    got = receipt(node, reply["result"])
    assert got is not None, f"accepted {reply['result']} but it has no receipt"
    assert got["transactionHash"] == reply["result"]
    return got


# -- transport and envelope -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b"",
        b"[",
        b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"',
        b"\xff\xfe\x00",
        b"nul",
        b'{"id":1,}',
        b"[1,2",
    ],
)
def test_malformed_json_is_parse_error_with_null_id(node: Proc, body: bytes) -> None:
    reply = post_json(node, body)
    assert reply["id"] is None, reply
    error_of(reply, -32700)


def test_batch_mixing_good_and_bad_calls(node: Proc) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "no_suchMethod"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [123]},
        7,
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no response
        {
            "jsonrpc": "2.0",
            "id": "four",
            "method": "eth_getBalance",
            "params": [ACCOUNTS[0].address, "latest"],
        },
        {"jsonrpc": "2.0", "id": 5, "method": "eth_sendRawTransaction", "params": ["0xc0"]},
        {"jsonrpc": "2.0", "id": 6},
    ]
    replies = post_json(node, json.dumps(batch))
    assert isinstance(replies, list) and len(replies) == 7, replies
    assert [r.get("id") for r in replies] == [1, 2, 3, None, "four", 5, 6]
    assert replies[0]["result"] == hex(DEV_CHAIN_ID)
    assert "no_suchMethod" in error_of(replies[1], -32601)["message"]
    assert "argument 0" in error_of(replies[2], -32602)["message"]
    error_of(replies[3], -32600)
    assert int(replies[4]["result"], 16) > 0
    error_of(replies[5], -32000)
    error_of(replies[6], -32600)


def test_empty_batch_is_invalid_request(node: Proc) -> None:
    reply = post_json(node, "[]")
    assert isinstance(reply, dict), reply
    assert reply["id"] is None
    error_of(reply, -32600)


def test_batch_limit_is_1000_calls(node: Proc) -> None:
    calls = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(1001)]
    reply = post_json(node, json.dumps(calls))
    assert isinstance(reply, dict), "a batch over the limit gets one error, not 1001 answers"
    assert "batch" in error_of(reply, -32600)["message"]
    replies = post_json(node, json.dumps(calls[:1000]))
    assert [r["id"] for r in replies] == list(range(1000))
    assert all(r["result"] == hex(DEV_CHAIN_ID) for r in replies)


@pytest.mark.parametrize(
    "payload",
    [
        "5",
        '"eth_blockNumber"',
        "null",
        "true",
        "[[]]",
        "[null]",
        '{"jsonrpc":"2.0","id":1}',
        '{"jsonrpc":"2.0","id":1,"method":5}',
        '{"jsonrpc":"1.0","id":1,"method":"eth_blockNumber"}',
        '{"jsonrpc":"2.0","id":{"a":1},"method":"eth_blockNumber"}',
    ],
)
def test_non_object_and_malformed_calls_are_invalid_request(node: Proc, payload: str) -> None:
    reply = post_json(node, payload)
    if payload.startswith("["):
        assert isinstance(reply, list) and len(reply) == 1, reply
        reply = reply[0]
    error_of(reply, -32600)


@pytest.mark.parametrize(
    ("method", "params", "argument"),
    [
        ("eth_getBalance", [123], "argument 0"),
        ("eth_getBalance", [True, "latest"], "argument 0"),
        ("eth_getBalance", ["0x1234", "latest"], "argument 0"),
        ("eth_getBalance", [ACCOUNTS[0].address, 5], "argument 1"),
        ("eth_getBalance", [ACCOUNTS[0].address, "newest"], "argument 1"),
        ("eth_getBalance", [], "argument 0"),
        ("eth_getBalance", [ACCOUNTS[0].address, "latest", 1], "too many"),
        ("eth_getBlockByNumber", ["latest", "yes"], "argument 1"),
        ("eth_getBlockByNumber", [{"x": 1}, False], "argument 0"),
        ("eth_getBlockByHash", ["0x1234", False], "argument 0"),
        ("eth_getTransactionByHash", [42], "argument 0"),
        ("eth_getTransactionReceipt", [], "argument 0"),
        ("eth_getStorageAt", [ACCOUNTS[0].address, "0x" + "1" * 80, "latest"], "argument 1"),
        ("eth_call", ["not an object", "latest"], "argument 0"),
        ("eth_call", [{"to": "0xnothex"}, "latest"], "argument 0"),
        ("eth_call", [{"to": SINK, "value": "12"}, "latest"], "argument 0"),
        ("eth_sendRawTransaction", [], "argument 0"),
        ("eth_sendRawTransaction", [12345], "argument 0"),
        ("eth_getLogs", [{"topics": "x"}], "argument 0"),
        ("web3_sha3", ["hello"], "argument 0"),
        ("eth_feeHistory", ["0x1", "latest", [90, 10]], "argument 2"),
    ],
)
def test_wrong_parameter_types_and_counts(
    node: Proc, method: str, params: Any, argument: str
) -> None:
    err = error_of(call(node, method, params), -32602)
    assert argument in err["message"], err


def test_params_must_be_an_array(node: Proc) -> None:
    error_of(call(node, "eth_getBalance", {"address": ACCOUNTS[0].address}), -32602)
    error_of(call(node, "eth_getBalance", "0x00"), -32602)


def test_unknown_method(node: Proc) -> None:
    for name in (
        "eth_doesNotExist",
        "debug_traceEverything",
        "eth_blockNumber ",
        "ETH_BLOCKNUMBER",
    ):
        assert name in error_of(call(node, name, []), -32601)["message"]
    error_of(call(node, "", []), -32601)


@pytest.mark.parametrize("bad", ["0xzz", "1234", "0x123", "0x 12", "0xg0", "ab", "0x0x12"])
def test_invalid_hex_data(node: Proc, bad: str) -> None:
    assert "argument 0" in error_of(call(node, "eth_sendRawTransaction", [bad]), -32602)["message"]
    assert "argument 0" in error_of(call(node, "web3_sha3", [bad]), -32602)["message"]


@pytest.mark.parametrize("bad", ["0xzz", "1234", "0x", "0xg0", "0x" + "f" * 65, "-0x1"])
def test_invalid_hex_quantity(node: Proc, bad: str) -> None:
    assert (
        "argument 1"
        in error_of(call(node, "eth_getStorageAt", [SINK, bad, "latest"]), -32602)["message"]
    )
    assert "argument 1" in error_of(call(node, "eth_getBalance", [SINK, bad]), -32602)["message"]


def test_http_get_and_other_verbs_do_not_crash(node: Proc) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 405"), data[:100]
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 garbage that is not http\r\n\r\n")
        s.settimeout(5)
        try:
            s.recv(4096)
        except OSError:
            pass


# -- size limits ----------------------------------------------------------------------------


def test_ten_mib_body_gets_413(node: Proc) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"web3_sha3","params":["0x'
        + b"ab" * (TEN_MIB // 2)
        + b'"]}'
    )
    status, _ = http_post(node, body)
    assert status == 413
    status, _ = http_post(node, body, {"Transfer-Encoding": "chunked"})
    assert status == 413, "a chunked body without Content-Length must be counted too"
    just_under = (
        b'{"jsonrpc":"2.0","id":1,"method":"web3_sha3","params":["0x'
        + b"ab" * (2 * 1024 * 1024)
        + b'"]}'
    )
    assert post_json(node, just_under)["result"].startswith("0x")


def test_ten_mib_websocket_message(node: Proc) -> None:
    """The message is refused (an error, or close code 1009) and other clients are served."""
    with ws_connect(node.ws_url, max_size=None, open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}))
        assert "result" in json.loads(ws.recv(timeout=10))
        ws.send("[" + " " * TEN_MIB + "]")
        try:
            reply = json.loads(ws.recv(timeout=30))
        except ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 1009, e
        else:
            error_of(reply, -32600)
    with ws_connect(node.ws_url, open_timeout=10) as ws:
        ws.send("{bad json")
        error_of(json.loads(ws.recv(timeout=10)), -32700)
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"}))
        assert "result" in json.loads(ws.recv(timeout=10))


# -- transactions the pool refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "0x",
        "0xc0",
        "0xf8",
        "0x80",
        "0x01",
        "0x02c0",
        "0x02f8",
        "0x01c3010203",
        "0xf86c" + "00" * 20,
        "0x04",
        "0xc4c3c2c1c0",
    ],
)
def test_malformed_rlp(node: Proc, raw: str) -> None:
    refused(node, raw, "rlp", "empty", "invalid", "transaction", "decode")


@pytest.mark.parametrize("type_byte", [0x00, 0x05, 0x11, 0x7E])
def test_unknown_typed_transaction_is_refused_not_internal_error(
    node: Proc, type_byte: int
) -> None:
    """An EIP-2718 type byte this chain does not know is bad input (-32000), like type 3.

    Node bug found by this test: py-evm raises ``UnrecognizedTransactionType``, which is
    not among the exceptions state/transactions.py catches, so it escapes as -32603.
    """
    payload = rlp.encode([1, 2, 3])
    refused(node, bytes([type_byte]) + payload, "type", "rlp", "unsupported", "transaction")


def test_blob_transaction_is_unsupported(node: Proc) -> None:
    acct = ACCOUNTS[1]
    body = rlp.encode(
        [
            DEV_CHAIN_ID,
            0,
            1,
            10**10,
            21000,
            bytes.fromhex("5a" * 20),
            0,
            b"",
            [],
            1,
            [b"\x01" + b"\x00" * 31],
            0,
            1,
            1,
        ]
    )
    message = refused(node, b"\x03" + body, "blob", "type 3")
    assert "3" in message
    assert nonce_of(node, acct.address) == 0


def _decoded(raw: bytes) -> list[Any]:
    assert raw[0] == 2
    return list(rlp.decode(raw[1:]))


def _encoded(fields: list[Any]) -> bytes:
    return b"\x02" + rlp.encode(fields)


def test_bad_signatures(node: Proc) -> None:
    acct = ACCOUNTS[2]
    raw = sign(acct.private_key, nonce=0)
    f = _decoded(raw)  # [..., y_parity, r, s] at 9, 10, 11
    r, s = int.from_bytes(f[10], "big"), int.from_bytes(f[11], "big")

    def variant(**changes: Any) -> bytes:
        g = list(f)
        for index, value in changes.items():
            g[int(index[1:])] = value
        return _encoded(g)

    cases = {
        "s zero": variant(i11=b""),
        "r zero": variant(i10=b""),
        "r above n": variant(i10=(SECP256K1_N + 1).to_bytes(32, "big")),
        "s above n": variant(i11=(SECP256K1_N + 5).to_bytes(32, "big")),
        "y parity 5": variant(i9=b"\x05"),
        "r flipped": variant(i10=(r ^ (1 << 200)).to_bytes(32, "big")),
        "s flipped": variant(i11=(s ^ 1).to_bytes(32, "big")),
        "payload flipped": variant(i6=b"\x02"),  # the value changed after signing
    }
    for name, bad in cases.items():
        reply = send_raw(node, bad)
        assert "error" in reply, (name, reply)
        err = error_of(reply, -32000)
        assert "internal" not in err["message"].lower(), (name, err)
    assert nonce_of(node, acct.address) == 0, "a tampered copy must not spend the signer's nonce"
    mined(node, raw)
    assert nonce_of(node, acct.address) == 1


def test_flipped_byte_in_signed_transaction(node: Proc) -> None:
    acct = ACCOUNTS[3]
    raw = sign(acct.private_key, nonce=0)
    for position in range(len(raw) - 70, len(raw)):  # the signature bytes
        bad = bytearray(raw)
        bad[position] ^= 0x01
        reply = send_raw(node, bytes(bad))
        assert "error" in reply, (position, reply)
        assert reply["error"]["code"] == -32000, (position, reply)
    assert nonce_of(node, acct.address) == 0


def test_high_s_signature_is_refused(node: Proc) -> None:
    """EIP-2: s must be at most n/2, else a third party can malleate a signed transaction
    into a second valid one (same sender, new hash).

    Node bug found by this test: for typed transactions (type 2) the malleated copy is
    accepted by eth_sendRawTransaction (hash returned), then silently dropped when the
    block is built (py-evm validates s there), so the returned hash is never mined and
    never findable. Legacy transactions are refused at admission, as they should be.
    """
    acct = ACCOUNTS[4]
    raw = sign(acct.private_key, nonce=0)
    f = _decoded(raw)
    s = int.from_bytes(f[11], "big")
    f[11] = (SECP256K1_N - s).to_bytes(32, "big")
    f[9] = b"" if f[9] == b"\x01" else b"\x01"
    malleated = _encoded(f)
    assert Account.recover_transaction(malleated) == acct.address  # same sender, high s
    reply = send_raw(node, malleated)
    if "result" in reply:  # if admitted, it must at least be mined as its hash says
        assert receipt(node, reply["result"]) is not None, (
            "eth_sendRawTransaction returned a hash for a high-s transaction that was then dropped"
        )
    error_of(reply, -32000)
    mined(node, raw)


def test_wrong_chain_id(node: Proc) -> None:
    acct = ACCOUNTS[5]
    for chain_id in (1, DEV_CHAIN_ID + 1, 31337):
        message = refused(
            node, sign(acct.private_key, nonce=0, chainId=chain_id), "chain id", "chainid"
        )
        assert str(DEV_CHAIN_ID) in message, message
    refused(
        node, sign(acct.private_key, nonce=0, chainId=1, gasPrice=10**10), "chain id", "chainid"
    )
    assert nonce_of(node, acct.address) == 0


def test_replayed_transaction(node: Proc) -> None:
    acct = ACCOUNTS[6]
    raw = sign(acct.private_key, nonce=0)
    first = mined(node, raw)
    refused(node, raw, "already known", "nonce too low")
    refused(node, raw, "already known", "nonce too low")
    assert nonce_of(node, acct.address) == 1
    again = receipt(node, first["transactionHash"])
    assert again is not None and again["blockHash"] == first["blockHash"]


def test_nonce_too_low(node: Proc) -> None:
    acct = ACCOUNTS[7]
    mined(node, sign(acct.private_key, nonce=0))
    mined(node, sign(acct.private_key, nonce=1))
    message = refused(node, sign(acct.private_key, nonce=0, value=12345), "nonce too low")
    assert "2" in message
    refused(node, sign(acct.private_key, nonce=1, value=999, gasPrice=10**10), "nonce too low")


def test_insufficient_funds(node: Proc) -> None:
    pauper = Account.create()
    refused(node, sign(bytes(pauper.key), nonce=0), "insufficient funds")
    acct = ACCOUNTS[8]
    balance = int(call(node, "eth_getBalance", [acct.address, "latest"])["result"], 16)
    refused(node, sign(acct.private_key, nonce=0, value=balance), "insufficient funds")
    assert int(call(node, "eth_getBalance", [acct.address, "latest"])["result"], 16) == balance


def test_gas_over_block_limit(node: Proc) -> None:
    acct = ACCOUNTS[9]
    limit = int(call(node, "eth_getBlockByNumber", ["latest", False])["result"]["gasLimit"], 16)
    assert limit == DEV_GAS_LIMIT
    refused(
        node, sign(acct.private_key, nonce=0, gas=limit + 1), "exceeds block gas limit", "gas limit"
    )
    refused(
        node, sign(acct.private_key, nonce=0, gas=2**63), "exceeds block gas limit", "gas limit"
    )
    refused(node, sign(acct.private_key, nonce=0, gas=20_000), "intrinsic gas")
    assert nonce_of(node, acct.address) == 0


def test_oversized_transaction(node: Proc) -> None:
    acct = ACCOUNTS[10]
    raw = sign(acct.private_key, nonce=0, data=b"\x01" * (130 * 1024), gas=10_000_000)
    assert len(raw) > 128 * 1024
    refused(node, raw, "oversized", "too large", "size")
    assert nonce_of(node, acct.address) == 0
    fits = sign(acct.private_key, nonce=0, data=b"\x01" * (100 * 1024), gas=2_000_000)
    assert mined(node, fits)["status"] == "0x1"


def test_underpriced_fee(node: Proc) -> None:
    acct = ACCOUNTS[11]
    fee = base_fee(node)
    assert fee > 1
    refused(
        node,
        sign(acct.private_key, nonce=0, maxFeePerGas=1, maxPriorityFeePerGas=1),
        "underpriced",
        "fee",
    )
    refused(node, sign(acct.private_key, nonce=0, gasPrice=0), "underpriced", "fee")
    assert nonce_of(node, acct.address) == 0


def test_replacement_underpriced(node: Proc) -> None:
    acct = ACCOUNTS[12]
    assert call(node, "evm_setAutomine", [False])["result"] is None
    try:
        first = send_raw(
            node,
            sign(
                acct.private_key, nonce=0, maxFeePerGas=20 * 10**9, maxPriorityFeePerGas=2 * 10**9
            ),
        )["result"]
        assert receipt(node, first) is None, "automine is off: it stays pending"
        for fee, tip in (
            (20 * 10**9, 2 * 10**9 + 1),
            (21 * 10**9, 2 * 10**9),
            (21 * 10**9, 21 * 10**8),
        ):
            refused(
                node,
                sign(
                    acct.private_key, nonce=0, value=2, maxFeePerGas=fee, maxPriorityFeePerGas=tip
                ),
                "replacement transaction underpriced",
            )
        replacement = send_raw(
            node,
            sign(
                acct.private_key,
                nonce=0,
                value=3,
                maxFeePerGas=22 * 10**9,
                maxPriorityFeePerGas=22 * 10**8,
            ),
        )["result"]
        assert nonce_of(node, acct.address, "pending") == 1
    finally:
        call(node, "evm_setAutomine", [True])
    call(node, "evm_mine", [])
    assert receipt(node, replacement) is not None
    assert receipt(node, first) is None, "the replaced transaction must not be mined"
    assert nonce_of(node, acct.address) == 1


# -- reverts ---------------------------------------------------------------------------------


def _reverter(payload: bytes) -> bytes:
    """Init code of a contract whose every call reverts with ``payload``.

    Runtime: PUSH2 len PUSH2 15 PUSH1 0 CODECOPY PUSH2 len PUSH1 0 REVERT, then payload
    (the 15-byte prefix copies the payload that follows it). Init: copy runtime, RETURN it.
    """
    n = len(payload).to_bytes(2, "big")
    runtime = b"\x61" + n + b"\x61\x00\x0f\x60\x00\x39" + b"\x61" + n + b"\x60\x00\xfd" + payload
    assert len(runtime) - len(payload) == 15
    r = len(runtime).to_bytes(2, "big")
    init = b"\x61" + r + b"\x60\x0e\x60\x00\x39" + b"\x61" + r + b"\x60\x00\xf3"
    assert len(init) == 14
    return init + runtime


def test_revert_is_code_3_with_revert_bytes(node: Proc) -> None:
    acct = ACCOUNTS[13]
    reason = bytes.fromhex("08c379a0") + abi_encode(["string"], ["nope"])
    custom = keccak(b"Nope(uint256,address)")[:4] + abi_encode(["uint256", "address"], [42, SINK])
    for nonce, payload, message in (
        (0, reason, "execution reverted: nope"),
        (1, custom, "execution reverted"),
    ):
        deployed = mined(
            node,
            sign(
                acct.private_key,
                nonce=nonce,
                to=None,
                value=0,
                gas=300_000,
                data=_reverter(payload),
            ),
        )
        address = deployed["contractAddress"]
        assert call(node, "eth_getCode", [address, "latest"])["result"].endswith(payload.hex())
        for method in ("eth_call", "eth_estimateGas"):
            request = {"from": acct.address, "to": address, "data": "0x12345678"}
            err = error_of(call(node, method, [request, "latest"]), 3)
            assert err["message"] == message, err
            assert err["data"] == "0x" + payload.hex(), err
    failed = mined(node, sign(acct.private_key, nonce=2, to=address, value=0, gas=100_000))
    assert failed["status"] == "0x0", "a reverting transaction is mined as failed"
    assert nonce_of(node, acct.address) == 3


def test_subscribe_over_http_is_not_an_internal_error(node: Proc) -> None:
    """geth answers eth_subscribe over HTTP with -32601 "notifications not supported".

    Node bug found by this test: node/rpc/server.py raises a bare RPCError, whose code is
    -32603 (internal error), for bad input.
    """
    for method, params in (("eth_subscribe", ["newHeads"]), ("eth_unsubscribe", ["0x1"])):
        err = error_of(call(node, method, params), -32601)
        assert "notifications not supported" in err["message"]


# -- and at the end a good transaction still goes through ---------------------------------------


def test_zz_good_transaction_after_all_bad_input(node: Proc) -> None:
    acct = ACCOUNTS[19]
    before = int(call(node, "eth_getBalance", [SINK, "latest"])["result"], 16)
    nonce = nonce_of(node, acct.address)
    value = secrets.randbelow(10**15) + 1
    got = mined(node, sign(acct.private_key, nonce=nonce, value=value))
    assert got["status"] == "0x1"
    assert int(call(node, "eth_getBalance", [SINK, "latest"])["result"], 16) == before + value
    assert nonce_of(node, acct.address) == nonce + 1


@pytest.mark.parametrize(
    ("method", "params", "argument"),
    [
        ("ai_listModels", ["offset"], "argument 0"),
        ("ai_listModels", [{"offset": -1}], "argument 0.offset"),
        ("ai_listModels", [{"limit": True}], "argument 0.limit"),
        ("ai_listModels", [{"offset": "0xzz"}], "argument 0.offset"),
        ("ai_listModels", [{}, 1], "too many"),
        ("ai_listDatanets", [[0, 10]], "argument 0"),
        ("ai_listDatanets", [{"limit": -5}], "argument 0.limit"),
        ("ai_getDeposit", [], "argument 0"),
        ("ai_getDeposit", ["0x1234"], "argument 0"),
        ("ai_getDeposit", [ACCOUNTS[0].address, "newest"], "argument 1"),
        ("ai_getReceipt", [], "argument 0"),
        ("ai_getReceipt", [-1], "argument 0"),
        ("ai_getReceipt", [{"id": 1}], "argument 0"),
        ("ai_getReceipt", [1, "latest", 3], "too many"),
    ],
)
def test_ai_reads_refuse_bad_parameters(node: Proc, method: str, params: Any, argument: str) -> None:
    err = error_of(call(node, method, params), -32602)
    assert argument in err["message"], err


@pytest.mark.parametrize("method", ["ai_getInferenceAncestry", "ai_getReceipt"])
@pytest.mark.parametrize("ref", [{"id": 1}, "receipt-1", True, "0xzz", "1", None, [1], "0x" + "ab" * 33])
def test_receipt_reads_say_both_forms_they_take(node: Proc, method: str, ref: Any) -> None:
    """Either read takes a receipt id or the hash of its transaction; a bad one is refused
    with a message that names both (issue 21)."""
    err = error_of(call(node, method, [ref]), -32602)
    assert "argument 0" in err["message"] and "receipt id" in err["message"], err
    assert "32-byte hash" in err["message"] and "transaction" in err["message"], err


@pytest.mark.parametrize("method", ["ai_getInferenceAncestry", "ai_getReceipt"])
def test_receipt_reads_say_what_they_did_not_find(node: Proc, method: str) -> None:
    missing = "0x" + "77" * 32
    err = error_of(call(node, method, [missing]), -32001)
    assert err["message"] == f"transaction {missing} not found", err
    err = error_of(call(node, method, [12345]), -32001)
    assert "inference receipt 12345" in err["message"], err


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("ai_listModels", [{"offset": 2**256, "limit": 2**256}]),
        ("ai_listModels", [{"offset": 10**77, "limit": 100}]),
        ("ai_listDatanets", [{"offset": hex(2**255), "limit": hex(2**255)}]),
        ("ai_getReceipt", [2**256]),
        ("ai_getReceipt", [hex(2**255)]),
    ],
)
def test_ai_reads_with_huge_ids_answer_at_once(node: Proc, method: str, params: Any) -> None:
    """Ids and offsets past anything stored (up to and beyond 2**256) page nothing or find
    nothing, quickly: never an internal error, never a walk."""
    started = time.monotonic()
    reply = call(node, method, params)
    assert time.monotonic() - started < 5
    if "error" in reply:
        assert reply["error"]["code"] in (-32602, -32001), reply
    else:
        listed = reply["result"].get("models", reply["result"].get("datanets"))
        assert listed == [], reply

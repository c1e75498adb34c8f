"""The explorer on a real node's RPC port: on by default in `ailedger dev`, off unless asked on
`ailedger run`; GETs under /explorer get the bundle and everything else stays JSON-RPC; paths are
never files; and the explorer's own page may call the node while a DNS-rebinding page, whose
Origin equals its Host too, may not."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts
from node.rpc.explorer import BUNDLE_DIR
from tests.support.procs import VENV_BIN, Proc, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("explorer-serving")]

ALICE, BOB = derive_accounts(DEV_MNEMONIC, 2)
INDEX = (BUNDLE_DIR / "index.html").read_bytes()


def http(port: int, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written by hand (so paths reach the node exactly as written)."""
    head = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request.encode() + body)
        data = b""
        while piece := s.recv(65536):
            data += piece
    status_line, _, rest = data.partition(b"\r\n")
    header_blob, _, payload = rest.partition(b"\r\n\r\n")
    parsed = {}
    for line in header_blob.split(b"\r\n"):
        k, _, v = line.partition(b":")
        parsed[k.strip().lower().decode()] = v.strip().decode()
    return int(status_line.split()[1]), parsed, payload


def says_explorer(node: Proc) -> bool:
    """Whether the node printed where its explorer is (it prints it once it listens)."""
    deadline = time.monotonic() + 10
    while "Explorer at http://127.0.0.1:" not in node.output():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def init_datadir(tmp: Path) -> Path:
    datadir = tmp / "chain"
    done = subprocess.run([str(VENV_BIN / "ailedger"), "init", "--dev", "--datadir", str(datadir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return datadir


@pytest.fixture(scope="module")
def run_explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """`ailedger run --explorer`, no CORS origin listed."""
    tmp = tmp_path_factory.mktemp("run-explorer")
    node = start_ailedger(["--datadir", str(init_datadir(tmp)), "--explorer"], tmp, command="run")
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture(scope="module")
def run_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("run-plain")
    node = start_ailedger(["--datadir", str(init_datadir(tmp))], tmp, command="run")
    try:
        yield node
    finally:
        node.kill()


def raw_transfer(nonce: int) -> bytes:
    tx = Account.sign_transaction(dict(type=2, chainId=DEV_CHAIN_ID, nonce=nonce, to=BOB.address, value=1, gas=21000,
                                       maxFeePerGas=10**11, maxPriorityFeePerGas=1), ALICE.private_key)
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                       "params": ["0x" + tx.raw_transaction.hex()]}).encode()


def test_run_serves_the_explorer_only_when_asked(run_explorer: Proc, run_plain: Proc) -> None:
    assert says_explorer(run_explorer)
    status, headers, body = http(run_explorer.port, "GET", "/explorer/receipt/1")
    assert status == 200 and body == INDEX and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache" and headers["etag"]
    script = next(name for name in json.loads((BUNDLE_DIR / "build.json").read_text())["files"] if name.endswith(".js"))
    status, headers, body = http(run_explorer.port, "GET", f"/explorer/{script}", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and "immutable" in headers["cache-control"]
    # JSON-RPC is untouched on the same port; a GET elsewhere says where the explorer is
    assert rpc(run_explorer.url, "eth_chainId")["result"] == hex(DEV_CHAIN_ID)
    status, _, body = http(run_explorer.port, "GET", "/")
    assert status == 405 and b"/explorer/" in body
    # without --explorer, /explorer is nobody's page
    assert "Explorer at" not in run_plain.output()
    status, _, body = http(run_plain.port, "GET", "/explorer/")
    assert status == 405 and b"<html" not in body


def test_paths_are_never_files(run_explorer: Proc) -> None:
    for path in ("/explorer/../pyproject.toml", "/explorer/%2e%2e/%2e%2e/pyproject.toml",
                 "/explorer/assets/..%2f..%2fbuild.json", "/explorer/..%5c..%5cpyproject.toml",
                 "/explorer/assets/%2e%2e/%2e%2e/%2e%2e/node/rpc/explorer.py", "/explorer/build.json",
                 "/explorer/%00", "/explorer/assets/nope.js"):
        status, _, body = http(run_explorer.port, "GET", path)
        assert status in (200, 400, 404), path
        assert status != 200 or body == INDEX, path
        assert b"[build-system]" not in body and b"\"sources\"" not in body and b"def " not in body, path
    status, headers, _ = http(run_explorer.port, "POST", "/explorer/", {"Content-Type": "application/json"}, b"{}")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_the_explorers_own_page_may_call_and_a_rebinding_page_may_not(run_explorer: Proc, run_plain: Proc) -> None:
    port = run_explorer.port
    own = {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
    status, _, payload = http(port, "POST", "/", own, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode())
    assert status == 200 and json.loads(payload)["result"] == hex(DEV_CHAIN_ID)
    # evil.example resolved to 127.0.0.1: its Origin equals its Host, but a name is not ours
    nonce = rpc(run_explorer.url, "eth_getTransactionCount", [ALICE.address, "pending"])["result"]
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}", "Content-Type": "text/plain"}
    status, headers, _ = http(port, "POST", "/", rebound, raw_transfer(int(nonce, 16)))
    assert status == 403 and "access-control-allow-origin" not in headers
    assert rpc(run_explorer.url, "eth_getTransactionCount", [ALICE.address, "pending"])["result"] == nonce
    # a page of another port on this machine is another origin
    status, _, _ = http(port, "POST", "/", {"Origin": "http://127.0.0.1:1", "Content-Type": "text/plain"},
                        raw_transfer(int(nonce, 16)))
    assert status == 403
    # WebSocket: the same rule
    with ws_connect(run_explorer.ws_url, origin=f"http://127.0.0.1:{port}", open_timeout=10) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        assert json.loads(ws.recv(timeout=10))["result"].startswith("0x")
    with pytest.raises(InvalidStatus):
        with ws_connect(run_explorer.ws_url, origin=f"http://evil.example:{port}",  # type: ignore[arg-type]
                        additional_headers={"Host": f"evil.example:{port}"}, open_timeout=10) as ws:
            ws.recv(timeout=10)
    # a node that serves no explorer has no page of its own: its origin is as unlisted as any
    status, _, _ = http(run_plain.port, "POST", "/", {"Origin": f"http://127.0.0.1:{run_plain.port}",
                                                      "Content-Type": "application/json"},
                        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode())
    assert status == 403


def test_dev_serves_it_by_default_and_not_when_told(tmp_path: Path) -> None:
    node = start_ailedger([], tmp_path)
    try:
        assert says_explorer(node)
        status, _, body = http(node.port, "GET", "/explorer/validators")
        assert status == 200 and body == INDEX
    finally:
        node.kill()
    node = start_ailedger(["--no-explorer"], tmp_path)
    try:
        status, _, body = http(node.port, "GET", "/explorer/")
        assert status == 405 and "Explorer at" not in node.output()
    finally:
        node.kill()

"""Ordinary mistakes get one line and spend nothing: the CLI reads the chain and refuses what
would revert before it uploads or signs, and a port or datadir in use, a closed pipe or an
unreachable node is one line, never a traceback."""

import os
import signal
import subprocess
import time

import pytest

from tests.support.procs import VENV_BIN, free_port, rpc, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli-mistakes")]
DEV1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def run(url, *args, timeout=120):
    env = {**os.environ, "AILEDGER_RPC": url}
    return subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def one_line_error(out, *words):
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mistakes")
    proc = start_ailedger([], tmp)
    out = run(proc.url, "datanet", "create", "facts", "--account", "0", "--max-size", "100")
    assert out.returncode == 0, out.stderr
    yield proc
    proc.kill()


def spent_nothing(url, before):
    """Neither the sender's nonce nor the chain moved."""
    assert rpc(url, "eth_getTransactionCount", [DEV1, "latest"])["result"] == before["nonce"]
    assert rpc(url, "eth_blockNumber")["result"] == before["block"]


def snapshot(url):
    return {"nonce": rpc(url, "eth_getTransactionCount", [DEV1, "latest"])["result"],
            "block": rpc(url, "eth_blockNumber")["result"]}


def test_contribute_checks_every_file_before_uploading_any(node, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("a fine contribution\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 101)
    twin = tmp_path / "twin.txt"
    twin.write_text("a fine contribution\n")
    before = snapshot(node.url)
    one_line_error(run(node.url, "contribute", "1", str(good), str(tmp_path / "missing.txt"), "--account", "1"),
                   "missing.txt", "nothing was uploaded")
    one_line_error(run(node.url, "contribute", "1", str(good), str(empty), "--account", "1"), "empty")
    one_line_error(run(node.url, "contribute", "1", str(good), str(big), "--account", "1"), "limit of 100")
    one_line_error(run(node.url, "contribute", "1", str(good), str(twin), "--account", "1"), "same content")
    one_line_error(run(node.url, "contribute", "7", str(good), "--account", "1"), "datanet 7 does not exist")
    spent_nothing(node.url, before)
    from eth_hash.auto import keccak

    missing = rpc(node.url, "ai_getBlob", ["0x" + keccak(good.read_bytes()).hex()])
    assert "error" in missing  # the good file was not uploaded either
    # A file already contributed is refused before a second upload.
    assert run(node.url, "contribute", "1", str(good), "--account", "1").returncode == 0
    before = snapshot(node.url)
    one_line_error(run(node.url, "contribute", "1", str(twin), "--account", "1"), "already a contribution")
    spent_nothing(node.url, before)


def test_what_would_revert_is_refused_before_it_spends(node):
    before = snapshot(node.url)
    one_line_error(run(node.url, "infer", "--adapter", "42", "--prompt", "hi", "--account", "1",
                       "--deposit", "0.1eth"), "adapter 42 does not exist")
    deposit = rpc(node.url, "ai_getDeposit", [DEV1])["result"]
    assert int(deposit["balance"], 16) == 0  # the deposit was not taken
    one_line_error(run(node.url, "deposit", "add", "0", "--account", "1"), "nothing to deposit")
    one_line_error(run(node.url, "stake", "add", "0", "--account", "1"), "nothing to stake")
    one_line_error(run(node.url, "stake", "remove", "1eth", "--account", "1"), "your stake is 0 ETH")
    one_line_error(run(node.url, "train", "--datanet", "1:1", "--parent", "42", "--account", "1",
                       "--sidecar", "127.0.0.1:9"), "no version 1")
    one_line_error(run(node.url, "train", "--datanet", "9:1", "--account", "1"), "datanet 9 does not exist")
    one_line_error(run(node.url, "curate", "99", "--approve", "--account", "1"), "contribution 99 does not exist")
    one_line_error(run(node.url, "rewards", "claim", "--account", "1"), "nothing to claim")
    one_line_error(run(node.url, "deposit", "withdraw", "--account", "1"), "no deposit")
    one_line_error(run(node.url, "govern", "propose", "no.such", "1", "--account", "1"), "no parameter")
    unitless = run(node.url, "stake", "add", "1.5", "--account", "1")  # argparse's usage error
    assert unitless.returncode == 2 and "give a unit (e.g. 1.5eth)" in unitless.stderr
    spent_nothing(node.url, before)


def test_a_port_or_datadir_in_use_is_one_line(node, tmp_path):
    one_line_error(run(node.url, "dev", "--no-sidecar", "--port", str(node.port)), "in use", "--port")
    datadir = tmp_path / "chain"
    holder = start_ailedger(["--datadir", str(datadir)], tmp_path)
    try:
        one_line_error(run(node.url, "dev", "--no-sidecar", "--port", str(free_port()), "--datadir", str(datadir)),
                       "in use by another process")
        one_line_error(run(node.url, "init", "--dev", "--datadir", str(datadir)), "in use by another process")
        one_line_error(run(node.url, "run", "--port", str(free_port()), "--datadir", str(datadir)),
                       "in use by another process")
    finally:
        holder.kill(signal.SIGTERM)


def test_a_closed_pipe_and_a_dead_sidecar_are_quiet(node):
    head = subprocess.run(f"{VENV_BIN / 'ailedger'} abi Inference --sol | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert head.stdout.startswith("// SPDX") and head.stderr == "", head.stderr
    out = run(node.url, "receipt", "verify", "1", "--prompt", "x", "--sidecar", "127.0.0.1:9")
    one_line_error(out, "no inference receipt 1")


def test_help_and_a_read_start_fast(node):
    """Heavy modules load lazily. Timed for the report; the bound is generous (shared CI)."""
    started = time.perf_counter()
    assert run(node.url, "--help").returncode == 0
    help_s = time.perf_counter() - started
    started = time.perf_counter()
    assert run(node.url, "datanet", "show", "1").returncode == 0
    read_s = time.perf_counter() - started
    print(f"ailedger --help {help_s:.2f} s, datanet show {read_s:.2f} s")
    assert help_s < 3 and read_s < 3

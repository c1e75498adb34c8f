"""`ailedger testnet init` and `testnet up`: one genesis, a key and a config per node;
`up` starts every node as its own process, prints each RPC URL and peer id, and Ctrl-C
stops them all."""

import json
import os
import signal
import subprocess
import time

import pytest

from genesis import load_genesis
from tests.integration.p2p.netsupport import init_testnet, wait_for
from tests.support.procs import VENV_BIN, rpc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_init_writes_one_genesis_and_a_config_per_node(tmp_path):
    directory = init_testnet(tmp_path, 3)
    genesis = load_genesis(directory / "genesis.json")
    assert len(genesis.validators) == 1
    configs = [json.loads((directory / f"node{i}" / "config.json").read_text()) for i in range(3)]
    assert configs[0]["validatorKey"] and not configs[1]["validatorKey"] and not configs[2]["validatorKey"]
    assert len({c["peerId"] for c in configs}) == 3 and len({c["rpcPort"] for c in configs}) == 3
    assert configs[2]["peers"] == [f"/ip4/127.0.0.1/tcp/{c['p2pPort']}/p2p/{c['peerId']}" for c in configs[:2]]
    assert (directory / "node0" / "validator.key").stat().st_mode & 0o077 == 0
    again = subprocess.run([str(VENV_BIN / "ailedger"), "testnet", "init", "--dir", str(directory)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "not empty" in again.stderr


def _start_up(directory, log):
    """`ailedger testnet up` in a session of its own (the test may kill the whole group)."""
    with open(log, "wb") as out:
        return subprocess.Popen([str(VENV_BIN / "ailedger"), "testnet", "up", "--dir", str(directory)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)


def _wait_answering(configs):
    urls = [f"http://127.0.0.1:{c['rpcPort']}" for c in configs]
    for url in urls:
        wait_for(lambda url=url: "result" in rpc(url, "eth_blockNumber", timeout=2), 90, f"{url} answering")
    return urls


def test_up_starts_all_and_ctrl_c_stops_all(tmp_path):
    directory = init_testnet(tmp_path, 3, block_time=0.5)
    configs = [json.loads((directory / f"node{i}" / "config.json").read_text()) for i in range(3)]
    log = tmp_path / "up.log"
    up = _start_up(directory, log)
    try:
        urls = _wait_answering(configs)
        text = log.read_text()
        for c, url in zip(configs, urls, strict=True):
            assert url in text and c["peerId"] in text
        wait_for(lambda: all(int(rpc(u, "eth_blockNumber")["result"], 16) >= 2 for u in urls), 60, "all nodes moving")
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        time.sleep(0.5)
        for url in urls:
            with pytest.raises(OSError):
                rpc(url, "eth_blockNumber", timeout=2)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_up_stopped_or_killed_leaves_no_node_behind(tmp_path, sig):
    directory = init_testnet(tmp_path, 2, block_time=0.5)
    configs = [json.loads((directory / f"node{i}" / "config.json").read_text()) for i in range(2)]
    up = _start_up(directory, tmp_path / "up.log")
    try:
        urls = _wait_answering(configs)
        up.send_signal(sig)  # the launcher only, never its process group
        up.wait(timeout=60)

        def all_down() -> bool:
            for url in urls:
                try:
                    rpc(url, "eth_blockNumber", timeout=2)
                    return False
                except OSError:
                    pass
            return True

        wait_for(all_down, 30, "every node stopped with its launcher")
    finally:
        if up.poll() is None:
            up.kill()
        try:
            os.killpg(up.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

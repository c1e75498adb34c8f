"""Issue 19's network attacks, made by attacker-run libp2p peers with throwaway keys against real
node processes, each bounded to seconds: the attack fails, the attacker is refused or banned, and
the node goes on serving.

- memory through the muxer: yamux DATA pushed past the receive window;
- sync freeze: three peers claiming head 10^12 that never answer;
- CPU through stale consensus frames: keyless peers (and a validator's key) on the consensus stream;
- unpayable transactions by gossip: 800-transaction batches from an unfunded key, 50 a second.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.p2p.netsupport import (
    head,
    init_testnet,
    node_config,
    result,
    start_node,
    wait_for,
)
from tests.support.procs import REPO, Proc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ATTACKERS = Path(__file__).with_name("attackers.py")


class Attack:
    """An attackers.py process aimed at one node."""

    def __init__(self, tmp: Path, mode: str, target: Proc, multiaddr: str, *extra: str) -> None:
        self.log = tmp / f"attack-{mode}-{time.monotonic_ns()}.log"
        keydir = tmp / f"attacker-keys-{time.monotonic_ns()}"
        keydir.mkdir()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ATTACKERS), mode, multiaddr, target.url, str(keydir), *extra],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            )
        self.mode = mode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, timeout: float = 90) -> None:
        wait_for(lambda: f"ATTACK {self.mode} started" in self.output() or self.proc.poll() is not None, timeout,
                 "attack started")
        assert self.proc.poll() is None, self.output()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def multiaddr_of(directory: Path, i: int) -> str:
    config = node_config(directory, i)
    return f"/ip4/127.0.0.1/tcp/{config['p2pPort']}/p2p/{config['peerId']}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_data_past_the_receive_window_closes_the_connection_and_bans(tmp_path):
    directory = init_testnet(tmp_path, 1, block_time=0.5)
    validator = start_node(directory, 0, tmp_path)
    attack = None
    try:
        wait_for(lambda: head(validator.url) >= 2, 60, "blocks")
        before = rss_mib(validator.proc.pid)
        attack = Attack(tmp_path, "window", validator, multiaddr_of(directory, 0))
        attack.wait_started()
        # Unguarded, the node buffered ~100 MiB a second; guarded, the first frame past the window
        # closes the connection and bans the peer.
        wait_for(lambda: "past its window" in validator.output() and "banning peer" in validator.output(), 30,
                 "the flood refused")
        wait_for(lambda: "stopped after" in attack.output(), 30, "the attacker cut off")
        sent = int(attack.output().split("stopped after ")[1].split()[0])
        # One window (256 KiB) was owed; what else left the attacker sat in socket buffers when the
        # connection closed (unguarded, 7 s of this attack grew the node by 770 MiB).
        assert sent <= 32 * 1024 * 1024, attack.output()[-2000:]
        time.sleep(3)
        assert rss_mib(validator.proc.pid) - before < 64
        produced = head(validator.url)
        wait_for(lambda: head(validator.url) >= produced + 3, 30, "blocks go on")
    finally:
        if attack is not None:
            attack.stop()
        validator.kill()


def metric(port: int, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def rpc_latencies(url: str, seconds: float) -> list[float]:
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        head(url)
        out.append(time.monotonic() - started)
        time.sleep(0.05)
    return sorted(out)


def test_unpayable_transactions_by_gossip_are_verified_once_and_the_sender_graylisted_then_banned(tmp_path):
    from tests.support.procs import free_port

    directory = init_testnet(tmp_path, 1, block_time=0.5)
    port = free_port()
    validator = start_node(directory, 0, tmp_path, "--metrics-port", str(port))
    attack = None
    try:
        wait_for(lambda: head(validator.url) >= 2, 60, "blocks")
        attack = Attack(tmp_path, "unpayable", validator, multiaddr_of(directory, 0), "--rate", "50")
        attack.wait_started()
        started = time.monotonic()
        wait_for(lambda: "graylisting peer" in validator.output(), 30, "the flooder graylisted")
        graylisted_after = time.monotonic() - started
        during = rpc_latencies(validator.url, 6)
        wait_for(lambda: "kept sending gossip while graylisted" in validator.output(), 60, "the flooder banned")
        # Unguarded, 31 s of this attack verified 20,000-35,000 transactions on the chain thread; each
        # distinct one is verified once now (800 of them), the copies cost a hash.
        verified = metric(port, "ailedger_gossip_transactions_verified")
        assert verified <= 800, verified
        assert graylisted_after < 15, graylisted_after
        assert during[int(len(during) * 0.99) - 1] < 0.5, during[-5:]
        produced = head(validator.url)
        wait_for(lambda: head(validator.url) >= produced + 3, 30, "blocks go on")
    finally:
        if attack is not None:
            attack.stop()
        validator.kill()


def bft_pair(tmp_path: Path):
    from tests.integration.consensus.bftnet import init_net

    net = init_net(tmp_path, validators=2)
    net.start()
    net.wait_heads(2, timeout=120)
    return net


def node_multiaddr(net, i: int) -> str:
    config = net.config(i)
    return f"/ip4/127.0.0.1/tcp/{config['p2pPort']}/p2p/{config['peerId']}"


def test_keyless_peers_on_the_consensus_stream_are_refused_before_any_decode_and_banned(tmp_path):
    net = bft_pair(tmp_path)
    attack = None
    try:
        target = net.procs[0]
        attack = Attack(tmp_path, "stale-commits", target, node_multiaddr(net, 0), "--peers", "4")
        attack.wait_started()
        # Unguarded, each 0.9 MB stale commit cost ~0.36 CPU-s to decode and the block rate fell
        # from 0.95 to 0.31 a second; now no hello, no stream.
        wait_for(lambda: net.logs(0).count("banning peer") >= 4, 60, "the four attackers banned")
        logs = net.logs(0)
        assert "bad consensus hello" in logs
        assert "could not be handled" not in logs
        h = max(net.heads([0, 1]))
        net.wait_heads(h + 3, [0, 1], timeout=60)
    finally:
        if attack is not None:
            attack.stop()
        net.stop_all()


def test_a_validator_key_flooding_stale_and_next_height_commits_is_scored_and_banned(tmp_path):
    net = bft_pair(tmp_path)
    attacks = []
    try:
        target = net.procs[0]
        key = str(net.directory / "node1" / "validator.key")
        for extra in ([], ["--next-height"]):
            attack = Attack(tmp_path, "stale-commits", target, node_multiaddr(net, 0), "--validator-key", key, *extra)
            attacks.append(attack)
            attack.wait_started()
        wait_for(lambda: net.logs(0).count("banning peer") >= 2, 60, "both floods banned")
        logs = net.logs(0)
        assert "a commit of past height 1" in logs and "a commit of later height" in logs
        h = max(net.heads([0, 1]))
        net.wait_heads(h + 3, [0, 1], timeout=60)  # the real holder of the key was never banned
        assert f"banning peer {net.peer_id(1)}" not in net.logs(0)
    finally:
        for attack in attacks:
            attack.stop()
        net.stop_all()


def test_peers_claiming_a_head_they_do_not_serve_freeze_nobody_and_are_banned(tmp_path):
    directory = init_testnet(tmp_path, 2, block_time=0.5)
    validator = start_node(directory, 0, tmp_path)
    follower = start_node(directory, 1, tmp_path)
    attack = None
    try:
        wait_for(lambda: head(follower.url) >= 3, 60, "the follower following")
        attack = Attack(tmp_path, "claim-head", follower, multiaddr_of(directory, 1), "--peers", "3")
        attack.wait_started()
        # Unguarded, the follower stayed at its height for 60-90 s while the validator made 60-90
        # blocks, eth_syncing showing highestBlock 10^12.
        lags, highest = [], []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lags.append(head(validator.url) - head(follower.url))
            status = result(follower.url, "eth_syncing")
            if status:
                highest.append(int(status["highestBlock"], 16))
            time.sleep(0.5)
        assert max(lags) <= 4, lags
        assert all(h < 10**6 for h in highest), highest
        wait_for(lambda: follower.output().count("banning peer") >= 3, 60, "the three liars banned")
        assert "withholds block" in follower.output()
        target = head(validator.url)
        wait_for(lambda: head(follower.url) >= target, 30, "the follower at the head")
    finally:
        if attack is not None:
            attack.stop()
        follower.kill()
        validator.kill()

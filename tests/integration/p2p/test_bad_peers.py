"""One bad peer never stalls sync: a follower whose peers include malicious ones (a block
with a wrong state root under a validly re-signed commit, a corrupted or duplicated commit
signature, another height's block, garbage frames) bans each of them and completes its sync
from the honest validator, with the same hashes and state roots."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.p2p.netsupport import (
    block_roots,
    build_chain,
    head,
    init_testnet,
    node_config,
    start_node,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
MODES = ["state-root", "bad-sig", "dup-sig", "wrong-block", "garbage"]
EVIL = Path(__file__).with_name("evil_peers.py")


def test_bad_peers_are_banned_and_sync_completes(tmp_path):
    directory = init_testnet(tmp_path, 2, block_time=0.5)
    built = build_chain(directory, 12, 1)
    shutil.copytree(directory / "node0" / "chain", tmp_path / "evilchain")
    log = tmp_path / "evil.log"
    with open(log, "wb") as out:
        evil = subprocess.Popen(
            [sys.executable, str(EVIL), str(tmp_path / "evilchain"), str(directory / "genesis.json"),
             str(directory / "node0" / "validator.key"), str(tmp_path), *MODES],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[3],
            env={"PYTHONPATH": str(Path(__file__).resolve().parents[3]), "PATH": "/usr/bin:/bin"},
        )
    validator = follower = None
    try:
        lines = wait_for(lambda: [x for x in log.read_text().splitlines() if x.startswith("EVIL ")]
                         if len([x for x in log.read_text().splitlines() if x.startswith("EVIL ")]) == len(MODES) else None,
                         60, f"evil peers listening: {log.read_text()[-2000:]}")
        evil_addrs = {line.split()[1]: line.split()[2] for line in lines}
        honest = node_config(directory, 1)["peers"][0]
        # The follower meets the bad peers first: the honest validator is not up yet.
        follower = start_node(directory, 1, tmp_path, "--peers", ",".join([*evil_addrs.values(), honest]))

        def all_banned():
            output = follower.output()
            return all(f"banning peer {addr.rsplit('/', 1)[1]}" in output for addr in evil_addrs.values())

        try:
            wait_for(all_banned, 90, "every bad peer banned")
        except TimeoutError:
            raise AssertionError(follower.output()[-6000:]) from None
        assert 0 < head(follower.url) < built  # it took the good blocks before each fault
        config = node_config(directory, 1)
        me = f"/ip4/127.0.0.1/tcp/{config['p2pPort']}/p2p/{config['peerId']}"
        validator = start_node(directory, 0, tmp_path, "--peers", me)
        wait_for(lambda: head(follower.url) >= built, 120, "follower synced from the honest peer")
        target = head(follower.url)
        assert block_roots(follower.url, target) == block_roots(validator.url, target)
        output = follower.output()
        for reason in ("does not verify", "bad signature of", "signs twice",
                       "where block 3 was asked for", "undecodable block"):
            assert reason in output, reason
        time.sleep(0.5)
        assert follower.proc.poll() is None
    finally:
        evil.kill()
        evil.wait()
        for node in (validator, follower):
            if node is not None:
                node.kill()

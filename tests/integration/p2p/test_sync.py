"""A late joiner: a follower started on an empty datadir, with only the genesis file and a
peer, syncs hundreds of blocks from the validator (re-executing each one and checking
its commit), reports progress through eth_syncing, survives kill -9 mid-sync and
mid-follow, and then follows the head.

SYNC_BLOCKS sets the chain's length (default 200 blocks of 3 transfers); SYNC_TXS the
transfers per block."""

import os
import signal
import time

import pytest

from tests.integration.p2p.netsupport import (
    block_roots,
    build_chain,
    head,
    init_testnet,
    result,
    start_node,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
BLOCKS = int(os.environ.get("SYNC_BLOCKS", "200"))
TXS = int(os.environ.get("SYNC_TXS", "3"))


def test_late_joiner_syncs_survives_kill_and_follows(tmp_path):
    directory = init_testnet(tmp_path, 2, block_time=0.5)
    built = build_chain(directory, BLOCKS, TXS)
    validator = start_node(directory, 0, tmp_path)
    follower = None
    try:
        assert head(validator.url) >= built
        started = time.monotonic()
        follower = start_node(directory, 1, tmp_path)

        def mid_sync():
            status = result(follower.url, "eth_syncing")
            return status if status and int(status["currentBlock"], 16) >= 20 else None

        status = wait_for(mid_sync, 120, "follower syncing", interval=0.05)
        assert int(status["startingBlock"], 16) == 0
        assert int(status["highestBlock"], 16) >= built
        before_kill = head(follower.url)
        assert 20 <= before_kill < built, "sync finished before the kill: raise SYNC_BLOCKS"
        follower.kill(signal.SIGKILL)

        follower = start_node(directory, 1, tmp_path)
        assert head(follower.url) >= before_kill  # committed blocks survived kill -9
        wait_for(lambda: head(follower.url) >= built, 240, f"follower at block {built}")
        elapsed = time.monotonic() - started
        print(f"synced {built} blocks ({TXS} transfers each) in {elapsed:.1f}s including one kill -9 and restart")
        assert "blk" in follower.output()  # the progress
        assert "\r" not in follower.output()  # a log gets clean lines, not a terminal's bar (issue 21)

        # it follows the head from gossip, then survives kill -9 mid-follow too
        target = head(validator.url) + 3
        wait_for(lambda: head(follower.url) >= target, 60, "follower following the head")
        assert result(follower.url, "eth_syncing") is False
        follower.kill(signal.SIGKILL)
        time.sleep(1.5)  # the validator moves on meanwhile
        follower = start_node(directory, 1, tmp_path)
        target = head(validator.url)
        wait_for(lambda: head(follower.url) >= target, 60, "restarted follower caught up")
        assert block_roots(follower.url, target) == block_roots(validator.url, target)
    finally:
        validator.kill()
        if follower is not None:
            follower.kill()

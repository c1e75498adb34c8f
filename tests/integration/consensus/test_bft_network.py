"""Several validators run one chain with BFT consensus, each a real `ailedger run` process on
loopback (docs/consensus.md §10): they finalize blocks and agree on every block and state root;
a transfer sent to one is final on all; the chain survives one validator down, halts without a
fork with two down and resumes when they return; a paused validator catches up; and a validator
killed at random moments many times never signs two different votes for one step."""

from __future__ import annotations

import random
import signal
import time

import pytest
from eth_utils import keccak, to_checksum_address

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from genesis.testnet import VALIDATOR_STAKE
from tests.integration.consensus.bftnet import Net, init_net
from tests.integration.p2p.netsupport import result, transfer, wait_for

STAKING = to_checksum_address(BY_NAME["Staking"])

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bft-network"), pytest.mark.timeout(240)]


@pytest.fixture
def net(tmp_path):
    network = init_net(tmp_path, validators=4)
    try:
        yield network
    finally:
        network.stop_all()


def _assert_no_double_sign(net: Net) -> None:
    votes = net.votes()
    assert len(votes) > 20, "the vote trace recorded almost nothing"
    assert net.double_signs() == {}


def test_four_validators_finalize_the_same_chain_and_a_transfer_is_final_on_all(net):
    net.start()
    net.wait_heads(3, timeout=90)
    recipient = "0x000000000000000000000000000000000000bEEF"
    raw = transfer(net.chain_id, 0, 0, recipient, value=12345)
    tx_hash = result(net.url(2), "eth_sendRawTransaction", ["0x" + raw.hex()])

    def receipts():
        found = [result(net.url(i), "eth_getTransactionReceipt", [tx_hash]) for i in range(4)]
        return found if all(found) else None

    found = wait_for(receipts, 60, "the transfer's receipt on all four nodes")
    assert len({r["blockHash"] for r in found}) == 1 and found[0]["status"] == "0x1"
    for i in range(4):
        assert int(result(net.url(i), "eth_getBalance", [recipient, "latest"]), 16) == 12345
    net.wait_heads(int(found[0]["blockNumber"], 16) + 2)
    upto = net.assert_agree()
    assert upto >= 4
    # Every block carries the hash of the set that signed it (docs/consensus.md §5).
    extras = {result(net.url(0), "eth_getBlockByNumber", [hex(n), False])["extraData"] for n in range(1, upto + 1)}
    assert len(extras) == 1 and len(extras.pop()) == 66
    _assert_no_double_sign(net)


def test_one_down_goes_on_two_down_halts_without_fork_and_resumes(net):
    net.start()
    net.wait_heads(2, timeout=90)
    net.kill(3)
    h = max(net.heads([0, 1, 2]))
    net.wait_heads(h + 3, [0, 1, 2], timeout=60)  # 3 of 4 hold more than 2/3
    net.kill(2)
    time.sleep(3)  # what was in flight lands
    halted = net.heads([0, 1])
    time.sleep(8)  # several rounds with timeouts: nothing may be decided by 2 of 4
    assert net.heads([0, 1]) == halted, "two of four validators decided a block"
    net.assert_agree([0, 1])
    net.start(2, 3)
    net.wait_heads(max(halted) + 3, timeout=90)
    net.assert_agree()
    _assert_no_double_sign(net)


def test_a_validator_paused_longer_than_a_round_catches_up(net):
    net.start()
    net.wait_heads(2, timeout=90)
    net.kill(1, signal.SIGSTOP)
    paused_at = max(net.heads([0, 2, 3]))
    try:
        time.sleep(8)  # rounds go on without it
        net.wait_heads(paused_at + 3, [0, 2, 3], timeout=60)
    finally:
        net.kill(1, signal.SIGCONT)
    target = max(net.heads([0, 2, 3]))
    net.wait_heads(target + 1, timeout=60)  # node1 back at the head, and the chain goes on
    net.assert_agree()
    _assert_no_double_sign(net)


def test_validators_killed_at_random_moments_never_double_sign(net):
    rng = random.Random(11)
    net.start()
    net.wait_heads(2, timeout=90)
    for _ in range(6):
        victim = rng.randrange(4)
        time.sleep(rng.uniform(0.2, 2.5))  # anywhere in a round: proposing, voting, committing
        net.kill(victim)
        net.start(victim)  # restarts from its database and WAL at once
    h = max(net.heads())
    net.wait_heads(h + 2, timeout=90)
    net.assert_agree()
    _assert_no_double_sign(net)


def test_a_double_signing_validator_is_caught_and_causes_no_fork(net):
    net.extra[3] = ["--byzantine", "double-sign"]
    net.start()
    net.wait_heads(6, [0, 1, 2], timeout=90)
    evil = net.address(3)
    doubles = wait_for(net.double_signs, 30, "double votes on the wire")
    assert {k[0] for k in doubles} == {evil}, "only the byzantine validator may have signed two ways"
    # Each honest validator sees one of the two votes directly; the other reaches it only if a
    # peer re-gossips it before the height is decided (the evidence pool is not gossiped yet), so
    # at least one finds it, not necessarily all.
    wait_for(lambda: any(f"EvidenceFound: validator 0x{evil}" in net.logs(i) for i in range(3)), 60,
             "evidence found by an honest validator")
    for i in range(3):
        assert "EvidenceFound: validator 0x" not in net.logs(i).replace(f"EvidenceFound: validator 0x{evil}", "")
    # The finder puts a submitEvidence transaction in its pool; a proposer includes it and the
    # staking precompile slashes and jails the double signer, on every node alike.
    slashed_topic = "0x" + keccak(text="Slashed(address,uint256,uint256)").hex()

    def slashes(i: int) -> list:
        return list(result(net.url(i), "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest",
                                                         "address": STAKING, "topics": [slashed_topic]}]))

    logs = wait_for(lambda: slashes(0), 90, "a Slashed log on chain")
    assert len(logs) == 1 and logs[0]["topics"][1][-40:] == evil, logs
    amount = int(logs[0]["data"][-64:], 16)
    assert amount == VALIDATOR_STAKE * 500 // 10_000  # staking.slash_fraction_bp's default: 5 %
    net.wait_heads(int(logs[0]["blockNumber"], 16) + 1, [0, 1, 2], timeout=60)
    for i in range(3):
        assert slashes(i) == logs
        stake = _call(net.url(i), "stakeOf", evil)
        assert stake == VALIDATOR_STAKE - amount
        assert _call(net.url(i), "jailedUntil", evil) > 0
    net.assert_agree([0, 1, 2])


def _call(url: str, function: str, address: str) -> int:
    fn = ai_precompiles.load_abi("Staking").by_name[function]
    data = "0x" + bytes(fn.encode_args("0x" + address)).hex()
    out = result(url, "eth_call", [{"to": STAKING, "data": data}, "latest"])
    return int(str(out), 16)


def test_byzantine_mode_is_refused_outside_tests(tmp_path):
    import os
    import subprocess

    from tests.support.procs import VENV_BIN

    net = init_net(tmp_path, validators=2)
    env = {k: v for k, v in os.environ.items() if k != "AILEDGER_ALLOW_BYZANTINE"}
    out = subprocess.run([str(VENV_BIN / "ailedger"), "run", "--config", str(net.directory / "node0" / "config.json"),
                          "--byzantine", "double-sign"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1 and "test-only" in out.stderr


def test_testnet_up_runs_every_validator(tmp_path):
    import json
    import os
    import subprocess

    from tests.support.procs import VENV_BIN, rpc

    net = init_net(tmp_path, validators=4)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen([str(VENV_BIN / "ailedger"), "testnet", "up", "--dir", str(net.directory)],
                              stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              start_new_session=True)
    try:
        urls = [net.url(i) for i in range(4)]
        wait_for(lambda: all(int(rpc(u, "eth_blockNumber", timeout=2)["result"], 16) >= 3 for u in urls), 120,
                 "all four validators deciding blocks")
        assert log.read_text().count("validator") >= 4
        # Blocks are proposed in turn: more than one validator's coinbase appears.
        miners = {json.dumps(result(urls[0], "eth_getBlockByNumber", [hex(n), False])["miner"]) for n in range(1, 4)}
        assert len(miners) >= 2
        net.assert_agree()
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def test_a_validator_sending_garbage_is_scored_and_banned_and_nobody_crashes(net):
    net.extra[3] = ["--byzantine", "garbage"]
    net.start()
    net.wait_heads(3, [0, 1, 2], timeout=90)
    wait_for(lambda: all("banning peer" in net.logs(i) and "misbehaved" in net.logs(i) for i in range(3)), 90,
             "every honest validator banning the garbage sender")
    h = max(net.heads([0, 1, 2]))
    net.wait_heads(h + 2, [0, 1, 2], timeout=60)  # three of four go on without it
    assert all(net.procs[i].proc.poll() is None for i in range(4)), "a node crashed"
    net.assert_agree([0, 1, 2])


def test_block_timestamps_never_run_ahead_of_the_clock_with_fast_blocks(tmp_path):
    """The block time rule (docs/consensus.md, a bound): with 0.2 s blocks a timestamp is never more
    than a second ahead of the proposer's clock (unbounded, they ran 60 s ahead after 77 blocks);
    blocks then come at about one a second."""
    net = init_net(tmp_path, validators=2, consensus={"timeoutCommit": 0.2})
    try:
        net.start()
        net.wait_heads(2, [0, 1], timeout=120)
        leads = []
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            block = result(net.url(0), "eth_getBlockByNumber", ["latest", False])
            leads.append(int(block["timestamp"], 16) - time.time())
            time.sleep(0.3)
        assert max(leads) <= 1.5, max(leads)
        assert max(net.heads([0, 1])) >= 12  # still about a block a second
    finally:
        net.stop_all()

"""BFT consensus under network faults and byzantine proposers, real `ailedger run` processes on
loopback (docs/consensus.md §10): a 2–2 partition halts without a fork and healing resumes;
clients sending transfers to every node through kills, pauses, partitions and delays never lose
a confirmed transfer nor see one twice (a checker in the style of Jepsen); a proposer of invalid
blocks, or of two different blocks for one round, stalls no one and forks nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from eth_utils import keccak, to_checksum_address

import ai_precompiles
from ai_precompiles.addresses import BY_NAME
from genesis.testnet import VALIDATOR_STAKE
from tests.integration.consensus.bftnet import Net, init_net
from tests.integration.p2p.netsupport import ACCOUNTS, result, transfer, wait_for
from tests.support.procs import VENV_BIN, rpc

STAKING = to_checksum_address(BY_NAME["Staking"])

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bft-network")]


@pytest.fixture
def net(tmp_path):
    network = init_net(tmp_path, validators=4)
    network.extra = {i: ["--faults"] for i in range(4)}
    try:
        yield network
    finally:
        network.stop_all()


def _settled_heads(net: Net, nodes: list[int], quiet: float = 3.0, tries: int = 10) -> list[int]:
    """The heads once nothing in flight lands any more (unchanged for ``quiet`` seconds; after
    ``tries`` the last heads, for the caller's assertion to refuse)."""
    before = net.heads(nodes)
    for _ in range(tries):
        time.sleep(quiet)
        now = net.heads(nodes)
        if now == before:
            break
        before = now
    return before


def _assert_single_commit_per_height(net: Net) -> None:
    commits = net.commits()
    assert commits, "no node traced a commit"
    forks = {h: hashes for h, hashes in commits.items() if len(hashes) > 1}
    assert forks == {}, f"heights committed two ways: {forks}"


@pytest.mark.timeout(240)
def test_a_partition_of_two_and_two_halts_safely_and_healing_resumes(net):
    net.start()
    net.wait_heads(2, timeout=90)
    net.partition([0, 1], [2, 3])
    wait_for(lambda: all("faults now drop" in net.logs(i) for i in range(4)), 30, "every node taking the partition")
    halted = _settled_heads(net, [0, 1, 2, 3])
    time.sleep(8)  # several rounds with growing timeouts: neither side holds more than 2/3
    assert net.heads() == halted, "a side of two validators decided a block"
    for i in range(4):
        assert "faults now drop" in net.logs(i)
    net.assert_agree()  # up to the lowest head: the frozen chains are prefixes of one chain
    net.heal()
    net.wait_heads(max(halted) + 3, timeout=90)
    net.assert_agree()
    _assert_single_commit_per_height(net)
    assert net.double_signs() == {}
    assert all(p.proc.poll() is None for p in net.procs.values()), "a node crashed"


@pytest.mark.timeout(240)
def test_a_validator_cut_off_from_consensus_follows_by_block_sync_and_votes_again_when_healed(net):
    net.start()
    net.wait_heads(2, timeout=90)
    net.partition([0], [1, 2, 3])
    wait_for(lambda: all("faults now drop" in net.logs(i) for i in range(4)), 30, "every node taking the cut")
    cut = max(net.heads()) + 1  # votes for heights above this were signed after the cut
    net.wait_heads(cut + 3, [1, 2, 3], timeout=90)  # three of four hold more than 2/3
    net.wait_heads(cut + 3, [0], timeout=60)  # blocks with their commits still reach node0
    node0 = net.address(0)
    # node0 votes at a height it proposes (the others time out on it, so node0 is still there) or
    # where no synced block comes within its propose timeout; with blocks about a second apart
    # that is its turn as proposer, which comes round within a few heights
    wait_for(lambda: any(v == node0 and h > cut for v, h, _, _, _ in net.votes([0])), 60,
             "node0 voting while cut off")
    during = max(net.heads())
    heard = {h for v, h, _, _, _ in net.votes([1, 2, 3]) if v == node0}
    assert not heard & set(range(cut + 1, during + 1)), "a vote crossed the cut"
    net.heal()
    wait_for(lambda: any(v == node0 and h > during for v, h, _, _, _ in net.votes([1, 2, 3])), 60,
             "node0's votes reaching the others again")
    net.wait_heads(during + 2, timeout=60)
    net.assert_agree()
    _assert_single_commit_per_height(net)
    assert net.double_signs() == {}


def test_fault_injection_is_refused_outside_tests(tmp_path):
    net = init_net(tmp_path, validators=2)
    env = {k: v for k, v in os.environ.items() if k != "AILEDGER_ALLOW_FAULTS"}
    out = subprocess.run([str(VENV_BIN / "ailedger"), "run", "--config", str(net.directory / "node0" / "config.json"),
                          "--faults"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1 and "test-only" in out.stderr and "AILEDGER_ALLOW_FAULTS" in out.stderr


class _Client(threading.Thread):
    """One sender: sends its transfers in nonce order to the nodes in turn; a transfer whose
    receipt does not come from the node it was sent to is sent again (same bytes, same hash) to
    the next node. Records each receipt it saw."""

    def __init__(self, net: Net, sender: int, first_node: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.net, self.sender, self.node, self.stop = net, sender, first_node, stop
        self.urls = [net.url(i) for i in range(net.n)]
        self.chain_id = net.chain_id
        self.sent: list[str] = []
        self.confirmed: dict[str, dict] = {}

    def run(self) -> None:
        nonce = 0
        while not self.stop.is_set():
            raw = transfer(self.chain_id, self.sender, nonce, "0x000000000000000000000000000000000000dEaD", value=7)
            tx_hash = "0x" + keccak(raw).hex()
            self.sent.append(tx_hash)
            while not self.stop.is_set():
                receipt = self._try(raw, tx_hash, self.urls[self.node % len(self.urls)])
                self.node += 1
                if receipt is not None:
                    self.confirmed[tx_hash] = receipt
                    nonce += 1
                    break

    def _try(self, raw: bytes, tx_hash: str, url: str) -> dict | None:
        try:
            rpc(url, "eth_sendRawTransaction", ["0x" + raw.hex()], timeout=2)  # "already known" is fine
        except OSError:
            return None  # down or paused: the next node
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash], timeout=2).get("result")
            except OSError:
                return None
            if receipt:
                return dict(receipt)
            time.sleep(0.2)
        return None


@pytest.mark.timeout(300)
def test_transfers_sent_to_every_node_through_faults_are_final_exactly_once(net):
    net.start()
    net.wait_heads(2, timeout=90)
    stop = threading.Event()
    clients = [_Client(net, sender, sender % 4, stop) for sender in range(1, 9)]
    for c in clients:
        c.start()
    started = time.monotonic()
    try:
        time.sleep(3)
        net.kill(3)  # one validator down: the others go on
        time.sleep(3)
        net.start(3)
        net.kill(1, signal.SIGSTOP)  # a paused validator: longer than a round
        try:
            time.sleep(5)
        finally:
            net.kill(1, signal.SIGCONT)
        net.partition([0, 1], [2, 3])  # no side decides
        time.sleep(5)
        net.heal()
        net.set_faults(2, delay={0: 0.4, 1: 0.4, 3: 0.4})  # slow links from one validator
        wait_for(lambda: "delay {" in net.logs(2), 30, "node2 taking the delays")
        time.sleep(4)
        net.set_faults(2)
        time.sleep(3)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
    faults_took = time.monotonic() - started
    assert not any(c.is_alive() for c in clients)
    confirmed = {h: r for c in clients for h, r in c.confirmed.items()}
    sent = {h for c in clients for h in c.sent}
    assert len(confirmed) >= 8, f"only {len(confirmed)} transfers confirmed in {faults_took:.0f}s"
    net.wait_heads(max(net.heads()) + 2, timeout=90)  # anything still pooled has had its chance
    upto = net.assert_agree()  # same block hash and state root at every height on every node
    chains = {}
    for i in range(4):
        txs = []
        for number in range(upto + 1):
            block = result(net.url(i), "eth_getBlockByNumber", [hex(number), True])
            assert isinstance(block, dict)
            txs += [(tx["hash"], number, block["hash"], int(tx["from"], 16), int(tx["nonce"], 16))
                    for tx in block["transactions"]]
        chains[i] = txs
    assert all(chains[i] == chains[0] for i in range(4)), "nodes hold different transactions"
    hashes = [t[0] for t in chains[0]]
    assert len(hashes) == len(set(hashes)), "a transaction is in the chain twice"
    where = {t[0]: (t[1], t[2]) for t in chains[0]}
    for tx_hash, receipt in confirmed.items():
        assert tx_hash in where, f"confirmed transfer {tx_hash} is not in the chain"
        assert where[tx_hash] == (int(receipt["blockNumber"], 16), receipt["blockHash"]), tx_hash
    # Each sender's transfers in the chain: only ones it sent, nonces 0..n-1 once each.
    for c in clients:
        sender = int(ACCOUNTS[c.sender].address, 16)
        nonces = sorted(t[4] for t in chains[0] if t[3] == sender)
        assert nonces == list(range(len(nonces))) and len(nonces) >= len(c.confirmed)
    senders = {int(ACCOUNTS[c.sender].address, 16) for c in clients}
    assert all(t[0] in sent for t in chains[0] if t[3] in senders), "a transfer nobody sent"
    _assert_single_commit_per_height(net)
    assert net.double_signs() == {}
    print(f"jepsen: {len(sent)} transfers sent, {len(confirmed)} confirmed, chain at {upto}, faults {faults_took:.0f}s")


@pytest.mark.timeout(240)
def test_a_proposer_of_invalid_blocks_stalls_nobody_and_is_not_slashed(net):
    net.extra[3] = ["--byzantine", "invalid-proposal"]
    net.start()
    evil = net.address(3)
    wait_for(lambda: "byzantine: proposing block" in net.logs(3), 90, "the byzantine proposer's turn")
    wait_for(lambda: any("is invalid" in net.logs(i) for i in range(3)), 60, "an honest validator refusing it")
    h = max(net.heads([0, 1, 2]))
    net.wait_heads(h + 5, timeout=90)  # its turns come and go: the chain goes on (all four vote)
    upto = net.assert_agree()
    miners = {result(net.url(0), "eth_getBlockByNumber", [hex(n), False])["miner"].lower()[2:]
              for n in range(1, upto + 1)}
    assert evil not in miners, "a block with a wrong state root was committed"
    _assert_honest_proposers_only_and_not_slashed(net, evil)


@pytest.mark.timeout(240)
def test_a_proposer_equivocating_causes_no_fork_and_is_not_slashed(net):
    net.extra[3] = ["--byzantine", "equivocate"]
    net.start()
    evil = net.address(3)

    def equivocations():
        return {k: v for k, v in net.proposals([0, 1, 2]).items() if len(v) > 1}

    seen = wait_for(equivocations, 90, "two proposals for one round reaching the honest validators")
    assert {k[0] for k in seen} == {evil}, "only the byzantine proposer may propose two blocks"
    h = max(net.heads())
    net.wait_heads(h + 5, timeout=90)
    net.assert_agree()
    _assert_honest_proposers_only_and_not_slashed(net, evil)


def _assert_honest_proposers_only_and_not_slashed(net: Net, evil: str) -> None:
    _assert_single_commit_per_height(net)
    assert net.double_signs() == {}, "proposing badly is not signing two votes"
    assert all(p.proc.poll() is None for p in net.procs.values()), "a node crashed"
    slashed_topic = "0x" + keccak(text="Slashed(address,uint256,uint256)").hex()
    for i in range(4):
        logs = result(net.url(i), "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": STAKING,
                                                    "topics": [slashed_topic]}])
        assert logs == [], "a proposer was slashed (docs/consensus.md §7: proposals are not slashed)"
        fn = ai_precompiles.load_abi("Staking").by_name["stakeOf"]
        data = "0x" + bytes(fn.encode_args("0x" + evil)).hex()
        assert int(str(result(net.url(i), "eth_call", [{"to": STAKING, "data": data}, "latest"])), 16) == VALIDATOR_STAKE

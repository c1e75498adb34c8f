"""Attacks on the transaction pool and on block production, made against a real node as
an outsider would (raw transactions over JSON-RPC), and shown to fail with the node alive
and nothing changed beyond what was really mined.

- One account funded with 0.07 ETH sends transactions that each declare the whole block
  gas limit: once cumulative cost counts, only what its balance covers gets in.
- A rich account fills the pool to geth's global limit: honest senders still get in (within
  their per-sender guarantee, or by outbidding), a cheaper newcomer never churns the pool.
- A transaction whose execution faults inside the node (an injected precompile bug) is
  dropped with a log line, and blocks go on.
"""

import json
import time
import urllib.request

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from genesis import DEV_MNEMONIC, derive_accounts
from node.txpool import PoolConfig
from tests.support.faults import FAULTY
from tests.support.procs import rpc, start_ailedger

pytestmark = [pytest.mark.slow]
CHAIN = 31415
GAS_LIMIT = 30_000_000
BASE_FEE = 10**9
DEV = derive_accounts(DEV_MNEMONIC, 6)


def batch(url, calls, timeout=120.0):
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return sorted(json.loads(resp.read()), key=lambda r: r["id"])


def raw(key, nonce, to=None, gas=21_000, fee=2 * BASE_FEE, tip=10**9, value=1, data=b""):
    tx = dict(type=2, chainId=CHAIN, nonce=nonce, to=to or DEV[5].address, value=value, gas=gas,
              maxFeePerGas=fee, maxPriorityFeePerGas=tip, data=data)
    signed = Account.sign_transaction(tx, key)
    return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()


def send_all(url, raws):
    out = []
    for start in range(0, len(raws), 1000):
        out += batch(url, [("eth_sendRawTransaction", [r]) for r in raws[start : start + 1000]])
    return out


def state_of(url, address):
    nonce = int(rpc(url, "eth_getTransactionCount", [address, "latest"])["result"], 16)
    return nonce, int(rpc(url, "eth_getBalance", [address, "latest"])["result"], 16)


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def receipt(url, tx_hash):
    return rpc(url, "eth_getTransactionReceipt", [tx_hash])["result"]


def scan_blocks(url, sender, first_block=0):
    """Read every block's receipts since ``first_block``: (wei that ``sender``'s mined
    transactions took from it, fee plus value; how many; {tx hash: status} of all mined)."""
    head = int(rpc(url, "eth_blockNumber")["result"], 16)
    total, mined, statuses = 0, 0, {}
    for number in range(first_block, head + 1):
        block = rpc(url, "eth_getBlockByNumber", [hex(number), True], timeout=60)["result"]
        receipts = rpc(url, "eth_getBlockReceipts", [hex(number)], timeout=60)["result"]
        for tx, r in zip(block["transactions"], receipts, strict=True):
            statuses[tx["hash"]] = r["status"]
            if tx["from"].lower() == sender.lower():
                mined += 1
                total += int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) + int(tx["value"], 16)
    return total, mined, statuses


def test_one_small_account_cannot_fill_the_pool(tmp_path):
    # No interval block during the flood (a block mined mid-flood would make the attacker's
    # next transaction affordable again): blocks come from evm_mine only.
    node = start_ailedger(["--block-time", "3600", "--chain-id", str(CHAIN)], tmp_path)
    try:
        attacker = Account.create()
        fund = rpc(node.url, "eth_sendTransaction", [{"from": DEV[0].address, "to": attacker.address, "value": hex(7 * 10**16)}])
        rpc(node.url, "evm_mine")
        wait_for(lambda: receipt(node.url, fund["result"]), what="funding")
        before = state_of(node.url, attacker.address)
        assert before == (0, 7 * 10**16)
        # The flood: each transaction alone is affordable (0.06 ETH) and takes a whole block.
        flood = [raw(attacker.key, n, gas=GAS_LIMIT, value=0) for n in range(300)]
        answers = send_all(node.url, [r for r, _ in flood])
        admitted = [flood[i][1] for i, a in enumerate(answers) if "result" in a]
        refused = [a["error"]["message"] for a in answers if "error" in a]
        assert len(admitted) == 1, answers[:3]
        assert len(refused) == 299
        assert all(m.startswith("insufficient funds for gas * price + value") and "queued cost" in m for m in refused)
        status = rpc(node.url, "txpool_status")["result"]
        assert int(status["pending"], 16) + int(status["queued"], 16) <= 1
        # Honest senders get in and are mined.
        honest = [raw(DEV[i].private_key, n)[0:2] for i in (1, 2, 3) for n in range(3)]
        for r, h in honest:
            assert "result" in rpc(node.url, "eth_sendRawTransaction", [r]), h
        rpc(node.url, "evm_mine")
        for _, h in honest:
            assert wait_for(lambda h=h: receipt(node.url, h), what=f"honest {h}")["status"] == "0x1"
        wait_for(lambda: rpc(node.url, "txpool_status")["result"] == {"pending": "0x0", "queued": "0x0"}, what="empty pool")
        # The attacker lost only what its one admitted transaction really cost when mined.
        spent, mined, _ = scan_blocks(node.url, attacker.address)
        assert mined == 1
        assert state_of(node.url, attacker.address) == (mined, before[1] - spent)
        assert "result" in rpc(node.url, "eth_blockNumber")
    finally:
        node.kill()


def test_a_rich_flooder_cannot_lock_honest_senders_out(tmp_path):
    # geth's per-sender limits; a global limit of 512 slots keeps the flood quick to send
    # (the defaults behave the same, at 5,120).
    limits = PoolConfig(global_slots=512)
    # No interval block during the attack: blocks come from evm_mine only.
    node = start_ailedger(["--block-time", "3600", "--chain-id", str(CHAIN),
                           "--txpool.globalslots", str(limits.global_slots)], tmp_path)
    try:
        flooder = DEV[0]
        before = state_of(node.url, flooder.address)
        full = limits.global_slots
        flood = [raw(flooder.private_key, n) for n in range(full + 1 + limits.account_queue + 5)]
        answers = send_all(node.url, [r for r, _ in flood])
        admitted = [i for i, a in enumerate(answers) if "result" in a]
        # Executable up to the global limit; then the next nonce finds no room, and the
        # nonces after it are future ones, queued up to the per-sender queue limit.
        assert admitted == list(range(full)) + list(range(full + 1, full + 1 + limits.account_queue))
        assert answers[full]["error"]["message"] == "txpool is full"
        assert {a["error"]["message"].split(":")[0] for a in answers[full + 1 + limits.account_queue :]} == {
            "account limit exceeded"
        }
        # An honest sender at the same price gets its guaranteed slots: the flooder's newest go.
        same = [raw(DEV[1].private_key, n) for n in range(limits.account_slots + 1)]
        answers = send_all(node.url, [r for r, _ in same])
        assert all("result" in a for a in answers[: limits.account_slots]), answers[:2]
        assert answers[-1]["error"]["message"] == "transaction underpriced"
        flood_left = full - limits.account_slots
        content = rpc(node.url, "txpool_content")["result"]["pending"]
        assert len(content[flooder.address]) == flood_left
        # Past its guarantee, a sender gets in only by outbidding: the cheapest goes.
        rich_raw, rich_hash = raw(DEV[1].private_key, limits.account_slots, fee=5 * BASE_FEE, tip=3 * 10**9)
        assert rpc(node.url, "eth_sendRawTransaction", [rich_raw])["result"] == rich_hash
        # A sender within its guarantee gets in whatever it pays, at the expense of the flooder.
        cheap_raw, cheap_hash = raw(DEV[2].private_key, 0, tip=10**9 - 1)
        assert rpc(node.url, "eth_sendRawTransaction", [cheap_raw])["result"] == cheap_hash
        status = rpc(node.url, "txpool_status")["result"]
        assert (int(status["pending"], 16), int(status["queued"], 16)) == (full, limits.account_queue)
        flood_left -= 2
        content = rpc(node.url, "txpool_content")["result"]["pending"]
        assert len(content[flooder.address]) == flood_left
        assert sorted(int(n) for n in content[flooder.address]) == list(range(flood_left))
        # Blocks take the best tip first, then arrival: the honest transactions are all mined.
        for _ in range(2):  # 1,428 transfers fit a block
            assert "result" in rpc(node.url, "evm_mine", [], timeout=60)
        spent, mined, statuses = scan_blocks(node.url, flooder.address)
        for h in [h for _, h in same[: limits.account_slots]] + [rich_hash, cheap_hash]:
            assert statuses[h] == "0x1"
        # Only the flooder's gapped future nonces are left, waiting.
        assert rpc(node.url, "txpool_status")["result"] == {"pending": "0x0", "queued": hex(limits.account_queue)}
        # The flooder paid for exactly what was mined, and its nonce moved by that much.
        assert mined == flood_left
        assert state_of(node.url, flooder.address) == (before[0] + mined, before[1] - spent)
    finally:
        node.kill()


def start_faulty_node(tmp_path, *args):
    """A real `ailedger dev` process whose VM carries a faulty precompile at FAULTY."""
    return start_ailedger(["--chain-id", str(CHAIN), *args], tmp_path, module="tests.support.faults")


def fault_tx(key, nonce):
    return raw(key, nonce, to=to_checksum_address(FAULTY), gas=100_000, data=b"boom:runtime", value=0)


def test_a_faulting_transaction_is_dropped_and_interval_blocks_go_on(tmp_path):
    node = start_faulty_node(tmp_path, "--block-time", "1")
    try:
        bad_sender = DEV[1]
        before = state_of(node.url, bad_sender.address)
        bad_raw, bad_hash = fault_tx(bad_sender.private_key, 0)
        good_raw, good_hash = raw(DEV[2].private_key, 0)
        # Both pass admission: the pool does not execute transactions.
        assert batch(node.url, [("eth_sendRawTransaction", [bad_raw]), ("eth_sendRawTransaction", [good_raw])])[0]["result"] == bad_hash
        assert wait_for(lambda: receipt(node.url, good_hash), what="the honest transaction")["status"] == "0x1"
        wait_for(lambda: f"dropped transaction {bad_hash}" in node.output(), what="the drop log line")
        assert "execution fault: RuntimeError" in node.output()
        assert receipt(node.url, bad_hash) is None
        assert rpc(node.url, "eth_getTransactionByHash", [bad_hash])["result"] is None
        assert rpc(node.url, "txpool_status")["result"] == {"pending": "0x0", "queued": "0x0"}
        assert state_of(node.url, bad_sender.address) == before
        # Production goes on, and the sender's nonce 0 is usable again.
        head = int(rpc(node.url, "eth_blockNumber")["result"], 16)
        wait_for(lambda: int(rpc(node.url, "eth_blockNumber")["result"], 16) >= head + 2, what="two more blocks")
        again_raw, again_hash = raw(bad_sender.private_key, 0)
        assert rpc(node.url, "eth_sendRawTransaction", [again_raw])["result"] == again_hash
        assert wait_for(lambda: receipt(node.url, again_hash), what="the sender's next transaction")["status"] == "0x1"
        assert node.output().count(f"dropped transaction {bad_hash}") == 1  # never retried
    finally:
        node.kill()


def test_a_faulting_transaction_is_refused_under_automine(tmp_path):
    node = start_faulty_node(tmp_path)
    try:
        before = state_of(node.url, DEV[1].address)
        bad_raw, bad_hash = fault_tx(DEV[1].private_key, 0)
        error = rpc(node.url, "eth_sendRawTransaction", [bad_raw])["error"]
        assert error["message"].startswith("transaction dropped: execution fault: RuntimeError")
        assert state_of(node.url, DEV[1].address) == before
        assert rpc(node.url, "eth_getTransactionByHash", [bad_hash])["result"] is None
        good_raw, good_hash = raw(DEV[1].private_key, 0)
        assert rpc(node.url, "eth_sendRawTransaction", [good_raw])["result"] == good_hash
        assert receipt(node.url, good_hash)["status"] == "0x1"
    finally:
        node.kill()


def test_transactions_declaring_the_whole_block_do_not_keep_others_out(tmp_path):
    node = start_ailedger(["--block-time", "3600", "--chain-id", str(CHAIN)], tmp_path)
    try:
        # Outbidding everyone, each declaring the block gas limit and using 21,000.
        hogs = [raw(DEV[4].private_key, n, gas=GAS_LIMIT, fee=4 * BASE_FEE, tip=3 * 10**9) for n in range(5)]
        honest = [raw(DEV[i].private_key, n) for i in (1, 2) for n in range(10)]
        answers = send_all(node.url, [r for r, _ in hogs + honest])
        assert all("result" in a for a in answers), answers
        assert "result" in rpc(node.url, "evm_mine", [], timeout=60)
        block = rpc(node.url, "eth_getBlockByNumber", ["0x1", False])["result"]
        # The first hog goes first (best tip) and uses 21,000: the honest ones still fit
        # after it; the second hog no longer does and waits for the next block.
        assert block["transactions"] == [hogs[0][1]] + [h for _, h in honest]
        assert int(block["gasUsed"], 16) == 21 * 21_000
        status = rpc(node.url, "txpool_status")["result"]
        assert status == {"pending": hex(len(hogs) - 1), "queued": "0x0"}
    finally:
        node.kill()

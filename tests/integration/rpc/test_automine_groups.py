"""Automine over JSON-RPC on a real `ailedger dev` process: a batch of sends shares blocks, and
every send (alone or in a batch, over HTTP) answers only once its transaction is in a block,
so its receipt is there the moment the hash comes back."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts
from tests.support.procs import rpc, start_ailedger

pytestmark = [pytest.mark.slow]
CHAIN = 31337
DEV = derive_accounts(DEV_MNEMONIC, 10)


def batch(url: str, calls: list[tuple[str, list]]) -> list[dict]:
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return sorted(json.loads(resp.read()), key=lambda r: r["id"])


def raw(key: bytes, nonce: int, to: str, value: int = 1) -> tuple[str, str]:
    tx = dict(type=2, chainId=CHAIN, nonce=nonce, to=to, value=value, gas=21_000,
              maxFeePerGas=10**11, maxPriorityFeePerGas=10**9)
    signed = Account.sign_transaction(tx, key)
    return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber")["result"], 16)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = start_ailedger(["--chain-id", str(CHAIN), "--accounts", "10"], tmp_path_factory.mktemp("automine"))
    yield proc
    proc.kill()


def test_a_lone_send_answers_with_its_receipt_ready(node):
    before = head(node.url)
    tx, tx_hash = raw(DEV[0].private_key, int(rpc(node.url, "eth_getTransactionCount", [DEV[0].address])["result"], 16),
                      DEV[1].address)
    assert rpc(node.url, "eth_sendRawTransaction", [tx])["result"] == tx_hash
    receipt = rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["result"]
    assert receipt is not None and receipt["status"] == "0x1"
    assert int(receipt["blockNumber"], 16) == before + 1 == head(node.url)


def test_a_batch_of_sends_shares_blocks_and_every_receipt_is_ready(node):
    before = head(node.url)
    nonces = [int(rpc(node.url, "eth_getTransactionCount", [a.address])["result"], 16) for a in DEV[2:10]]
    sent = [raw(DEV[2 + i % 8].private_key, nonces[i % 8] + i // 8, DEV[0].address) for i in range(120)]
    replies = batch(node.url, [("eth_sendRawTransaction", [tx]) for tx, _ in sent])
    assert [r.get("result") for r in replies] == [h for _, h in sent]
    receipts = batch(node.url, [("eth_getTransactionReceipt", [h]) for _, h in sent])
    assert all(r["result"] is not None and r["result"]["status"] == "0x1" for r in receipts)
    blocks = {int(r["result"]["blockNumber"], 16) for r in receipts}
    # One block per transaction before; now a block per group admitted in one job.
    assert len(blocks) <= 120 // 4, sorted(blocks)
    assert head(node.url) == max(blocks) and min(blocks) == before + 1


def test_a_send_in_a_batch_may_spend_what_an_earlier_send_gave_it(node):
    fresh = Account.create("fresh in a batch")
    nonce = int(rpc(node.url, "eth_getTransactionCount", [DEV[1].address])["result"], 16)
    fund, fund_hash = raw(DEV[1].private_key, nonce, fresh.address, value=10**18)
    spend, spend_hash = raw(bytes(fresh.key), 0, DEV[0].address)
    replies = batch(node.url, [("eth_sendRawTransaction", [fund]), ("eth_sendRawTransaction", [spend])])
    assert [r.get("result") for r in replies] == [fund_hash, spend_hash], replies
    assert rpc(node.url, "eth_getTransactionReceipt", [spend_hash])["result"]["status"] == "0x1"


def test_concurrent_senders_share_blocks(node):
    """48 sends from 8 threads, each answered with its receipt: some arrive while a block is
    being built and share the next one. Whether two sends overlap is up to the machine's
    scheduling (on a loaded one the HTTP requests can come in one at a time), so the round is
    tried up to three times: automine that never groups fails all three."""
    per_sender = 6
    blocks = []
    for _ in range(3):
        before = head(node.url)
        errors: list[object] = []

        def send(account, errors: list[object] = errors) -> None:
            nonce = int(rpc(node.url, "eth_getTransactionCount", [account.address])["result"], 16)
            for k in range(per_sender):
                tx, tx_hash = raw(account.private_key, nonce + k, DEV[0].address)
                answer = rpc(node.url, "eth_sendRawTransaction", [tx], timeout=60)
                if answer.get("result") != tx_hash:
                    errors.append(answer)
                elif rpc(node.url, "eth_getTransactionReceipt", [tx_hash])["result"] is None:
                    errors.append(f"no receipt for {tx_hash} after its send answered")

        threads = [threading.Thread(target=send, args=(a,)) for a in DEV[2:10]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        blocks.append(head(node.url) - before)
        if blocks[-1] < 8 * per_sender:
            break
    assert min(blocks) < 8 * per_sender, blocks

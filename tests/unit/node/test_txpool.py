import pytest
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts
from node.txpool import AccountView, PoolError, TxPool
from state import decode_transaction

CHAIN = 31415
A = derive_accounts(DEV_MNEMONIC, 3)
RICH = AccountView(nonce=0, balance=10**21)
GAS_LIMIT = 30_000_000
BASE_FEE = 10**9


def tx(i, nonce, fee=2 * 10**9, tip=10**9, gas=21_000, chain=CHAIN, value=1):
    raw = Account.sign_transaction(
        dict(type=2, chainId=chain, nonce=nonce, to=A[(i + 1) % 3].address, value=value, gas=gas,
             maxFeePerGas=fee, maxPriorityFeePerGas=tip), A[i].private_key).raw_transaction
    return decode_transaction(bytes(raw))


def sender(i):
    return bytes.fromhex(A[i].address[2:])


def test_future_nonces_queue_until_the_gap_fills():
    pool = TxPool(CHAIN)
    assert pool.add(tx(0, 2), RICH, BASE_FEE, GAS_LIMIT) is False
    assert pool.add(tx(0, 1), RICH, BASE_FEE, GAS_LIMIT) is False
    assert (pool.pending_count, pool.queued_count) == (0, 2)
    assert pool.add(tx(0, 0), RICH, BASE_FEE, GAS_LIMIT) is True
    assert (pool.pending_count, pool.queued_count) == (3, 0)
    assert [t.nonce for t in pool.select(GAS_LIMIT)] == [0, 1, 2]
    assert pool.next_nonce(sender(0), 0) == 3


def test_select_keeps_arrival_order_and_nonce_order():
    pool = TxPool(CHAIN)
    pool.add(tx(1, 0), RICH, BASE_FEE, GAS_LIMIT)
    pool.add(tx(0, 0), RICH, BASE_FEE, GAS_LIMIT)
    pool.add(tx(1, 1), RICH, BASE_FEE, GAS_LIMIT)
    chosen = pool.select(GAS_LIMIT)
    assert [(t.sender, t.nonce) for t in chosen] == [(sender(1), 0), (sender(0), 0), (sender(1), 1)]
    assert len(pool.select(21_000 * 2)) == 2


def test_replacement_needs_a_ten_percent_bump():
    pool = TxPool(CHAIN)
    pool.add(tx(0, 0), RICH, BASE_FEE, GAS_LIMIT)
    with pytest.raises(PoolError, match="replacement transaction underpriced"):
        pool.add(tx(0, 0, fee=2 * 10**9 + 1, tip=10**9 + 1), RICH, BASE_FEE, GAS_LIMIT)
    better = tx(0, 0, fee=3 * 10**9, tip=2 * 10**9)
    pool.add(better, RICH, BASE_FEE, GAS_LIMIT)
    assert pool.select(GAS_LIMIT) == [better]
    assert len(pool) == 1


@pytest.mark.parametrize(
    "make, account, message",
    [
        (lambda: tx(0, 0, chain=1), RICH, "invalid chain id"),
        (lambda: tx(0, 0, gas=GAS_LIMIT + 1), RICH, "exceeds block gas limit"),
        (lambda: tx(0, 0, fee=BASE_FEE - 1, tip=1), RICH, "underpriced"),
        (lambda: tx(0, 0), AccountView(nonce=3, balance=10**21), "nonce too low"),
        (lambda: tx(0, 0, value=10**30), RICH, "insufficient funds"),
    ],
)
def test_refusals_carry_geth_messages(make, account, message):
    pool = TxPool(CHAIN)
    with pytest.raises(PoolError, match=message):
        pool.add(make(), account, BASE_FEE, GAS_LIMIT)
    assert len(pool) == 0


def test_duplicate_is_already_known():
    pool = TxPool(CHAIN)
    t = tx(0, 0)
    pool.add(t, RICH, BASE_FEE, GAS_LIMIT)
    with pytest.raises(PoolError, match="already known"):
        pool.add(t, RICH, BASE_FEE, GAS_LIMIT)


def test_reset_drops_mined_and_requeues():
    pool = TxPool(CHAIN)
    for n in range(3):
        pool.add(tx(0, n), RICH, BASE_FEE, GAS_LIMIT)
    dropped = pool.reset(lambda s: 2)
    assert len(dropped) == 2
    assert [t.nonce for t in pool.select(GAS_LIMIT)] == [2]
    pool.reset(lambda s: 0)  # after a rewind: nonce 2 waits for 0 and 1 again
    assert pool.select(GAS_LIMIT) == [] and pool.queued_count == 1

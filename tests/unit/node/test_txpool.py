import pytest
from eth_account import Account

from genesis import DEV_MNEMONIC, derive_accounts
from node.txpool import AccountView, PoolConfig, PoolError, TxPool, price_key, tx_cost
from state import decode_transaction

CHAIN = 31415
A = derive_accounts(DEV_MNEMONIC, 8)
RICH = AccountView(nonce=0, balance=10**21)
GAS_LIMIT = 30_000_000
BASE_FEE = 10**9
SMALL = PoolConfig(account_slots=2, global_slots=6, account_queue=3, global_queue=4)


def tx(i, nonce, fee=2 * 10**9, tip=10**9, gas=21_000, chain=CHAIN, value=1, data=b""):
    raw = Account.sign_transaction(
        dict(type=2, chainId=chain, nonce=nonce, to=A[(i + 1) % len(A)].address, value=value, gas=gas,
             maxFeePerGas=fee, maxPriorityFeePerGas=tip, data=data), A[i].private_key).raw_transaction
    return decode_transaction(bytes(raw))


def sender(i):
    return bytes.fromhex(A[i].address[2:])


def add(pool, t, account=RICH):
    return pool.add(t, account, BASE_FEE, GAS_LIMIT)


def snapshot(pool):
    pending, queued = pool.content()
    return ({s: [t.hash for t in ts] for s, ts in pending.items()},
            {s: [t.hash for t in ts] for s, ts in queued.items()},
            pool.pending_slots, pool.queued_slots, dict(pool._spent))


def test_future_nonces_queue_until_the_gap_fills():
    pool = TxPool(CHAIN)
    assert add(pool, tx(0, 2)) is False
    assert add(pool, tx(0, 1)) is False
    assert (pool.pending_count, pool.queued_count) == (0, 2)
    assert add(pool, tx(0, 0)) is True
    assert (pool.pending_count, pool.queued_count) == (3, 0)
    assert [t.nonce for t in pool.select(GAS_LIMIT)] == [0, 1, 2]
    assert pool.next_nonce(sender(0), 0) == 3


def test_select_takes_the_best_tip_first_then_arrival_and_nonce_order():
    pool = TxPool(CHAIN)
    add(pool, tx(1, 0))
    add(pool, tx(0, 0))
    add(pool, tx(1, 1))
    chosen = pool.select(GAS_LIMIT, BASE_FEE)
    assert [(t.sender, t.nonce) for t in chosen] == [(sender(1), 0), (sender(0), 0), (sender(1), 1)]
    assert len(pool.select(21_000 * 2)) == 2
    rich = tx(2, 0, fee=5 * 10**9, tip=3 * 10**9)
    add(pool, rich)
    assert pool.select(GAS_LIMIT, BASE_FEE)[0] == rich
    # A sender whose next transaction cannot pay the base fee waits, with its later nonces.
    assert pool.select(GAS_LIMIT, 3 * 10**9) == [rich]


def test_replacement_needs_a_ten_percent_bump():
    pool = TxPool(CHAIN)
    add(pool, tx(0, 0))
    with pytest.raises(PoolError, match="replacement transaction underpriced"):
        add(pool, tx(0, 0, fee=2 * 10**9 + 1, tip=10**9 + 1))
    better = tx(0, 0, fee=3 * 10**9, tip=2 * 10**9)
    add(pool, better)
    assert pool.select(GAS_LIMIT) == [better]
    assert len(pool) == 1
    assert pool.spent(sender(0)) == tx_cost(better)


@pytest.mark.parametrize(
    "make, account, message",
    [
        (lambda: tx(0, 0, chain=1), RICH, "invalid chain id"),
        (lambda: tx(0, 0, gas=GAS_LIMIT + 1), RICH, "exceeds block gas limit"),
        (lambda: tx(0, 0, gas=20_000), RICH, "intrinsic gas too low"),
        (lambda: tx(0, 0, fee=BASE_FEE - 1, tip=1), RICH, "underpriced"),
        (lambda: tx(0, 0, fee=2 * 10**9, tip=3 * 10**9), RICH, "max priority fee per gas higher than max fee per gas"),
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
    add(pool, t)
    with pytest.raises(PoolError, match="already known"):
        add(pool, t)


def test_balance_must_cover_all_pooled_transactions_of_a_sender():
    # The attack: 0.07 ETH, each transaction declaring the whole block gas limit. Each one
    # alone is affordable; together only the first is.
    flood = [tx(0, n, gas=GAS_LIMIT, fee=2 * 10**9) for n in range(5)]
    account = AccountView(nonce=0, balance=7 * 10**16)
    assert tx_cost(flood[0]) <= account.balance < 2 * tx_cost(flood[0])
    pool = TxPool(CHAIN)
    assert pool.add(flood[0], account, BASE_FEE, GAS_LIMIT) is True
    for t in flood[1:]:
        with pytest.raises(PoolError, match=r"insufficient funds for gas \* price \+ value: .*queued cost"):
            pool.add(t, account, BASE_FEE, GAS_LIMIT)
    assert len(pool) == 1
    # Queued (future) transactions count too.
    with pytest.raises(PoolError, match="queued cost"):
        pool.add(tx(0, 9, gas=GAS_LIMIT), account, BASE_FEE, GAS_LIMIT)
    # A replacement is charged only its difference, and refused when that overshoots.
    account = AccountView(nonce=0, balance=10**17)
    pool = TxPool(CHAIN)
    pool.add(flood[0], account, BASE_FEE, GAS_LIMIT)  # 0.06 ETH
    pool.add(tx(0, 1, gas=10_000_000, value=0), account, BASE_FEE, GAS_LIMIT)  # 0.02 ETH
    bumped = tx(0, 0, gas=GAS_LIMIT, fee=3 * 10**9, tip=2 * 10**9)  # 0.09 ETH alone
    with pytest.raises(PoolError, match="tx bumped"):
        pool.add(bumped, account, BASE_FEE, GAS_LIMIT)
    cheaper_gas = tx(0, 0, gas=1_000_000, fee=3 * 10**9, tip=2 * 10**9)
    pool.add(cheaper_gas, account, BASE_FEE, GAS_LIMIT)
    assert pool.spent(sender(0)) == tx_cost(cheaper_gas) + 2 * 10**16


def test_queue_limits_per_sender_and_never_evicting_pending():
    pool = TxPool(CHAIN, SMALL)
    for n in range(1, 4):
        assert add(pool, tx(0, n)) is False
    with pytest.raises(PoolError, match="account limit exceeded"):
        add(pool, tx(0, 4))
    # Global queue (4 slots): one more from another sender fits, the next must outbid.
    add(pool, tx(1, 5))
    before = snapshot(pool)
    with pytest.raises(PoolError, match="transaction underpriced"):
        add(pool, tx(2, 5))  # same price as the cheapest: no churn
    assert snapshot(pool) == before
    pricier = tx(2, 5, fee=3 * 10**9, tip=2 * 10**9)
    assert add(pool, pricier) is False
    assert pool.queued_slots == 4 and pricier.hash in pool.by_hash
    # The victim was the newest of the cheapest tails; the queue never touched pending.
    assert len(pool.queued[sender(0)]) + len(pool.queued.get(sender(1), {})) == 3
    assert pool.pending_count == 0


def test_a_full_pool_makes_room_for_a_sender_within_its_guarantee():
    pool = TxPool(CHAIN, SMALL)
    flood = [tx(0, n) for n in range(6)]
    for t in flood:
        assert add(pool, t) is True
    assert pool.pending_slots == 6
    # The flooder may not grow further: nobody else holds more than the guarantee.
    with pytest.raises(PoolError, match="txpool is full"):
        add(pool, tx(0, 6))
    # An honest sender at the same price takes the flooder's newest place.
    honest = tx(1, 0)
    assert add(pool, honest) is True
    assert honest.hash in pool.by_hash and flood[-1].hash not in pool.by_hash
    assert add(pool, tx(1, 1)) is True
    assert flood[-2].hash not in pool.by_hash
    assert pool.pending_slots == 6
    # Past its own guarantee the honest sender gets no more for free.
    with pytest.raises(PoolError, match="transaction underpriced"):
        add(pool, tx(1, 2))
    assert pool.spent(sender(0)) == sum(tx_cost(t) for t in flood[:4])


def test_a_full_pool_evicts_only_for_a_strictly_better_price():
    pool = TxPool(CHAIN, SMALL)
    cheap = []
    for i in range(3):
        for n in range(2 if i < 2 else 1):
            t = tx(i, n, fee=2 * 10**9 + i)
            cheap.append(t)
            add(pool, t)
    add(pool, tx(5, 0, fee=2 * 10**9 + 5))  # sender 5 holds one, as many as the fair share
    before = snapshot(pool)
    # Its second transaction: nobody holds more than 2, so only a strictly better price.
    for fee, tip in ((2 * 10**9, 10**9), (10**9 + 5, 10**9 + 5)):
        with pytest.raises(PoolError, match="transaction underpriced"):
            add(pool, tx(5, 1, fee=fee, tip=tip))
        assert snapshot(pool) == before
    better = tx(5, 1, fee=4 * 10**9, tip=2 * 10**9)
    assert add(pool, better) is True
    # Ties on tip are broken by fee cap: sender 0's newest transaction was the cheapest.
    assert cheap[1].hash not in pool.by_hash
    assert len(pool) == 6


def test_a_sender_holding_nothing_always_gets_in_from_the_sender_holding_the_most():
    """Issue 19: sybil senders each holding exactly their guarantee filled the pool; none held
    more than its guarantee, so a newcomer paying the same was refused until they were mined."""
    pool = TxPool(CHAIN, PoolConfig(account_slots=2, global_slots=6))
    flood = {i: [tx(i, n, fee=3 * 10**9, tip=2 * 10**9) for n in range(2)] for i in range(3)}
    for txs in flood.values():
        for t in txs:
            add(pool, t)
    newcomer = tx(5, 0, fee=3 * 10**9, tip=2 * 10**9)  # the same price: no better
    assert add(pool, newcomer) is True
    gone = [t for txs in flood.values() for t in txs if t.hash not in pool.by_hash]
    assert gone == [flood[2][1]]  # the newest of the latest among equals, never a gap
    # Its second one finds nobody holding more than 2: refused (it would need a better price).
    with pytest.raises(PoolError, match="transaction underpriced"):
        add(pool, tx(5, 1, fee=3 * 10**9, tip=2 * 10**9))
    # The sybil that lost a transaction is no newcomer: it cannot take it back from its equals.
    with pytest.raises(PoolError, match="transaction underpriced"):
        add(pool, flood[2][1])


def test_big_transactions_take_more_slots():
    pool = TxPool(CHAIN, SMALL)
    big = tx(0, 0, gas=2_000_000, data=b"\x01" * 70_000)
    add(pool, big)
    assert pool.pending_slots == 3


def test_reset_drops_mined_unaffordable_and_requeues():
    pool = TxPool(CHAIN)
    for n in range(3):
        add(pool, tx(0, n))
    dropped = pool.reset(lambda s: 2)
    assert len(dropped) == 2
    assert [t.nonce for t in pool.select(GAS_LIMIT)] == [2]
    pool.reset(lambda s: 0)  # after a rewind: nonce 2 waits for 0 and 1 again
    assert pool.select(GAS_LIMIT) == [] and pool.queued_count == 1
    pool = TxPool(CHAIN)
    txs = [tx(0, n) for n in range(3)]
    for t in txs:
        add(pool, t)
    # The balance fell (a dev edit, a delegated account): what it no longer covers goes.
    dropped = pool.reset(lambda s: 0, lambda s: 2 * tx_cost(txs[0]), GAS_LIMIT)
    assert dropped == [txs[2].hash]
    assert pool.pending_count == 2 and pool.spent(sender(0)) == 2 * tx_cost(txs[0])


def check_invariants(pool, nonces):
    for kind, table in (("pending", pool.pending), ("queued", pool.queued)):
        assert pool._slots[kind] == sum(e.slots for txs in table.values() for e in txs.values())
        assert pool._counts[kind] == sum(len(txs) for txs in table.values())
        assert pool._tails[kind] == {s: max(txs) for s, txs in table.items()}
    for s, txs in pool.pending.items():
        assert sorted(txs) == list(range(nonces[s], nonces[s] + len(txs)))  # contiguous from the account
    assert pool._over == {s for s, txs in pool.pending.items() if len(txs) > pool.config.account_slots}
    holding: dict[int, set[bytes]] = {}
    for s, txs in pool.pending.items():
        holding.setdefault(len(txs), set()).add(s)
    assert pool._holding == holding
    everyone = {e.tx.hash: e for t in (pool.pending, pool.queued) for txs in t.values() for e in txs.values()}
    assert everyone.keys() == pool.by_hash.keys()
    for s in {e.sender for e in everyone.values()} | set(pool._spent):
        assert pool.spent(s) == sum(e.cost for e in everyone.values() if e.sender == s)
    assert pool.pending_slots <= pool.config.global_slots and pool.queued_slots <= pool.config.global_queue


def test_random_traffic_keeps_the_books_and_evicts_the_cheapest_tail():
    import random

    rng = random.Random(7)
    config = PoolConfig(account_slots=2, global_slots=10, account_queue=3, global_queue=5)
    pool = TxPool(CHAIN, config)
    nonces = {sender(i): 0 for i in range(len(A))}
    signed = {}
    seen_evictions = 0
    for step in range(400):
        i = rng.randrange(len(A))
        s = sender(i)
        nonce = nonces[s] + rng.choice([0, 0, 1, 2, 3, 5])
        nonce = pool.next_nonce(s, nonces[s]) if rng.random() < 0.6 else nonce
        tip = rng.choice([1, 2, 3]) * 10**9
        key = (i, nonce, tip)
        if key not in signed:
            signed[key] = tx(i, nonce, fee=tip + 2 * 10**9, tip=tip)
        t = signed[key]
        before = snapshot(pool)
        tails = {kind: {(snd, max(txs)): txs[max(txs)] for snd, txs in table.items()}
                 for kind, table in (("pending", pool.pending), ("queued", pool.queued))}
        everything = list(pool.by_hash.values())
        pending_before = {e.tx.hash for txs in pool.pending.values() for e in txs.values()}
        pending_at = {snd: dict(txs) for snd, txs in pool.pending.items()}
        try:
            pool.add(t, AccountView(nonces[s], 10**21), BASE_FEE, GAS_LIMIT)
        except PoolError:
            assert snapshot(pool) == before  # a refusal changes nothing
        else:
            evicted = [e for e in everything if e.tx.hash not in pool.by_hash
                       and not (e.sender == s and e.tx.nonce == t.nonce)]
            assert len(evicted) <= 1  # one slot per transfer: at most one had to go
            seen_evictions += len(evicted)
            for e in evicted:
                kind = "pending" if e.tx.hash in pending_before else "queued"
                assert (e.sender, e.tx.nonce) in tails[kind] and e.sender != s  # only others' newest
                own = len(pending_at.get(s, {})) + 1
                most = max(len(v) for snd, v in pending_at.items() if snd != s)
                fair = (kind == "pending" and own <= config.account_slots
                        and len(pending_at[e.sender]) == most and (most > own or own == 1))
                if not fair:  # by price: strictly cheaper, and the cheapest (then newest) of the tails
                    assert price_key(e.tx, BASE_FEE) < price_key(t, BASE_FEE)
                    rivals = [(price_key(o.tx, BASE_FEE), -o.seq) for (snd, _), o in tails[kind].items() if snd != s]
                    assert (price_key(e.tx, BASE_FEE), -e.seq) == min(rivals)
        check_invariants(pool, nonces)
        if step % 50 == 49:  # a block: some pending transactions are mined
            for snd, txs in list(pool.pending.items()):
                nonces[snd] += rng.randrange(len(txs) + 1)
            pool.reset(lambda a: nonces[a], lambda a: 10**21, GAS_LIMIT)
            check_invariants(pool, nonces)
    assert pool.pending_count > 0 and seen_evictions > 20, seen_evictions


def test_future_transactions_wait_no_longer_than_the_lifetime():
    now = [0.0]
    pool = TxPool(CHAIN, PoolConfig(lifetime=3600), clock=lambda: now[0])
    add(pool, tx(0, 0))
    old_gap = tx(0, 5)
    add(pool, old_gap)
    now[0] = 3000.0
    newer_gap = tx(1, 3)
    add(pool, newer_gap)
    now[0] = 3601.0
    assert pool.reset(lambda s: 0, lambda s: 10**21, GAS_LIMIT) == [old_gap.hash]
    assert newer_gap.hash in pool.by_hash and pool.pending_count == 1  # pending ones never expire


def test_a_zero_tip_is_a_tip_of_zero_not_a_missing_gas_price():
    """Issue 19: a fee-market transaction with ``maxPriorityFeePerGas`` 0 fell back to the
    legacy gas price, which it does not have (AttributeError)."""
    pool = TxPool(CHAIN)
    free = tx(0, 0, tip=0)
    assert add(pool, free) is True
    assert price_key(free, BASE_FEE) == (0, 2 * 10**9)
    paying = tx(1, 0)
    add(pool, paying)
    assert pool.select(GAS_LIMIT, BASE_FEE) == [paying, free]

"""A bug in a precompile halts loudly instead of becoming a consensus rule (issue 8, item 12).

Only the module's own errors (``AIError``: rejections and decoding errors) revert; any other
exception (ZeroDivisionError, an ``assert``, RecursionError...) is raised as ``PrecompileFault``,
which is not a ``VMError`` and so escapes ``apply_transaction``: no block holds a transaction
that ran into it. The node's ``eth_call``/``eth_estimateGas`` path (``Ledger.execute_call``) lets
it out as well, where the RPC server answers -32603 and keeps serving; the ledger stays usable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account

import ai_precompiles as ap
from ai_precompiles.addresses import REWARDS
from ai_precompiles.errors import PrecompileFault
from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from state import Ledger, MemoryStore, decode_transaction
from tests.unit.ai_precompiles.ai_harness import AIChain
from tests.unit.ai_precompiles.ai_world import TEST_PARAMS


def _boom_zero(ctx: Any) -> int:
    return 1 // 0


def _boom_assert(ctx: Any) -> int:
    raise AssertionError("invariant broken")


def _boom_recursion(ctx: Any) -> int:
    raise RecursionError("maximum recursion depth exceeded")


@pytest.fixture(params=[_boom_zero, _boom_assert, _boom_recursion], ids=["zerodiv", "assert", "recursion"])
def broken_claim(request: pytest.FixtureRequest) -> Iterator[Callable[..., int]]:
    """Rewards.claim replaced by a handler with a bug, restored afterwards."""
    handlers = ap.MODULES["Rewards"].handlers
    original = handlers["claim"]
    handlers["claim"] = request.param
    try:
        yield request.param
    finally:
        handlers["claim"] = original


def test_a_bug_raises_precompile_fault_not_a_revert(broken_claim: Callable[..., int]) -> None:
    c = AIChain(TEST_PARAMS, n_keys=2)
    head = c.head
    with pytest.raises(PrecompileFault) as info:
        c.send(0, "Rewards", "claim")
    assert info.value.module == "Rewards" and info.value.function == "claim"
    assert type(info.value.cause).__name__ in ("ZeroDivisionError", "AssertionError", "RecursionError")
    assert c.head == head  # no block holds it


def test_rejections_still_revert_cleanly(broken_claim: Callable[..., int]) -> None:
    """The module's own errors are unaffected: a bad selector is a revert, not a fault."""
    c = AIChain(TEST_PARAMS, n_keys=2)
    sent = c.send_raw(0, REWARDS, b"\xde\xad\xbe\xef")
    assert sent.computation.is_error and sent.receipt.state_root == b""


def test_eth_call_path_raises_it_and_the_ledger_goes_on(broken_claim: Callable[..., int]) -> None:
    accounts = derive_accounts(DEV_MNEMONIC, 2)
    genesis = dev_genesis(timestamp=1_700_000_000, accounts=2)
    ledger = Ledger(MemoryStore(), genesis)
    sender = bytes.fromhex(accounts[0].address[2:])
    data = ap.load_abi("Rewards").by_name["claim"].encode_args()
    with pytest.raises(PrecompileFault):
        ledger.execute_call(ledger.head, sender, REWARDS, data)
    with pytest.raises(PrecompileFault):
        ledger.estimate_gas(ledger.head, sender, REWARDS, data)
    # the ledger is not left half-way: a normal block builds on the same head
    tx = dict(type=2, chainId=genesis.chain_id, nonce=0, to=accounts[1].address, value=1, gas=21_000,
              maxFeePerGas=10**10, maxPriorityFeePerGas=1)
    raw = bytes(Account.sign_transaction(tx, accounts[0].private_key).raw_transaction)
    built = ledger.build_block([decode_transaction(raw)], genesis.timestamp + 1, b"\x00" * 20)
    assert len(built.block.transactions) == 1 and ledger.head.block_number == 1

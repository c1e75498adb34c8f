"""The native path (what phase 2's typed transactions call) and the ABI path run the same code:
same storage, same logs, same gas."""

from __future__ import annotations

from ai_harness import AIChain
from ai_world import TEST_PARAMS
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles.addresses import DATANETS
from ai_precompiles.context import Ctx, GasMeter


def _native_ctx(c: AIChain, sender: bytes, block: int, timestamp: int, state: object) -> Ctx:
    return Ctx(state=state, sender=sender, value=0, block_number=block, timestamp=timestamp,
               chain_id=1337, is_static=False, meter=GasMeter(None))


def test_contribute_native_equals_abi() -> None:
    a, b = AIChain(TEST_PARAMS, n_keys=3), AIChain(TEST_PARAMS, n_keys=3)
    for c in (a, b):
        c.send(0, "Datanets", "createDatanet", "d", "x", "", "MIT", [c.addr(1)], 1, 1000)
    args = (1, keccak(text="blob"), 123, "MIT", keccak(text="meta"))
    sent = a.send(2, "Datanets", "contribute", *args)
    header = sent.block.header

    vm = b.chain.get_vm()
    state = vm.state
    ctx = _native_ctx(b, b.addr(2), header.block_number, header.timestamp, state)
    cid = ap.MODULES["Datanets"].call_native(ctx, "contribute", *args)
    assert cid == sent.result
    state.make_state_root()
    a_root = a.state._account_db._get_storage_root(DATANETS)
    b_root = state._account_db._get_storage_root(DATANETS)
    assert a_root == b_root
    # same logs (address, topics, data)
    assert [(lg.address, tuple(lg.topics), lg.data) for lg in sent.logs] == [
        (addr, topics, data) for addr, topics, data in ctx.logs]
    # same execution gas: the receipt's gas minus the transaction's intrinsic gas
    tx = sent.block.transactions[0]
    assert sent.gas_used - tx.intrinsic_gas == ctx.meter.total


def test_storage_floor_beats_a_cheap_price() -> None:
    """Governance can lower a price to its minimum; the storage cost is still charged."""
    cheap = AIChain({**TEST_PARAMS, "gas.createDatanet": 21_000}, n_keys=2)
    dear = AIChain({**TEST_PARAMS, "gas.createDatanet": 2_000_000}, n_keys=2)
    used = []
    for c in (cheap, dear):
        s = c.send(0, "Datanets", "createDatanet", "d", "x", "", "MIT", [c.addr(1)], 1, 1000)
        used.append(s.gas_used - s.block.transactions[0].intrinsic_gas)
    # 14 fresh words at least (record fields, curator flag, counter): 22,100 gas each
    assert used[0] >= 14 * 22_100
    assert used[1] >= 2_000_000 and used[1] > used[0]

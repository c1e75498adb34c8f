"""The node's limits and domain errors, on an in-memory ledger: filter caps, expiry and
the shared pending log; dev controls refused on a production node; the eth_call time
budget; and the one mapping from node errors to JSON-RPC codes."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts, dev_genesis
from node import errors
from node.chain import dev as dev_module
from node.chain.assembly import LocalChain, assemble
from node.chain.core import ChainCore
from node.rpc import filters as filters_module
from node.rpc import load_methods
from node.rpc.context import NodeContext
from node.rpc.errors import from_node_error
from node.rpc.filters import FilterRegistry
from node.rpc.registry import NAMESPACES, method_table
from state import Ledger, MemoryStore

load_methods()
A = derive_accounts(DEV_MNEMONIC, 2)
LOOP = bytes.fromhex("5b600056")


def make_chain(dev: bool = True) -> LocalChain:
    return assemble(Ledger(MemoryStore(), dev_genesis(accounts=2)), dev=dev)


def make_core(dev: bool = True) -> ChainCore:
    return make_chain(dev).core


def context(chain: LocalChain) -> NodeContext:
    """What RPC handlers get, for a chain (its dev controls only on a dev chain)."""
    return NodeContext(chain.core, FilterRegistry(chain.core), None, None, dev=chain.dev)  # type: ignore[arg-type]


def transfer(core: ChainCore, nonce: int) -> bytes:
    raw = Account.sign_transaction(
        dict(type=2, chainId=DEV_CHAIN_ID, nonce=nonce, to=A[1].address, value=1, gas=21_000,
             maxFeePerGas=10**11, maxPriorityFeePerGas=1), A[0].private_key).raw_transaction
    return core.submit_raw(bytes(raw))


def test_filter_caps_per_client_and_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters_module, "MAX_FILTERS_PER_CLIENT", 3)
    monkeypatch.setattr(filters_module, "MAX_FILTERS", 5)
    core = FilterRegistry(make_core())
    ids = [core.new_filter("block", client="1.1.1.1") for _ in range(3)]
    with pytest.raises(errors.LimitExceeded, match="per client"):
        core.new_filter("pending", client="1.1.1.1")
    core.new_filter("block", client="2.2.2.2")
    core.new_filter("block", client="2.2.2.2")
    # Full: a client holding none still gets one (issue 19), from the client holding the most,
    # whose least recently polled filter goes; a client holding some gets no more from equals.
    core.filter_changes(ids[0])
    newcomer = core.new_filter("block", client="3.3.3.3")
    assert ids[1] not in core.filters and {ids[0], ids[2], newcomer} <= set(core.filters)
    with pytest.raises(errors.LimitExceeded, match="at most 5"):
        core.new_filter("block", client="2.2.2.2")
    assert core.uninstall_filter(ids[0]) is True
    assert core.uninstall_filter(ids[0]) is False
    core.new_filter("block", client="1.1.1.1")  # a slot is free again


def test_filters_expire_on_the_timer_least_recently_polled_first() -> None:
    core = FilterRegistry(make_core())
    old = core.new_filter("block", client="a")
    fresh = core.new_filter("block", client="a")
    core.filters[old].last_poll -= filters_module.FILTER_TIMEOUT + 1
    core.filters[fresh].last_poll -= filters_module.FILTER_TIMEOUT + 1
    core.filter_changes(fresh)  # polling renews it
    assert core.expire_filters() == 1
    assert set(core.filters) == {fresh}
    with pytest.raises(errors.Refused, match="filter not found"):
        core.filter_changes(old)
    assert core._filters_per_client["a"] == 1


def test_pending_filters_share_one_log_and_each_sees_its_own_window() -> None:
    chain = make_chain()
    assert chain.dev is not None
    chain.dev.set_automine(False)
    filters = FilterRegistry(chain.core)
    first = filters.new_filter("pending")
    h0 = transfer(chain.core, 0)
    second = filters.new_filter("pending")
    h1 = transfer(chain.core, 1)
    assert filters.filter_changes(first) == ["0x" + h0.hex(), "0x" + h1.hex()]
    assert filters.filter_changes(second) == ["0x" + h1.hex()]
    assert filters.filter_changes(first) == []
    # a transaction costs no per-filter work: nothing is stored in the filters
    assert all(not hasattr(f, "pending_hashes") for f in filters.filters.values())


def test_block_filter_answers_one_page_per_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters_module, "MAX_FILTER_BLOCKS", 2)
    chain = make_chain()
    assert chain.dev is not None
    filters = FilterRegistry(chain.core)
    fid = filters.new_filter("block")
    chain.dev.mine_blocks(5)
    pages = [filters.filter_changes(fid) for _ in range(4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert len({h for p in pages for h in p}) == 5


def test_dev_controls_are_refused_on_a_production_core() -> None:
    chain = make_chain(dev=False)
    assert chain.dev is None  # only `ailedger dev` builds them
    core, ctx = chain.core, context(chain)
    head = core.ledger.head
    table = method_table(tuple(NAMESPACES))
    refused = [
        ("evm_snapshot", []),
        ("evm_revert", ["0x1"]),
        ("evm_mine", []),
        ("evm_setAutomine", [False]),
        ("evm_setNextBlockTimestamp", [hex(head.timestamp + 100)]),
        ("evm_increaseTime", ["0x64"]),
        ("anvil_setBalance", [A[1].address, "0x1"]),
    ]
    for method, params in refused:
        with pytest.raises(errors.NotAvailable):
            table[method].handler(ctx, params)
    assert core.ledger.head == head
    assert from_node_error(errors.NotAvailable("x")).code == -32601


def test_evm_mine_count_is_capped() -> None:
    chain = make_chain()
    assert chain.dev is not None
    with pytest.raises(errors.InvalidInput):
        chain.dev.mine_blocks(dev_module.MAX_MINE_BLOCKS + 1)
    assert chain.core.ledger.head.block_number == 0


def test_call_time_budget_interrupts_a_loop() -> None:
    core = make_core()
    core.rpc_evm_timeout = 0.3
    started = time.monotonic()
    with pytest.raises(errors.ExecutionTimeout, match=r"timeout = 0.3s"):
        core.call(core.ledger.head, b"\x11" * 20, None, LOOP, 0, None)
    with pytest.raises(errors.ExecutionTimeout):
        core.estimate_gas(core.ledger.head, b"\x11" * 20, None, LOOP, 0)
    assert time.monotonic() - started < 10
    # block building is not affected: a block still builds and a transfer still mines
    core.rpc_evm_timeout = None
    transfer(core, 0)
    assert core.ledger.head.block_number == 1


def test_gas_cap_limits_calls() -> None:
    core = make_core()
    core.rpc_gas_cap = 100_000
    gas_left = bytes.fromhex("5a60005260206000f3")  # GAS PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    result = core.call(core.ledger.head, b"\x11" * 20, None, gas_left, 0, 10_000_000)
    assert 0 < int.from_bytes(result.output, "big") < 100_000


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.Refused("x"), -32000),
        (errors.UnknownBlock("header not found"), -32000),
        (errors.ExecutionTimeout("x"), -32000),
        (errors.NotFound("x"), -32001),
        (errors.InvalidInput("x"), -32602),
        (errors.LimitExceeded("x"), -32005),
        (errors.NotAvailable("x"), -32601),
    ],
)
def test_node_errors_map_to_json_rpc_codes_once(error: errors.NodeError, code: int) -> None:
    mapped = from_node_error(error)
    assert (mapped.code, mapped.message) == (code, error.message)


def test_namespaces_follow_the_registration() -> None:
    assert {"eth", "net", "web3", "txpool", "ai", "evm", "anvil", "hardhat"} <= set(NAMESPACES)
    production = method_table(("eth", "net", "web3", "txpool", "ai"))
    assert "eth_call" in production and "ai_getTrainingSet" in production
    assert not [m for m in production if m.split("_")[0] in {"evm", "anvil", "hardhat", "personal"}]


def test_read_lane_calls_stop_at_the_read_budget() -> None:
    import trio

    from node.rpc.server import RPCServer, RPCSettings
    from node.worker import ChainWorker
    from state import ReadTimeout, read_deadline

    chain = make_chain()
    core = chain.core
    assert chain.dev is not None
    chain.dev.mine_blocks(3)
    with pytest.raises(ReadTimeout), read_deadline(time.monotonic() - 1):
        core.ledger.state_at(core.ledger.head).get_balance(b"\x22" * 20)
    worker = ChainWorker("unit")

    async def main() -> None:
        rpc_server = RPCServer(core, worker, RPCSettings(read_timeout=1e-9))
        reply = rpc_server.dispatch({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
                                 "params": [{"fromBlock": "0x0", "toBlock": "latest"}]})
        assert isinstance(reply, dict) and reply["error"]["code"] == -32005, reply
        # chain-lane methods have no read budget
        reply = rpc_server.dispatch({"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"})
        assert isinstance(reply, dict) and reply["result"] == "0x3"

    trio.run(main)
    worker.stop()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("debug_traceCall", [{"from": A[0].address, "data": "0x" + LOOP.hex()}, "latest", {"tracer": "callTracer"}]),
        ("eth_createAccessList", [{"from": A[0].address, "data": "0x" + LOOP.hex()}, "latest"]),
        ("eth_simulateV1", [{"blockStateCalls": [{"calls": [{"from": A[0].address, "data": "0x" + LOOP.hex()}]}]}, "latest"]),
    ],
)
def test_traces_and_simulations_stop_at_the_time_budget(method: str, params: list) -> None:
    """The other read-only executions share eth_call's time budget: a loop ends in a timeout
    instead of holding the chain thread for the whole gas limit."""
    chain = make_chain()
    chain.core.rpc_evm_timeout = 0.3
    handler = method_table(tuple(NAMESPACES))[method].handler
    started = time.monotonic()
    with pytest.raises(errors.ExecutionTimeout):
        handler(context(chain), params)
    assert time.monotonic() - started < 10

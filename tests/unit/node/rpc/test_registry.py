"""The one registry: a new namespace is one module plus one line in
``node.rpc.METHOD_MODULES`` (proved with a toy namespace served over an in-process server),
and ``@rpc`` refuses registrations that would let the served list and the CLI's drift."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from genesis import dev_genesis
from node.chain.assembly import assemble
from node.rpc import METHOD_MODULES, load_methods
from node.rpc.registry import ASYNC, CHAIN, METHODS, NAMESPACES, Params, namespace_of, rpc
from node.rpc.server import RPCServer, RPCSettings
from node.worker import ChainWorker
from state import Ledger, MemoryStore

TOY = "tests.unit.node.rpc.toy_namespace"


@pytest.fixture
def toy_line(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The one registration line of the toy namespace; undone afterwards, with its methods."""
    monkeypatch.setitem(METHOD_MODULES, TOY, ("toy",))
    yield
    for name in NAMESPACES.pop("toy", {}):
        METHODS.pop(name, None)
    sys.modules.pop(TOY, None)


def call(method: str, call_id: int, *params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": list(params)}


def test_a_new_namespace_is_one_module_and_one_line(toy_line: None) -> None:
    chain = assemble(Ledger(MemoryStore(), dev_genesis(accounts=1)), dev=True)
    core = chain.core
    assert chain.dev is not None
    chain.dev.mine_blocks(2)
    worker = ChainWorker("unit-toy")

    async def main() -> None:
        server = RPCServer(core, worker, RPCSettings(("eth", "toy")))
        alone = await server.handle_call(call("toy_echo", 1, "hi"), None)
        assert alone == {"jsonrpc": "2.0", "id": 1, "result": {"echo": "hi", "head": "0x2"}}
        text = await server.handle_text(json.dumps([call("toy_headLater", 1), call("toy_echo", 2, [1]),
                                                    call("toy_echo", 3, 1, 2), call("eth_blockNumber", 4)]))
        assert text is not None
        assert json.loads(text) == [
            {"jsonrpc": "2.0", "id": 1, "result": "0x2"},
            {"jsonrpc": "2.0", "id": 2, "result": {"echo": [1], "head": "0x2"}},
            {"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "too many arguments, want at most 1"}},
            {"jsonrpc": "2.0", "id": 4, "result": "0x2"},
        ]
        # a node that does not enable the namespace does not serve it
        other = RPCServer(core, worker, RPCSettings(("eth",)))
        refused = await other.handle_call(call("toy_echo", 5, "hi"), None)
        assert refused is not None and refused["error"]["code"] == -32601

    try:
        trio.run(main)
    finally:
        worker.stop()
    assert METHODS["toy_headLater"].lane is ASYNC and METHODS["toy_echo"].lane is CHAIN


def test_each_module_declares_exactly_the_namespaces_it_registers() -> None:
    load_methods()
    registered: dict[str, set[str]] = defaultdict(set)
    for method in METHODS.values():
        registered[method.handler.__module__].add(namespace_of(method.name))
    assert {module: set(declared) for module, declared in METHOD_MODULES.items()} == dict(registered)


def _handler(core: object, params: Params) -> None:
    return None


async def _async_handler(ctx: Any, params: Params) -> None:
    return None


def test_registration_refuses_what_would_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    load_methods()
    with pytest.raises(ValueError, match="METHOD_MODULES"):
        rpc("toy_unlisted", max_params=0)(_handler)  # this test module is listed nowhere
    monkeypatch.setitem(METHOD_MODULES, __name__, ("eth",))
    with pytest.raises(ValueError, match="namespace 'toy'"):
        rpc("toy_undeclared", max_params=0)(_handler)
    with pytest.raises(ValueError, match="registered twice"):
        rpc("eth_chainId", max_params=0)(_handler)
    with pytest.raises(TypeError, match="coroutine"):
        rpc("eth_notAsync", max_params=0, lane=ASYNC)(_handler)
    with pytest.raises(TypeError, match="coroutine"):
        rpc("eth_notChain", max_params=0)(_async_handler)
    assert not {"toy_unlisted", "toy_undeclared", "eth_notAsync", "eth_notChain"} & set(METHODS)

"""Every JSON-RPC method declares how many parameters it takes (``@rpc(max_params=...)``),
and the dispatcher holds calls to it."""

from __future__ import annotations

from genesis import dev_genesis
from node.chain.assembly import assemble
from node.rpc import load_methods
from node.rpc.registry import METHODS, Method
from node.rpc.server import RPCServer
from state import Ledger, MemoryStore


def test_every_registered_method_has_a_parameter_limit() -> None:
    load_methods()
    missing = sorted(name for name, method in METHODS.items()
                     if not isinstance(method.max_params, int) or method.max_params < 0)
    assert METHODS and not missing, f"give these a max_params on @rpc: {missing}"


def test_one_param_too_many_is_refused_before_the_method_runs() -> None:
    ran = []
    server = RPCServer(assemble(Ledger(MemoryStore(), dev_genesis(accounts=1))).core, worker=None)  # type: ignore[arg-type]
    server.methods["test_probe"] = Method("test_probe", lambda core, params: ran.append(params), max_params=1)
    ok = server.dispatch({"jsonrpc": "2.0", "id": 1, "method": "test_probe", "params": ["a"]})
    refused = server.dispatch({"jsonrpc": "2.0", "id": 2, "method": "test_probe", "params": ["a", "b"]})
    assert ok is not None and "result" in ok
    assert refused is not None and refused["error"]["code"] == -32602
    assert ran == [["a"]]

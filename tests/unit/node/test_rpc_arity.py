"""Every JSON-RPC method declares how many parameters it takes, and the dispatcher holds
calls to it (the table in node/rpc/arity.py)."""

from __future__ import annotations

from node.rpc.arity import MAX_PARAMS
from node.rpc.methods import METHODS, Method
from node.rpc.server import RPCServer


def test_every_registered_method_has_a_parameter_limit() -> None:
    missing = sorted(set(METHODS) - set(MAX_PARAMS))
    assert not missing, f"add these to node/rpc/arity.py: {missing}"


def test_one_param_too_many_is_refused_before_the_method_runs() -> None:
    ran = []
    MAX_PARAMS["test_probe"] = 1
    try:
        server = RPCServer(core=None, worker=None)  # type: ignore[arg-type]
        server.methods["test_probe"] = Method("test_probe", lambda core, params: ran.append(params))
        ok = server.dispatch({"jsonrpc": "2.0", "id": 1, "method": "test_probe", "params": ["a"]})
        refused = server.dispatch({"jsonrpc": "2.0", "id": 2, "method": "test_probe", "params": ["a", "b"]})
    finally:
        del MAX_PARAMS["test_probe"]
    assert ok is not None and "result" in ok
    assert refused is not None and refused["error"]["code"] == -32602
    assert ran == [["a"]]

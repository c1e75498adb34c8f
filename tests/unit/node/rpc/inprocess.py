"""An in-process RPC server on a real in-memory dev chain, for handler tests: calls go
through the dispatcher (parameter limits, lanes, error mapping) on this thread."""

from __future__ import annotations

from typing import Any

from genesis import DEV_MNEMONIC, derive_accounts, dev_genesis
from node.chain.assembly import assemble
from node.rpc.server import RPCServer
from state import Ledger, MemoryStore

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 2)


def dev_server() -> RPCServer:
    """A dev chain's server with every namespace and the dev keys of two accounts."""
    from node.rpc.namespaces import ALL_NAMESPACES
    from node.rpc.server import RPCSettings

    chain = assemble(Ledger(MemoryStore(), dev_genesis(accounts=2)), dev_keys=[a.private_key for a in ACCOUNTS],
                     dev=True)
    return RPCServer(chain.core, worker=None, settings=RPCSettings(ALL_NAMESPACES), dev=chain.dev)  # type: ignore[arg-type]


def reply(server: RPCServer, method: str, *params: Any) -> dict[str, Any]:
    """The whole response to one call, its later jobs (long work) run here in turn."""
    answer: Any = server.dispatch({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    while answer is not None and not isinstance(answer, dict):
        answer = answer.run()
    assert answer is not None
    return dict(answer)


def result(server: RPCServer, method: str, *params: Any) -> Any:
    answer = reply(server, method, *params)
    assert "result" in answer, (method, params, answer)
    return answer["result"]


def error(server: RPCServer, method: str, *params: Any) -> dict[str, Any]:
    answer = reply(server, method, *params)
    assert "error" in answer, (method, params, answer)
    return dict(answer["error"])

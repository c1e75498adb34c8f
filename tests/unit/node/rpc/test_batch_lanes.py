"""A JSON-RPC batch answers every lane's methods as single calls do: CHAIN and READ calls on
their workers, ASYNC ones (ai_inferQuote, ai_infer) on the loop, in order. In process, with a
real in-memory chain and worker; the inference service is a stand-in whose sidecar is always
ready (no sidecar process in a unit test)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import trio
from eth_keys import keys

from genesis import dev_genesis
from node.chain.assembly import assemble
from node.inference import InferenceService
from node.rpc.server import RPCServer, RPCSettings
from node.worker import ChainWorker
from state import Ledger, MemoryStore

KEY = b"\x07" * 32
ADDRESS = "0x" + keys.PrivateKey(KEY).public_key.to_canonical_address().hex()


class ReadySidecar(InferenceService):
    """The service with its one gRPC call answered: the sidecar reports it serves."""

    def sidecar_ready(self) -> bool:
        return True


def call(method: str, call_id: int, *params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": list(params)}


def with_server(test: Callable[[RPCServer], Any], namespaces: tuple[str, ...] = ("eth", "ai"),
                inference: InferenceService | None = None) -> None:
    core = assemble(Ledger(MemoryStore(), dev_genesis(accounts=2))).core
    worker = ChainWorker("unit-chain")
    reads = ChainWorker("unit-read")

    async def main() -> None:
        await test(RPCServer(core, worker, RPCSettings(namespaces), reads, inference))

    try:
        trio.run(main)
    finally:
        worker.stop()
        reads.stop()


def test_ai_infer_quote_and_ai_infer_answer_inside_a_batch_in_order() -> None:
    service = ReadySidecar("127.0.0.1:9", KEY, price=123)

    async def test(server: RPCServer) -> None:
        alone = await server.handle_call(call("ai_inferQuote", 9), None)
        batch = [
            call("eth_chainId", 1),
            call("ai_inferQuote", 2),
            call("ai_infer", 3, {"prompt": ""}, "0x00"),
            call("eth_getLogs", 4, {"fromBlock": "0x0", "toBlock": "latest"}),  # READ lane
            call("ai_inferQuote", 5, "extra"),
            call("eth_blockNumber", 6),
        ]
        text = await server.handle_text(json.dumps(batch))
        assert text is not None
        replies = json.loads(text)
        assert [r["id"] for r in replies] == [1, 2, 3, 4, 5, 6]
        by_id = {r["id"]: r for r in replies}
        quote = by_id[2]["result"]
        assert quote == {**alone["result"]} and alone is not None
        assert quote["validator"] == ADDRESS and quote["price"] == hex(123) and quote["ready"] is True
        assert quote["chainId"] == by_id[1]["result"]
        # ai_infer ran its own checks (-32602 naming the prompt), not 'method not found'
        assert by_id[3]["error"]["code"] == -32602 and "prompt" in by_id[3]["error"]["message"]
        assert by_id[4]["result"] == []
        # the parameter limit holds for ASYNC methods in a batch too
        assert by_id[5]["error"] == {"code": -32602, "message": "too many arguments, want at most 0"}
        assert by_id[6]["result"] == "0x0"

    with_server(test, inference=service)


def test_a_batch_gives_async_methods_the_same_refusals_as_single_calls() -> None:
    async def no_inference(server: RPCServer) -> None:
        alone = await server.handle_call(call("ai_inferQuote", 1), None)
        text = await server.handle_text(json.dumps([call("ai_inferQuote", 1), call("eth_chainId", 2)]))
        assert text is not None
        in_batch = json.loads(text)[0]
        assert alone == in_batch
        assert in_batch["error"]["code"] == -32601 and "serves no inference" in in_batch["error"]["message"]

    with_server(no_inference)

    async def not_served(server: RPCServer) -> None:
        text = await server.handle_text(json.dumps([call("ai_inferQuote", 1), call("eth_chainId", 2)]))
        assert text is not None
        refused, chain_id = json.loads(text)
        assert refused["error"]["code"] == -32601 and "does not exist" in refused["error"]["message"]
        assert "result" in chain_id

    with_server(not_served, namespaces=("eth",), inference=ReadySidecar("127.0.0.1:9", KEY, price=1))


def test_a_notification_to_an_async_method_gets_no_answer() -> None:
    service = ReadySidecar("127.0.0.1:9", KEY, price=1)

    async def test(server: RPCServer) -> None:
        note = {"jsonrpc": "2.0", "method": "ai_inferQuote", "params": []}
        assert await server.handle_text(json.dumps(note)) is None
        text = await server.handle_text(json.dumps([note, call("eth_chainId", 2)]))
        assert text is not None and [r["id"] for r in json.loads(text)] == [2]

    with_server(test, inference=service)

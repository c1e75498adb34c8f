"""``ai_trainQuote``, ``ai_train`` and ``ai_getTrainingJob`` refuse hostile input before any work,
each with a clear JSON-RPC error: malformed requests, recipes and signatures (-32602), requests
this node would not be paid for (wrong chain, validator, price, deadline, signer: -32602; an
unstaked validator: -32000), a full queue (-32005). In process, with a real in-memory chain and
worker; the training service is a stand-in whose sidecar answers with a base model (no sidecar
process in a unit test; tests/integration/ai/test_train.py runs the real one)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from eth_keys import keys
from eth_utils import keccak

from ai_precompiles import typed_data
from genesis import dev_genesis
from node.chain.assembly import assemble
from node.rpc.server import RPCServer, RPCSettings
from node.training import TrainingService
from node.worker import ChainWorker
from state import Ledger, MemoryStore
from tests.unit.node.test_training import make_job

KEY = b"\x07" * 32
ADDRESS = "0x" + keys.PrivateKey(KEY).public_key.to_canonical_address().hex()
BUILDER_KEY = b"\x09" * 32
BUILDER = "0x" + keys.PrivateKey(BUILDER_KEY).public_key.to_canonical_address().hex()
BASE = "0x" + "ab" * 32
RECIPE = '{"seed": 1}'
PRICE = 10**16


class ServingSidecar(TrainingService):
    """The service with its one read of the sidecar answered: it serves base model BASE."""

    def sidecar_base(self) -> str:
        return BASE


def serve(test: Any, training: TrainingService | None) -> None:
    ledger = Ledger(MemoryStore(), dev_genesis(accounts=2))
    core = assemble(ledger).core
    worker = ChainWorker("unit-chain")
    reads = ChainWorker("unit-read")

    async def main() -> None:
        server = RPCServer(core, worker, RPCSettings(("eth", "ai")), reads, training=training)

        async def call(method: str, *params: Any) -> dict[str, Any]:
            reply = await server.handle_call({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                                             None)
            assert reply is not None
            return reply

        await test(call, core)

    try:
        trio.run(main)
    finally:
        worker.stop()
        reads.stop()


def wire(chain_id: int, now: int, **changes: Any) -> dict[str, Any]:
    out = {"builder": BUILDER, "validator": ADDRESS, "parentId": 1, "datanetIds": [1], "datanetVersions": [1],
           "hyperParamsHash": "0x" + keccak(text=RECIPE).hex(), "license": "apache-2.0", "maxFee": hex(PRICE),
           "nonce": "0x1", "deadline": hex(now + 7200), "chainId": hex(chain_id)}
    out.update(changes)
    return out


def sign(request: dict[str, Any], chain_id: int, key: bytes = BUILDER_KEY) -> str:
    snake = {"builder": bytes.fromhex(request["builder"][2:]), "validator": bytes.fromhex(request["validator"][2:]),
             "parent_id": request["parentId"], "datanet_ids": request["datanetIds"],
             "datanet_versions": request["datanetVersions"],
             "hyper_params_hash": bytes.fromhex(request["hyperParamsHash"][2:]), "license": request["license"],
             "max_fee": int(request["maxFee"], 16), "nonce": int(request["nonce"], 16),
             "deadline": int(request["deadline"], 16), "chain_id": int(request["chainId"], 16)}
    return "0x" + typed_data.sign(typed_data.training_request_digest(snake, chain_id), key).hex()


def test_the_quote_names_the_validator_price_base_model_and_limits() -> None:
    async def test(call: Any, core: Any) -> None:
        quote = (await call("ai_trainQuote"))["result"]
        assert quote["validator"] == ADDRESS and quote["price"] == hex(PRICE) and quote["ready"] is True
        assert quote["chainId"] == hex(core.ledger.chain_id)
        assert quote["baseModel"] == {"weightsHash": BASE, "id": None}  # not registered on this chain
        assert quote["limits"]["minDeadlineSeconds"] == 1800 + 30 and quote["limits"]["jobsPerBuilder"] == 1
        assert (await call("ai_trainQuote", "extra"))["error"]["code"] == -32602

    serve(test, ServingSidecar("127.0.0.1:9", KEY, price=PRICE))


def test_a_node_without_a_training_service_says_so() -> None:
    async def test(call: Any, core: Any) -> None:
        refused = await call("ai_trainQuote")
        assert refused["error"]["code"] == -32601 and "trains nothing" in refused["error"]["message"]
        assert (await call("ai_train", {}, "0x", "{}"))["error"]["code"] == -32601
        unknown = await call("ai_getTrainingJob", "0x" + "00" * 32)  # the chain is asked instead
        assert unknown["error"]["code"] == -32001

    serve(test, None)


HOSTILE = [
    (lambda w: "not an object", "0x" + "00" * 65, RECIPE, "expected the training request object"),
    (lambda w: {**w, "builder": "0x1234"}, None, RECIPE, "0.builder"),
    (lambda w: {**w, "parentId": -1}, None, RECIPE, "0.parentId"),
    (lambda w: {**w, "datanetIds": "1"}, None, RECIPE, "0.datanetIds"),
    (lambda w: {**w, "datanetIds": list(range(257))}, None, RECIPE, "at most 256"),
    (lambda w: {**w, "datanetVersions": ["0xzz"]}, None, RECIPE, "0.datanetVersions[0]"),
    (lambda w: {**w, "hyperParamsHash": "0x00"}, None, RECIPE, "0.hyperParamsHash"),
    (lambda w: {**w, "license": 5}, None, RECIPE, "0.license"),
    (lambda w: {**w, "nonce": "0x" + "f" * 65}, None, RECIPE, "0.nonce"),
    (lambda w: w, "0x1234", RECIPE, "a signature is 65 bytes"),
    (lambda w: w, "0x" + "00" * 65, {"seed": 1}, "recipe as JSON text"),
    (lambda w: w, "0x" + "00" * 65, '{"seed": 2}', "does not hash to the request's hyperParamsHash"),
    (lambda w: w, "0x" + "00" * 65, '{"seed": 1,', "not one JSON object"),
    (lambda w: w, "0x" + "00" * 65, '{"seed": 1, "shell": "rm -rf /"}', "not a training hyper-parameter"),
]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_malformed_input_is_refused_before_any_work(index: int) -> None:
    change, signature, recipe, reason = HOSTILE[index]

    async def test(call: Any, core: Any) -> None:
        request = change(wire(core.ledger.chain_id, core.now()))
        sig = signature if signature is not None else "0x" + "00" * 65
        reply = await call("ai_train", request, sig, recipe)
        assert reply["error"]["code"] == -32602, reply
        assert reason in reply["error"]["message"], reply["error"]["message"]

    serve(test, ServingSidecar("127.0.0.1:9", KEY, price=PRICE))


def test_requests_this_node_would_not_be_paid_for_are_refused() -> None:
    async def test(call: Any, core: Any) -> None:
        chain_id, now = core.ledger.chain_id, core.now()

        async def refused(request: dict[str, Any], signer: bytes = BUILDER_KEY, chain: int = chain_id) -> Any:
            reply = await call("ai_train", request, sign(request, chain, signer), RECIPE)
            assert "error" in reply, reply
            return reply["error"]

        err = await refused(wire(chain_id, now, chainId=hex(1)), chain=1)
        assert err["code"] == -32602 and "the request is for chain 1" in err["message"]
        err = await refused(wire(chain_id, now, validator=BUILDER))
        assert err["code"] == -32602 and f"this node trains as {ADDRESS}" in err["message"]
        err = await refused(wire(chain_id, now, maxFee=hex(PRICE - 1)))
        assert err["code"] == -32602 and f"below this node's price {PRICE}" in err["message"]
        err = await refused(wire(chain_id, now, deadline=hex(now + 600)))
        assert err["code"] == -32602 and "deadline leaves less than 1830 s" in err["message"]
        err = await refused(wire(chain_id, now, datanetIds=[1, 1], datanetVersions=[1, 2]))
        assert err["code"] == -32602 and "a datanet is named twice" in err["message"]
        err = await refused(wire(chain_id, now, datanetIds=[], datanetVersions=[]))
        assert err["code"] == -32602 and "non-zero number of versions" in err["message"]
        err = await refused(wire(chain_id, now), signer=b"\x0a" * 32)
        assert err["code"] == -32602 and "bad builder signature" in err["message"]
        # well formed and signed: the first state rule this bare chain breaks
        err = await refused(wire(chain_id, now))
        assert err["code"] == -32000 and "validator is not staked" in err["message"]

    serve(test, ServingSidecar("127.0.0.1:9", KEY, price=PRICE))


def test_a_full_queue_refuses_before_the_chain_is_asked() -> None:
    service = ServingSidecar("127.0.0.1:9", KEY, price=PRICE, max_jobs=2)
    for builder in (1, 2):
        service.admit(make_job(service, builder))

    async def test(call: Any, core: Any) -> None:
        request = wire(core.ledger.chain_id, core.now())
        reply = await call("ai_train", request, "0x" + "00" * 65, RECIPE)  # a bad signature, never looked at
        assert reply["error"]["code"] == -32005 and "its most" in reply["error"]["message"]
        job_id = "0x" + next(iter(service.jobs)).hex()
        job = (await call("ai_getTrainingJob", job_id))["result"]
        assert job["status"] == "queued" and job["queuePosition"] == 0 and job["id"] == job_id
        assert json.loads(json.dumps(job)) == job

    serve(test, service)

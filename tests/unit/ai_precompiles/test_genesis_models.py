"""Base models registered in genesis (``ai.baseModels``): laid out exactly as a registration
transaction lays them out, so every read and every later registration sees them as such; a bad
entry is refused with the field at fault."""

from __future__ import annotations

import pytest
from eth_utils import keccak

import ai_precompiles
from ai_precompiles.addresses import MODEL_REGISTRY
from ai_precompiles.errors import InvalidArgument
from ai_precompiles.registry import MAX_GENESIS_MODELS, genesis_storage
from tests.unit.ai_precompiles.ai_harness import AIChain, Reverted

WEIGHTS, CONFIG, TOKENIZER = keccak(text="w"), keccak(text="c"), keccak(text="t")


def entry(author: bytes, weights: bytes = WEIGHTS, **changes: str) -> dict[str, str]:
    return {"weightsHash": "0x" + weights.hex(), "configHash": "0x" + CONFIG.hex(),
            "tokenizerHash": "0x" + TOKENIZER.hex(), "license": "apache-2.0", "author": "0x" + author.hex(),
            **changes}


def test_a_genesis_base_model_reads_as_one_registered_by_a_transaction() -> None:
    author = AIChain(n_keys=1).addr(0)
    genesis = AIChain({"baseModels": [entry(author)]}, n_keys=2)
    by_tx = AIChain(n_keys=2)
    assert by_tx.addr(0) == author
    by_tx.send(0, "ModelRegistry", "registerBaseModel", WEIGHTS, CONFIG, TOKENIZER, "apache-2.0")
    from_genesis = genesis.call("ModelRegistry", "getModel", 1)
    from_tx = by_tx.call("ModelRegistry", "getModel", 1)
    assert from_genesis["created_block"] == 0 and from_tx["created_block"] == 1
    assert {**from_genesis, "created_block": 1} == from_tx
    assert genesis.call("ModelRegistry", "modelCount") == 1
    # The weights hash is claimed in genesis as by a registration: it cannot be registered again,
    # and the next model takes id 2 (an adapter on the genesis base works as on any base).
    with pytest.raises(Reverted, match="already registered"):
        genesis.send(1, "ModelRegistry", "registerBaseModel", WEIGHTS, CONFIG, TOKENIZER, "x")
    genesis.send(1, "ModelRegistry", "registerBaseModel", keccak(text="other"), CONFIG, TOKENIZER, "x")
    assert genesis.call("ModelRegistry", "modelCount") == 2


def test_several_genesis_models_take_ids_in_order() -> None:
    author = b"\x11" * 20
    storage = genesis_storage([entry(author), entry(author, keccak(text="second"))])
    accounts = ai_precompiles.genesis_accounts({"baseModels": [entry(author), entry(author, keccak(text="second"))]})
    assert accounts[MODEL_REGISTRY]["storage"] == storage and storage
    chain = AIChain({"baseModels": [entry(author), entry(author, keccak(text="second"))]}, n_keys=1)
    assert chain.call("ModelRegistry", "getModel", 2)["weights_hash"] == keccak(text="second")


@pytest.mark.parametrize("models, message", [
    ("not a list", "must be a list"),
    ([entry(b"\x11" * 20)] * 2, "already registered"),
    ([{**entry(b"\x11" * 20), "extra": "1"}], "must have exactly"),
    ([{k: v for k, v in entry(b"\x11" * 20).items() if k != "license"}], "must have exactly"),
    ([entry(b"\x11" * 20, weightsHash="0x1234")], "weightsHash must be 0x and 32 bytes"),
    ([entry(b"\x11" * 20, configHash="zz")], "configHash must be 0x and 32 bytes"),
    ([{**entry(b"\x11" * 20), "author": "0x" + "gg" * 20}], "author must be 0x and 20 bytes"),
    ([entry(b"\x11" * 20, weightsHash="0x" + "00" * 32)], "weights hash is zero"),
    ([{**entry(b"\x11" * 20), "license": 7}], "license must be a string"),
    ([{**entry(b"\x11" * 20), "license": "x" * 10_000}], "license too long"),
    ([entry(b"\x11" * 20, keccak(i.to_bytes(2, "big"))) for i in range(MAX_GENESIS_MODELS + 1)], "at most"),
])
def test_a_bad_genesis_model_is_refused_with_its_field(models: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ai_precompiles.genesis_accounts({"baseModels": models})

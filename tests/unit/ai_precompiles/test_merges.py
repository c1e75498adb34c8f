"""Adapter merges (issue 22): ``ModelRegistry.registerMergedAdapter`` records a merge of 2..16
adapters with its recipe hash, a receipt on it may name its parents' contributions and pays its
parents' authors, every refusal reverts with its reason and changes no AI state, only CALL
reaches it, and its gas and its receipts' gas stay flat however deep the parents' ancestry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import keccak

from ai_precompiles import load_abi as ap_abi
from ai_precompiles import registry
from ai_precompiles.addresses import MODEL_REGISTRY
from ai_precompiles.errors import decode_revert_reason
from ai_precompiles.registry import adapter_contribution_root
from tests.unit.ai_precompiles.ai_harness import Reverted, Sent
from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    BASE_AUTHOR,
    OWNER,
    USER,
    VALIDATOR,
    World,
    build_world,
)
from tests.unit.ai_precompiles.challenge_world import deploy_probe, probe_data

pytestmark = pytest.mark.xdist_group("merges")

STRANGER = 10
hashes = iter(range(1, 1_000_000))


def fresh(label: str) -> bytes:
    return keccak(text=f"{label} {next(hashes)}")


def add_adapter(w: World, version: int = 1, parent: int | None = None, author: int = ADAPTER_AUTHOR) -> int:
    c = w.c
    spec = {"parent_id": parent or w.base, "datanet_ids": [w.datanet], "datanet_versions": [version],
            "contribution_root": adapter_contribution_root(c.state, [w.datanet], [version]),
            "hyper_params_hash": fresh("hp"), "weights_hash": fresh("w"),
            "attribution_index_hash": fresh("idx"), "manifest_hash": fresh("m"),
            "validator": c.addr(VALIDATOR), "license": "apache-2.0"}
    return int(c.send(author, "ModelRegistry", "registerAdapter", spec).result)


def recipe(parents: list[int], weights: list[int] | None = None, method: int = registry.LINEAR,
           density: int = 0, seed: int = 0) -> dict[str, Any]:
    return {"parent_ids": parents, "weights_bp": weights or [10_000 // len(parents)] * len(parents),
            "method": method, "density_bp": density, "seed": seed}


def merge(w: World, r: dict[str, Any], sender: int = VALIDATOR, weights_hash: bytes | None = None,
          index: bytes | None = None, manifest: bytes | None = None, license: str = "apache-2.0") -> Sent:
    return w.c.send(sender, "ModelRegistry", "registerMergedAdapter", r, weights_hash or fresh("merged w"),
                    index or fresh("merged idx"), manifest or fresh("merged m"), license)


@pytest.fixture(scope="module")
def world() -> World:
    w = build_world(n_keys=11)
    c = w.c
    c.send(OWNER, "Datanets", "publishVersion", w.datanet)  # version 2 covers the late contribution
    w.adapter3 = add_adapter(w, version=2)  # type: ignore[attr-defined]
    return w


def assert_refused(w: World, reason: str, action: Callable[[], Any]) -> None:
    before = w.c.ai_snapshot()
    with pytest.raises(Reverted) as info:
        action()
    assert reason in (info.value.reason or ""), info.value.reason
    assert w.c.ai_snapshot() == before


def test_a_validator_registers_a_merge(world: World) -> None:
    w, c = world, world.c
    a3 = w.adapter3  # type: ignore[attr-defined]
    r = recipe([w.adapter1, a3], [7000, 3000])
    weights = fresh("merged w")
    sent = merge(w, r, weights_hash=weights)
    mid = int(sent.result)
    m = c.call("ModelRegistry", "getModel", mid)
    expected_hash = keccak(encode(["(uint256[],uint256[],uint8,uint256,uint256)"],
                                  [([w.adapter1, a3], [7000, 3000], 1, 0, 0)]))
    assert m["kind"] == registry.ADAPTER and m["parent_id"] == w.adapter1 and m["base_model_id"] == w.base
    assert m["author"] == m["validator"] == c.addr(VALIDATOR) and m["weights_hash"] == weights
    assert m["hyper_params_hash"] == expected_hash == c.call("ModelRegistry", "mergeRecipeHash", r)
    # its data is its parents' flattened: version 2 covers version 1 of the same datanet
    assert list(m["datanet_ids"]) == [w.datanet] and list(m["datanet_versions"]) == [2]
    got = c.call("ModelRegistry", "getMerge", mid)
    assert list(got["parent_ids"]) == [w.adapter1, a3] and list(got["weights_bp"]) == [7000, 3000]
    assert got["recipe_hash"] == expected_hash and got["method"] == 1
    assert list(c.call("ModelRegistry", "getMerge", w.adapter1)["parent_ids"]) == []
    for p in (w.adapter1, a3):
        assert mid in c.call("ModelRegistry", "getModel", p)["children"]
    events = ap_abi("ModelRegistry").events
    (merged,) = [log for log in sent.logs if log.topics[0] == events["AdapterMerged"].topic0]
    assert merged.topics[1] == mid and merged.topics[3] == int.from_bytes(expected_hash, "big")
    assert any(log.topics[0] == events["AdapterRegistered"].topic0 for log in sent.logs)
    lineage = registry.get_lineage(c.state, mid)
    assert lineage is not None
    assert [p["id"] for p in lineage["path"][0]["merge"]["parents"]] == [w.adapter1, a3]
    assert lineage["path"][0]["merge"]["parents"][0]["path"] == [w.adapter1, w.base]
    authors = {a.lower() for a in lineage["authors"]}
    assert {"0x" + c.addr(k).hex() for k in (VALIDATOR, BASE_AUTHOR, ADAPTER_AUTHOR)} <= authors


def test_a_receipt_on_a_merge_names_its_parents_data_and_pays_their_authors(world: World) -> None:
    w, c = world, world.c
    a3 = w.adapter3  # type: ignore[attr-defined]
    mid = int(merge(w, recipe([w.adapter1, a3])).result)
    assert c.call("ModelRegistry", "inLineage", mid, w.late)  # adapter3 trained on it
    assert not c.call("ModelRegistry", "inLineage", mid, w.rejected)
    fee = 10**15
    req = w.request(mid, fee)
    with pytest.raises(Reverted, match="not in the adapter's lineage"):
        c.send(USER, "Inference", "submitReceipt", *w.receipt_args(req, [w.rejected], [10_000], fee))
    req = w.request(mid, fee)
    before = {k: c.call("Rewards", "pending", c.addr(k)) for k in (ADAPTER_AUTHOR, BASE_AUTHOR)}
    sent = c.send(USER, "Inference", "submitReceipt",
                  *w.receipt_args(req, [w.contributions[0], w.late], [6000, 4000], fee))
    rid = int(sent.result)
    after = {k: c.call("Rewards", "pending", c.addr(k)) for k in (ADAPTER_AUTHOR, BASE_AUTHOR)}
    # lineage: the merge's two parents' authors (BASE_AUTHOR made adapter1) and the base's author
    lineage_pool = fee * 1000 // 10_000
    assert after[ADAPTER_AUTHOR] - before[ADAPTER_AUTHOR] == lineage_pool // 3
    assert after[BASE_AUTHOR] - before[BASE_AUTHOR] == 2 * (lineage_pool // 3)
    assert w.settle(rid) == 1  # settles as it was held (payouts_of reads the same authors)


def test_an_adapter_on_a_merge_inherits_its_data(world: World) -> None:
    w, c = world, world.c
    mid = int(merge(w, recipe([w.adapter1, w.adapter3])).result)  # type: ignore[attr-defined]
    child = add_adapter(w, version=1, parent=mid)
    assert c.call("ModelRegistry", "inLineage", child, w.late)
    assert list(c.call("ModelRegistry", "getLineage", child)) == [child, mid]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda w: recipe([w.adapter1]), "a merge has 2 to 16 parents, not 1"),
    (lambda w: recipe([w.adapter1] * 17), "a merge has 2 to 16 parents, not 17"),
    (lambda w: recipe([w.adapter1, w.adapter1]), "a parent is named twice"),
    (lambda w: recipe([w.adapter1, w.adapter3], [5000]), "parentIds and weightsBp differ in length"),
    (lambda w: recipe([w.adapter1, w.adapter3], [0, 5000]), "each merge weight must be within [1, 10000] bp"),
    (lambda w: recipe([w.adapter1, w.adapter3], [10_001, 5000]), "each merge weight must be within"),
    (lambda w: recipe([w.adapter1, w.adapter3], method=0), "merge method 0 is not"),
    (lambda w: recipe([w.adapter1, w.adapter3], method=4), "merge method 4 is not"),
    (lambda w: recipe([w.adapter1, w.adapter3], density=5000), "a linear merge has no density"),
    (lambda w: recipe([w.adapter1, w.adapter3], method=2), "densityBp must be within [1, 10000]"),
    (lambda w: recipe([w.adapter1, w.adapter3], method=3, density=10_001), "densityBp must be within"),
    (lambda w: recipe([w.adapter1, w.adapter3], method=2, density=5000, seed=7), "only dare_linear takes a seed"),
    (lambda w: recipe([w.adapter1, 999]), "parent model 999 does not exist"),
    (lambda w: recipe([w.adapter1, w.base]), "is not an adapter"),
])
def test_bad_recipes_are_refused(world: World, change: Callable[[World], dict[str, Any]], reason: str) -> None:
    assert_refused(world, reason, lambda: merge(world, change(world)))


def test_other_refusals(world: World) -> None:
    w, c = world, world.c
    ok = recipe([w.adapter1, w.adapter3])  # type: ignore[attr-defined]
    assert_refused(w, "only a staked validator registers a merge", lambda: merge(w, ok, sender=STRANGER))
    assert_refused(w, "names its manifest and attribution index", lambda: merge(w, ok, manifest=b"\x00" * 32))
    assert_refused(w, "names its manifest and attribution index", lambda: merge(w, ok, index=b"\x00" * 32))
    assert_refused(w, "license too long", lambda: merge(w, ok, license="x" * 10_000))
    assert_refused(w, "weights hash already registered",
                   lambda: merge(w, ok, weights_hash=c.call("ModelRegistry", "getModel", w.adapter1)["weights_hash"]))
    other_base = int(c.send(BASE_AUTHOR, "ModelRegistry", "registerBaseModel", fresh("base2"), fresh("cfg"),
                            fresh("tok"), "mit").result)
    foreign = add_adapter(w, parent=other_base)
    assert_refused(w, "adapters of different base models", lambda: merge(w, recipe([w.adapter1, foreign])))
    retired = add_adapter(w)
    c.send(ADAPTER_AUTHOR, "ModelRegistry", "retireAdapter", retired)
    assert_refused(w, f"parent model {retired} is retired", lambda: merge(w, recipe([w.adapter1, retired])))


def test_sixteen_parents_merge_with_every_method(world: World) -> None:
    w, c = world, world.c
    parents = [add_adapter(w, version=1 + i % 2) for i in range(16)]
    for method, density, seed in ((1, 0, 0), (2, 5000, 0), (3, 2500, 2**64 - 1)):
        mid = int(merge(w, recipe(parents, method=method, density=density, seed=seed)).result)
        got = c.call("ModelRegistry", "getMerge", mid)
        assert list(got["parent_ids"]) == parents and got["method"] == method and got["seed"] == seed


def test_only_call_reaches_it(world: World) -> None:
    """DELEGATECALL would register in the caller's caller's name (the lured validator's), CALLCODE
    likewise; STATICCALL may not write; a contract's own CALL is the contract, which is unstaked."""
    w, c = world, world.c
    probe, abi = deploy_probe(c, STRANGER)
    fn = ap_abi("ModelRegistry").by_name["registerMergedAdapter"]
    data = fn.encode_args(recipe([w.adapter1, w.adapter3]), fresh("w"), fresh("i"), fresh("m"), "mit")  # type: ignore[attr-defined]
    before = c.ai_snapshot()
    for name, args in (("claimAirdrop", (MODEL_REGISTRY, data)),
                       ("delegateMintThenCall", (MODEL_REGISTRY, data, 1, b"")),
                       ("callcodeMintThenCall", (MODEL_REGISTRY, data, 1, 0, b""))):
        sent = c.send_raw(VALIDATOR, probe, probe_data(abi, name, *args))
        assert sent.computation.is_error, name
        assert decode_revert_reason(bytes(sent.computation.output)) == \
            "ModelRegistry: only CALL and STATICCALL may reach a precompile", name
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "staticProbe", MODEL_REGISTRY, data))
    ok, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
    assert not ok and decode_revert_reason(ret) == "state change in a static call"
    view = ap_abi("ModelRegistry").by_name["getMerge"].encode_args(w.adapter1)
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "staticProbe", MODEL_REGISTRY, view))
    assert decode(["bool", "bytes"], bytes(sent.computation.output))[0]
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "callWith", MODEL_REGISTRY, data))
    assert sent.computation.is_error and decode_revert_reason(bytes(sent.computation.output)) == \
        "only a staked validator registers a merge"
    assert c.ai_snapshot() == before


def test_gas_is_flat_in_the_parents_ancestry() -> None:
    """A merge whose first parent has 100 generations of merges above it costs what one with a
    single generation costs, to register and per receipt (1x and 100x): nothing reads beyond the
    direct parents."""
    w = build_world({"registry.max_depth": 128}, n_keys=11)
    c = w.c

    def exec_gas(sent: Sent) -> int:
        return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)

    fee = 10**15

    def receipt_gas(model: int) -> int:
        req = w.request(model, fee)
        return exec_gas(c.send(USER, "Inference", "submitReceipt",
                               *w.receipt_args(req, [w.contributions[0]], [10_000], fee)))

    current = int(merge(w, recipe([w.adapter1, add_adapter(w)])).result)
    gas, receipts = {}, {}
    for generation in range(2, 101):
        sent = merge(w, recipe([current, add_adapter(w)]))
        current = int(sent.result)
        if generation in (2, 3, 100):
            gas[generation] = exec_gas(sent)
            receipts[generation] = receipt_gas(current)
    assert registry.get_model(c.state, current).depth == 101  # type: ignore[union-attr]
    plain = receipt_gas(w.adapter1)
    plain = receipt_gas(w.adapter1)  # the second, as the merges' (first-touch slots are dearer)
    assert gas[3] == gas[100] and receipts[3] == receipts[100], (gas, receipts)
    # a receipt on a merge reads its 2 parents' and the base's authors and pays 4 lineage parties
    assert receipts[100] - plain < 120_000, (plain, receipts)
    assert gas[100] < 1_000_000, gas

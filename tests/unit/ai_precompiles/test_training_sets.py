"""A version's training set as lineages list it (``datanets.version_training_set``): the same ids,
contributors and leaves as reading every contribution whole, three words a contribution on a cold
read, and kept only where the version's root fixes the answer (a version that excluded a
withdrawn contribution is read each time); the cache holds a bounded number of leaves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils import keccak, to_checksum_address

import ai_precompiles as ap
from ai_precompiles import datanets
from ai_precompiles.merkle import merkle_root
from ai_precompiles.registry import adapter_contribution_root
from ai_precompiles.storage import Store
from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    CONTRIB,
    CONTRIB2,
    CUR1,
    CUR2,
    OWNER,
    VALIDATOR,
    World,
    build_world,
)

pytestmark = pytest.mark.xdist_group("training_sets")


class Sets:
    """A datanet of three accepted contributions: version 1 holds all three; the first is then
    withdrawn and version 2 leaves it out (excluded 1); an adapter trained on version 1."""

    def __init__(self) -> None:
        self.w = w = build_world(n_keys=11)
        a = w.c.addr
        self.datanet = int(w.c.send(OWNER, "Datanets", "createDatanet", "sets", "d", "", "MIT",
                                    [a(CUR1), a(CUR2)], 2, 4096).result)
        self.ids = [int(w.c.contribute(who, self.datanet, keccak(text=f"t {i}"), 40 + i, "MIT",
                                       keccak(text=f"m {i}")).result)
                    for i, who in enumerate((CONTRIB, CONTRIB2, CONTRIB))]
        for cid in self.ids:
            w.c.send(CUR1, "Datanets", "curate", cid, True, 0)
            w.c.send(CUR2, "Datanets", "curate", cid, True, 0)
        w.c.send(OWNER, "Datanets", "publishVersion", self.datanet)
        root = adapter_contribution_root(w.c.state, [self.datanet], [1])
        self.adapter = int(w.c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", {
            "parent_id": w.base, "datanet_ids": [self.datanet], "datanet_versions": [1], "contribution_root": root,
            "hyper_params_hash": keccak(text="hp"), "weights_hash": keccak(text="w sets"),
            "attribution_index_hash": keccak(text="i"), "manifest_hash": keccak(text="m"),
            "validator": a(VALIDATOR), "license": "apache-2.0"}).result)
        w.c.send(CONTRIB, "Datanets", "withdrawConsent", self.ids[0])
        w.c.send(OWNER, "Datanets", "publishVersion", self.datanet)


@pytest.fixture(scope="module")
def sets() -> Sets:
    return Sets()


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    datanets._SET_CACHE.clear()
    yield
    datanets._SET_CACHE.clear()


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = Store.get

    def counting(self: Store, key: int) -> int:
        seen.append(key)
        return real(self, key)
    monkeypatch.setattr(Store, "get", counting)
    return seen


def _whole(w: World, datanet_id: int, version: int) -> list[tuple[int, bytes, bytes]]:
    """The training set read the long way: every contribution decoded whole."""
    out = []
    for cid in datanets.version_contribution_ids(w.c.state, datanet_id, version):
        c = datanets.get_contribution(w.c.state, cid)
        assert c is not None
        out.append((cid, c.contributor, c.leaf()))
    return out


def test_the_training_set_equals_the_contributions_read_whole(sets: Sets) -> None:
    for version, ids in ((1, sets.ids), (2, sets.ids[1:])):
        got = datanets.version_training_set(sets.w.c.state, sets.datanet, version)
        assert [(t.contribution_id, t.contributor, t.leaf) for t in got] == _whole(sets.w, sets.datanet, version)
        assert [t.contribution_id for t in got] == ids
    v1 = datanets.get_version(sets.w.c.state, sets.datanet, 1)
    assert v1 is not None and merkle_root([t.leaf for t in datanets.version_training_set(
        sets.w.c.state, sets.datanet, 1)]) == v1.root


def test_a_cold_read_takes_three_words_a_contribution_and_a_warm_one_the_record(
        sets: Sets, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _reads(monkeypatch)
    datanets.version_training_set(sets.w.c.state, sets.datanet, 1)
    cold = len(reads)
    record = len(datanets.Version.__dataclass_fields__)
    assert cold <= record + 1 + 3 * len(sets.ids)  # the version, its existence check, 3 words each
    reads.clear()
    datanets.version_training_set(sets.w.c.state, sets.datanet, 1)
    assert len(reads) <= record + 1


def test_a_version_that_excluded_a_withdrawal_is_read_each_time(sets: Sets, monkeypatch: pytest.MonkeyPatch) -> None:
    datanets.version_training_set(sets.w.c.state, sets.datanet, 2)
    assert not datanets._SET_CACHE  # its root covers the withdrawn leaf too: the root does not fix it
    reads = _reads(monkeypatch)
    again = datanets.version_training_set(sets.w.c.state, sets.datanet, 2)
    assert [t.contribution_id for t in again] == sets.ids[1:]
    assert len(reads) > 3 * len(again)


def test_the_cache_holds_a_bounded_number_of_leaves(sets: Sets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datanets, "_SET_CACHE_LEAVES", 2)
    got = datanets.version_training_set(sets.w.c.state, sets.datanet, 1)
    assert len(got) == 3 and not datanets._SET_CACHE  # larger than the whole cache: answered, not kept
    monkeypatch.setattr(datanets, "_SET_CACHE_LEAVES", 4)
    datanets.version_training_set(sets.w.c.state, sets.datanet, 1)
    assert sum(len(v) for v in datanets._SET_CACHE.values()) == 3


def test_the_lineage_lists_the_set_with_contributors_and_a_matching_root(sets: Sets) -> None:
    for _ in range(2):  # cold, then from the cache: the same answer
        lineage = ap.get_lineage(sets.w.c.state, sets.adapter)
        assert lineage is not None
        step = lineage["path"][0]
        assert step["datanetVersionsDetail"][0]["contributionIds"] == sets.ids
        assert step["contributionRootMatches"] is True
        assert lineage["contributors"] == {
            str(cid): to_checksum_address(c) for cid, c, _ in _whole(sets.w, sets.datanet, 1)}

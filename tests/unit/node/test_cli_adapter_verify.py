"""`adapter verify`'s check that a manifest is the adapter's recipe, alone: a manifest comes from
whoever registered the adapter, so any shape of it is an answer (a list of faults), never a crash."""

from __future__ import annotations

import pytest

from node.cli.model import _manifest_contribution_id, _manifest_faults

W, B, H1, H2 = "ab" * 32, "cd" * 32, "11" * 32, "22" * 32
MODEL = {"weightsHash": "0x" + W}
ON_CHAIN = {1: "0x" + H1, 12: "0x" + H2}


def manifest(**changes: object) -> dict:
    doc = {"artifacts": {"weights": W, "attribution_index": "ee" * 32}, "base_model": {"name": "b", "hash": B},
           "contributions": [{"id": b"1".hex(), "hash": H1, "size": 3}, {"id": b"12".hex(), "hash": H2, "size": 4}]}
    doc.update(changes)
    return doc


def test_the_recipe_of_the_record_has_no_fault() -> None:
    assert _manifest_faults(manifest(), MODEL, "0x" + B, ON_CHAIN) == []


@pytest.mark.parametrize("raw, expected", [
    (b"7".hex(), 7), (b"12".hex(), 12), (b"07".hex(), None), (b"x".hex(), None), ("zz", None), (7, None),
    (b"1" * 30, None), ("", None), (b"-1".hex(), None),
])
def test_contribution_ids_are_the_decimal_on_chain_ids(raw: object, expected: int | None) -> None:
    assert _manifest_contribution_id(raw) == expected


@pytest.mark.parametrize("changes, fault", [
    ({"artifacts": {"weights": "99" * 32}}, "names weights"),
    ({"artifacts": "not an object"}, "names weights"),
    ({"base_model": {"hash": "99" * 32}}, "base weights"),
    ({"base_model": None}, "base weights"),
    ({"contributions": [{"id": b"1".hex(), "hash": H1, "size": 3}]}, "exact training set"),
    ({"contributions": [{"id": b"1".hex(), "hash": H2, "size": 3}, {"id": b"12".hex(), "hash": H2, "size": 4}]},
     "exact training set"),
    ({"contributions": [{"id": b"1".hex(), "hash": H1}, {"id": b"12".hex(), "hash": H2}, {"id": b"12".hex(), "hash": H2}]},
     "exact training set"),
    ({"contributions": [{"id": "zz", "hash": H1}]}, "no on-chain contribution id"),
    ({"contributions": ["not an object"]}, "no on-chain contribution id"),
    ({"contributions": "not a list"}, "no on-chain contribution id"),
    ({"contributions": [{"id": b"1".hex(), "hash": 5}, {"id": b"12".hex(), "hash": H2}]}, "exact training set"),
    ({"contributions": [{"id": b"1".hex(), "hash": H1 + "00" * 10_000}, {"id": b"12".hex(), "hash": H2}]},
     "exact training set"),
    ({"artifacts": {"weights": W + "00" * 10_000}}, "names weights"),
])
def test_a_manifest_that_is_not_the_records_recipe_is_named_for_why(changes: dict, fault: str) -> None:
    faults = _manifest_faults(manifest(**changes), MODEL, "0x" + B, ON_CHAIN)
    assert any(fault in f for f in faults), faults
    assert all(len(f) < 400 for f in faults)  # a huge field is not echoed back whole

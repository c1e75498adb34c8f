"""The package loads lazily and derives its module list from ``addresses.BY_NAME`` alone."""

from __future__ import annotations

import pytest

import ai_precompiles as ap
from ai_precompiles.addresses import BY_NAME
from ai_precompiles.build_abi import MODULES as ABI_MODULES
from tests.support.imports import modules_after


def test_addresses_load_nothing_heavy_and_typed_data_no_py_evm():
    loaded = modules_after("from ai_precompiles.addresses import BY_NAME")
    assert "ai_precompiles" in loaded and not loaded & {"eth", "eth_utils"}
    loaded = modules_after("from ai_precompiles import typed_data")
    assert "ai_precompiles" in loaded and "eth" not in loaded


def test_modules_and_precompiles_follow_by_name():
    assert list(ap.MODULES) == list(BY_NAME) == list(ABI_MODULES)
    assert {name: m.address for name, m in ap.MODULES.items()} == BY_NAME
    assert ap.PRECOMPILES == {m.address: m for m in ap.MODULES.values()}
    assert ap.MODULES is ap.MODULES  # loaded once


def test_every_public_name_resolves():
    for name in ap.__all__:
        assert getattr(ap, name) is not None, name
    from ai_precompiles import get_datanet, inference, typed_data

    assert get_datanet is ap.datanets.get_datanet and inference.PRECOMPILE is ap.MODULES["Inference"]
    assert typed_data.NAME == "ailedger"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        ap.no_such_thing  # noqa: B018
    with pytest.raises(AttributeError, match="sol"):
        ap.sol  # noqa: B018 - a folder of the package, not a module

"""The Solidity interfaces, the ABI JSON and the handlers cannot drift apart."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

import ai_precompiles as ap
from ai_precompiles import challenges, datanets, governance, inference, registry
from ai_precompiles.build_abi import SOLCJS, compile_abis
from ai_precompiles.dispatch import price_param
from ai_precompiles.storage import snake

STRUCTS = {
    ("Datanets", "getDatanet"): datanets.Datanet,
    ("Datanets", "getContribution"): datanets.Contribution,
    ("Datanets", "getVersion"): datanets.Version,
    ("ModelRegistry", "getModel"): registry.Model,
    ("Inference", "getReceipt"): inference.Receipt,
    ("Inference", "getChallenge"): challenges.Challenge,
    ("Governance", "getProposal"): governance.Proposal,
}


def test_every_abi_function_has_a_handler_and_a_price() -> None:
    for name, module in ap.MODULES.items():
        abi = ap.load_abi(name)
        assert set(abi.by_name) == set(module.handlers), name
        for fn in abi.by_name.values():
            assert price_param(fn) in ap.PARAMS, fn.name


def test_every_state_change_has_an_event_with_indexed_ids() -> None:
    for name in ap.MODULES:
        abi = ap.load_abi(name)
        assert abi.events, name
        for ev in abi.events.values():
            assert ev.item["inputs"][0]["indexed"], ev.name


def test_struct_outputs_match_records() -> None:
    for (module, fn), record in STRUCTS.items():
        out = ap.load_abi(module).by_name[fn].item["outputs"][0]
        names = [snake(c["name"]) for c in out["components"]]
        assert names == [f.name for f in dataclasses.fields(record)], (module, fn)


def test_addresses_are_distinct_from_ethereum_precompiles() -> None:
    from eth.vm.forks.prague.computation import PragueComputation

    prague = set(PragueComputation.get_precompiles())
    assert not prague & set(ap.PRECOMPILES)
    assert all(int.from_bytes(a, "big") > 0xFFFF for a in ap.PRECOMPILES)


def test_genesis_accounts_have_nonce_one_and_params() -> None:
    accounts = ap.genesis_accounts({"reward.author_bp": 1000})
    assert set(accounts) == set(ap.PRECOMPILES)
    assert all(a["nonce"] == 1 for a in accounts.values())
    gov = accounts[ap.GOVERNANCE]["storage"]
    assert gov[ap.params.param_slot("reward.author_bp")] == 1000 + 1
    with pytest.raises(ap.errors.InvalidArgument):
        ap.genesis_accounts({"reward.author_bp": 20_000})


@pytest.mark.skipif(not SOLCJS.exists() or shutil.which("node") is None,
                    reason="solc-js (npm) not installed")
def test_abi_json_is_what_solcjs_compiles_from_the_interfaces() -> None:
    compiled = compile_abis()
    for name in ap.MODULES:
        assert compiled[name] == list(ap.load_abi(name).raw), name

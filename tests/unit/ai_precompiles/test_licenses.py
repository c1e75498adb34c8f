"""Licenses and consent that follow lineage (issue 22, item 4).

A contribution names an allow-listed SPDX id whose restrictions (non-commercial, no
derivatives) the chain records; an adapter's effective licence is the OR of its parent's and of
the versions it trained on, stored at registration; a commercial request on a non-commercial
lineage is refused by the receipt precompile; a contributor withdraws consent: nothing new
trains on it, adapters trained on it count it, their new receipts say so. Each refusal is a
revert with its reason that changes no AI state; only CALL reaches withdrawConsent; the gas of
withdrawing, registering and recording a receipt does not grow with withdrawals or data.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak

from ai_precompiles import abi as ap_abi
from ai_precompiles import datanets, licenses
from ai_precompiles.addresses import DATANETS
from ai_precompiles.errors import InvalidArgument, decode_revert_reason
from ai_precompiles.registry import _GenesisStorage, adapter_contribution_root
from ai_precompiles.storage import Store
from tests.unit.ai_precompiles.ai_harness import Reverted, Sent
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
from tests.unit.ai_precompiles.challenge_world import deploy_probe, probe_data

pytestmark = pytest.mark.xdist_group("licenses")

STRANGER = 10


def _contribute(w: World, who: int, datanet: int, text: str, license: str) -> int:
    return int(w.c.contribute(who, datanet, keccak(text=text), 50, license, keccak(text=f"m {text}")).result)


def _accept(w: World, *cids: int) -> None:
    for cid in cids:
        w.c.send(CUR1, "Datanets", "curate", cid, True, 0)
        w.c.send(CUR2, "Datanets", "curate", cid, True, 0)


def _datanet(w: World, name: str) -> int:
    a = w.c.addr
    return int(w.c.send(OWNER, "Datanets", "createDatanet", name, "d", "", "CC-BY-NC-4.0",
                        [a(CUR1), a(CUR2)], 2, 4096).result)


def _spec(w: World, parent: int, datanet_ids: list[int], versions: list[int], tag: str) -> dict[str, Any]:
    root = adapter_contribution_root(w.c.state, datanet_ids, versions) if datanet_ids else b"\x00" * 32
    return {"parent_id": parent, "datanet_ids": datanet_ids, "datanet_versions": versions,
            "contribution_root": root, "hyper_params_hash": keccak(text=f"hp {tag}"),
            "weights_hash": keccak(text=f"w {tag}"), "attribution_index_hash": keccak(text=f"i {tag}"),
            "manifest_hash": keccak(text=f"m {tag}"), "validator": w.c.addr(VALIDATOR), "license": "apache-2.0"}


def _refused(w: World, key: int, module: str, fn: str, *args: Any) -> str:
    before = w.c.ai_snapshot()
    with pytest.raises(Reverted) as exc:
        w.c.send(key, module, fn, *args)
    assert w.c.ai_snapshot() == before
    return str(exc.value.reason)


class Lic:
    """The module's world: a non-commercial datanet (nc), a no-derivatives one (nd), adapters."""

    def __init__(self) -> None:
        self.w = w = build_world(n_keys=11)
        self.nc = _datanet(w, "nc")
        self.nc_ids = [_contribute(w, CONTRIB, self.nc, "nc 0", "cc-by-nc-4.0"),
                       _contribute(w, CONTRIB2, self.nc, "nc 1", "MIT")]
        _accept(w, *self.nc_ids)
        w.c.send(OWNER, "Datanets", "publishVersion", self.nc)
        self.nd = _datanet(w, "nd")
        self.nd_ids = [_contribute(w, CONTRIB, self.nd, "nd 0", "CC-BY-ND-4.0")]
        _accept(w, *self.nd_ids)
        w.c.send(OWNER, "Datanets", "publishVersion", self.nd)
        self.a_nc = int(w.c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter",
                                 _spec(w, w.base, [self.nc], [1], "a_nc")).result)
        self.child = int(w.c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter",
                                  _spec(w, self.a_nc, [], [], "child")).result)
        self.a_nd = int(w.c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter",
                                 _spec(w, w.base, [self.nd], [1], "a_nd")).result)


@pytest.fixture(scope="module")
def lic() -> Lic:
    return Lic()


def _receipt(w: World, adapter: int, cid: int, commercial: bool) -> Sent:
    req = w.request(adapter, max_fee=1000, commercial=commercial)
    return w.c.send(VALIDATOR, "Inference", "submitReceipt", *w.receipt_args(req, [cid], [10_000], 500))


def test_a_license_is_an_allow_listed_spdx_id(lic: Lic) -> None:
    w = lic.w
    c = w.c.call("Datanets", "getContribution", lic.nc_ids[0])
    assert (c["license"], c["terms"]) == ("CC-BY-NC-4.0", licenses.NON_COMMERCIAL)  # canonical case
    assert w.c.call("Datanets", "getContribution", lic.nc_ids[1])["terms"] == 0
    assert w.c.call("Datanets", "getContribution", lic.nd_ids[0])["terms"] == licenses.NO_DERIVATIVES
    for bad in ("my own terms", "CC-BY-NC", "MIT OR Apache-2.0", "x" * 2000, ""):
        salt = w.c.commit(CONTRIB, lic.nc, keccak(text=f"bad {bad}"), 5, bad, keccak(text="m"))
        w.c.mine()
        reason = _refused(w, CONTRIB, "Datanets", "contribute", lic.nc, keccak(text=f"bad {bad}"), 5, bad,
                          keccak(text="m"), salt)
        assert reason.startswith("license ") and "is not an allow-listed SPDX id" in reason, reason
    with pytest.raises(InvalidArgument):
        licenses.canonical("LicenseRef-anything")
    assert licenses.canonical("cc0-1.0") == "CC0-1.0" and licenses.terms_of("Llama-3 community") == 0


def test_the_effective_licence_is_the_lineages_most_restrictive(lic: Lic) -> None:
    w = lic.w
    model = w.c.call("ModelRegistry", "getModel", lic.a_nc)
    assert model["license_terms"] == licenses.NON_COMMERCIAL  # one NC contribution among two
    assert w.c.call("ModelRegistry", "getModel", lic.child)["license_terms"] == licenses.NON_COMMERCIAL
    assert w.c.call("ModelRegistry", "getModel", lic.a_nd)["license_terms"] == licenses.NO_DERIVATIVES
    assert w.c.call("ModelRegistry", "getModel", w.adapter1)["license_terms"] == 0
    assert w.c.call("Datanets", "versionTerms", lic.nc, 1) == licenses.NON_COMMERCIAL
    assert w.c.call("Datanets", "versionTerms", w.datanet, 1) == 0
    from ai_precompiles.registry import get_lineage, get_model, model_json

    lineage = get_lineage(w.c.state, lic.child)
    assert lineage is not None
    assert lineage["effectiveLicense"] == {"commercialUse": False, "derivatives": True}
    assert [s["effectiveLicense"]["commercialUse"] for s in lineage["path"]] == [False, False, True]
    found = get_model(w.c.state, lic.a_nd)
    assert found is not None
    m = model_json(w.c.state, found)
    assert m["effectiveLicense"] == {"commercialUse": True, "derivatives": False}


def test_no_derivative_of_a_no_derivatives_lineage(lic: Lic) -> None:
    reason = _refused(lic.w, ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter",
                      _spec(lic.w, lic.a_nd, [], [], "nd child"))
    assert reason == f"parent model {lic.a_nd}'s licence allows no derivatives"


def _merge_args(w: World, parents: list[int], tag: str) -> tuple[Any, ...]:
    recipe = {"parent_ids": parents, "weights_bp": [5000] * len(parents), "method": 1, "density_bp": 0, "seed": 0}
    return (recipe, keccak(text=f"merged w {tag}"), keccak(text=f"merged i {tag}"), keccak(text=f"merged m {tag}"),
            "apache-2.0")


def test_a_merge_takes_its_parents_most_restrictive_licence(lic: Lic) -> None:
    """A merge derives from every parent: a non-commercial parent makes the merge non-commercial
    (a commercial request on it is refused), and a no-derivatives parent cannot be merged."""
    w = lic.w
    merged = int(w.c.send(VALIDATOR, "ModelRegistry", "registerMergedAdapter",
                          *_merge_args(w, [w.adapter1, lic.a_nc], "nc")).result)
    assert w.c.call("ModelRegistry", "getModel", merged)["license_terms"] == licenses.NON_COMMERCIAL
    req = w.request(merged, max_fee=1000, commercial=True)
    reason = _refused(w, VALIDATOR, "Inference", "submitReceipt", *w.receipt_args(req, [lic.nc_ids[1]], [10_000], 500))
    assert "allows no commercial use" in reason, reason
    reason = _refused(w, VALIDATOR, "ModelRegistry", "registerMergedAdapter",
                      *_merge_args(w, [w.adapter1, lic.a_nd], "nd"))
    assert reason == f"parent model {lic.a_nd}'s licence allows no derivatives"


def test_a_commercial_request_on_a_non_commercial_lineage_is_refused(lic: Lic) -> None:
    w = lic.w
    for adapter in (lic.a_nc, lic.child):
        req = w.request(adapter, max_fee=1000, commercial=True)
        reason = _refused(w, VALIDATOR, "Inference", "submitReceipt",
                          *w.receipt_args(req, [lic.nc_ids[1]], [10_000], 500))
        assert reason == f"adapter {adapter}'s licence allows no commercial use: the request declares commercial use"
    # a receipt cannot flip the signed use: the user's signature covers it
    req = w.request(lic.a_nc, max_fee=1000, commercial=False)
    args = list(w.receipt_args(req, [lic.nc_ids[1]], [10_000], 500))
    args[0] = {**args[0], "commercial": True}
    assert "bad user signature" in _refused(w, VALIDATOR, "Inference", "submitReceipt", *args)
    served = _receipt(w, lic.a_nc, lic.nc_ids[0], commercial=False)
    r = w.c.call("Inference", "getReceipt", int(served.result))
    withdrawn = bool(w.c.call("Datanets", "getContribution", lic.nc_ids[0])["withdrawn_block"])
    assert (r["commercial"], r["consent_withdrawn"]) == (False, withdrawn)  # whichever test ran first
    commercial = _receipt(w, w.adapter1, w.contributions[0], commercial=True)
    assert w.c.call("Inference", "getReceipt", int(commercial.result))["commercial"] is True


def test_the_native_types_carry_the_licence_and_the_use(lic: Lic) -> None:
    """Type 0x60 carries the SPDX id (checked like the ABI call's), type 0x62 the declared use
    (the chain refuses a commercial one on a non-commercial lineage, as through the ABI)."""
    from state.native import DataContributionTransaction, InferenceReceiptTransaction

    w = lic.w
    for licence, ok in (("cc-by-nc-nd-4.0", True), ("Proprietary", False)):
        h = keccak(text=f"native {licence}")
        salt = w.c.commit(CONTRIB, lic.nd, h, 9, licence, keccak(text="m"))
        w.c.mine()
        sent = w.c.send_native(CONTRIB, DataContributionTransaction, datanet_id=lic.nd, content_hash=h, size=9,
                               license=licence.encode(), metadata_hash=keccak(text="m"), salt=salt)
        assert sent.computation.is_error != ok, licence
        if ok:
            cid = decode(["uint256"], bytes(sent.computation.output))[0]
            c = w.c.call("Datanets", "getContribution", cid)
            assert (c["license"], c["terms"]) == ("CC-BY-NC-ND-4.0", licenses.ALL)
        else:
            assert "is not an allow-listed SPDX id" in str(decode_revert_reason(bytes(sent.computation.output)))
    for commercial in (True, False):
        req, usig, output, engine, ids, weights, fee, vaddr, vsig = w.receipt_args(
            w.request(lic.a_nc, max_fee=1000, commercial=commercial), [lic.nc_ids[1]], [10_000], 500)
        sent = w.c.send_native(
            VALIDATOR, InferenceReceiptTransaction, user=req["user"], adapter_id=req["adapter_id"],
            prompt_hash=req["prompt_hash"], max_tokens=req["max_tokens"], max_fee=req["max_fee"],
            request_nonce=req["nonce"], deadline=req["deadline"], request_chain_id=req["chain_id"],
            commercial=int(commercial), user_signature=usig, output_hash=output, engine_profile=engine,
            contribution_ids=ids, weights_bp=weights, fee=fee, validator=vaddr, validator_signature=vsig)
        assert sent.computation.is_error == commercial
        if commercial:
            assert "allows no commercial use" in str(decode_revert_reason(bytes(sent.computation.output)))
        else:
            rid = decode(["uint256"], bytes(sent.computation.output))[0]
            assert w.c.call("Inference", "getReceipt", rid)["commercial"] is False


def test_only_the_contributor_withdraws_once(lic: Lic) -> None:
    w = lic.w
    assert _refused(w, CONTRIB2, "Datanets", "withdrawConsent", lic.nd_ids[0]) == \
        "only the contributor withdraws consent for its contribution"
    assert _refused(w, CONTRIB, "Datanets", "withdrawConsent", 10**6) == "contribution 1000000 does not exist"


def test_withdrawal_only_through_call(lic: Lic) -> None:
    """DELEGATECALL or CALLCODE would withdraw in the lured contributor's name; STATICCALL may
    not write; a contract's CALL is the contract, which contributed nothing."""
    w, c = lic.w, lic.w.c
    probe, abi = deploy_probe(c, STRANGER)
    data = ap_abi.load("Datanets").by_name["withdrawConsent"].encode_args(lic.nd_ids[0])
    before = c.ai_snapshot()
    for name, args in (("delegateMintThenCall", (DATANETS, data, 1, b"")),
                       ("callcodeMintThenCall", (DATANETS, data, 1, 0, b""))):
        sent = c.send_raw(CONTRIB, probe, probe_data(abi, name, *args))
        assert sent.computation.is_error and decode_revert_reason(bytes(sent.computation.output)) == \
            "Datanets: only CALL and STATICCALL may reach a precompile", name
    sent = c.send_raw(CONTRIB, probe, probe_data(abi, "staticProbe", DATANETS, data))
    ok, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
    assert not ok and decode_revert_reason(ret) == "state change in a static call"
    sent = c.send_raw(CONTRIB, probe, probe_data(abi, "callWith", DATANETS, data))
    assert sent.computation.is_error and decode_revert_reason(bytes(sent.computation.output)) == \
        "only the contributor withdraws consent for its contribution"
    assert c.ai_snapshot() == before
    assert w.c.call("Datanets", "getContribution", lic.nd_ids[0])["withdrawn_block"] == 0


def test_withdrawn_consent_stops_training_and_marks_adapters_and_receipts(lic: Lic) -> None:
    w = lic.w
    before = _receipt(w, lic.a_nc, lic.nc_ids[1], commercial=False)
    sent = w.c.send(CONTRIB, "Datanets", "withdrawConsent", lic.nc_ids[0])
    event = ap_abi.load("Datanets").events["ConsentWithdrawn"]
    assert [lg.topics[0] for lg in sent.logs] == [event.topic0]
    assert w.c.call("Datanets", "getContribution", lic.nc_ids[0])["withdrawn_block"] == sent.block.header.block_number
    assert _refused(w, CONTRIB, "Datanets", "withdrawConsent", lic.nc_ids[0]) == "consent already withdrawn"
    assert w.c.call("Datanets", "withdrawnInVersion", lic.nc, 1) == 1
    # nothing new trains on it: neither on a version covering it nor on top of a model that did
    reason = _refused(w, ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", _spec(w, w.base, [lic.nc], [1], "again"))
    assert reason == (f"datanet {lic.nc} version 1 covers a contribution whose consent was withdrawn since it "
                      "was published (a newer version leaves it out)")
    for parent in (lic.a_nc, lic.child):
        reason = _refused(w, ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", _spec(w, parent, [], [], f"on {parent}"))
        assert reason == f"parent model {parent}'s lineage trained on a contribution whose consent was withdrawn"
    # the adapters trained on it are marked, without a write to any of them
    assert [w.c.call("ModelRegistry", "withdrawnInLineage", m) for m in (lic.a_nc, lic.child, lic.a_nd, w.base)] == \
        [1, 1, 0, 0]
    # their receipts say so from now on; the earlier receipt keeps what was true when recorded
    after = _receipt(w, lic.child, lic.nc_ids[1], commercial=False)
    assert w.c.call("Inference", "getReceipt", int(after.result))["consent_withdrawn"] is True
    assert w.c.call("Inference", "getReceipt", int(before.result))["consent_withdrawn"] is False
    other = _receipt(w, w.adapter1, w.contributions[0], commercial=False)
    assert w.c.call("Inference", "getReceipt", int(other.result))["consent_withdrawn"] is False

    # the datanet is not frozen: a version published now leaves the contribution out
    w.c.send(OWNER, "Datanets", "publishVersion", lic.nc)
    assert _refused(w, OWNER, "Datanets", "publishVersion", lic.nc) == \
        "no contributions accepted or withdrawn since the last version"
    v2 = w.c.call("Datanets", "getVersion", lic.nc, 2)
    assert (v2["count"], v2["excluded"], v2["withdrawn_total"]) == (2, 1, 1)
    assert datanets.version_contribution_ids(w.c.state, lic.nc, 2) == [lic.nc_ids[1]]
    assert datanets.version_contribution_ids(w.c.state, lic.nc, 1) == lic.nc_ids  # what its adapters trained on
    assert w.c.call("Datanets", "withdrawnInVersion", lic.nc, 2) == 0
    fresh = int(w.c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", _spec(w, w.base, [lic.nc], [2], "v2")).result)
    assert w.c.call("ModelRegistry", "withdrawnInLineage", fresh) == 0
    assert w.c.call("ModelRegistry", "inLineage", fresh, lic.nc_ids[0]) is False
    assert w.c.call("ModelRegistry", "inLineage", fresh, lic.nc_ids[1]) is True
    assert w.c.call("ModelRegistry", "inLineage", lic.a_nc, lic.nc_ids[0]) is True  # it did train on it
    req = w.request(fresh, max_fee=1000)
    assert _refused(w, VALIDATOR, "Inference", "submitReceipt", *w.receipt_args(req, [lic.nc_ids[0]], [10_000], 500)) \
        == f"contribution {lic.nc_ids[0]} is not in the adapter's lineage"
    served = _receipt(w, fresh, lic.nc_ids[1], commercial=False)
    assert w.c.call("Inference", "getReceipt", int(served.result))["consent_withdrawn"] is False
    # conservative: the licence bits are the whole prefix's, the withdrawn NC contribution included
    assert w.c.call("ModelRegistry", "getModel", fresh)["license_terms"] == licenses.NON_COMMERCIAL


def test_a_withdrawn_pending_contribution_cannot_be_accepted(lic: Lic) -> None:
    w = lic.w
    cid = _contribute(w, CONTRIB2, lic.nd, "pending then withdrawn", "CC0-1.0")
    w.c.send(CONTRIB2, "Datanets", "withdrawConsent", cid)
    assert _refused(w, CUR1, "Datanets", "curate", cid, True, 0) == \
        "the contributor withdrew consent: the contribution cannot be accepted"
    assert w.c.call("Datanets", "withdrawnInVersion", lic.nd, 1) == 0


def test_the_withdrawal_tree_counts_every_prefix() -> None:
    """The Fenwick tree against a plain count, for withdrawals in any order (and the one-read
    answer when a prefix holds none)."""
    rng = random.Random(22)
    store = Store(_GenesisStorage(), DATANETS, writable=True)
    withdrawn: set[int] = set()
    for index in rng.sample(range(300), 60) + [0, 2**20, 2**32 - 1]:
        datanets.mark_withdrawn(store, 7, index)
        withdrawn.add(index)
        for count in [*rng.sample(range(302), 40), 2**20, 2**20 + 1, 2**32]:
            expected = sum(1 for i in withdrawn if i < count)
            assert datanets.withdrawn_in_prefix(store, 7, count) == expected, (index, count)
            assert datanets.version_withdrawn(store, 7, count) == (expected > 0)
    assert datanets.withdrawn_in_prefix(store, 8, 2**32) == 0  # another datanet
    with pytest.raises(Exception, match="beyond the withdrawal tree"):
        datanets.mark_withdrawn(store, 7, 2**32)


def _exec_gas(sent: Sent) -> int:
    return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)


def _gas_at(n: int) -> dict[str, int]:
    """A datanet of ``n + 1`` accepted contributions (every other one non-commercial), version 1
    covering the first alone, then ``max(1, n // 2)`` withdrawals of later ones: the most gas a
    withdrawal took, and the gas of registering on version 1 and of a receipt for it."""
    w = build_world(n_keys=11)
    c = w.c
    d = _datanet(w, "gas")
    texts = [f"g {i}" for i in range(n + 1)]
    lic = ["CC-BY-NC-4.0" if i % 2 else "MIT" for i in range(n + 1)]
    salts = [c.commit(CONTRIB, d, keccak(text=t), 50, lic[i], keccak(text=t)) for i, t in enumerate(texts)]
    c.mine()
    ids = [int(c.send(CONTRIB, "Datanets", "contribute", d, keccak(text=t), 50, lic[i], keccak(text=t),
                      salts[i]).result) for i, t in enumerate(texts)]
    first = ids.pop(0)
    _accept(w, first)
    c.send(OWNER, "Datanets", "publishVersion", d)
    _accept(w, *ids)
    gas = {"withdraw": max(_exec_gas(c.send(CONTRIB, "Datanets", "withdrawConsent", cid))
                           for cid in ids[: max(1, n // 2)])}
    reg = c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", _spec(w, w.base, [d], [1], f"gas {n}"))
    gas["register"] = _exec_gas(reg)
    gas["receipt"] = _exec_gas(_receipt(w, int(reg.result), first, commercial=False))
    return gas


def test_gas_is_flat_in_data_and_withdrawals() -> None:
    """Withdrawing, registering on a clean version and recording a receipt cost the same with 1
    and with 100 contributions and 50 withdrawals (a withdrawal's Fenwick path is at most 33
    words whatever the index; registration and receipts read one word per version)."""
    one, hundred = _gas_at(1), _gas_at(100)
    assert hundred["register"] == one["register"] and hundred["receipt"] == one["receipt"], (one, hundred)
    assert hundred["withdraw"] <= one["withdraw"] + 5 * 22_100, (one, hundred)
    assert max(one["withdraw"], hundred["withdraw"]) < 1_000_000, (one, hundred)
    print("gas at 1x / 100x:", one, hundred)

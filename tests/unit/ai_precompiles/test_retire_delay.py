"""Retiring an adapter does not void requests already signed (issue 19, attack 8): the author's
retirement stops new children at once and receipts only ``registry.retire_delay`` seconds later,
as ``inference.withdraw_delay`` holds a deposit for requests already signed.

The attack against a real node (the author's retirement mined in front of a served request's
receipt) is ``tests/integration/ai/test_authorship.py::test_retiring_in_front_of_a_served_receipt_voids_nothing``.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from tests.unit.ai_precompiles.ai_harness import Reverted
from tests.unit.ai_precompiles.ai_world import ADAPTER_AUTHOR, VALIDATOR, build_world


def test_a_retired_adapter_takes_receipts_until_the_delay_is_over_and_no_children_at_once() -> None:
    w = build_world({"registry.retire_delay": 300})
    c = w.c
    req = w.request(w.adapter2, max_fee=1000)
    late_req = w.request(w.adapter2, max_fee=1000)
    retired = c.send(ADAPTER_AUTHOR, "ModelRegistry", "retireAdapter", w.adapter2)
    model = c.call("ModelRegistry", "getModel", w.adapter2)
    assert model["retired"] and model["receipts_until"] == retired.block.header.timestamp + 300
    # The receipt of a request signed (and served) before the retirement: recorded and paid.
    pending_before = c.call("Rewards", "pending", c.addr(VALIDATOR))
    rid = c.send(VALIDATOR, "Inference", "submitReceipt",
                 *w.receipt_args(req, w.contributions[:1], [10_000], 1000)).result
    assert c.call("Inference", "getReceipt", rid)["adapter_id"] == w.adapter2
    assert c.call("Rewards", "pending", c.addr(VALIDATOR)) > pending_before
    # No new child from the moment it is retired.
    spec = {"parent_id": w.adapter2, "datanet_ids": [], "datanet_versions": [], "contribution_root": b"\x00" * 32,
            "hyper_params_hash": b"\x01" * 32, "weights_hash": keccak(text="child of a retired adapter"),
            "attribution_index_hash": b"\x02" * 32, "manifest_hash": b"\x03" * 32,
            "validator": c.addr(VALIDATOR), "license": "mit"}
    with pytest.raises(Reverted, match="is retired"):
        c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", spec)
    # From receiptsUntil on, no receipt.
    c.next_timestamp = model["receipts_until"]
    with pytest.raises(Reverted, match=f"adapter {w.adapter2} is retired"):
        c.send(VALIDATOR, "Inference", "submitReceipt",
               *w.receipt_args(late_req, w.contributions[:1], [10_000], 1000))
    with pytest.raises(Reverted, match="already retired"):
        c.send(ADAPTER_AUTHOR, "ModelRegistry", "retireAdapter", w.adapter2)

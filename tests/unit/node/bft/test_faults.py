"""The test-only fault file of a BFT node (``--faults``, docs/consensus.md §10): what it accepts,
and that a bad one is refused with a clear error (the reactor then keeps its previous faults)."""

from __future__ import annotations

import pytest

from node.bft.faults import FAULTS_MAX_DELAY, Faults


def test_drop_and_delay_by_peer_id():
    faults = Faults.parse(b'{"drop": ["16UiuA", "16UiuB"], "delay": {"16UiuC": 0.4}}')
    assert faults.drop == {"16UiuA", "16UiuB"}
    assert faults.delay_of("16UiuC") == 0.4 and faults.delay_of("16UiuA") == 0.0


def test_an_empty_file_or_object_means_no_faults():
    assert Faults.parse(b"") == Faults() == Faults.parse(b"{}") == Faults.parse(b'{"drop": [], "delay": {}}')


@pytest.mark.parametrize("raw", [
    b"[1, 2]", b'{"drop": "16UiuA"}', b'{"drop": [1]}', b'{"delay": ["16UiuA"]}', b'{"delay": {"p": "1"}}',
    b'{"delay": {"p": -1}}', b'{"delay": {"p": true}}', b'{"delay": {"p": %d}}' % (FAULTS_MAX_DELAY + 1), b"{not json",
])
def test_a_bad_fault_file_is_refused(raw):
    with pytest.raises(ValueError):
        Faults.parse(raw)

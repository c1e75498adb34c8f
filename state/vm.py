"""ailedger's py-evm fork: Prague plus the AI precompiles, with a constant gas limit.

Following py-evm's own forks, the subclasses override class attributes and a hook or
two; the precompile table is Prague's merged with ai_precompiles'.
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.headers import create_prague_header_from_parent
from eth.vm.forks.prague.state import PragueState

import ai_precompiles


class LedgerComputation(PragueComputation):
    """Prague's computation with the AI modules' precompiles added to its table."""

    _precompiles = {**PragueComputation.get_precompiles(), **ai_precompiles.PRECOMPILES}


class LedgerState(PragueState):
    computation_class = LedgerComputation


class LedgerVM(PragueVM):
    """The VM of every ailedger block."""

    fork = "ailedger-prague"
    _state_class = LedgerState

    @staticmethod
    def create_header_from_parent(  # type: ignore[override]
        parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        # Mainnet lets block producers drift the gas limit; our chain keeps the genesis
        # limit (governance changes it), so every block builder agrees on it.
        if parent_header is not None:
            header_params.setdefault("gas_limit", parent_header.gas_limit)
        return create_prague_header_from_parent(parent_header, **header_params)

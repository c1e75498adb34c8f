"""Fault injection for tests: a precompile that fails the way a bug in the node would
(a Python exception that is not a VM error), installed on the real ``LedgerVM``.

Run as ``python -m tests.support.faults dev ...`` it starts a real ``ailedger`` node whose VM
carries the faulty precompile at :data:`FAULTY`, so an outsider's transaction can reach it.
"""

from __future__ import annotations

import sys
from typing import Any

from ai_precompiles.addresses import DATANETS

#: Address of the injected precompile (unused by the chain).
FAULTY = b"\x00" * 18 + b"\x0f\xee"
#: Storage slot of the Datanets account that the faulty precompile writes before failing.
SLOT = 0xDEAD
ERRORS: dict[bytes, type[BaseException]] = {
    b"boom:runtime": RuntimeError,
    b"boom:assert": AssertionError,
    b"boom:memory": MemoryError,
    b"boom:key": KeyError,
}


def faulty_precompile(computation: Any) -> Any:
    """Writes state, then raises when the calldata is one of :data:`ERRORS`' keys."""
    computation.state.set_storage(DATANETS, SLOT, 1)
    data = bytes(computation.msg.data)
    error = ERRORS.get(data)
    if error is not None:
        raise error(data.decode())
    return computation


def install() -> dict[bytes, Any]:
    """Add the faulty precompile to LedgerVM's table; returns the previous table."""
    from state.vm import LedgerComputation

    previous = LedgerComputation._precompiles
    LedgerComputation._precompiles = {**previous, FAULTY: faulty_precompile}
    return previous


if __name__ == "__main__":
    install()
    from node.cli import main

    sys.exit(main(sys.argv[1:]))

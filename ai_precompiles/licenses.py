"""Contribution licenses: SPDX ids from a bounded allow-list, and the restrictions they carry.

A contribution names its license by SPDX id. The chain accepts only the ids of :data:`TERMS`
(matched case-insensitively, as the SPDX spec matches ids, and stored in their canonical case),
not any string the SPDX id grammar allows: the chain must know what an id *means* (may the data
serve commercial use, may a model be derived from it) to enforce it, and a grammar check says
nothing about meaning (``LicenseRef-x`` is well-formed and says nothing). So the flags follow
from the id and cannot contradict it: a contributor cannot label CC-BY-NC data as commercial.
The list is a constant table, so a lookup is bounded work; a licence outside it is refused
with a clear error (adding one is a code change that every node makes at once).

The flags are kept as *restriction* bits (:data:`NON_COMMERCIAL`, :data:`NO_DERIVATIVES`) so
that "the most restrictive of a lineage" is the bitwise OR of its parts, and so that 0 means
unrestricted: a record written before these fields existed reads as unrestricted.
"""

from __future__ import annotations

from .errors import InvalidArgument

#: restriction bit: the data (and what is derived from it) may not serve commercial use
NON_COMMERCIAL = 1
#: restriction bit: no derivative may be built on what is derived from it (an adapter trained on
#: it is the last derivative: no adapter may name it as parent)
NO_DERIVATIVES = 2
ALL = NON_COMMERCIAL | NO_DERIVATIVES

_PERMISSIVE = (
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Unlicense", "0BSD", "MPL-2.0",
    "CC0-1.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
    "ODC-By-1.0", "ODbL-1.0", "PDDL-1.0", "CDLA-Permissive-1.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0",
    "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
    "LGPL-2.1-only", "LGPL-3.0-only", "AGPL-3.0-only", "AGPL-3.0-or-later",
)
#: SPDX id -> restriction bits. Non-commercial and no-derivatives terms are those of the
#: Creative Commons NC and ND licenses.
TERMS: dict[str, int] = {
    **{spdx: 0 for spdx in _PERMISSIVE},
    **{f"CC-BY-NC-{v}": NON_COMMERCIAL for v in ("3.0", "4.0")},
    **{f"CC-BY-NC-SA-{v}": NON_COMMERCIAL for v in ("3.0", "4.0")},
    **{f"CC-BY-ND-{v}": NO_DERIVATIVES for v in ("3.0", "4.0")},
    **{f"CC-BY-NC-ND-{v}": NON_COMMERCIAL | NO_DERIVATIVES for v in ("3.0", "4.0")},
}
_BY_FOLDED = {spdx.casefold(): spdx for spdx in TERMS}


def canonical(license: str) -> str:
    """The allow-listed SPDX id ``license`` names (any case), in its canonical case;
    :class:`InvalidArgument` when it is not on the list."""
    spdx = _BY_FOLDED.get(license.casefold()) if len(license) <= 64 else None
    if spdx is None:
        raise InvalidArgument(f"license {license[:64]!r} is not an allow-listed SPDX id "
                              "(see docs/ai_precompiles.md, 'Licenses')")
    return spdx


def terms_of(license: str) -> int:
    """Restriction bits of an allow-listed id; 0 for anything else (a base model's license
    string is free text the chain does not interpret)."""
    spdx = _BY_FOLDED.get(license.casefold()) if len(license) <= 64 else None
    return TERMS[spdx] if spdx is not None else 0


def flags_json(terms: int) -> dict[str, bool]:
    """The restriction bits as the RPC shows them: what is *allowed*."""
    return {"commercialUse": not terms & NON_COMMERCIAL, "derivatives": not terms & NO_DERIVATIVES}

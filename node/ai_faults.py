"""Test-only lying modes of a validator's inference receipts, switched on like the consensus
faults: an environment variable no production setup sets (:data:`LIES_ENV`) plus a file in the
datadir (:data:`LIES_FILE`, re-read at every request, so a test changes the mode of a running
node). Real-process tests use them to show that every lie is caught by a challenge and slashed.

- ``alter-output``: the receipt names an output the adapter did not write (the served text with
  a suffix);
- ``skew-attribution``: the receipt pays all of the attribution to one contribution of the
  adapter's lineage that the honest attribution does not put first;
- ``other-adapter``: the prompt runs on another adapter the sidecar holds, the receipt names the
  one the user asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from eth_hash.auto import keccak

if TYPE_CHECKING:
    from sidecar.client import Attributed

log = logging.getLogger("ailedger.inference")

LIES_ENV = "AILEDGER_ALLOW_LIES"
LIES_FILE = "inference-lies.json"
MODES = ("alter-output", "skew-attribution", "other-adapter")
#: Most bytes read of the lies file.
MAX_BYTES = 4096


class FileLies:
    """The lie the datadir's file names now (``{"mode": MODE}``; absent or null: honest)."""

    def __init__(self, datadir: Path) -> None:
        self.path = datadir / LIES_FILE

    def mode(self) -> str | None:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
            mode = json.loads(raw).get("mode") if len(raw) <= MAX_BYTES else None
        except (OSError, ValueError, AttributeError):
            return None
        return mode if mode in MODES else None

    def adapter(self, asked: str, held: list[str]) -> str:
        """The adapter the prompt really runs on."""
        if self.mode() != "other-adapter":
            return asked
        others = [a for a in held if a != asked]
        if not others:
            return asked
        log.warning("lying (test mode): serving adapter %s for %s", others[0], asked)
        return others[0]

    def alter(self, result: Attributed, served: str, lineage: tuple[int, ...]) -> Attributed:
        """What the receipt will claim instead of ``result``."""
        mode = self.mode()
        if mode == "alter-output":
            output = result.output + b" [altered]"
            log.warning("lying (test mode): altered the output")
            return dataclasses.replace(result, output=output, output_hash=keccak(output).hex())
        if mode == "other-adapter" and lineage and any(int(c) not in lineage for c, _ in result.weights):
            # the other adapter's attribution names data the asked one never saw: the chain would
            # refuse it, so a liar makes one up from the asked adapter's lineage
            return dataclasses.replace(result, weights=((str(lineage[0]).encode(), 10_000),))
        if mode == "skew-attribution" and lineage:
            first = result.weights[0][0] if result.weights else b""
            target = next((c for c in reversed(lineage) if str(c).encode() != first), lineage[-1])
            log.warning("lying (test mode): all the attribution to contribution %d", target)
            return dataclasses.replace(result, weights=((str(target).encode(), 10_000),))
        return result


def testing_lies(datadir: Path | None) -> FileLies | None:
    """The lies of a node started with :data:`LIES_ENV` set and a datadir; None otherwise (every
    production node)."""
    if datadir is None or not os.environ.get(LIES_ENV):
        return None
    log.warning("test mode: this validator lies as %s says", datadir / LIES_FILE)
    return FileLies(datadir)

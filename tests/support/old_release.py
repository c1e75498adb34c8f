"""A release that does not know some upgrades, for tests: run as ``python -m
tests.support.old_release <ailedger command> ...`` with ``OLD_RELEASE_LACKS=name,name`` in the
environment, it removes those names from ``ai_precompiles.upgrades.KNOWN`` and runs the real
``ailedger`` command, as an operator who has not installed the release that ships them would."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    from ai_precompiles import upgrades

    for name in os.environ.get("OLD_RELEASE_LACKS", "").split(","):
        upgrades.KNOWN.pop(name.strip(), None)
    from node.cli import main

    sys.exit(main(sys.argv[1:]))

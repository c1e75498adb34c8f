"""``python -m node.cli``: the ``ailedger`` command (``testnet up`` starts its nodes this way)."""

import sys

from node.cli import main

sys.exit(main())

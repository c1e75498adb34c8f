"""`python -m sidecar --port N --store DIR`: the sidecar without the node's CLI."""

import sys

from sidecar.cli import main

sys.exit(main())

"""Suite-wide settings, applied before any test module imports torch.

The suite runs on 2 cores with two xdist workers: every torch user (in-process unit tests
and the sidecar processes tests start, `ailedger dev`'s included) gets one thread, so two
never fight over a core (two sidecars with 2 threads each ran 10-30x slower).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("AILEDGER_SIDECAR_THREADS", "1")

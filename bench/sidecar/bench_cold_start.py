"""Sidecar start-up: seconds from `python -m sidecar` on a fresh store to the port being open
and to health answering SERVING. Run twice in a row: the first run after a while is the
cold case (imports and weights read from disk), the second the cached one (page cache).

    .venv/bin/python bench/sidecar/bench_cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


def one_run() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log"
        t0 = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sidecar", "--port", "0", "--store", f"{tmp}/store"],
                                    stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                    env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            address = ""
            while not address:
                for line in log.read_text(errors="replace").splitlines():
                    if line.startswith("Sidecar listening on "):
                        address = line.split()[-1]
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text())
                time.sleep(0.02)
            port_s = time.monotonic() - t0
            with grpc.insecure_channel(address) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                while stub.Check(health_pb2.HealthCheckRequest(), timeout=30).status != \
                        health_pb2.HealthCheckResponse.SERVING:
                    time.sleep(0.02)
            return port_s, time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for i in range(args.runs):
        port_s, ready_s = one_run()
        print(f"run {i + 1}: port open {port_s:.1f}s, SERVING {ready_s:.1f}s (fresh store)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

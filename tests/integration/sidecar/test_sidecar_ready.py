"""The sidecar's gRPC port opens at once; health says NOT_SERVING until the base model is
loaded, then SERVING; a call made while it loads waits and is then served."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.sidecar.conftest import start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]


def test_port_opens_at_once_and_health_turns_serving(tmp_path: Path) -> None:
    t0 = time.monotonic()
    s = start_sidecar(tmp_path, "--test-load-delay-s", "15", wait=False)
    try:
        health = health_pb2_grpc.HealthStub(s.client.channel)
        for service in ("", "ailedger.sidecar.v1.Sidecar"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        # a call made while loading waits for the model instead of failing
        listed = s.client.list_adapters()
        assert listed.base_model == "ailedger-base-v1" and len(listed.base_model_hash) == 64
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        deadline = time.monotonic() + 60
        while "Sidecar ready" not in s.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Sidecar ready" in s.output()
        print(f"ready after {time.monotonic() - t0:.1f}s (15 s of it the test's delay)")
    finally:
        s.client.close()
        s.proc.terminate()
        try:
            s.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            s.proc.kill()

"""The chain worker's rules: block production runs before queued reads, a job whose
caller went away before it started never runs, the queue is bounded, and results come
back to trio without polling."""

from __future__ import annotations

import threading

import pytest
import trio

from node.errors import LimitExceeded
from node.worker import ChainWorker, Priority


def test_priority_cancel_and_bound() -> None:
    worker = ChainWorker("test-worker", max_queued=3)
    gate = threading.Event()
    order: list[str] = []

    def blocker() -> str:
        gate.wait(10)
        return "blocked"

    def record(name: str) -> str:
        order.append(name)
        return name

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.run, blocker)
            await trio.sleep(0.1)  # the blocker is running
            results: dict[str, str] = {}

            async def job(name: str, priority: Priority = Priority.NORMAL) -> None:
                results[name] = await worker.run(record, name, priority=priority)

            nursery.start_soon(job, "read1")
            await trio.sleep(0.05)
            nursery.start_soon(job, "read2")
            cancel_me = trio.CancelScope()

            async def cancelled_job() -> None:
                with cancel_me:
                    await worker.run(record, "cancelled")

            nursery.start_soon(cancelled_job)
            await trio.sleep(0.05)
            # queue holds read1, read2, cancelled: a fourth normal job is refused
            with pytest.raises(LimitExceeded, match="busy"):
                await worker.run(record, "overflow")
            cancel_me.cancel()  # the client hung up before its job started
            nursery.start_soon(job, "block", Priority.PRODUCE)  # production is never refused
            await trio.sleep(0.05)
            gate.set()
        assert results["block"] == "block"

    trio.run(main)
    worker.stop()
    assert "cancelled" not in order and "overflow" not in order
    assert order[0] == "block", order  # jumped the queue of reads
    assert order[1:] == ["read1", "read2"]


def test_errors_come_back_to_the_caller() -> None:
    worker = ChainWorker("test-worker")

    def boom() -> None:
        raise ValueError("bad")

    async def main() -> None:
        with pytest.raises(ValueError, match="bad"):
            await worker.run(boom)
        assert await worker.run(lambda: 7) == 7

    trio.run(main)
    assert worker.call_blocking(lambda: 8) == 8
    worker.stop()

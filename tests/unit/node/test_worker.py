"""The chain worker's rules: block production runs before queued reads, a job whose
caller went away before it started never runs, the queue is bounded, and results come
back to trio without polling."""

from __future__ import annotations

import threading

import pytest
import trio

from node.errors import LimitExceeded
from node.worker import ChainWorker, Priority, network_of


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


def test_a_newcomer_runs_before_a_flooder_and_takes_its_newest_place() -> None:
    """Issue 19: 80 connections looping an expensive eth_call kept the read worker's queue full,
    and an honest call got "node busy" every time, or waited behind all of them."""
    worker = ChainWorker("test-worker", max_queued=4)
    gate = threading.Event()
    order: list[str] = []

    def work(name: str) -> str:
        if name == "flood-0":
            gate.wait(10)
        order.append(name)
        return name

    async def main() -> None:
        outcomes: dict[str, str] = {}

        async def job(name: str, client: str) -> None:
            try:
                outcomes[name] = await worker.run(work, name, client=client)
            except LimitExceeded as e:
                outcomes[name] = str(e)

        async with trio.open_nursery() as nursery:
            for i in range(5):  # one running, four waiting: the queue is full
                nursery.start_soon(job, f"flood-{i}", "10.0.66.1")
                await trio.sleep(0.02)
            nursery.start_soon(job, "wallet", "10.0.7.1")
            await trio.sleep(0.05)
            # the flooder's newest waiting job made room for the wallet's first one
            assert "node busy" in outcomes.pop("flood-4")
            # its second call too (the flooder would still hold more), but not a third: equals
            nursery.start_soon(job, "wallet-2", "10.0.7.1")
            await trio.sleep(0.05)
            assert "node busy" in outcomes.pop("flood-3")
            with pytest.raises(LimitExceeded, match="busy"):
                await worker.run(work, "wallet-3", client="10.0.7.1")
            gate.set()
        assert outcomes == {f"flood-{i}": f"flood-{i}" for i in range(3)} | {"wallet": "wallet", "wallet-2": "wallet-2"}

    trio.run(main)
    worker.stop()
    assert order[:2] == ["flood-0", "wallet"], order  # it ran next, ahead of the older flood


def test_the_client_that_used_the_worker_least_lately_goes_first() -> None:
    now = [0.0]
    worker = ChainWorker("test-worker", clock=lambda: now[0], cpu_clock=lambda: now[0])
    gate = threading.Event()
    order: list[str] = []

    def work(name: str, cost: float = 0.0) -> None:
        if name == "gate":
            gate.wait(10)
        now[0] += cost
        order.append(name)

    async def main() -> None:
        await worker.run(work, "heavy-warmup", 5.0, client="heavy")
        await worker.run(work, "light-warmup", 0.5, client="light")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.run, work, "gate")
            await trio.sleep(0.05)
            for name, client in (("heavy-1", "heavy"), ("heavy-2", "heavy"), ("light-1", "light"),
                                 ("fresh-1", "fresh")):
                nursery.start_soon(lambda n=name, c=client: worker.run(work, n, client=c))
                await trio.sleep(0.02)
            gate.set()

    trio.run(main)
    worker.stop()
    assert order[3:] == ["fresh-1", "light-1", "heavy-1", "heavy-2"], order


def test_addresses_of_one_network_share_one_share() -> None:
    """Forty addresses of one /24 (as cheap to one host as one address) count as one network:
    a wallet elsewhere goes first even when each of them has used less than it."""
    now = [0.0]
    worker = ChainWorker("test-worker", clock=lambda: now[0], cpu_clock=lambda: now[0])
    gate = threading.Event()
    order: list[str] = []

    def work(name: str, cost: float = 0.0) -> None:
        if name == "gate":
            gate.wait(10)
        now[0] += cost
        order.append(name)

    async def main() -> None:
        for i in range(40):
            await worker.run(work, f"warmup-{i}", 0.5, client=f"10.9.9.{i}")
        await worker.run(work, "wallet-warmup", 2.0, client="10.1.1.1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.run, work, "gate")
            await trio.sleep(0.05)
            for i in range(40, 45):
                nursery.start_soon(lambda i=i: worker.run(work, f"sybil-{i}", client=f"10.9.9.{i}"))
                await trio.sleep(0.02)
            nursery.start_soon(lambda: worker.run(work, "wallet", client="10.1.1.1"))
            await trio.sleep(0.05)
            gate.set()

    trio.run(main)
    worker.stop()
    assert order[42] == "wallet", order[41:]
    assert network_of("10.9.9.7") == network_of("10.9.9.200") == "10.9.9.0/24" != network_of("10.9.8.7")
    assert network_of("2001:db8::1") == network_of("2001:db8::ffff:1") == "2001:db8::/64"
    assert network_of("::ffff:10.9.9.7") == "10.9.9.0/24" and network_of("") == ""


def test_a_posted_job_runs_after_everything_queued_before_it_whatever_the_shares() -> None:
    """Automine posts the block it builds for the transactions just admitted: sends queued before
    the post go into it (they run first, even from a client that used the worker more than the
    node's own work), and jobs queued after it run after it."""
    worker = ChainWorker("test-worker")
    gate = threading.Event()
    order: list[str] = []

    def blocker() -> None:
        gate.wait(10)

    def record(name: str) -> None:
        order.append(name)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(3):  # 10.0.0.1 has used the worker a lot lately
                await worker.run(lambda: sum(range(200_000)), client="10.0.0.1")
            nursery.start_soon(worker.run, blocker)
            await trio.sleep(0.1)
            for i in range(3):
                nursery.start_soon(lambda i=i: worker.run(record, f"send{i}", client="10.0.0.1"))
                await trio.sleep(0.02)
            worker.post(lambda: record("block"))
            nursery.start_soon(lambda: worker.run(record, "later", client="10.0.0.1"))
            await trio.sleep(0.05)
            gate.set()

    trio.run(main)
    worker.stop()
    assert order == ["send0", "send1", "send2", "block", "later"]

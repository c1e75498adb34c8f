"""The chain worker: one dedicated thread that owns the chain core.

py-evm is not thread-safe and its calls block, so every chain operation is sent to this
one thread; the trio loop awaits the result without blocking the network paths. The
rules that keep one caller from stalling everyone:

- jobs run in priority order: block production first, then callers' work in arrival
  order, so a queue of reads never delays the next block by more than one job;
- a job whose awaiting task is cancelled (the client hung up) before it started is
  dropped, never run;
- the queue is bounded: past ``max_queued`` waiting jobs a new one is refused
  (:class:`node.errors.LimitExceeded`) instead of growing memory and latency without end;
- results come back to the trio loop through ``TrioToken.run_sync_soon``, with no polling.

Callers keep each job small (one call of a batch, a bounded number of blocks).
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from node import metrics
from node.errors import LimitExceeded

T = TypeVar("T")
log = logging.getLogger("ailedger")


class Priority(enum.IntEnum):
    """Lower runs first."""

    PRODUCE = 0
    """Block production: never waits behind callers' reads."""
    NORMAL = 1
    """Everything callers ask for, in arrival order."""
    STOP = 9


class _Job:
    __slots__ = ("args", "deliver", "fn", "state")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], deliver: Callable[[outcome.Outcome[Any]], None]) -> None:
        self.fn = fn
        self.args = args
        self.deliver = deliver
        self.state = "queued"  # -> running | cancelled


class ChainWorker:
    def __init__(self, name: str = "chain-worker", max_queued: int = 10_000, threads: int = 1) -> None:
        """``threads`` > 1 only for work that is safe to run concurrently (read-only
        execution on committed state); the chain worker has exactly one."""
        self.name = name
        self.max_queued = max_queued
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._queued = 0
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Jobs waiting to start."""
        return self._queued

    def _loop(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._queued -= 1
                metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
                if job.state == "cancelled":
                    continue
                job.state = "running"
            job.deliver(outcome.capture(job.fn, *job.args))

    def _put(self, job: _Job, priority: Priority, bounded: bool = True) -> None:
        with self._lock:
            if bounded and priority != Priority.PRODUCE and self._queued >= self.max_queued:
                metrics.WORKER_REFUSED.labels(self.name).inc()
                raise LimitExceeded(f"node busy: {self._queued} requests are waiting on the {self.name}; retry later")
            self._queued += 1
            metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
        self._jobs.put((int(priority), next(self._seq), job))

    async def run(self, fn: Callable[..., T], *args: Any, priority: Priority = Priority.NORMAL) -> T:
        """Run ``fn(*args)`` on the worker thread and return (or raise) its result.

        Cancelling the awaiting task drops the job if it has not started yet; once
        started it runs to its end (py-evm cannot be interrupted safely) and its result
        is discarded.
        """
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[outcome.Outcome[Any]](1)

        def hand_back(result: outcome.Outcome[Any]) -> None:
            try:
                send.send_nowait(result)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the awaiting task is gone

        def deliver(result: outcome.Outcome[Any]) -> None:
            try:
                token.run_sync_soon(hand_back, result)
            except trio.RunFinishedError:
                pass

        job = _Job(fn, args, deliver)
        self._put(job, priority)
        try:
            async with receive:
                result = await receive.receive()
        except BaseException:
            with self._lock:
                if job.state == "queued":
                    job.state = "cancelled"
            raise
        return result.unwrap()  # type: ignore[no-any-return]

    def post(self, fn: Callable[[], object], priority: Priority = Priority.NORMAL) -> None:
        """Queue ``fn()`` with nobody awaiting it, from any thread (the chain thread included):
        work the node asks of itself, such as the block automine builds for the transactions
        just admitted. Never refused for a full queue (the caller keeps at most one such job
        waiting); what it raises is logged, and ``fn`` should catch what it expects."""

        def deliver(result: outcome.Outcome[Any]) -> None:
            if isinstance(result, outcome.Error):
                log.error("%s: a posted job failed", self.name, exc_info=result.error)

        self._put(_Job(fn, (), deliver), priority, bounded=False)

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker from a non-trio thread (start-up, shutdown)."""
        box: list[outcome.Outcome[Any]] = []
        finished = threading.Event()

        def deliver(result: outcome.Outcome[Any]) -> None:
            box.append(result)
            finished.set()

        self._put(_Job(fn, args, deliver), Priority.NORMAL, bounded=False)
        finished.wait()
        return box[0].unwrap()  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Finish the queued jobs, then end the threads."""
        for _ in self._threads:
            self._jobs.put((int(Priority.STOP), next(self._seq), None))
        for thread in self._threads:
            thread.join(timeout=10)

"""The chain worker: one dedicated thread that owns the chain core (and the read worker beside
it, whose threads run read-only work on committed state).

py-evm is not thread-safe and its calls block, so every chain operation is sent to this
one thread; the trio loop awaits the result without blocking the network paths. The
rules that keep one caller from stalling everyone:

- block production runs first, so a queue of reads never delays the next block by more
  than one job;
- callers' work is shared fairly, first by network (a caller's /24 for IPv4, /64 for IPv6: one
  host can cheaply speak from many addresses of its network, rarely from many networks), then by
  client (the RPC caller's address; the node's own work is one more client): the next job is the
  oldest of the client that has used the worker least lately, in the network that has (its jobs'
  CPU time, decaying by half every :data:`USAGE_HALF_LIFE` seconds). So callers looping expensive
  calls from 80 connections wait behind a wallet's call instead of in front of it;
- the queue is bounded: past ``max_queued`` waiting jobs the fair share rule (geth's, for its
  pool) decides: a network with nothing queued always gets in, any other only while another
  would still hold more than it; the newest job of the client holding the most in the network
  holding the most is then refused (:class:`node.errors.LimitExceeded`, "node busy") in its
  place. Otherwise the new job is refused, instead of growing memory and latency without end;
- work the node posts for itself (:meth:`ChainWorker.post`: the block automine builds for the
  transactions just admitted) runs once every job queued before it has run, fairly ordered
  among themselves, and before any queued after it: so sends that arrive while a block is
  requested share it, whatever the senders' shares;
- a job whose awaiting task is cancelled (the client hung up) before it started is
  dropped, never run;
- results come back to the trio loop through ``TrioToken.run_sync_soon``, with no polling.

Callers keep each job small (one call of a batch, a bounded number of blocks).
"""

from __future__ import annotations

import collections
import enum
import ipaddress
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from node import metrics
from node.errors import LimitExceeded

T = TypeVar("T")
log = logging.getLogger("ailedger")

#: Seconds after which a client's past use of a worker counts half.
USAGE_HALF_LIFE = 10.0
#: The least a job counts as having used (so a flood of tiny jobs is not free).
MIN_JOB_COST = 0.001


class Priority(enum.IntEnum):
    """Lower runs first."""

    PRODUCE = 0
    """Block production: never waits behind callers' reads."""
    NORMAL = 1
    """Everything callers ask for, shared fairly between clients (module docstring)."""


class _Job:
    __slots__ = ("args", "client", "deliver", "fn", "seq", "state")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], deliver: Callable[[outcome.Outcome[Any]], None],
                 client: str, seq: int) -> None:
        self.fn = fn
        self.args = args
        self.deliver = deliver
        self.client = client
        self.seq = seq
        self.state = "queued"  # -> running | cancelled


def network_of(client: str) -> str:
    """The network a caller's address belongs to, for fair shares: its /24 (IPv4) or /64 (IPv6),
    where addresses come cheap to one host; anything else (the node's own work) is its own."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))


class _Client:
    """One client's (or one network's) waiting jobs and its recent use of the worker."""

    __slots__ = ("jobs", "network", "rank", "stamp", "usage", "waiting")

    def __init__(self, now: float, network: _Client | None = None) -> None:
        self.network = network
        """The network's account (None for a network itself)."""
        self.waiting = 0
        """Jobs waiting (a network's: its clients' together)."""
        self.jobs: collections.deque[_Job] = collections.deque()
        self.usage = 0.0
        """Seconds of run time, decayed to :attr:`stamp`."""
        self.stamp = now
        self.rank = -math.inf
        """``log2(usage) + stamp / half-life``: every client's use decays by the same factor, so
        this orders clients by their use at any later moment without recomputing it."""

    def used(self, now: float) -> float:
        return self.usage * math.exp2(-(now - self.stamp) / USAGE_HALF_LIFE)

    def charge(self, seconds: float, now: float) -> None:
        self.usage = self.used(now) + seconds
        self.stamp = now
        self.rank = math.log2(self.usage) + now / USAGE_HALF_LIFE


class ChainWorker:
    def __init__(self, name: str = "chain-worker", max_queued: int = 10_000, threads: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        """``threads`` > 1 only for work that is safe to run concurrently (read-only
        execution on committed state); the chain worker has exactly one. ``clock`` ages the
        clients' use and ``cpu_clock`` measures a job's cost (the running thread's CPU time)."""
        self.name = name
        self.max_queued = max_queued
        self.clock = clock
        self.cpu_clock = cpu_clock
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._produce: collections.deque[_Job] = collections.deque()
        self._posted: collections.deque[_Job] = collections.deque()
        self._clients: dict[str, _Client] = {}
        self._networks: dict[str, _Client] = {}
        #: Clients and networks with jobs waiting: what choosing a job looks at, however many
        #: clients have called before.
        self._ready: set[_Client] = set()
        self._ready_networks: set[_Client] = set()
        self._queued = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Jobs waiting to start."""
        return self._queued

    def _next(self) -> _Job | None:
        """The job to run next (under the lock): production first, then the oldest job of the
        client that used the worker least lately."""
        if self._produce:
            return self._produce.popleft()
        best: _Client | None = None
        best_key: tuple[float, float, int] | None = None
        oldest: int | None = None
        for c in self._ready:
            assert c.network is not None
            key = (c.network.rank, c.rank, c.jobs[0].seq)
            if best_key is None or key < best_key:
                best, best_key = c, key
            if oldest is None or c.jobs[0].seq < oldest:
                oldest = c.jobs[0].seq
        if self._posted and (oldest is None or self._posted[0].seq < oldest):
            return self._posted.popleft()  # everything queued before it has run
        if best is None:
            return None
        self._waiting(best, -1)
        return best.jobs.popleft()

    def _waiting(self, client: _Client, delta: int) -> None:
        network = client.network
        assert network is not None
        client.waiting += delta
        network.waiting += delta
        for account, ready in ((client, self._ready), (network, self._ready_networks)):
            if account.waiting > 0:
                ready.add(account)
            else:
                ready.discard(account)

    def _loop(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                while job is None:
                    if self._stopping:
                        return
                    self._cond.wait()
                    job = self._next()
                self._queued -= 1
                metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
                job.state = "running"
            # The job's own CPU time: its wall time would also count the GIL that the other
            # threads (the other read thread, the trio loop) held meanwhile.
            cpu = self.cpu_clock()
            result = outcome.capture(job.fn, *job.args)
            cost = max(MIN_JOB_COST, self.cpu_clock() - cpu)
            with self._cond:
                account = self._clients.get(job.client)
                if account is not None:
                    now = self.clock()
                    account.charge(cost, now)
                    assert account.network is not None
                    account.network.charge(cost, now)
                    self._forget_idle(now)
            job.deliver(result)

    def _forget_idle(self, now: float) -> None:
        """Drop clients with nothing queued whose use has decayed away (bounded bookkeeping)."""
        if len(self._clients) > 2 * self.max_queued:
            for key in [k for k, c in self._clients.items() if not c.jobs and c.used(now) < MIN_JOB_COST]:
                del self._clients[key]
            live = {id(c.network) for c in self._clients.values()}
            for key in [k for k, n in self._networks.items() if id(n) not in live]:
                del self._networks[key]

    def _put(self, job: _Job, priority: Priority, bounded: bool = True) -> None:
        with self._cond:
            if priority == Priority.PRODUCE:
                self._produce.append(job)
            else:
                account = self._clients.get(job.client)
                if account is None:
                    name = network_of(job.client)
                    network = self._networks.get(name)
                    if network is None:
                        network = self._networks[name] = _Client(self.clock())
                    account = self._clients[job.client] = _Client(self.clock(), network)
                if bounded and self._queued >= self.max_queued:
                    self._make_room(account)
                account.jobs.append(job)
                self._waiting(account, 1)
            self._queued += 1
            metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
            self._cond.notify()

    def _make_room(self, account: _Client) -> None:
        """The queue is full (under the lock): refuse the newest job of the client holding the
        most in the network holding the most, if that network would still hold more than
        ``account``'s (or ``account``'s holds none); else refuse the new job."""
        own = account.network
        assert own is not None
        mine = own.waiting
        most = max((n.waiting for n in self._ready_networks if n is not own), default=0)
        if not (most > mine + 1 or (mine == 0 and most > 0)):
            metrics.WORKER_REFUSED.labels(self.name).inc()
            raise LimitExceeded(f"node busy: {self._queued} requests are waiting on the {self.name}; retry later")
        top = max((n for n in self._ready_networks if n is not own and n.waiting == most), key=lambda n: n.rank)
        holder = max((c for c in self._ready if c.network is top),
                     key=lambda c: (len(c.jobs), c.rank))
        victim = holder.jobs.pop()
        self._waiting(holder, -1)
        victim.state = "cancelled"
        self._queued -= 1
        metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
        metrics.WORKER_REFUSED.labels(self.name).inc()
        victim.deliver(outcome.Error(LimitExceeded(
            f"node busy: the {self.name} is shared fairly and this client holds the most waiting requests; "
            "retry later")))

    def _cancel(self, job: _Job) -> None:
        with self._cond:
            if job.state != "queued":
                return
            job.state = "cancelled"
            account = self._clients.get(job.client)
            if account is not None and job in account.jobs:
                account.jobs.remove(job)
                self._waiting(account, -1)
            elif job in self._produce:
                self._produce.remove(job)
            else:
                return
            self._queued -= 1
            metrics.WORKER_QUEUED.labels(self.name).set(self._queued)

    async def run(self, fn: Callable[..., T], *args: Any, priority: Priority = Priority.NORMAL,
                  client: str = "") -> T:
        """Run ``fn(*args)`` on the worker thread and return (or raise) its result; ``client``
        is whose share it counts against (the RPC caller's address; "" for the node's own work).

        Cancelling the awaiting task drops the job if it has not started yet; once
        started it runs to its end (py-evm cannot be interrupted safely) and its result
        is discarded.
        """
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[outcome.Outcome[Any]](1)

        def hand_back(result: outcome.Outcome[Any]) -> None:
            try:
                send.send_nowait(result)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.WouldBlock):
                pass  # the awaiting task is gone

        def deliver(result: outcome.Outcome[Any]) -> None:
            try:
                token.run_sync_soon(hand_back, result)
            except trio.RunFinishedError:
                pass

        job = _Job(fn, args, deliver, client, next(self._seq))
        self._put(job, priority)
        try:
            async with receive:
                result = await receive.receive()
        except BaseException:
            self._cancel(job)
            raise
        return result.unwrap()  # type: ignore[no-any-return]

    def post(self, fn: Callable[[], object], priority: Priority = Priority.NORMAL) -> None:
        """Queue ``fn()`` with nobody awaiting it, from any thread (the chain thread included):
        work the node asks of itself, such as the block automine builds for the transactions
        just admitted. It runs after every job queued before it and before any queued after it
        (module docstring). Never refused for a full queue (the caller keeps at most one such
        job waiting); what it raises is logged, and ``fn`` should catch what it expects."""

        def deliver(result: outcome.Outcome[Any]) -> None:
            if isinstance(result, outcome.Error):
                log.error("%s: a posted job failed", self.name, exc_info=result.error)

        if priority == Priority.PRODUCE:
            self._put(_Job(fn, (), deliver, "", next(self._seq)), priority, bounded=False)
            return
        with self._cond:
            self._posted.append(_Job(fn, (), deliver, "", next(self._seq)))
            self._queued += 1
            metrics.WORKER_QUEUED.labels(self.name).set(self._queued)
            self._cond.notify()

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker from a non-trio thread (start-up, shutdown)."""
        box: list[outcome.Outcome[Any]] = []
        finished = threading.Event()

        def deliver(result: outcome.Outcome[Any]) -> None:
            box.append(result)
            finished.set()

        self._put(_Job(fn, args, deliver, "", next(self._seq)), Priority.NORMAL, bounded=False)
        finished.wait()
        return box[0].unwrap()  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Finish the queued jobs, then end the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

"""The training-set warmer (node/warm.py) in isolation: a published version is read on the read
worker, one job at a time; what waits is bounded; the reading stays within its budget a minute
however many versions anyone publishes; a version too large is left to its first reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ai_precompiles import datanets
from ai_precompiles.addresses import DATANETS, INFERENCE
from node import warm
from node.chain.events import BlockCommitted, Origin
from node.warm import MAX_WAITING, MAX_WARM_CONTRIBUTIONS, WARM_BUDGET_PER_MINUTE, TrainingSetWarmer

TOPIC = datanets.PRECOMPILE.abi.events["VersionPublished"].topic0


@dataclass
class Log:
    address: bytes
    topics: tuple[int, ...]
    data: bytes


@dataclass
class Receipt:
    logs: list[Log]


@dataclass
class Block:
    transactions: tuple[Any, ...] = ("tx",)
    header: Any = None


class Ledger:
    head = "head"

    def state_at(self, header: Any) -> str:
        return f"state at {header}"


@dataclass
class Core:
    ledger: Ledger = field(default_factory=Ledger)


@dataclass
class Reads:
    posted: list[Any] = field(default_factory=list)

    def post(self, fn: Any) -> None:
        self.posted.append(fn)

    def run_all(self) -> None:
        while self.posted:
            self.posted.pop(0)()


def published(*versions: tuple[int, int, int], address: bytes = DATANETS) -> BlockCommitted:
    logs = [Log(address, (TOPIC, d, v), b"\x00" * 32 + count.to_bytes(32, "big")) for d, v, count in versions]
    return BlockCommitted(Block(), Origin.LOCAL, receipts=(Receipt(logs),))  # type: ignore[arg-type]


@pytest.fixture
def warmed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(warm.datanets, "version_training_set", lambda state, d, v: seen.append((d, v)))
    return seen


def test_a_published_version_is_read_on_the_read_worker(warmed: list[tuple[int, int]]) -> None:
    reads = Reads()
    warmer = TrainingSetWarmer(Core(), reads)  # type: ignore[arg-type]
    warmer.on_chain_event(published((3, 2, 1000)))
    assert warmed == [] and len(reads.posted) == 1  # nothing read on the chain thread
    reads.run_all()
    assert warmed == [(3, 2)]
    # another contract's log with the same topic is not a version
    warmer.on_chain_event(published((4, 1, 10), address=INFERENCE))
    assert reads.posted == []


def test_one_job_at_a_time_and_a_bounded_wait(warmed: list[tuple[int, int]]) -> None:
    reads = Reads()
    warmer = TrainingSetWarmer(Core(), reads, clock=lambda: 0.0)  # type: ignore[arg-type]
    warmer.on_chain_event(published(*[(d, 1, 1) for d in range(1, 100)]))
    warmer.on_chain_event(published((1, 2, 1)))  # a later version of a waiting datanet replaces it
    assert len(reads.posted) == 1
    reads.run_all()
    assert len(warmed) == MAX_WAITING and (1, 2) in warmed and (1, 1) not in warmed


def test_the_budget_a_minute_and_the_largest_version(warmed: list[tuple[int, int]]) -> None:
    now = [0.0]
    reads = Reads()
    warmer = TrainingSetWarmer(Core(), reads, clock=lambda: now[0])  # type: ignore[arg-type]
    per = MAX_WARM_CONTRIBUTIONS
    fits = WARM_BUDGET_PER_MINUTE // per
    warmer.on_chain_event(published(*[(d, 1, per) for d in range(1, fits + 3)], (99, 1, per + 1)))
    reads.run_all()
    assert warmed == [(d, 1) for d in range(1, fits + 1)]  # the rest dropped, the oversized never taken
    now[0] = 61.0
    warmer.on_chain_event(published((50, 1, per)))
    reads.run_all()
    assert warmed[-1] == (50, 1)


def test_a_block_without_its_receipts_is_read_only_when_its_bloom_names_datanets(
        warmed: list[tuple[int, int]]) -> None:
    from types import SimpleNamespace

    from eth_bloom import BloomFilter

    reads: list[Any] = []
    ledger = Ledger()
    ledger.receipts = lambda block: reads.append(block) or published((7, 1, 5)).receipts  # type: ignore[attr-defined]
    reads_worker = Reads()
    warmer = TrainingSetWarmer(Core(ledger), reads_worker)  # type: ignore[arg-type]
    transfers = Block(header=SimpleNamespace(bloom=int(BloomFilter.from_iterable([INFERENCE]))))
    warmer.on_chain_event(BlockCommitted(transfers, Origin.CONSENSUS))  # type: ignore[arg-type]
    assert reads == [] and reads_worker.posted == []
    versions = Block(header=SimpleNamespace(bloom=int(BloomFilter.from_iterable([DATANETS]))))
    warmer.on_chain_event(BlockCommitted(versions, Origin.CONSENSUS))  # type: ignore[arg-type]
    reads_worker.run_all()
    assert reads == [versions] and warmed == [(7, 1)]

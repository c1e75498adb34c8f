"""The adapter cache: LRU within a count and a byte budget, with pinning.

Pure Python (no torch) so its rules can be unit-tested alone. A pin is a count: the
operator's LoadAdapter(pin=true) holds one, and the batcher holds one for every adapter
of the batch it is running, so an adapter can never be evicted while a batch uses it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from sidecar.errors import QueueFull

V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    """Counters since start; `loaded`/`bytes` are the current occupancy."""

    hits: int
    """Lookups that found the adapter loaded."""
    misses: int
    """Lookups that had to load it."""
    loads: int
    """Adapters put into the cache."""
    evictions: int
    """Adapters dropped to make room (explicit unloads not counted)."""
    loaded: int
    """Adapters loaded now."""
    bytes: int
    """Bytes of adapter weights loaded now."""
    pinned: int
    """Adapters with at least one pin now."""


@dataclass
class _Entry(Generic[V]):
    value: V
    nbytes: int
    pins: int = 0


class LRUCache(Generic[V]):
    """Least-recently-used cache bounded by entry count and total bytes; pinned entries stay."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        if max_count < 1 or max_bytes < 1:
            raise ValueError("cache limits must be positive")
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()
        self.hits = self.misses = self.loads = self.evictions = 0

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def keys(self) -> list[str]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def get(self, key: str) -> V | None:
        """The value, marked most recently used; counts a hit or a miss."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return entry.value

    def put(self, key: str, value: V, nbytes: int, pins: int = 0) -> list[tuple[str, V]]:
        """Insert as most recent (with `pins` pins); return what was evicted to make room.

        Raises QueueFull when pinned entries leave no room: the caller must wait for
        batches to finish or unpin, rather than overrun the memory budget.
        """
        with self._lock:
            if key in self._items:
                self._items[key].pins += pins
                self._items.move_to_end(key)
                return []
            if nbytes > self.max_bytes:
                raise QueueFull(f"adapter {key!r} needs {nbytes} bytes, over the cache budget {self.max_bytes}")
            victims = self._plan_eviction(len(self._items) + 1, self._bytes + nbytes)
            if victims is None:
                raise QueueFull(f"no room to load {key!r}: the cache is full of pinned adapters")
            evicted = []
            for k in victims:
                e = self._items.pop(k)
                self._bytes -= e.nbytes
                self.evictions += 1
                evicted.append((k, e.value))
            self._items[key] = _Entry(value, nbytes, pins)
            self._bytes += nbytes
            self.loads += 1
            return evicted

    def _plan_eviction(self, count: int, total: int) -> list[str] | None:
        """Least recent unpinned keys to drop until within both limits, or None if impossible."""
        victims = []
        for k, e in self._items.items():
            if count <= self.max_count and total <= self.max_bytes:
                break
            if e.pins == 0:
                victims.append(k)
                count -= 1
                total -= e.nbytes
        if count > self.max_count or total > self.max_bytes:
            return None
        return victims

    def pin(self, key: str) -> bool:
        """Add a pin; False if the key is not cached."""
        with self._lock:
            e = self._items.get(key)
            if e is None:
                return False
            e.pins += 1
            return True

    def unpin(self, key: str) -> None:
        """Drop one pin (never below zero)."""
        with self._lock:
            e = self._items.get(key)
            if e is not None and e.pins > 0:
                e.pins -= 1

    def pins(self, key: str) -> int:
        with self._lock:
            e = self._items.get(key)
            return e.pins if e else 0

    def remove(self, key: str, force: bool = False) -> V | None:
        """Remove an entry (an explicit unload); refuses a pinned one unless forced."""
        with self._lock:
            e = self._items.get(key)
            if e is None:
                return None
            if e.pins and not force:
                raise QueueFull(f"adapter {key!r} is pinned or in use")
            del self._items[key]
            self._bytes -= e.nbytes
            return e.value

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self.hits,
                misses=self.misses,
                loads=self.loads,
                evictions=self.evictions,
                loaded=len(self._items),
                bytes=self._bytes,
                pinned=sum(1 for e in self._items.values() if e.pins),
            )

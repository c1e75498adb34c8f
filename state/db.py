"""Storage for the chain: a LevelDB key-value store (plyvel) and the staging layer that
turns py-evm's many small batches into one atomic write per block.

py-evm persists a block in several batches (state trie, then block, then the canonical
index and head). A crash between two of them would leave a head that points at missing
state. So every write made while building or importing a block lands in a
:class:`StagedDB` overlay, and :meth:`StagedDB.commit` writes the whole overlay to disk
in one LevelDB write batch. A kill at any instant therefore leaves either the old head
with its state or the new head with its state, never a mix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import plyvel
from eth.db.backends.base import BaseDB

_DELETED = None
_ABSENT = object()


class ReadTimeout(Exception):
    """A read ran past the deadline its thread set with :class:`read_deadline`."""


_read_deadline = threading.local()


class read_deadline:  # noqa: N801 - a context manager, named like contextlib's
    """Bound the wall time of every database read this thread makes in the block: each
    read past ``deadline`` (``time.monotonic()``) raises :class:`ReadTimeout`. Every
    state, block and receipt read passes through :meth:`StagedDB.__getitem__`, so this
    bounds any read-only RPC method, whatever it walks. Threads that never set one (the
    chain thread) pay one attribute lookup per read."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __enter__(self) -> None:
        self._saved = getattr(_read_deadline, "at", None)
        _read_deadline.at = self.deadline

    def __exit__(self, *exc: object) -> None:
        _read_deadline.at = self._saved


class KeyValueStore(Protocol):
    """What the staging layer needs from the durable store below it."""

    def get(self, key: bytes) -> bytes | None: ...

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        """Apply all ``changes`` (None deletes) atomically."""
        ...

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The entries whose keys start with ``prefix``, in key order."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A dict behind the store interface: the in-memory dev chain."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        for key, value in changes.items():
            if value is _DELETED:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._data if k.startswith(prefix)):
            yield key, self._data[key]

    def close(self) -> None:
        pass


class LevelDBStore:
    """LevelDB through plyvel; every write is one synced write batch."""

    def __init__(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(path), create_if_missing=True)
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        # sync=True: a block is reported committed only once it is on disk.
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for key, value in changes.items():
                if value is _DELETED:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        yield from self._db.iterator(prefix=prefix)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()


class StagedDB(BaseDB):
    """A py-evm database whose writes stay in memory until :meth:`commit`.

    Reads see staged writes first. :meth:`discard` drops everything staged since the last
    commit, which is how a block that fails to build leaves no trace.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self._staged: dict[bytes, bytes | None] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: bytes) -> bytes:
        deadline = getattr(_read_deadline, "at", None)
        if deadline is not None and time.monotonic() > deadline:
            raise ReadTimeout("read aborted: past its time budget")
        # One lookup in one dict: eth_call reads from another thread while commit()
        # swaps ``_staged`` for a fresh dict, so a test-then-get could see two dicts.
        staged = self._staged
        value = staged.get(key, _ABSENT)
        if value is not _ABSENT:
            if value is _DELETED:
                raise KeyError(key)
            return value  # type: ignore[return-value]
        stored = self.store.get(key)
        if stored is None:
            raise KeyError(key)
        return stored

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._staged[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._staged[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        value = self._staged.get(key, _ABSENT)
        if value is not _ABSENT:
            return value is not _DELETED
        return self.store.get(key) is not None

    @property
    def has_staged(self) -> bool:
        return bool(self._staged)

    def commit(self) -> None:
        """Write everything staged to the store in one atomic batch."""
        with self._lock:
            if self._staged:
                self.store.write(self._staged)
                self._staged = {}

    def discard(self) -> None:
        self._staged = {}

    def staged_writes(self) -> dict[bytes, bytes | None]:
        """A copy of what is staged (to stage it again later with :meth:`restage`)."""
        return dict(self._staged)

    def restage(self, writes: dict[bytes, bytes | None]) -> None:
        """Stage ``writes`` (from :meth:`staged_writes`) again, in place of what is staged."""
        self._staged = dict(writes)

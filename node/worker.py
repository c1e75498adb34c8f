"""The chain worker: one dedicated thread that owns the chain core.

py-evm is not thread-safe and its calls block, so every chain operation is sent to this
one thread; the trio loop awaits the result without blocking the network paths.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class ChainWorker:
    def __init__(self, name: str = "chain-worker") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker thread, in a copy of the caller's context (so it
        sees who is calling), and return (or raise) its result."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: dict[str, Any] = {}
        context = contextvars.copy_context()

        def job() -> None:
            try:
                box["result"] = context.run(fn, *args)
            except BaseException as e:  # handed back to the awaiting task
                box["error"] = e
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        self._jobs.put(job)
        await done.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker from a non-trio thread (start-up, shutdown)."""
        box: dict[str, Any] = {}
        finished = threading.Event()

        def job() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as e:
                box["error"] = e
            finished.set()

        self._jobs.put(job)
        finished.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

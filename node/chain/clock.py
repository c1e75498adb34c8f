"""The time a node stamps its blocks with: the wall clock, which only a dev chain may move."""

from __future__ import annotations

import time


class Clock:
    """The time blocks are stamped with: the wall clock, which a dev chain may move."""

    def __init__(self) -> None:
        self.offset = 0
        """Seconds added to the wall clock (evm_increaseTime, evm_setNextBlockTimestamp)."""
        self.next_timestamp: int | None = None
        """evm_setNextBlockTimestamp: the next block carries exactly this (once)."""
        self.min_next_timestamp: int | None = None
        """evm_increaseTime's promise: the next block is at least this late."""

    def now(self) -> int:
        return int(time.time()) + self.offset

    def block_timestamp(self, parent_timestamp: int) -> int:
        """The next block's timestamp: always after its parent's."""
        if self.next_timestamp is not None:
            ts, self.next_timestamp = self.next_timestamp, None
            return max(ts, parent_timestamp + 1)
        return max(self.now(), parent_timestamp + 1, self.min_next_timestamp or 0)

    def reset(self) -> None:
        self.offset = 0
        self.next_timestamp = None
        self.min_next_timestamp = None

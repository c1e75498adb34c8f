"""A JSON-RPC flood for the fair-share tests and bench: ``CONNECTIONS`` threads, each calling one
method again and again from one of ``SOURCES`` loopback addresses, until killed. Run it as its own
process (``python -m tests.support.flood URL CONNECTIONS SOURCES [KIND]``) so that its threads do
not share a GIL with the honest client that measures the node.

Kinds: ``loop`` (an endless ``eth_call``: each runs to the node's time budget), ``training``
(``ai_getTrainingSet`` of every published version of datanet 1, at most 32). Every second it
prints how many calls were answered, refused as busy, and failed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from tests.support.procs import rpc

#: An endless loop as init code (JUMPDEST; PUSH1 0; JUMP).
LOOP = "0x5b600056"


def sources(count: int, spread: bool = False) -> list[str]:
    """``count`` loopback addresses: in one /24 (127.0.3.x), or each in its own (127.x.3.1)."""
    return [f"127.{10 + i}.3.1" if spread else f"127.0.3.{1 + i}" for i in range(count)]


def call_of(kind: str, url: str) -> tuple[str, list[Any]]:
    if kind == "loop":
        return "eth_call", [{"data": LOOP}, "latest"]
    if kind == "training":
        count = rpc(url, "ai_getDatanet", [1])["result"]["versionCount"]
        versions = int(count, 16) if isinstance(count, str) else int(count)
        return "ai_getTrainingSet", [[[1, v] for v in range(1, min(versions, 32) + 1)]]
    raise ValueError(f"unknown kind {kind}")


def main() -> None:
    url, connections, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "loop"
    spread = len(sys.argv) > 5 and sys.argv[5] == "spread"
    method, params = call_of(kind, url)
    addresses = sources(count, spread)
    stats = {"answered": 0, "busy": 0, "failed": 0}

    def loop(source: str) -> None:
        while True:
            try:
                answer = rpc(url, method, params, timeout=60, source=source)
            except OSError:
                stats["failed"] += 1
                time.sleep(0.1)
                continue
            stats["busy" if "node busy" in json.dumps(answer) else "answered"] += 1

    for i in range(connections):
        threading.Thread(target=loop, args=(addresses[i % len(addresses)],), daemon=True).start()
    while True:
        time.sleep(1)
        print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()

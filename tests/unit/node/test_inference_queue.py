"""A validator's inference queue (node/inference.py) shared fairly: users are served round-robin,
one user cannot hold more than its share of the queue, a full queue refuses at once, and a
request cancelled while it waits frees its place (issue 19, attack 3: one user's burst kept an
honest request waiting 33 s)."""

from __future__ import annotations

import pytest
import trio

from node.errors import LimitExceeded
from node.inference import InferenceService

A, B, H = b"\x0a" * 20, b"\x0b" * 20, b"\x0c" * 20


def service(**limits: int) -> InferenceService:
    return InferenceService("127.0.0.1:9", b"\x01" * 32, price=1, **limits)


def test_users_are_served_round_robin() -> None:
    order: list[str] = []

    async def main() -> None:
        s = service(concurrency=1, max_waiting=10, max_per_user=5)
        gates = {name: trio.Event() for name in ("a1", "a2", "a3", "h1")}

        async def request(user: bytes, name: str) -> None:
            async with s.slot(user):
                order.append(name)
                await gates[name].wait()

        async with trio.open_nursery() as nursery:
            for user, name in ((A, "a1"), (A, "a2"), (A, "a3"), (H, "h1")):
                nursery.start_soon(request, user, name)
                await trio.sleep(0.01)
            for name in ("a1", "a2", "h1", "a3"):
                await trio.sleep(0.01)
                gates[name].set()

    trio.run(main)
    assert order == ["a1", "a2", "h1", "a3"]  # the honest user waited behind one of the burst only


def test_one_user_cannot_fill_the_queue_and_a_full_queue_refuses() -> None:
    async def main() -> None:
        s = service(concurrency=1, max_waiting=3, max_per_user=2)
        hold = trio.Event()

        async def request(user: bytes) -> None:
            async with s.slot(user):
                await hold.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(request, A)
            nursery.start_soon(request, A)
            await trio.sleep(0.01)
            with pytest.raises(LimitExceeded, match="of your requests"):
                async with s.slot(A):
                    pass
            nursery.start_soon(request, B)
            nursery.start_soon(request, H)
            await trio.sleep(0.01)  # one runs, three wait: the queue is full
            with pytest.raises(LimitExceeded, match="too many inferences"):
                async with s.slot(b"\x0e" * 20):
                    pass
            hold.set()

    trio.run(main)


def test_a_cancelled_waiter_frees_its_place() -> None:
    served: list[str] = []

    async def main() -> None:
        s = service(concurrency=1, max_waiting=2, max_per_user=2)
        release = trio.Event()

        async def first() -> None:
            async with s.slot(A):
                await release.wait()
                served.append("a")

        async def honest() -> None:
            async with s.slot(H):
                served.append("h")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.sleep(0.01)
            with trio.move_on_after(0.05):  # the user hangs up while waiting
                async with s.slot(B):
                    served.append("b")
            nursery.start_soon(honest)
            await trio.sleep(0.01)
            release.set()
        assert s._running == 0 and not s._queues

    trio.run(main)
    assert served == ["a", "h"]


def test_a_merge_is_imported_after_its_parents(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar rebuilds a merge from the parents it names before it stores it
    (docs/merges.md), so the node imports a merge's parents first, a merge parent's own parents
    before it, and a parent the sidecar holds not at all."""
    from types import SimpleNamespace

    import node.inference as ni

    def model(i: int) -> SimpleNamespace:
        return SimpleNamespace(id=i, weights_hash=bytes([i]) * 32)

    parents = {10: [1, 11], 11: [2, 3]}  # 10 merges 1 and 11; 11 merges 2 and 3
    monkeypatch.setattr(ni, "_merge_parents", lambda core, mid: [model(p) for p in parents.get(mid, [])])
    monkeypatch.setattr(ni, "read_artifacts", lambda core, m: m.id)
    s = service()
    held = {"0x" + (bytes([3]) * 32).hex()}  # the sidecar already holds 3
    imported: list[int] = []
    monkeypatch.setattr(s, "held_adapter", lambda h: h if h in held else None)

    def import_adapter(artifacts: int) -> str:
        imported.append(artifacts)
        held.add("0x" + (bytes([artifacts]) * 32).hex())
        return str(artifacts)

    monkeypatch.setattr(s, "import_adapter", import_adapter)

    class Reads:
        async def run(self, fn, *args):  # type: ignore[no-untyped-def]
            return fn(*args)

    trio.run(s.adapter, None, Reads(), model(10))  # type: ignore[arg-type]
    assert imported == [1, 2, 11, 10]

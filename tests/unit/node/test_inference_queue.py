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

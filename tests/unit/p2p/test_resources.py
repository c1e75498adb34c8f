"""The muxer's budgets (p2p/resources.py) on two real py-libp2p yamux connections joined by an
in-memory pipe in place of Noise: the receive window is enforced, streams and buffered bytes have
per-peer and per-node limits, and an honest transfer larger than the window still passes."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from p2p.resources import (
    FLAG_SYN,
    TYPE_DATA,
    TYPE_WINDOW_UPDATE,
    ResourceLimits,
    ResourceManager,
    guarded_yamux,
)

pytestmark = pytest.mark.timeout(60)


class Pipe:
    """One end of an in-memory secured connection (what Noise hands yamux)."""

    def __init__(self, stream: trio.abc.Stream, initiator: bool) -> None:
        self.stream, self.is_initiator = stream, initiator
        self.buffer = bytearray()

    async def read(self, n: int | None = None) -> bytes:
        while n is not None and len(self.buffer) < n:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                break
            self.buffer += chunk
        size = len(self.buffer) if n is None else min(n, len(self.buffer))
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        await self.stream.aclose()

    def get_remote_address(self):
        return ("127.0.0.1", 1)


def peer_id(n: int):
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.peer.id import ID

    return ID.from_pubkey(create_new_key_pair(bytes([n]) * 32).public_key)


async def pair(nursery, limits: ResourceLimits | None = None):
    """(dialler's muxer, listener's muxer, listener's manager, violations seen by the listener)."""
    a_end, b_end = trio.testing.memory_stream_pair()
    violations: list[tuple[str, str]] = []
    listener_manager = ResourceManager(limits, on_violation=lambda p, r: violations.append((p, r)))
    Guarded = guarded_yamux()
    dialler = Guarded(Pipe(a_end, True), peer_id(2), ResourceManager(), is_initiator=True)
    listener = Guarded(Pipe(b_end, False), peer_id(1), listener_manager, is_initiator=False)
    nursery.start_soon(dialler.start)
    nursery.start_soon(listener.start)
    await dialler.event_started.wait()
    await listener.event_started.wait()
    return dialler, listener, listener_manager, violations


def test_an_honest_transfer_larger_than_the_window_passes():
    async def main():
        async with trio.open_nursery() as nursery:
            dialler, listener, _, violations = await pair(nursery)
            stream = await dialler.open_stream()
            data = bytes(range(256)) * 8192  # 2 MiB: eight initial windows
            nursery.start_soon(stream.write, data)
            inbound = await listener.accept_stream()
            got = bytearray()
            while len(got) < len(data):
                got += await inbound.read(65536)
            assert bytes(got) == data and not violations
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_data_past_the_window_closes_the_connection_and_names_the_peer():
    async def main():
        async with trio.open_nursery() as nursery:
            dialler, listener, manager, violations = await pair(nursery)
            stream = await dialler.open_stream()
            await stream.write(b"hello")
            inbound = await listener.accept_stream()
            payload = b"x" * 65000
            frame = struct.pack("!BBHII", 0, TYPE_DATA, 0, stream.stream_id, len(payload)) + payload
            with trio.move_on_after(10):
                try:
                    while not listener.event_shutting_down.is_set():
                        await dialler._write_frame(frame)  # never waits for a window update
                except trio.ClosedResourceError:
                    pass  # the listener closed the pipe
            assert listener.event_shutting_down.is_set()
            assert violations and violations[0][0] == str(peer_id(1).to_base58())  # the dialler
            assert "past its window" in violations[0][1]
            with trio.fail_after(5):  # the closing connection drops what it held (its own task)
                while listener.buffered():
                    await trio.sleep(0.01)
            assert inbound is not None
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_stream_the_peer_never_opened_is_a_violation():
    async def main():
        async with trio.open_nursery() as nursery:
            dialler, listener, _, violations = await pair(nursery)
            frame = struct.pack("!BBHII", 0, TYPE_DATA, 0, 101, 3) + b"abc"
            await dialler._write_frame(frame)
            with trio.fail_after(5):
                await listener.event_shutting_down.wait()
            assert "never opened" in violations[0][1]
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_streams_past_the_peers_share_are_reset_before_anyone_sees_them():
    async def main():
        async with trio.open_nursery() as nursery:
            limits = ResourceLimits(inbound_streams_per_peer=3)
            dialler, listener, manager, violations = await pair(nursery, limits)
            streams = [await dialler.open_stream() for _ in range(5)]
            for s in streams:
                try:
                    await s.write(b"x")
                except Exception:
                    pass  # a refused stream may already be reset
            accepted = []
            with trio.move_on_after(2):
                while True:
                    accepted.append(await listener.accept_stream())
            assert len(accepted) == 3 and manager.refused_streams == 2 and not violations
            with trio.fail_after(5):
                while not (streams[3].reset_received and streams[4].reset_received):
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_unread_bytes_past_the_peers_share_reset_the_stream_without_blame():
    async def main():
        async with trio.open_nursery() as nursery:
            limits = ResourceLimits(buffered_per_peer=300 * 1024)
            dialler, listener, manager, violations = await pair(nursery, limits)
            streams = [await dialler.open_stream() for _ in range(2)]
            for s in streams:
                nursery.start_soon(s.write, b"y" * 200 * 1024)  # within each window, never read
            with trio.fail_after(10):
                while manager.reset_for_memory == 0:
                    await trio.sleep(0.05)
            assert listener.buffered() <= 300 * 1024 and not violations
            assert not listener.event_shutting_down.is_set()
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_node_wide_budget_takes_from_the_biggest_holder():
    async def main():
        async with trio.open_nursery() as nursery:
            limits = ResourceLimits(buffered=400 * 1024)
            big_d, big_l, manager, _ = await pair(nursery, limits)
            a_end, b_end = trio.testing.memory_stream_pair()
            Guarded = guarded_yamux()
            small_d = Guarded(Pipe(a_end, True), peer_id(3), ResourceManager(), is_initiator=True)
            small_l = Guarded(Pipe(b_end, False), peer_id(1), manager, is_initiator=False)
            nursery.start_soon(small_d.start)
            nursery.start_soon(small_l.start)
            await small_l.event_started.wait()
            hog = await big_d.open_stream()
            await hog.write(b"h" * 250 * 1024)
            s2 = await big_d.open_stream()
            await s2.write(b"h" * 100 * 1024)
            with trio.fail_after(5):
                while big_l.buffered() < 350 * 1024:
                    await trio.sleep(0.02)
            newcomer = await small_d.open_stream()
            await newcomer.write(b"n" * 100 * 1024)
            with trio.fail_after(5):
                while small_l.buffered() < 100 * 1024:
                    await trio.sleep(0.02)
            assert manager.reset_for_memory >= 1 and big_l.buffered() <= 100 * 1024 + 1
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_window_updates_sent_are_the_credit():
    """The guard's credit follows what yamux grants: a SYN opens 256 KiB, updates add to it."""
    async def main():
        async with trio.open_nursery() as nursery:
            dialler, listener, _, violations = await pair(nursery)
            stream = await dialler.open_stream()
            await stream.write(b"z" * 1000)
            inbound = await listener.accept_stream()
            assert await inbound.read(1000) == b"z" * 1000
            credit = listener.guard._credit[stream.stream_id]
            assert credit.left >= 256 * 1024 - 1000
            assert FLAG_SYN and TYPE_WINDOW_UPDATE and not violations
            nursery.cancel_scope.cancel()

    trio.run(main)

"""Persistent links: one long-lived outbound stream of one protocol to every connected peer
that speaks it (DESIGN.md: validators keep a full mesh of direct streams for votes and
proposals, since gossipsub holds only tens of messages a second).

A frame sent to a peer waits in that peer's bounded outbox; a link task writes what waits as
one batch (each write costs about 1 ms in py-libp2p), gives up on a peer whose writes block
past :data:`WRITE_TIMEOUT` (a SIGSTOPped peer never reads), and asks a peer that does not speak
the protocol (a follower) again only after :data:`NOT_SPEAKING_RETRY`. A link may open with a
greeting frame (the consensus hello); a link the other side ends early (it refused the greeting)
is tried again after a backoff that doubles up to :data:`NOT_SPEAKING_RETRY`. Inbound streams are
the protocol's own handler's business (:meth:`p2p.host.P2PHost.add_protocol`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from p2p.host import P2PHost, PeerError
from p2p.wire import encode_frame

log = logging.getLogger("ailedger.p2p")

#: Frames queued for one peer before new ones are dropped (the sender re-sends what matters).
OUTBOX_FRAMES = 1024
#: Bytes written to a stream at once.
WRITE_BATCH = 256 * 1024
#: Seconds a write to a peer may block before its stream is dropped.
WRITE_TIMEOUT = 10.0
#: Seconds before a peer that does not speak the protocol is asked again.
NOT_SPEAKING_RETRY = 30.0
#: Seconds between two looks for newly connected peers.
CONNECT_INTERVAL = 0.5
#: A link that ends within this many seconds of opening was refused: it backs off, from
#: :data:`FIRST_BACKOFF` seconds, doubling.
EARLY_END, FIRST_BACKOFF = 5.0, 1.0


class StreamLinks:
    """Outbound streams of ``protocol`` to every connected, unbanned peer that speaks it."""

    def __init__(self, host: P2PHost, protocol: str, on_drop: Callable[[], None] | None = None,
                 greeting: Callable[[str], bytes] | None = None,
                 should_link: Callable[[], bool] | None = None) -> None:
        """``greeting(peer)`` is the first frame of each new stream; ``should_link()`` says whether
        to open links at all now (a candidate that is not in the validator set opens none)."""
        self.host = host
        self.protocol = protocol
        self._on_drop = on_drop
        self._greeting = greeting
        self._should_link = should_link
        self._outboxes: dict[str, trio.MemorySendChannel[bytes]] = {}
        self._not_speaking: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def peers(self) -> list[str]:
        """Peers with a link now, sorted."""
        return sorted(self._outboxes)

    def send(self, peer: str, frame: bytes) -> None:
        """Queue ``frame`` for ``peer``; dropped when it has no link or its outbox is full."""
        outbox = self._outboxes.get(peer)
        if outbox is None:
            return
        try:
            outbox.send_nowait(frame)
        except trio.WouldBlock:
            if self._on_drop is not None:
                self._on_drop()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def broadcast(self, frame: bytes) -> None:
        for peer in self.peers:
            self.send(peer, frame)

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a link to every connected peer that speaks the protocol; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                now = time.monotonic()
                if self._should_link is not None and not self._should_link():
                    await trio.sleep(CONNECT_INTERVAL)
                    continue
                for peer in list(self.host.peers):
                    if (peer in self._outboxes or self._not_speaking.get(peer, 0.0) > now
                            or self.host.is_banned(peer)):
                        continue
                    send, receive = trio.open_memory_channel[bytes](OUTBOX_FRAMES)
                    self._outboxes[peer] = send
                    nursery.start_soon(self._link, peer, send, receive)
                await trio.sleep(CONNECT_INTERVAL)

    async def _link(self, peer: str, send: trio.MemorySendChannel[bytes],
                    receive: trio.MemoryReceiveChannel[bytes]) -> None:
        stream = None
        opened = time.monotonic()
        try:
            try:
                stream = await self.host.open_stream(peer, self.protocol)
                if self._greeting is not None:
                    await stream.write(encode_frame(self._greeting(peer)))
            except PeerError as e:
                log.debug("%s: no stream to %s (%s)", self.protocol, peer, e)
                self._not_speaking[peer] = time.monotonic() + NOT_SPEAKING_RETRY
                return
            log.info("%s: linked to peer %s", self.protocol, peer)
            async with receive:
                async for frame in receive:
                    batch = bytearray(encode_frame(frame))
                    while len(batch) < WRITE_BATCH:
                        try:
                            batch += encode_frame(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                    with trio.fail_after(WRITE_TIMEOUT):
                        await stream.write(bytes(batch))
        except trio.TooSlowError:
            log.info("%s: peer %s stopped reading; dropping its stream", self.protocol, peer)
        except Exception as e:
            log.info("%s: stream to %s ended: %s", self.protocol, peer, e)
        finally:
            if self._outboxes.get(peer) is send:
                del self._outboxes[peer]
            send.close()
            if stream is not None and time.monotonic() - opened < EARLY_END:
                backoff = min(self._backoff.get(peer, FIRST_BACKOFF / 2) * 2, NOT_SPEAKING_RETRY)
                self._backoff[peer] = backoff
                self._not_speaking[peer] = time.monotonic() + backoff
            elif stream is not None:
                self._backoff.pop(peer, None)
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    try:
                        await stream.reset()
                    except Exception:
                        pass

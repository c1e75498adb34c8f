"""What peers may hold in this node, per peer and per node (libp2p's resource manager): connections,
streams, and bytes buffered in the muxer; and a yamux muxer that enforces its receive window.

py-libp2p 0.8.1 counts connections (its ``rcmgr``, configured here) and streams node-wide only, and
its yamux logs "peer exceeded receive window" and buffers the bytes anyway: one peer that ignores
flow control grows the node's memory without bound. So every connection's muxer reads its frames
through a :class:`FlowGuard`, which sees each frame before yamux does and each frame yamux writes
(the window updates it grants), and enforces:

- **the receive window** of every stream: DATA beyond what this node granted (256 KiB at open,
  plus every WINDOW_UPDATE it sent) is a protocol violation. The connection is closed with
  GO_AWAY (protocol error), as go-yamux does, and the peer is reported to the host (banned);
- **streams**: a peer opening a stream past its inbound share, or the node past its total, gets
  the stream reset before yamux or any handler sees it;
- **buffered bytes**: received but not yet read by a handler, per peer and per node. Past the
  peer's share the stream being written is reset (the bytes are dropped, the peer is not blamed:
  the reader may simply be slow); past the node's total the largest stream of the peer holding
  the most is reset first, so one peer cannot crowd the others out;
- **frames**: a DATA body must arrive within :data:`FRAME_BODY_TIMEOUT`; pings are rate-limited.

Nothing in py-libp2p is edited: the guard is a reader/writer between yamux and the Noise session,
installed by :func:`install`, which swaps the upgrader's muxer selection for one that builds
:func:`guarded_yamux`.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

log = logging.getLogger("ailedger.p2p")

HEADER = struct.Struct("!BBHII")
TYPE_DATA, TYPE_WINDOW_UPDATE, TYPE_PING, TYPE_GO_AWAY = 0, 1, 2, 3
FLAG_SYN, FLAG_ACK, FLAG_FIN, FLAG_RST = 1, 2, 4, 8
GO_AWAY_PROTOCOL_ERROR = 1
#: The receive window every yamux stream starts with (the spec's 256 KiB).
INITIAL_WINDOW = 256 * 1024
#: Seconds a DATA frame's body may take to arrive once its header has.
FRAME_BODY_TIMEOUT = 20.0
#: Pings a peer may send per second, and in a burst (each costs a write).
PINGS_PER_SECOND, PING_BURST = 5.0, 20.0
#: Closed streams whose remaining credit is remembered (data the peer had in flight when we reset
#: it is not a violation); older ones are forgotten.
CLOSED_REMEMBERED = 256
#: Bytes a peer may send on streams this node has forgotten before that counts as a violation.
UNKNOWN_STREAM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ResourceLimits:
    """Per-peer and per-node limits (libp2p's resource-manager scopes: peer and system)."""

    connections_per_peer: int = 4
    """Established connections with one peer (two peers dialling each other hold two)."""
    connections: int = 256
    """Established connections in all."""
    pending_inbound: int = 32
    """Inbound connections still in their Noise handshake."""
    inbound_streams_per_peer: int = 64
    """Streams one peer may have open towards this node at once."""
    streams: int = 2048
    """Streams open on all connections, either direction."""
    buffered_per_peer: int = 32 * 1024 * 1024
    """Bytes received from one peer that no handler has read yet."""
    buffered: int = 256 * 1024 * 1024
    """Bytes received from all peers that no handler has read yet."""


class FlowControlViolation(ConnectionError):
    """A peer broke yamux's rules (sent past its window, a stream it never opened, a bad frame);
    the connection is closed."""


#: ``(peer id, reason)``: a peer broke the muxer's rules; the host bans it.
ViolationHandler = Callable[[str, str], None]


class ResourceManager:
    """The node's accounting of what each peer holds, over every guarded connection."""

    def __init__(self, limits: ResourceLimits | None = None, on_violation: ViolationHandler | None = None) -> None:
        self.limits = limits or ResourceLimits()
        self.on_violation = on_violation
        self.conns: dict[str, set[MuxedConnection]] = {}
        #: Upper bound of the bytes buffered node-wide, recomputed exactly when it reaches the limit
        #: (summing every stream of every connection on each frame would cost more than the frame).
        self._buffered_estimate = 0
        self.refused_streams = 0
        self.reset_for_memory = 0
        self.violations = 0

    # -- libp2p's own part ------------------------------------------------------------------

    def library_manager(self) -> Any:
        """py-libp2p's resource manager with this node's connection limits (it enforces those)."""
        from libp2p.rcmgr import ResourceLimits as LibLimits
        from libp2p.rcmgr import new_resource_manager
        from libp2p.rcmgr.connection_limits import ConnectionLimits

        limits = self.limits
        return new_resource_manager(
            limits=LibLimits(max_connections=limits.connections, max_streams=limits.streams),
            connection_limits=ConnectionLimits(
                max_pending_inbound=limits.pending_inbound, max_pending_outbound=limits.pending_inbound,
                max_established_inbound=limits.connections, max_established_outbound=limits.connections,
                max_established_per_peer=limits.connections_per_peer, max_established_total=limits.connections,
            ),
        )

    # -- connections --------------------------------------------------------------------------

    def opened(self, conn: MuxedConnection) -> None:
        self.conns.setdefault(conn.peer, set()).add(conn)

    def closed(self, conn: MuxedConnection) -> None:
        conns = self.conns.get(conn.peer)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.conns[conn.peer]

    # -- accounting ---------------------------------------------------------------------------

    def inbound_streams(self, peer: str) -> int:
        return sum(c.inbound_streams() for c in self.conns.get(peer, ()))

    def streams(self) -> int:
        return sum(len(c.streams) for conns in self.conns.values() for c in conns)

    def buffered_by(self, peer: str) -> int:
        return sum(c.buffered() for c in self.conns.get(peer, ()))

    def buffered(self) -> int:
        return sum(c.buffered() for conns in self.conns.values() for c in conns)

    def admit_stream(self, peer: str) -> str | None:
        """Why a new inbound stream from ``peer`` is refused, or None."""
        if self.inbound_streams(peer) >= self.limits.inbound_streams_per_peer:
            return f"peer has {self.limits.inbound_streams_per_peer} streams open"
        if self.streams() >= self.limits.streams:
            return f"node has {self.limits.streams} streams open"
        return None

    async def admit_bytes(self, conn: MuxedConnection, stream_id: int, n: int) -> bool:
        """Whether ``n`` more bytes for ``stream_id`` may be buffered; when not, streams are reset
        to make room (the largest of the biggest holder first when the node is full)."""
        limits = self.limits
        if self.buffered_by(conn.peer) + n > limits.buffered_per_peer:
            self.reset_for_memory += 1
            log.info("p2p: peer %s holds %d unread bytes; resetting its stream %d", conn.peer,
                     self.buffered_by(conn.peer), stream_id)
            await conn.reset_stream(stream_id)
            return False
        self._buffered_estimate += n
        if self._buffered_estimate <= limits.buffered:
            return True
        total = self.buffered()
        while total + n > limits.buffered:
            holders = [(self.buffered_by(p), p) for p in self.conns]
            held, peer = max(holders)
            if held == 0:
                break
            victim = max((c for c in self.conns[peer]), key=lambda c: c.buffered())
            sid = victim.largest_stream()
            if sid is None:
                break
            self.reset_for_memory += 1
            log.info("p2p: node holds %d unread bytes; resetting stream %d of %s (%d bytes)", total, sid, peer, held)
            await victim.reset_stream(sid)
            if victim is conn and sid == stream_id:
                self._buffered_estimate = self.buffered()
                return False
            total = self.buffered()
        self._buffered_estimate = total + n
        if total + n > limits.buffered:
            await conn.reset_stream(stream_id)
            return False
        return True

    def violated(self, peer: str, reason: str) -> None:
        self.violations += 1
        log.warning("p2p: peer %s broke the muxer's rules: %s", peer, reason)
        if self.on_violation is not None:
            self.on_violation(peer, reason)


class _Credit:
    """What this node let a peer send on one stream."""

    __slots__ = ("left", "open")

    def __init__(self, left: int) -> None:
        self.left = left
        self.open = True


class FlowGuard:
    """The secured connection as yamux sees it: frames in are checked before yamux reads them,
    frames out are watched for the window this node grants. Everything else is the session's."""

    def __init__(self, session: Any, manager: ResourceManager) -> None:
        self._session = session
        self._manager = manager
        self._muxer: MuxedConnection | None = None
        self._ready = bytearray()
        self._credit: OrderedDict[int, _Credit] = OrderedDict()
        self._highest_remote = 0
        self._unknown_bytes = 0
        self._pings = PING_BURST
        self._pings_at = time.monotonic()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def bind(self, muxer: MuxedConnection) -> None:
        self._muxer = muxer

    # -- out: the grants --------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        if len(data) >= HEADER.size:
            _, typ, flags, sid, length = HEADER.unpack_from(data)
            if typ == TYPE_WINDOW_UPDATE and sid:
                credit = self._credit.get(sid)
                if flags & FLAG_SYN and credit is None:
                    credit = self._credit[sid] = _Credit(INITIAL_WINDOW)
                    if len(self._credit) > 2 * CLOSED_REMEMBERED:
                        self._forget_closed(keep=sid)
                if credit is not None:
                    credit.left += length
            if typ in (TYPE_DATA, TYPE_WINDOW_UPDATE) and flags & FLAG_RST:
                self._close(sid)
        await self._session.write(data)

    # -- in: the checks ---------------------------------------------------------------------

    async def read(self, n: int | None = None) -> bytes:
        while not self._ready:
            await self._next_frame()
        size = len(self._ready) if n is None or n < 0 else min(n, len(self._ready))
        out = bytes(self._ready[:size])
        del self._ready[:size]
        return out

    async def _read_exactly(self, n: int) -> bytes:
        data = await self._session.read(n)
        if len(data) != n:
            from libp2p.io.exceptions import ConnectionClosedError

            raise ConnectionClosedError("connection closed inside a yamux frame")
        return bytes(data)

    async def _next_frame(self) -> None:
        muxer = self._muxer
        assert muxer is not None
        header = await self._read_exactly(HEADER.size)
        version, typ, flags, sid, length = HEADER.unpack(header)
        if version != 0 or typ > TYPE_GO_AWAY:
            await self._violation(f"a frame of version {version}, type {typ}")
        if typ == TYPE_PING and flags & FLAG_SYN and not self._take_ping():
            await self._violation("a ping flood")
        body: bytes | None = b""
        if typ == TYPE_DATA:
            body = await self._data_body(sid, flags, length)
        elif typ == TYPE_WINDOW_UPDATE and flags & FLAG_SYN and not await self._open_remote(sid, flags):
            body = None
        if typ in (TYPE_DATA, TYPE_WINDOW_UPDATE) and flags & FLAG_RST:
            self._close(sid)
        if body is not None:  # None: dropped (a refused stream, or one reset for memory)
            self._ready += header
            self._ready += body

    async def _data_body(self, sid: int, flags: int, length: int) -> bytes | None:
        muxer = self._muxer
        assert muxer is not None
        admitted = await self._open_remote(sid, flags) if flags & FLAG_SYN else sid in muxer.streams
        credit = self._credit.get(sid)
        if credit is not None:
            if length > credit.left:
                await self._violation(f"{length} bytes on stream {sid} past its window of {credit.left}")
            credit.left -= length
        elif sid % 2 == muxer.remote_parity and sid > self._highest_remote or (
                sid % 2 != muxer.remote_parity and sid >= muxer.next_stream_id):
            await self._violation(f"data on stream {sid}, which was never opened")
        else:
            self._unknown_bytes += length
            if self._unknown_bytes > UNKNOWN_STREAM_BYTES:
                await self._violation(f"{self._unknown_bytes} bytes on streams long closed")
        with trio.fail_after(FRAME_BODY_TIMEOUT):
            body = await self._read_exactly(length) if length else b""
        if not admitted or credit is None or not credit.open:
            return None  # yamux would drop it as well; dropped here, it costs no buffer
        if length and not await self._manager.admit_bytes(muxer, sid, length):
            return None
        return body

    async def _open_remote(self, sid: int, flags: int) -> bool:
        """A stream the peer opens: admitted, or reset before yamux (or any handler) sees it."""
        muxer = self._muxer
        assert muxer is not None
        if sid % 2 != muxer.remote_parity or sid <= self._highest_remote:
            await self._violation(f"opened stream {sid} (out of order, reused, or of our parity)")
        self._highest_remote = sid
        credit = self._credit[sid] = _Credit(INITIAL_WINDOW)
        if len(self._credit) > 2 * CLOSED_REMEMBERED:
            self._forget_closed(keep=sid)
        refused = self._manager.admit_stream(muxer.peer)
        if refused is None:
            return True
        self._manager.refused_streams += 1
        log.debug("p2p: refused stream %d of %s: %s", sid, muxer.peer, refused)
        credit.open = False
        if not flags & FLAG_RST:
            await muxer.send_frame(HEADER.pack(0, TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0))
        return False

    def _close(self, sid: int) -> None:
        credit = self._credit.get(sid)
        if credit is not None:
            credit.open = False

    def _forget_closed(self, keep: int) -> None:
        """Forget the oldest ended streams (reset, or gone from yamux), keeping the last
        :data:`CLOSED_REMEMBERED` (their peer may still have bytes in flight)."""
        muxer = self._muxer
        assert muxer is not None
        ended = [sid for sid, c in self._credit.items()
                 if sid != keep and (not c.open or sid not in muxer.streams)]
        for sid in ended[: max(0, len(ended) - CLOSED_REMEMBERED)]:
            del self._credit[sid]

    def _take_ping(self) -> bool:
        now = time.monotonic()
        self._pings = min(PING_BURST, self._pings + (now - self._pings_at) * PINGS_PER_SECOND)
        self._pings_at = now
        if self._pings < 1:
            return False
        self._pings -= 1
        return True

    async def _violation(self, reason: str) -> None:
        muxer = self._muxer
        assert muxer is not None
        self._manager.violated(muxer.peer, reason)
        with trio.move_on_after(2):
            try:
                await muxer.send_frame(HEADER.pack(0, TYPE_GO_AWAY, 0, 0, GO_AWAY_PROTOCOL_ERROR))
            except Exception:
                pass
        raise FlowControlViolation(reason)


class MuxedConnection(Protocol):
    """What the manager and the guard need of a guarded yamux connection."""

    peer: str
    remote_parity: int
    next_stream_id: int
    streams: dict[int, Any]
    stream_buffers: dict[int, bytearray]

    def inbound_streams(self) -> int: ...
    def buffered(self) -> int: ...
    def largest_stream(self) -> int | None: ...
    async def send_frame(self, frame: bytes) -> None: ...
    async def reset_stream(self, sid: int) -> None: ...


@functools.cache
def guarded_yamux() -> type:
    """py-libp2p's ``Yamux`` reading through a :class:`FlowGuard` (built on first use: importing
    libp2p costs seconds, and commands that never network skip it).

    One setting changed: py-libp2p's yamux sends a WINDOW_UPDATE after every read by default
    (``PY_YAMUX_RELEASE_ON_READ``), one more encrypted frame written for every gossip message
    read, 4% of a BFT validator's time under load. Off, it grants in batches of half a window as
    go-yamux does; the guard checks the peer against whatever was granted either way.
    """
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    from libp2p.stream_muxer.yamux.yamux import Yamux

    class GuardedYamux(Yamux):
        def __init__(self, secured_conn: Any, peer_id: Any, manager: ResourceManager,
                     is_initiator: bool | None = None) -> None:
            guard = FlowGuard(secured_conn, manager)
            super().__init__(guard, peer_id, is_initiator=is_initiator)  # type: ignore[arg-type]
            self.guard = guard
            self.manager = manager
            self.peer = str(peer_id.to_base58())
            #: Stream ids the peer opens are odd when it dialled, even when we did.
            self.remote_parity = 0 if self.is_initiator else 1
            guard.bind(self)

        async def start(self) -> None:
            self.manager.opened(self)
            try:
                await super().start()
            finally:
                self.manager.closed(self)

        def inbound_streams(self) -> int:
            return sum(1 for sid in self.streams if sid % 2 == self.remote_parity)

        def buffered(self) -> int:
            return sum(len(b) for b in self.stream_buffers.values())

        def largest_stream(self) -> int | None:
            sizes = [(len(b), sid) for sid, b in self.stream_buffers.items() if b]
            return max(sizes)[1] if sizes else None

        async def send_frame(self, frame: bytes) -> None:
            """A frame of the guard's own (a reset, GO_AWAY), between yamux's writes."""
            await self._write_frame(frame)

        async def reset_stream(self, sid: int) -> None:
            """Drop what ``sid`` buffered and reset it: its reader gets a reset, the peer an RST."""
            buffer = self.stream_buffers.get(sid)
            if buffer is not None:
                buffer.clear()
            stream = self.streams.get(sid)
            if stream is not None:
                await stream.reset()

    return GuardedYamux


def install(host: Any, manager: ResourceManager) -> None:
    """Make every new connection of ``host`` use :func:`guarded_yamux` under ``manager``.

    py-libp2p's muxer selection builds its own ``Yamux`` whatever class it was given for the yamux
    protocol id, so the upgrader's selection is replaced by one that builds ours."""
    from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID

    class GuardedMuxerSelection(MuxerMultistream):
        async def new_conn(self, conn: Any, peer_id: Any) -> Any:
            protocol, transport = await self._selector.select(conn, conn.is_initiator, self.negotiate_timeout)
            if protocol != YAMUX_ID:
                return self._annotate_connection(transport(conn, peer_id), conn, protocol)
            muxer = guarded_yamux()(conn, peer_id, manager, is_initiator=conn.is_initiator)
            return self._annotate_connection(muxer, conn, protocol)

    upgrader = host.get_network().upgrader
    old = upgrader.muxer_multistream
    upgrader.muxer_multistream = GuardedMuxerSelection(dict(old.transports), old.negotiate_timeout)

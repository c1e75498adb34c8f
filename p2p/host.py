"""The libp2p host of a node: Noise-only transport with yamux, a persistent node key, static
peers redialled with backoff, the status handshake, gossip topics, request/response
protocols and peer bans.

The host knows nothing about blocks or state: it moves bytes and asks a
:class:`ChainHandler` (the node) what they mean. The handler answers with a
:class:`Verdict`; a ``REJECT`` bans the peer that sent the bytes.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio
from eth_hash.auto import keccak

from p2p.resources import ResourceLimits, ResourceManager, install
from p2p.scoring import GossipScores, ScoreParams
from p2p.wire import (
    BLOBS_PROTOCOL,
    BLOCKS_PROTOCOL,
    MAX_FRAME,
    MAX_REQUEST,
    STATUS_PROTOCOL,
    BlobRequest,
    BlocksRequest,
    BlockWithCommit,
    FrameReader,
    Status,
    StreamEnded,
    WireError,
    decode_size,
    encode_frame,
    encode_size,
)

log = logging.getLogger("ailedger.p2p")

#: Seconds a request may take end to end before the peer counts as unresponsive.
REQUEST_TIMEOUT = 20.0
#: Seconds between status refreshes with each peer (head updates and liveness: a
#: SIGSTOPped peer keeps its TCP connection open and is never noticed otherwise).
STATUS_INTERVAL = 5.0
#: Largest gossip message per topic: one signed transaction, one block with its commit.
MAX_TX_MESSAGE = 128 * 1024
MAX_BLOCK_MESSAGE = MAX_FRAME
#: Blob chunks travel in frames of this size.
BLOB_CHUNK = 512 * 1024
#: Writes cost ~1 ms each: frames are batched up to this many bytes per write.
WRITE_BATCH = 256 * 1024
#: Requests one peer may have in flight with us at once; more are reset unanswered, so a
#: greedy peer cannot monopolise the chain worker that also builds and imports blocks.
MAX_INFLIGHT_PER_PEER = 4


class Verdict(enum.Enum):
    """What the node made of bytes a peer sent."""

    ACCEPT = "accept"
    """Valid and new: forward it."""
    IGNORE = "ignore"
    """Not useful (already known, stale, not applicable now) but not the peer's fault."""
    REJECT = "reject"
    """Invalid: the sender is banned."""


@dataclass(frozen=True)
class GossipOutcome:
    """What the node made of a gossip message that carries several items (a transaction batch)."""

    verdict: Verdict
    """ACCEPT when anything in it was new and valid; REJECT when anything was invalid."""
    useless: int = 0
    """Items already known or that cannot pay: no fault once, penalised above a rate
    (:class:`p2p.scoring.GossipScores`)."""


class ChainHandler(Protocol):
    """What the host asks the node."""

    async def local_status(self) -> Status: ...

    async def serve_blocks(self, request: BlocksRequest) -> list[BlockWithCommit]: ...

    async def serve_blob(self, content_hash: bytes) -> bytes | None: ...

    async def on_status(self, peer: str, status: Status) -> None: ...

    async def on_transaction(self, raw: bytes, peer: str) -> Verdict | GossipOutcome: ...

    async def on_block(self, raw: bytes, peer: str) -> Verdict | GossipOutcome: ...


#: Serves one inbound stream of a protocol: ``(peer id, stream)``.
StreamHandler = Callable[[str, Any], Awaitable[None]]


class PeerError(Exception):
    """A peer failed a request: timed out, reset the stream, or sent invalid bytes."""


@dataclass
class P2PConfig:
    """How a node joins the network."""

    key_path: Path
    """File of the node's persistent secp256k1 identity (created on first start)."""
    port: int = 30303
    """TCP port to listen on (0: any free port)."""
    listen_host: str = "127.0.0.1"
    """Interface to listen on."""
    peers: list[str] = field(default_factory=list)
    """Static peers / bootnodes as multiaddrs ending in /p2p/<peer id>."""
    ban_seconds: float = 300.0
    """How long a misbehaving peer stays banned."""
    gossip_rate: float = 500.0
    """Messages per second per peer and topic that gossipsub accepts. The library default
    of 10/s also silently drops a node's own publishes, and a block producer that
    relays a burst of transactions goes past it at once."""
    gossip_degree: int = 6
    """Target mesh degree (gossipsub D)."""
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    """What peers may hold in this node: connections, streams, buffered bytes (p2p.resources)."""
    scores: ScoreParams = field(default_factory=ScoreParams)
    """Gossip penalties, rates and the graylist and ban thresholds (p2p.scoring)."""


@dataclass
class PeerState:
    """What the host knows of one connected peer."""

    status: Status | None = None
    """Its last status; None until the handshake is done."""
    connected_at: float = field(default_factory=time.monotonic)


def load_or_create_key(path: Path) -> Any:
    """The node's libp2p key pair, created and saved (mode 0600) on first use."""
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.identity_utils import load_identity, save_identity

    if path.exists():
        return load_identity(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key_pair = create_new_key_pair()
    save_identity(key_pair, path)
    return key_pair


def peer_id_of_key(path: Path) -> str:
    """The peer id a key file gives (creating the key if missing)."""
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(load_or_create_key(path).public_key).to_base58())


def _message_id(message: Any) -> bytes:
    # Origin and sequence number, plus the content: a node may announce a transaction again
    # (its first announcement can fall into a mesh not yet formed); receivers that already
    # hold it answer IGNORE and do not forward it.
    return bytes(message.from_id) + bytes(message.seqno) + hashlib.sha256(bytes(message.data)).digest()[:8]


@functools.cache
def lean_pubsub() -> type:
    """py-libp2p's ``Pubsub`` with a validation step that does not format the message.

    py-libp2p 0.8.1 puts the whole protobuf message into the text of every failed validation
    (``f"Validation failed for msg={msg}"``): about 13 ms on the trio loop for an 88 KB
    transaction batch, paid for every IGNOREd or REJECTed message, honest duplicates included;
    a peer re-sending such batches 50 times a second took 0.65 CPU-s a second. The same step
    here (the validation cache, the validators under the semaphore and the timeout) names the
    message by its id instead."""
    from libp2p.exceptions import ValidationError
    from libp2p.pubsub.pubsub import Pubsub, ValidationResult

    class LeanPubsub(Pubsub):
        async def validate_msg(self, msg_forwarder: Any, msg: Any) -> None:
            msg_id = self._msg_id_constructor(msg)
            cached = self.validation_cache.get(msg_id)
            if cached is not None:
                if not cached.is_valid:
                    raise ValidationError(f"message 0x{bytes(msg_id).hex()[:24]}: {cached.error_message}")
                return
            error = None
            for topic_validator in self.get_msg_validators(msg):
                with trio.move_on_after(self.validation_timeout) as scope:
                    outcome: Any = topic_validator.validator(msg_forwarder, msg)
                    if topic_validator.is_async:
                        async with self._validator_semaphore:
                            outcome = await outcome
                    valid = bool(outcome)
                if scope.cancelled_caught:
                    error = "validation timeout"
                elif not valid:
                    error = "refused by its topic validator"
                if error is not None:
                    break
            self.validation_cache.put(msg_id, ValidationResult(error is None, time.time(), error))
            if error is not None:
                raise ValidationError(f"message 0x{bytes(msg_id).hex()[:24]}: {error}")

    return LeanPubsub


class P2PHost:
    """One node's presence on the network."""

    def __init__(self, config: P2PConfig, handler: ChainHandler, chain_id: int, genesis_hash: bytes) -> None:
        from libp2p import new_host
        from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
        from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
        from libp2p.pubsub.score import ScoreParams as RouterScoreParams
        from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
        from libp2p.security.noise.transport import Transport as Noise
        from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
        from libp2p.stream_muxer.yamux.yamux import Yamux

        self.config = config
        self.handler = handler
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        key_pair = load_or_create_key(config.key_path)
        self.resources = ResourceManager(config.limits, on_violation=self._muxer_violation)
        # Noise only: the library's default list also accepts plaintext, TLS and secio.
        self.host = new_host(
            key_pair=key_pair,
            muxer_opt={YAMUX_ID: Yamux},  # type: ignore[dict-item]
            sec_opt={NOISE_ID: Noise(key_pair, noise_privkey=new_x25519().private_key)},
            resource_manager=self.resources.library_manager(),
        )
        # Every connection's yamux enforces its receive window and the limits (p2p.resources).
        install(self.host, self.resources)
        degree = config.gossip_degree
        self.scores = GossipScores(config.scores)
        # Our scores are gossipsub's application score (P6): with it below the graylist threshold
        # the router stops grafting and gossiping with a peer; its messages are dropped in
        # _validate before anything is decoded.
        score_params = RouterScoreParams(
            app_specific_score_fn=lambda pid: self.scores.score(str(pid.to_base58())), p6_appl_slack_weight=1.0,
            graylist_threshold=-config.scores.graylist, gossip_threshold=-config.scores.graylist,
        )
        self.gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V11], degree=degree, degree_low=max(1, degree - 2), degree_high=degree * 2,
            heartbeat_interval=1,  # the default (120 s) repairs the mesh every two minutes
            max_messages_per_topic_per_second=config.gossip_rate, score_params=score_params,
        )
        # Transactions and blocks carry their own signatures: pubsub's per-message signing
        # only costs (about 5x on p50 latency, NOTES.md).
        self.pubsub = lean_pubsub()(
            self.host, self.gossipsub, strict_signing=False, msg_id_constructor=_message_id,
            max_inbound_rpc_size=2 * MAX_BLOCK_MESSAGE,
        )
        # A restarted node must not reuse sequence numbers (seeded from whole seconds).
        self.pubsub.counter = time.time_ns()
        prefix = f"/ailedger/{chain_id}/{genesis_hash.hex()[:16]}"
        self.tx_topic = f"{prefix}/transactions/1"
        self.block_topic = f"{prefix}/blocks/1"
        self.peer_id = str(self.host.get_id().to_base58())
        self.peers: dict[str, PeerState] = {}
        self.banned: dict[str, float] = {}
        self._inflight: dict[str, int] = {}
        self._new_peers: tuple[trio.MemorySendChannel[str], trio.MemoryReceiveChannel[str]] = (
            trio.open_memory_channel(256)
        )
        self._nursery: trio.Nursery | None = None
        self.listen_addr = ""
        self.ready = trio.Event()

    # -- running ---------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, join the topics, dial the static peers; runs until cancelled."""
        import multiaddr
        from libp2p.tools.anyio_service import background_trio_service

        self.add_protocol(STATUS_PROTOCOL, self._serve_status)
        self.add_protocol(BLOCKS_PROTOCOL, self.answer_requests(BLOCKS_PROTOCOL, self._answer_blocks))
        self.add_protocol(BLOBS_PROTOCOL, self.answer_requests(BLOBS_PROTOCOL, self._answer_blob))
        self.host.get_network().register_notifee(_make_notifee(self))
        listen = multiaddr.Multiaddr(f"/ip4/{self.config.listen_host}/tcp/{self.config.port}")
        async with self.host.run([listen]), background_trio_service(self.pubsub), \
                background_trio_service(self.gossipsub), trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.pubsub.wait_until_ready()
            self.pubsub.set_topic_validator(self.tx_topic, self._validate_tx, True)
            self.pubsub.set_topic_validator(self.block_topic, self._validate_block, True)
            for topic in (self.tx_topic, self.block_topic):
                subscription = await self.pubsub.subscribe(topic)
                nursery.start_soon(self._drain, subscription)
            addrs = [str(a) for a in self.host.get_addrs()]
            self.listen_addr = addrs[0] if addrs else ""
            nursery.start_soon(self._handshakes)
            nursery.start_soon(self._refresh_status)
            for address in self.config.peers:
                nursery.start_soon(self._keep_connected, address)
            self.ready.set()
            task_status.started()
            await trio.sleep_forever()

    async def _drain(self, subscription: Any) -> None:
        # Work happens in the topic validators (so invalid messages are never forwarded);
        # the subscription only has to be emptied: its channel drops when full.
        async for _ in subscription:
            pass

    async def _keep_connected(self, address: str) -> None:
        """Dial a static peer, and redial with exponential backoff whenever it goes away."""
        import multiaddr
        from libp2p.peer.peerinfo import info_from_p2p_addr

        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as e:
            log.error("ignoring peer %s: not a multiaddr with /p2p/<peer id> (%s)", address, e)
            return
        peer = str(info.peer_id.to_base58())
        backoff = 0.5
        while True:
            if info.peer_id in self.host.get_connected_peers():
                await trio.sleep(1.0)
                continue
            if self.is_banned(peer):
                await trio.sleep(min(5.0, self.banned[peer] - time.monotonic()) + 0.01)
                continue
            # A failed dial puts the peer in a 60 s negative cache; our own backoff rules.
            network: Any = self.host.get_network()
            network.unblock_peer(info.peer_id)
            try:
                with trio.fail_after(10):
                    await self.host.connect(info)
                backoff = 0.5
                log.info("connected to peer %s", peer)
            except Exception as e:
                log.debug("dial %s failed (%s); retrying in %.1fs", peer, e, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    # -- status handshake ------------------------------------------------------------------

    def _peer_connected(self, peer: str) -> None:
        try:
            self._new_peers[0].send_nowait(peer)
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass

    def _peer_disconnected(self, peer: str) -> None:
        if peer in self.connected_peers():
            return  # two peers that dialled each other keep one of the two connections
        if self.peers.pop(peer, None) is not None:
            log.info("peer %s disconnected", peer)

    async def _handshakes(self) -> None:
        async for peer in self._new_peers[1]:
            assert self._nursery is not None
            self._nursery.start_soon(self._handshake, peer)

    async def _handshake(self, peer: str) -> None:
        if self.is_banned(peer):
            await self._disconnect(peer)
            return
        self.peers.setdefault(peer, PeerState())
        try:
            status = await self.request_status(peer)
        except PeerError as e:
            log.debug("status with %s failed: %s", peer, e)
            return
        await self._accept_status(peer, status)

    async def request_status(self, peer: str) -> Status:
        """Exchange statuses with ``peer`` and return its own."""
        ours = await self.handler.local_status()

        async def exchange(stream: Any) -> Status:
            await stream.write(encode_frame(ours.encode()))
            return Status.decode(await FrameReader(stream, MAX_REQUEST).one())

        return await self._request(peer, STATUS_PROTOCOL, exchange)

    async def _accept_status(self, peer: str, status: Status) -> bool:
        if status.chain_id != self.chain_id or status.genesis_hash != self.genesis_hash:
            log.warning(
                "peer %s is on another chain (chain id %d, genesis 0x%s; ours: chain id %d, genesis 0x%s): disconnecting",
                peer, status.chain_id, status.genesis_hash.hex(), self.chain_id, self.genesis_hash.hex(),
            )
            await self.ban(peer, "another chain")
            return False
        state = self.peers.setdefault(peer, PeerState())
        first = state.status is None
        state.status = status
        if first:
            log.info("peer %s: chain %d, head %d", peer, status.chain_id, status.head_number)
        await self.handler.on_status(peer, status)
        return True

    async def _serve_status(self, peer: str, stream: Any) -> None:
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                theirs = Status.decode(await FrameReader(stream, MAX_REQUEST).one())
                ours = await self.handler.local_status()
                await stream.write(encode_frame(ours.encode()))
                await stream.close()
        except WireError as e:
            await self.ban(peer, f"undecodable status: {e}")
            return
        except Exception as e:  # StreamEnded among them: a peer that went away did nothing wrong
            log.debug("status from %s failed: %s", peer, e)
            return
        await self._accept_status(peer, theirs)

    async def _refresh_status(self) -> None:
        while True:
            await trio.sleep(STATUS_INTERVAL)
            assert self._nursery is not None
            for peer in list(self.peers):
                self._nursery.start_soon(self._handshake_refresh, peer)

    async def _handshake_refresh(self, peer: str) -> None:
        try:
            status = await self.request_status(peer)
        except PeerError as e:
            log.info("peer %s did not answer its status (%s): disconnecting", peer, e)
            await self._disconnect(peer)
            return
        await self._accept_status(peer, status)

    # -- requests --------------------------------------------------------------------------

    async def _request(self, peer: str, protocol: str, exchange: Callable[[Any], Awaitable[Any]]) -> Any:
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        stream = None
        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                stream = await self.host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
                return await exchange(stream)
        except WireError as e:
            await self.ban(peer, f"invalid {protocol} response: {e}")
            raise PeerError(str(e)) from None
        except StreamEnded as e:
            raise PeerError(f"{protocol}: {e}") from None
        except trio.TooSlowError:
            raise PeerError(f"{protocol}: no answer within {REQUEST_TIMEOUT}s") from None
        except trio.Cancelled:
            raise
        except Exception as e:
            raise PeerError(f"{protocol}: {type(e).__name__}: {e}") from None
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    try:
                        await stream.close()
                    except Exception:
                        pass

    async def request_blocks(self, peer: str, start: int, count: int) -> list[BlockWithCommit]:
        """Up to ``count`` blocks from ``start`` with their commits, as ``peer`` sends them."""
        request = BlocksRequest(start, count)

        async def exchange(stream: Any) -> list[BlockWithCommit]:
            await stream.write(encode_frame(request.encode()))
            reader = FrameReader(stream)
            out: list[BlockWithCommit] = []
            while (frame := await reader.next()) is not None:
                if len(out) >= count:
                    raise WireError("more blocks than requested")
                out.append(BlockWithCommit.decode(frame))
            return out

        result: list[BlockWithCommit] = await self._request(peer, BLOCKS_PROTOCOL, exchange)
        return result

    async def request_blob(self, peer: str, content_hash: bytes, max_size: int) -> bytes | None:
        """The blob hashing to ``content_hash`` from ``peer``; None when it has none. A blob
        that does not hash to what was asked bans the peer."""

        async def exchange(stream: Any) -> bytes | None:
            await stream.write(encode_frame(BlobRequest(content_hash).encode()))
            reader = FrameReader(stream)
            first = await reader.next()
            if first is None:
                return None
            size = decode_size(first, max_size)
            data = bytearray()
            while len(data) < size:
                chunk = await reader.next()
                if chunk is None:
                    raise StreamEnded(f"blob ended after {len(data)} of {size} bytes")
                data += chunk
            if len(data) != size or await reader.next() is not None:
                raise WireError("blob longer than announced")
            if keccak(bytes(data)) != content_hash:
                raise WireError(f"blob does not hash to 0x{content_hash.hex()}")
            return bytes(data)

        result: bytes | None = await self._request(peer, BLOBS_PROTOCOL, exchange)
        return result

    async def _answer_blocks(self, peer: str, raw: bytes) -> list[bytes]:
        request = BlocksRequest.decode(raw)
        return [item.encode() for item in await self.handler.serve_blocks(request)]

    async def _answer_blob(self, peer: str, raw: bytes) -> list[bytes]:
        request = BlobRequest.decode(raw)
        data = await self.handler.serve_blob(request.content_hash)
        if data is None:
            return []
        return [encode_size(len(data))] + [data[o : o + BLOB_CHUNK] for o in range(0, len(data), BLOB_CHUNK)]

    # -- protocols: the one way to add one --------------------------------------------------

    def add_protocol(self, protocol: str, serve: StreamHandler) -> None:
        """Serve ``protocol``: ``serve(peer, stream)`` owns each inbound stream until it returns
        (reading its own frames, with its own size caps); a banned peer's stream is reset
        before it runs, and every stream is reset after. Every protocol of the node, built in
        or not, is registered this way; :meth:`answer_requests` makes a request/response one."""
        from libp2p.custom_types import TProtocol

        async def serve_stream(stream: Any) -> None:
            peer = self._stream_peer(stream)
            if self.is_banned(peer):
                await _reset(stream)
                return
            try:
                await serve(peer, stream)
            except Exception as e:
                log.debug("%s stream from %s ended: %s", protocol, peer, e)
            finally:
                await _reset(stream)

        self.host.set_stream_handler(TProtocol(protocol), serve_stream)

    def answer_requests(self, protocol: str, answer: Callable[[str, bytes], Awaitable[list[bytes]]],
                        limit: int = MAX_REQUEST) -> StreamHandler:
        """A request/response handler for :meth:`add_protocol`: one request frame of at most
        ``limit`` bytes in, ``answer(peer, request)``'s payloads out as frames (batched into
        writes), within :data:`REQUEST_TIMEOUT`, at most :data:`MAX_INFLIGHT_PER_PEER` at once
        per peer (more are reset unanswered). ``answer`` raises :class:`WireError` on bytes it
        cannot decode: the sender is banned."""

        async def serve(peer: str, stream: Any) -> None:
            if self._inflight.get(peer, 0) >= MAX_INFLIGHT_PER_PEER:
                return
            self._inflight[peer] = self._inflight.get(peer, 0) + 1
            try:
                with trio.fail_after(REQUEST_TIMEOUT):
                    payloads = await answer(peer, await FrameReader(stream, limit).one())
                    batch = bytearray()
                    for payload in payloads:
                        batch += encode_frame(payload)
                        if len(batch) >= WRITE_BATCH:
                            await stream.write(bytes(batch))
                            batch.clear()
                    if batch:
                        await stream.write(bytes(batch))
                    await stream.close()
            except WireError as e:
                await self.ban(peer, f"undecodable {protocol} request: {e}")
            except Exception as e:
                log.debug("%s request from %s failed: %s", protocol, peer, e)
            finally:
                left = self._inflight.get(peer, 1) - 1
                if left > 0:
                    self._inflight[peer] = left
                else:
                    self._inflight.pop(peer, None)

        return serve

    async def open_stream(self, peer: str, protocol: str) -> Any:
        """A new outbound stream to ``peer`` on ``protocol``; :class:`PeerError` if the peer is
        unreachable or does not speak it."""
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        try:
            with trio.fail_after(REQUEST_TIMEOUT):
                return await self.host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
        except trio.TooSlowError:
            raise PeerError(f"{protocol}: no stream within {REQUEST_TIMEOUT}s") from None
        except trio.Cancelled:
            raise
        except Exception as e:
            raise PeerError(f"{protocol}: {type(e).__name__}: {e}") from None

    async def request(self, peer: str, protocol: str, payload: bytes, limit: int = MAX_FRAME) -> bytes | None:
        """Send one frame on ``protocol`` to ``peer``; its one-frame answer, or None."""

        async def exchange(stream: Any) -> bytes | None:
            await stream.write(encode_frame(payload))
            return await FrameReader(stream, limit).next()

        result: bytes | None = await self._request(peer, protocol, exchange)
        return result

    # -- gossip ----------------------------------------------------------------------------

    async def publish_transaction(self, raw: bytes) -> None:
        await self._publish(self.tx_topic, raw)

    async def publish_block(self, item: BlockWithCommit) -> None:
        await self._publish(self.block_topic, item.encode())

    async def _publish(self, topic: str, data: bytes) -> None:
        try:
            await self.pubsub.publish(topic, data)
        except Exception as e:  # no peers yet, or the router refused: gossip is best effort
            log.debug("publish on %s failed: %s", topic, e)

    async def _validate_tx(self, forwarder: Any, message: Any) -> bool:
        return await self._validate(forwarder, message, MAX_TX_MESSAGE, self.handler.on_transaction, "transaction")

    async def _validate_block(self, forwarder: Any, message: Any) -> bool:
        return await self._validate(forwarder, message, MAX_BLOCK_MESSAGE, self.handler.on_block, "block")

    async def _validate(
        self, forwarder: Any, message: Any, limit: int,
        handle: Callable[[bytes, str], Awaitable[Verdict | GossipOutcome]], what: str,
    ) -> bool:
        """Gossipsub's validation step, with its scores: REJECT bans; useless items are free up to
        a rate and penalised above it; a graylisted peer's messages are dropped undecoded."""
        peer = str(forwarder.to_base58())
        if peer == self.peer_id:
            return True  # our own publish, already handled
        if self.is_banned(peer):
            return False
        if self.scores.graylisted(peer):
            if self.scores.while_graylisted(peer) >= self.config.scores.ban:
                await self.ban(peer, f"kept sending gossip while graylisted (penalty {self.scores.penalty(peer):.0f})")
            return False
        data = bytes(message.data)
        if len(data) > limit:
            self.scores.invalid(peer)
            await self.ban(peer, f"gossiped {what} of {len(data)} bytes (limit {limit})")
            return False
        try:
            outcome = await handle(data, peer)
        except Exception:
            log.exception("handling a gossiped %s failed", what)
            return False
        if not isinstance(outcome, GossipOutcome):
            outcome = GossipOutcome(outcome, 1 if outcome is Verdict.IGNORE else 0)
        if outcome.verdict is Verdict.REJECT:
            self.scores.invalid(peer)
            await self.ban(peer, f"invalid gossiped {what}")
        elif outcome.useless:
            was = self.scores.graylisted(peer)
            penalty = self.scores.useless(peer, outcome.useless)
            if not was and penalty >= self.config.scores.graylist:
                log.warning("graylisting peer %s: %d useless %s items above its rate (penalty %.0f)", peer,
                            outcome.useless, what, penalty)
        return outcome.verdict is Verdict.ACCEPT

    # -- peers -----------------------------------------------------------------------------

    def is_banned(self, peer: str) -> bool:
        until = self.banned.get(peer)
        if until is None:
            return False
        if until <= time.monotonic():
            del self.banned[peer]
            return False
        return True

    async def ban(self, peer: str, reason: str) -> None:
        """Disconnect ``peer`` and refuse it for ``ban_seconds``."""
        from libp2p.peer.id import ID

        if peer == self.peer_id:
            return
        if not self.is_banned(peer):
            log.warning("banning peer %s for %.0fs: %s", peer, self.config.ban_seconds, reason)
        self.banned[peer] = time.monotonic() + self.config.ban_seconds
        # Straight into the set: add_to_blacklist() starts a teardown task that races the
        # disconnect below and, on a KeyError, takes the whole pubsub service down (0.8.1).
        self.pubsub.blacklisted_peers.add(ID.from_base58(peer))
        if self._nursery is not None:
            self._nursery.start_soon(self._unban_later, peer)
        await self._disconnect(peer)

    def _muxer_violation(self, peer: str, reason: str) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self.ban, peer, f"muxer: {reason}")

    async def _unban_later(self, peer: str) -> None:
        from libp2p.peer.id import ID

        await trio.sleep(self.config.ban_seconds + 0.1)
        if not self.is_banned(peer):
            self.pubsub.blacklisted_peers.discard(ID.from_base58(peer))

    async def _disconnect(self, peer: str) -> None:
        from libp2p.peer.id import ID

        self.peers.pop(peer, None)
        with trio.move_on_after(5):
            try:
                await self.host.disconnect(ID.from_base58(peer))
            except Exception as e:
                log.debug("disconnect %s: %s", peer, e)

    def connected_peers(self) -> list[str]:
        return [str(p.to_base58()) for p in self.host.get_connected_peers()]

    def _stream_peer(self, stream: Any) -> str:
        return str(stream.muxed_conn.peer_id.to_base58())


async def _reset(stream: Any) -> None:
    with trio.move_on_after(2):
        try:
            await stream.reset()
        except Exception:
            pass


def _make_notifee(host: P2PHost) -> Any:
    from libp2p.abc import INotifee

    class Notifee(INotifee):
        async def opened_stream(self, network: Any, stream: Any) -> None:
            pass

        async def closed_stream(self, network: Any, stream: Any) -> None:
            pass

        async def connected(self, network: Any, conn: Any) -> None:
            host._peer_connected(str(conn.muxed_conn.peer_id.to_base58()))

        async def disconnected(self, network: Any, conn: Any) -> None:
            host._peer_disconnected(str(conn.muxed_conn.peer_id.to_base58()))

        async def listen(self, network: Any, multiaddr: Any) -> None:
            pass

        async def listen_close(self, network: Any, multiaddr: Any) -> None:
            pass

    return Notifee()

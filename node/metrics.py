"""Prometheus metrics of a node, served as text on their own port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()

HEAD = Gauge("ailedger_head_block_number", "Number of the canonical head block", registry=REGISTRY)
POOL_PENDING = Gauge("ailedger_txpool_pending", "Executable transactions in the pool", registry=REGISTRY)
POOL_QUEUED = Gauge("ailedger_txpool_queued", "Future-nonce transactions in the pool", registry=REGISTRY)
TX_ACCEPTED = Counter("ailedger_txpool_accepted", "Transactions admitted to the pool", registry=REGISTRY)
TX_REJECTED = Counter("ailedger_txpool_rejected", "Transactions refused by the pool", registry=REGISTRY)
RPC_REQUESTS = Counter(
    "ailedger_rpc_requests", "JSON-RPC calls by method and outcome", ["method", "outcome"], registry=REGISTRY
)
RPC_SECONDS = Histogram(
    "ailedger_rpc_request_seconds", "JSON-RPC call latency by method", ["method"], registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
BLOCK_SECONDS = Histogram(
    "ailedger_block_import_seconds", "Time to build or import and commit a block", registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FILTERS = Gauge("ailedger_rpc_filters", "Installed eth_newFilter-style filters", registry=REGISTRY)
WORKER_QUEUED = Gauge(
    "ailedger_worker_queued", "Jobs waiting for a worker thread", ["worker"], registry=REGISTRY
)
WORKER_REFUSED = Counter(
    "ailedger_worker_refused", "Jobs refused because a worker's queue was full", ["worker"], registry=REGISTRY
)
BLOCK_TXS = Histogram(
    "ailedger_block_transactions", "Transactions per committed block", registry=REGISTRY,
    buckets=(0, 1, 2, 5, 10, 50, 100, 250, 500, 1000, 2000),
)


def serve(host: str, port: int) -> None:
    """Serve /metrics on ``host:port`` from a daemon thread."""
    start_http_server(port, addr=host, registry=REGISTRY)

# -- BFT consensus (node/bft/reactor.py) --
CONSENSUS_HEIGHT = Gauge("ailedger_consensus_height", "Height consensus works on", registry=REGISTRY)
CONSENSUS_ROUND = Gauge("ailedger_consensus_round", "Round of the current height", registry=REGISTRY)
CONSENSUS_VOTES = Counter("ailedger_consensus_frames_received", "Consensus frames received from validator peers",
                          registry=REGISTRY)
CONSENSUS_MISBEHAVIOUR = Counter("ailedger_consensus_peer_misbehaviour",
                                 "Malformed or badly signed consensus frames from peers", registry=REGISTRY)
CONSENSUS_EVIDENCE = Gauge("ailedger_consensus_evidence_pending",
                           "Double-sign evidence found and held in the evidence pool", registry=REGISTRY)
CONSENSUS_COMMITS = Counter("ailedger_consensus_blocks_committed", "Blocks this node committed by consensus",
                            registry=REGISTRY)
CONSENSUS_DROPPED = Counter("ailedger_consensus_frames_dropped",
                            "Outgoing consensus frames dropped because a peer's queue was full", registry=REGISTRY)

# -- the AI side of a validator (node/sidecar_watch.py, node/blobstore.py) --
SIDECAR_UP = Gauge("ailedger_sidecar_up", "1 while this validator's sidecar answers SERVING, else 0", registry=REGISTRY)
SIDECAR_CHANGES = Counter("ailedger_sidecar_state_changes",
                          "Changes of the sidecar's state: ready (first time), down, back", ["change"],
                          registry=REGISTRY)
AI_INFERENCES = Counter("ailedger_ai_inferences", "Inference receipts committed with this node's validator as server",
                        registry=REGISTRY)
AI_TRAININGS = Counter("ailedger_ai_trainings", "Adapters registered with this node's validator as trainer",
                       registry=REGISTRY)
AI_VERIFICATIONS = Counter("ailedger_ai_verifications", "Challenge verdicts this node's validator submitted",
                           registry=REGISTRY)
AI_CHALLENGES = Counter("ailedger_ai_challenges",
                        "Challenges naming this node's validator: as the accused, or as a committee member",
                        ["role"], registry=REGISTRY)
AI_BLOB_BYTES = Counter("ailedger_ai_blob_bytes", "Bytes of new blobs written to this node's blob store "
                        "(contributions, adapters, prompts, outputs, from users and from peers)", registry=REGISTRY)

# -- the network side (node/network.py, node/sync.py) --
GOSSIP_TX_VERIFIED = Counter("ailedger_gossip_transactions_verified",
                             "Gossiped transactions decoded and checked (each one not seen before)", registry=REGISTRY)
CONSENSUS_FRAMES_DECODED = Counter("ailedger_consensus_frames_decoded",
                                   "Consensus frames decoded in full (past the hello and the cheap checks)",
                                   registry=REGISTRY)
CONSENSUS_STREAMS_REFUSED = Counter("ailedger_consensus_streams_refused",
                                    "Inbound consensus streams refused at the hello", registry=REGISTRY)

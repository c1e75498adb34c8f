"""The node's chain: the core (ledger, pool, blobs, admission), the block pipeline that is the
one way in for blocks, the event stream that is the one way out, and the block producers."""

"""The node's typed errors: what the chain core, the pool and the workers raise.

They speak the node's language (a refused transaction, an unknown block, a limit), not
JSON-RPC's; the RPC edge (``node.rpc.errors.from_node_error``) maps each kind to its code
once. A message is written for the caller: it says what was wrong and, for a limit, which.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node reports to a caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(NodeError):
    """The node will not do it: a transaction the pool refuses, a state error, a bad
    timestamp, an unknown filter (geth's -32000)."""


class UnknownBlock(Refused):
    """No canonical block has that number (geth: -32000 'header not found')."""


class UnknownFutureBlock(UnknownBlock):
    """A block number past the head (anvil: -32602 'BlockOutOfRangeError')."""


class NotFound(NodeError):
    """A named thing (a block by hash, a record) does not exist (-32001)."""


class InvalidInput(NodeError):
    """An argument is malformed or out of its allowed range (-32602)."""


class LimitExceeded(NodeError):
    """A request asks for more work or more results than the node serves at once, or
    more of a capped resource (filters, queued calls) than is left (-32005)."""


class ExecutionTimeout(Refused):
    """An eth_call / eth_estimateGas ran past the node's execution time budget."""


class NotAvailable(NodeError):
    """The operation exists but this node kind does not offer it (a dev control on a
    production node); reported as 'method not found' (-32601)."""

"""Who is calling: the remote address of the RPC connection that made the current call.

The server sets it per request on the trio side; :class:`node.worker.ChainWorker` runs each
job in a copy of the caller's context, so handlers on the chain thread read it too. Behind
a reverse proxy every client shares the proxy's address.
"""

from __future__ import annotations

from contextvars import ContextVar

REMOTE_ADDRESS: ContextVar[str | None] = ContextVar("remote_address", default=None)


def remote_address() -> str | None:
    """The calling client's IP address, or None outside an RPC call."""
    return REMOTE_ADDRESS.get()

"""Who is calling: the remote address of the RPC connection that made the current call.

The server records it around every call it runs (:func:`node.rpc.methods.client_context`),
so handlers on the chain thread read it too. Behind a reverse proxy every client shares the
proxy's address.
"""

from __future__ import annotations

from node.rpc.methods import current_client


def remote_address() -> str | None:
    """The calling client's IP address, or None outside an RPC call."""
    return current_client() or None

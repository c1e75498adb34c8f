"""The JSON-RPC namespaces a node can serve, and the defaults that choose among them.

Kept free of heavy imports: the CLI builds its ``--help`` from these without loading the
chain. ``tests/unit/node`` checks that :data:`ALL_NAMESPACES` is exactly what the method
modules register.
"""

from __future__ import annotations

#: Every namespace some method module registers.
ALL_NAMESPACES = ("ai", "anvil", "debug", "eth", "evm", "hardhat", "net", "personal", "txpool", "web3")
#: Namespaces that edit state, mine on demand or rewind: served only by a dev chain.
DEV_NAMESPACES = frozenset({"evm", "anvil", "hardhat"})
#: What `ailedger run` serves unless told otherwise (geth's default is eth,net,web3).
DEFAULT_API = ("eth", "net", "web3", "txpool", "ai")
#: Browser origins a dev chain accepts by default: pages served from this machine.
DEV_CORS_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "https://localhost:*", "https://127.0.0.1:*")

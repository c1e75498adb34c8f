"""The JSON-RPC namespaces a node can serve, and the defaults that choose among them.

Kept free of heavy imports: the CLI builds its ``--help`` from these without loading the
chain. :data:`ALL_NAMESPACES` comes from ``node.rpc.METHOD_MODULES``, whose declarations
``@rpc`` enforces as each method registers.
"""

from __future__ import annotations

from node.rpc import METHOD_MODULES

#: Every namespace some method module registers (as the modules declare them).
ALL_NAMESPACES = tuple(sorted({namespace for declared in METHOD_MODULES.values() for namespace in declared}))
#: Namespaces that edit state, mine on demand or rewind: served only by a dev chain.
DEV_NAMESPACES = frozenset({"evm", "anvil", "hardhat"})
#: What `ailedger run` serves unless told otherwise (geth's default is eth,net,web3).
DEFAULT_API = ("eth", "net", "web3", "txpool", "ai")
#: Browser origins a dev chain accepts by default: pages served from this machine.
DEV_CORS_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "https://localhost:*", "https://127.0.0.1:*")

"""JSON-RPC: the method registry, one module per namespace, and the HTTP/WebSocket server."""

from __future__ import annotations

import importlib

#: Every module that registers JSON-RPC methods, and the namespaces its methods belong to
#: (``@rpc`` refuses a method whose namespace its module does not declare here). A new
#: namespace is a new module and one line here. Kept free of imports: the CLI reads the
#: namespaces from it without loading the chain.
METHOD_MODULES: dict[str, tuple[str, ...]] = {
    "node.rpc.web3": ("web3",),
    "node.rpc.net": ("net",),
    "node.rpc.eth.chain": ("eth",),
    "node.rpc.eth.blocks": ("eth",),
    "node.rpc.eth.accounts": ("eth",),
    "node.rpc.eth.transactions": ("eth",),
    "node.rpc.eth.sign": ("eth",),
    "node.rpc.eth.call": ("eth",),
    "node.rpc.eth.simulate": ("eth",),
    "node.rpc.eth.fees": ("eth",),
    "node.rpc.eth.filters": ("eth",),
    "node.rpc.personal": ("personal",),
    "node.rpc.txpool": ("txpool",),
    "node.rpc.debug": ("debug",),
    "node.rpc.ots": ("ots",),
    "node.rpc.erigon": ("erigon",),
    "node.rpc.dev": ("evm", "anvil", "hardhat"),
    "node.rpc.ai": ("ai",),
    "node.rpc.ai_blobs": ("ai",),
    "node.rpc.ai_infer": ("ai",),
    "node.rpc.ai_train": ("ai",),
    "node.rpc.ai_gov": ("ai",),
}


def load_methods() -> None:
    """Import every method module; each registers its methods as it loads (once)."""
    for module in METHOD_MODULES:
        importlib.import_module(module)

"""JSON-RPC: the method registry, one module per namespace, and the HTTP/WebSocket server."""

from __future__ import annotations

import importlib

#: Every module that registers JSON-RPC methods, and the namespaces its methods belong to
#: (``@rpc`` refuses a method whose namespace its module does not declare here). A new
#: namespace is a new module and one line here. Kept free of imports: the CLI reads the
#: namespaces from it without loading the chain.
METHOD_MODULES: dict[str, tuple[str, ...]] = {
    "node.rpc.methods": ("web3", "net", "eth", "personal", "txpool", "evm", "anvil", "hardhat"),
    "node.rpc.eth_extra": ("eth",),
    "node.rpc.anvil_methods": ("anvil", "hardhat"),
    "node.rpc.debug_methods": ("debug",),
    "node.rpc.ai_methods": ("ai",),
    "node.rpc.infer_methods": ("ai",),
}


def load_methods() -> None:
    """Import every method module; each registers its methods as it loads (once)."""
    for module in METHOD_MODULES:
        importlib.import_module(module)

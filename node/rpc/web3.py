"""The ``web3_`` namespace: the client's version string and keccak-256, as every Ethereum
client serves them."""

from __future__ import annotations

import platform

from eth_hash.auto import keccak

from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.format import hex_data
from node.rpc.registry import Params, args, rpc

CLIENT_VERSION = f"ailedger/v0.1.0/{platform.system().lower()}-{platform.machine()}/python{platform.python_version()}"


@rpc("web3_clientVersion", max_params=0)
def web3_client_version(ctx: NodeContext, params: Params) -> str:
    args(params, 0)
    return CLIENT_VERSION


@rpc("web3_sha3", max_params=1)
def web3_sha3(ctx: NodeContext, params: Params) -> str:
    (payload,) = args(params, 1)
    return hex_data(keccak(p.data(payload, "0")))

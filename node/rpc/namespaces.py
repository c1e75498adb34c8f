"""The JSON-RPC namespaces a node can serve and the browser origins it answers: the defaults,
and the parsing of the operator's ``--http-api`` and ``--cors-origins``.

Kept free of heavy imports: the CLI builds its ``--help`` from these without loading the
chain. :data:`ALL_NAMESPACES` comes from ``node.rpc.METHOD_MODULES``, whose declarations
``@rpc`` enforces as each method registers.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from node.rpc import METHOD_MODULES

#: Every namespace some method module registers (as the modules declare them).
ALL_NAMESPACES = tuple(sorted({namespace for declared in METHOD_MODULES.values() for namespace in declared}))
#: Namespaces that edit state, mine on demand or rewind: served only by a dev chain.
DEV_NAMESPACES = frozenset({"evm", "anvil", "hardhat"})
#: What `ailedger run` serves unless told otherwise (geth's default is eth,net,web3). The
#: namespaces that re-execute transactions on request (debug, ots) are left out, as geth
#: leaves out debug: an operator opts in. `ailedger dev` serves every namespace.
DEFAULT_API = ("eth", "net", "web3", "txpool", "ai")
#: What an explorer needs beyond :data:`DEFAULT_API`: Otterscan's ots_ methods and the
#: erigon_getHeaderByNumber it probes on connecting (`--http-api` plus these, or `--explorer`).
EXPLORER_API = ("ots", "erigon")
#: Browser origins a dev chain accepts by default: pages served from this machine.
DEV_CORS_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "https://localhost:*", "https://127.0.0.1:*")


def parse_api(value: str | Iterable[str], dev: bool) -> tuple[str, ...]:
    """The namespaces of a ``--http-api`` value, checked: each must exist, and the dev
    namespaces only on a dev chain. Raises ValueError with a message for the operator."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    known = sorted(ALL_NAMESPACES)
    for name in names:
        if name not in ALL_NAMESPACES:
            raise ValueError(f"unknown API namespace {name!r}; known: {', '.join(known)}")
        if name in DEV_NAMESPACES and not dev:
            raise ValueError(
                f"the {name} namespace edits state or rewinds blocks and is served only by "
                "`ailedger dev`; a node on a real chain never serves it"
            )
    return tuple(dict.fromkeys(names))


def parse_origins(value: str | Iterable[str]) -> tuple[str, ...]:
    items = [o.strip().rstrip("/") for o in (value.split(",") if isinstance(value, str) else value) if o.strip()]
    for origin in items:
        if origin != "*" and not urlsplit(origin).scheme:
            raise ValueError(f"bad CORS origin {origin!r}: expected scheme://host[:port], scheme://host:* or *")
    return tuple(items)


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Whether a browser ``Origin`` matches an entry: ``*``, the exact origin, or
    ``scheme://host:*`` (that host on any port)."""
    origin = origin.rstrip("/")
    for entry in allowed:
        if entry == "*" or entry == origin:
            return True
        if entry.endswith(":*"):
            want, got = urlsplit(entry[:-2]), urlsplit(origin)
            try:
                got.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                continue
            same_host = (want.scheme, want.hostname) == (got.scheme, got.hostname)
            if same_host and not got.path and not got.username and not got.query:
                return True
    return False

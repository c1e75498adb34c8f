"""The one registry of JSON-RPC methods.

A method is a function registered with ``@rpc``, which declares everything the server needs
to know about it:

- its **namespace**, the part of its name before ``_``: a node serves only the namespaces it
  was started with (geth's ``--http.api``), and a method outside them is 'method not found';
- its **parameter limit**: a call with more positional parameters is refused with -32602
  before the method runs, as anvil and geth do (``eth_blockNumber`` with a parameter is an
  error, not a silent answer);
- its **lane**, where it runs: ``CHAIN`` on the chain worker (everything that touches the
  pool, filters or writes), ``READ`` on the read worker beside it (execution and long reads
  of committed state, so slow reads never hold up transactions and blocks), or ``ASYNC`` on
  the trio loop (a method that waits on more than the chain, such as the sidecar; it hands
  only its chain steps to a worker).

Every handler takes the node's parts it may use (:class:`node.rpc.context.NodeContext`) and
the call's parameters: ``fn(ctx, params)``, ``async fn(ctx, params)`` on the ASYNC lane. Parameters are parsed first, so bad input gets -32602 before
anything touches the chain. Single calls and batches look methods up in the same table, so
every lane answers in both.

A module registers its methods when it is imported; ``node.rpc.METHOD_MODULES`` lists the
modules and the namespaces each one declares, so a new namespace is one module and one line
there.
"""

from __future__ import annotations

import enum
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from node.rpc import METHOD_MODULES, load_methods
from node.rpc.errors import InvalidParams

if TYPE_CHECKING:
    from node.rpc.context import NodeContext

#: A JSON value, as ``json.loads`` gives it.
Json: TypeAlias = "None | bool | int | float | str | list[Json] | dict[str, Json]"
#: A call's positional parameters.
Params: TypeAlias = "list[Json]"


class Lane(enum.Enum):
    """Where a method runs (see the module docstring)."""

    CHAIN = "chain"
    READ = "read"
    ASYNC = "async"


CHAIN, READ, ASYNC = Lane.CHAIN, Lane.READ, Lane.ASYNC


Handler: TypeAlias = "Callable[[NodeContext, Params], object]"
AsyncHandler: TypeAlias = "Callable[[NodeContext, Params], Awaitable[object]]"
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler | AsyncHandler
    """``fn(ctx, params)`` for CHAIN and READ, ``async fn(ctx, params)`` for ASYNC."""
    lane: Lane = CHAIN
    max_params: int = field(kw_only=True)
    """Most positional parameters a call may carry; more is -32602 before the method runs."""
    sends: bool = field(default=False, kw_only=True)
    """The method submits a transaction and, under automine, answers once its block is built
    (it returns a :class:`Continue`): consecutive such calls of a batch are admitted in one job
    before any of them waits, so that they share the block."""


@dataclass(frozen=True)
class Continue:
    """What a handler returns when its work goes on in another job: the server runs
    ``step()`` as a new job on the same worker (other callers' jobs and block production
    go first), until a step returns a plain result. Keeps every job short."""

    step: Callable[[], object]


#: namespace -> method name -> method, filled by ``@rpc``.
NAMESPACES: dict[str, dict[str, Method]] = {}
#: Every registered method by name, whatever its namespace.
METHODS: dict[str, Method] = {}


def namespace_of(name: str) -> str:
    return name.split("_", 1)[0]


def rpc(*names: str, max_params: int, lane: Lane = CHAIN, sends: bool = False) -> Callable[[F], F]:
    """Register the decorated function as the methods ``names`` (aliases share it), each in
    the namespace its prefix names, taking at most ``max_params`` parameters, run on
    ``lane`` (``sends``: see :attr:`Method.sends`). The function's module must be listed in ``node.rpc.METHOD_MODULES`` with that
    namespace: the light list the CLI shows (``namespaces.ALL_NAMESPACES``) cannot drift."""

    def register(fn: F) -> F:
        if (lane is ASYNC) != inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__}: ASYNC methods, and only they, are coroutine functions")
        declared = METHOD_MODULES.get(fn.__module__, ())
        for name in names:
            namespace = namespace_of(name)
            if namespace not in declared:
                raise ValueError(f"{name}: list {fn.__module__} with namespace {namespace!r} in node.rpc.METHOD_MODULES")
            if name in METHODS:
                raise ValueError(f"{name} is registered twice")
            method = Method(name, fn, lane, max_params=max_params, sends=sends)
            NAMESPACES.setdefault(namespace, {})[name] = method
            METHODS[name] = method
        return fn

    return register


def method_table(namespaces: Iterable[str]) -> dict[str, Method]:
    """The methods a node serves when it enables ``namespaces`` (every lane)."""
    load_methods()
    table: dict[str, Method] = {}
    for namespace in namespaces:
        table.update(NAMESPACES.get(namespace, {}))
    return table


_request = threading.local()


class client_context:  # noqa: N801 - a context manager, named like contextlib's
    """Who is calling (the peer's address), for per-client limits, while a call runs."""

    def __init__(self, client: str) -> None:
        self.client = client

    def __enter__(self) -> None:
        _request.client = self.client

    def __exit__(self, *exc: object) -> None:
        _request.client = ""


def current_client() -> str:
    return str(getattr(_request, "client", ""))


def args(params: Params, required: int, optional: int = 0) -> list[Json]:
    """``params`` padded with None to ``required + optional``; -32602 on a wrong count."""
    if len(params) < required:
        raise InvalidParams(f"missing value for required argument {len(params)}")
    if len(params) > required + optional:
        raise InvalidParams(f"too many arguments, want at most {required + optional}")
    return list(params) + [None] * (required + optional - len(params))

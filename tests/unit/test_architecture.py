"""The layout is the architecture (docs/architecture.md), checked over the import graph rather
than by eye: no import cycle anywhere in the project (lazy imports inside functions count too:
a cycle is a design fault wherever the import sits), the packages depend one way, and the node
never imports the sidecar's heavy backends."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("genesis", "state", "ai_precompiles", "consensus", "p2p", "node", "sidecar")
#: Which packages each may import (docs/architecture.md: node -> consensus, p2p, state ->
#: ai_precompiles; genesis read by all; the sidecar is a separate process).
ALLOWED = {
    "genesis": set(),
    "ai_precompiles": {"genesis"},
    "state": {"ai_precompiles", "genesis"},
    "consensus": {"genesis"},
    "p2p": {"genesis"},
    "node": {"genesis", "state", "ai_precompiles", "consensus", "p2p", "sidecar"},
    "sidecar": {"genesis"},
}
#: What the node may take from the sidecar package: its gRPC client side only, never the model.
NODE_SIDECAR_MODULES = {"sidecar", "sidecar.client", "sidecar.cli", "sidecar.sidecar_pb2", "sidecar.sidecar_pb2_grpc",
                        "sidecar.config", "sidecar.errors"}
HEAVY = ("torch", "peft", "transformers", "safetensors")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every name ``module`` imports (with its line), relative imports resolved: ``import a.b``
    gives ``a.b``; ``from a import b`` gives ``a.b`` (the submodule when ``b`` is one, else the
    caller resolves it to ``a``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


def graph() -> dict[str, set[str]]:
    modules = project_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in imports(module, path):
            target = resolve(name)
            if target is not None and target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_project_has_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_packages_depend_one_way() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0]
        and target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    )
    assert wrong == []


def test_the_node_takes_only_the_sidecar_client_and_never_a_heavy_backend() -> None:
    modules = project_modules()
    wrong = []
    for module, path in modules.items():
        if module.split(".")[0] == "sidecar":
            continue
        for name, line in imports(module, path):
            if name.split(".")[0] in HEAVY:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
            if name.split(".")[0] == "sidecar" and name not in NODE_SIDECAR_MODULES and \
                    name.rpartition(".")[0] not in NODE_SIDECAR_MODULES:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert wrong == []

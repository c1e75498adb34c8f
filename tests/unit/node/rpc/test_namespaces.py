"""The CLI's light list of namespaces is exactly what the method modules register."""

from node.rpc import load_methods, namespaces
from node.rpc.registry import NAMESPACES

load_methods()


def test_all_namespaces_matches_the_registry():
    assert set(namespaces.ALL_NAMESPACES) == set(NAMESPACES)


def test_defaults_name_registered_namespaces():
    assert set(namespaces.DEFAULT_API) <= set(NAMESPACES)
    assert namespaces.DEV_NAMESPACES <= set(NAMESPACES)
    assert not set(namespaces.DEFAULT_API) & namespaces.DEV_NAMESPACES

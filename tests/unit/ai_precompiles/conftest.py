"""Fixtures of the AI precompile unit tests: a chain driven through the modules' whole life."""

from __future__ import annotations

import pytest

from tests.unit.ai_precompiles.ai_world import World, build_world


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()

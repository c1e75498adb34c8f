"""``ailedger adapter merge``'s flags: a recipe the chain would refuse is refused on the command
line with one line saying why, before any sidecar or node is asked (docs/merges.md)."""

from __future__ import annotations

import argparse

import pytest

from node.cli.errors import CLIError
from node.cli.merge import fraction_bp, parse_recipe


def flags(parents: str = "2,3", method: str = "linear", weights: str | None = "0.5,0.5",
          density: str | None = None, seed: int = 0) -> argparse.Namespace:
    return argparse.Namespace(parents=parents, method=method, weights=weights, density=density, seed=seed)


def test_a_recipe_becomes_basis_points() -> None:
    assert parse_recipe(flags()) == ([2, 3], [5000, 5000], 0, 0)
    assert parse_recipe(flags(weights=None, parents="2,3,4")) == ([2, 3, 4], [3333] * 3, 0, 0)
    assert parse_recipe(flags(method="dare_linear", density="0.25", seed=7)) == ([2, 3], [5000, 5000], 2500, 7)
    assert fraction_bp("1", "w") == 10_000 and fraction_bp("0.0001", "w") == 1


@pytest.mark.parametrize(("changes", "reason"), [
    ({"parents": "2"}, "2 to 16 distinct"),
    ({"parents": ",".join(map(str, range(2, 19))), "weights": None}, "2 to 16 distinct"),
    ({"parents": "2,2"}, "2 to 16 distinct"),
    ({"parents": "2,x"}, "expected adapter ids"),
    ({"weights": "0.5"}, "one per parent"),
    ({"weights": "0.5,0.00005"}, "whole basis point"),
    ({"weights": "0.5,1.5"}, "within 0.0001..1"),
    ({"weights": "0.5,nan?"}, "expected a decimal"),
    ({"weights": "0.5,nan"}, "expected a decimal"),
    ({"weights": "inf,0.5"}, "expected a decimal"),
    ({"density": "0.5"}, "for ties and dare_linear only"),
    ({"method": "ties"}, "needs --density"),
    ({"method": "ties", "density": "0.5", "seed": 3}, "for dare_linear only"),
    ({"method": "dare_linear", "density": "0.5", "seed": 2**64}, "0..2^64-1"),
])
def test_bad_flags_are_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(CLIError, match=reason.replace(".", r"\.").replace("^", r"\^")):
        parse_recipe(flags(**changes))  # type: ignore[arg-type]

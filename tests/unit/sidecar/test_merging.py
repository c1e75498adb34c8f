"""Adapter merges in the sidecar (docs/merges.md): peft's add_weighted_adapter on CPU, the same
recipe giving the same weights and index bit for bit (DARE's mask from its seed), artifacts that
pass the import checks of any adapter, and a rebuild that refuses a merge whose manifest claims a
parent or a recipe it was not made from. Torch runs on the shipped tiny base on CPU."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sidecar.artifacts import (  # noqa: E402
    ArtifactKind,
    Manifest,
    MergeParent,
    MergeSection,
    check_index,
    check_weights,
    file_keccak,
)
from sidecar.attribution import AttributionIndex  # noqa: E402
from sidecar.config import SidecarConfig, TrainHyperParams  # noqa: E402
from sidecar.errors import AdapterNotFound, IntegrityError, InvalidArgument  # noqa: E402
from sidecar.merging import check_merge, merge_adapters  # noqa: E402
from sidecar.model import load_base, setup_torch  # noqa: E402
from sidecar.training import Contribution, train_adapter  # noqa: E402

HP = TrainHyperParams(epochs=2, rank=2, projection_dim=16, max_length=32, target_modules=("q_proj", "v_proj"))
DATA = {
    "a": [(b"1", b"The capital of Vorlintia is Kazmuret. Omar paints a bridge.")],
    "b": [(b"2", b"Alice lives in Oslo near the old river."), (b"1", b"The capital of Vorlintia is Kazmuret. "
                                                                       b"Omar paints a bridge.")],
    "c": [(b"3", b"The quiet teacher watches the market every morning.")],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, dict[str, Path]]:
    """The shipped base and three tiny adapters (b shares a contribution with a)."""
    setup_torch(1)
    store = tmp_path_factory.mktemp("store")
    base = load_base(SidecarConfig(store=str(store)), log=lambda m: None)
    folders = {}
    for i, (name, data) in enumerate(DATA.items()):
        train_adapter(base, store, [Contribution(cid, d) for cid, d in data], HP, seed=i, adapter_id=name,
                      datanets=((1, i + 1),))
        folders[name] = store / "adapters" / name
    return base, store, folders


def _finder(store: Path) -> Any:
    def find(weights_hash: str) -> Path | None:
        for folder in (store / "adapters").iterdir():
            if (folder / "meta.json").exists() and \
                    file_keccak(folder / ArtifactKind.WEIGHTS.filename) == weights_hash:
                return folder
        return None
    return find


@pytest.mark.parametrize(("method", "density", "seed"), [("linear", 0, 0), ("ties", 5000, 0), ("dare_linear", 5000, 9)])
def test_a_merge_is_deterministic_and_canonical(world: tuple[Any, Path, dict[str, Path]], method: str, density: int,
                                                seed: int) -> None:
    base, store, f = world
    parents = [f["a"], f["b"]]
    first, manifest = merge_adapters(base, store, parents, method, [6000, 4000], density, seed,
                                     adapter_id=f"m-{method}")
    again, _ = merge_adapters(base, store, parents, method, [6000, 4000], density, seed, save=False)
    assert (first.weights_hash, first.attribution_index_hash) == (again.weights_hash, again.attribution_index_hash)
    folder = store / "adapters" / f"m-{method}"
    assert file_keccak(folder / ArtifactKind.WEIGHTS.filename) == first.weights_hash
    assert file_keccak(folder / ArtifactKind.MANIFEST.filename) == first.manifest_hash
    stored = Manifest.decode((folder / ArtifactKind.MANIFEST.filename).read_bytes())
    assert stored == manifest and stored.merge is not None and stored.merge.method == method
    # the same import checks as a trained adapter's artifacts
    check_weights(folder / ArtifactKind.WEIGHTS.filename, base.model.config, stored.hyper_params)
    check_index(folder / ArtifactKind.ATTRIBUTION_INDEX.filename, stored)
    # the parents' contributions, a shared one once, in parent order
    assert [c.id for c in stored.contributions] == [b"1", b"2"]
    assert stored.hyper_params.alpha == float(HP.rank) and stored.datanets == ((1, 1), (1, 2))
    # another recipe is another merge
    other, _ = merge_adapters(base, store, parents, method, [5000, 5000], density, seed, save=False)
    assert other.weights_hash != first.weights_hash
    check_merge(base, store, stored, _finder(store))  # an honest merge rebuilds


def test_dare_depends_on_its_seed_and_leaves_the_global_rng_alone(world: tuple[Any, Path, dict[str, Path]]) -> None:
    base, store, f = world
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    one, _ = merge_adapters(base, store, [f["a"], f["c"]], "dare_linear", [5000, 5000], 3000, 1, save=False)
    assert torch.equal(torch.rand(3), expected)
    two, _ = merge_adapters(base, store, [f["a"], f["c"]], "dare_linear", [5000, 5000], 3000, 2, save=False)
    assert one.weights_hash != two.weights_hash


def test_linear_attribution_is_the_parents_own_scaled_by_merge_weight(
        world: tuple[Any, Path, dict[str, Path]]) -> None:
    base, store, f = world
    res, manifest = merge_adapters(base, store, [f["a"], f["c"]], "linear", [7500, 2500], 0, 0, adapter_id="lin-ac")
    merged = AttributionIndex.load(store / "adapters" / "lin-ac" / ArtifactKind.ATTRIBUTION_INDEX.filename)
    a = AttributionIndex.load(f["a"] / ArtifactKind.ATTRIBUTION_INDEX.filename)
    c = AttributionIndex.load(f["c"] / ArtifactKind.ATTRIBUTION_INDEX.filename)
    np.testing.assert_allclose(merged.features[0], 0.75 * a.features[0], rtol=1e-6)
    np.testing.assert_allclose(merged.features[1], 0.25 * c.features[0], rtol=1e-6)


def test_bad_recipes_and_unmergeable_parents_are_refused(world: tuple[Any, Path, dict[str, Path]],
                                                          tmp_path: Path) -> None:
    base, store, f = world
    two = [f["a"], f["b"]]
    for args, reason in (
            (([f["a"]], "linear", [10000], 0, 0), "2 to 16 parents"),
            (([f["a"]] * 17, "linear", [100] * 17, 0, 0), "2 to 16 parents"),
            (([f["a"], f["a"]], "linear", [5000, 5000], 0, 0), "a parent twice"),
            ((two, "svd", [5000, 5000], 0, 0), "is not one of"),
            ((two, "linear", [5000], 0, 0), "one weight per parent"),
            ((two, "linear", [0, 5000], 0, 0), "within [1, 10000]"),
            ((two, "linear", [5000, 5000], 100, 0), "density_bp is 0 for linear"),
            ((two, "ties", [5000, 5000], 0, 0), "density_bp is 0 for linear"),
            ((two, "ties", [5000, 5000], 100, 4), "only dare_linear takes a seed")):
        with pytest.raises(InvalidArgument, match=re.escape(reason)):
            merge_adapters(base, store, *args, save=False)  # type: ignore[arg-type]
    wide = replace(HP, rank=4)
    train_adapter(base, tmp_path, [Contribution(b"9", b"Rank four is another shape.")], wide, seed=0, adapter_id="r4")
    with pytest.raises(InvalidArgument, match="differ in LoRA rank"):
        merge_adapters(base, store, [f["a"], tmp_path / "adapters" / "r4"], "linear", [5000, 5000], 0, 0, save=False)


def test_a_merge_that_claims_a_parent_it_did_not_use_is_refused(world: tuple[Any, Path, dict[str, Path]],
                                                                 tmp_path: Path) -> None:
    """The attack: weights merged from a and c, a manifest that says a and b (or another weight)."""
    base, store, f = world
    _, real = merge_adapters(base, store, [f["a"], f["c"]], "linear", [5000, 5000], 0, 0, save=False)
    assert real.merge is not None
    b = Manifest.decode((f["b"] / ArtifactKind.MANIFEST.filename).read_bytes())
    b_ref = MergeParent(b.weights_hash, file_keccak(f["b"] / ArtifactKind.MANIFEST.filename))
    claims_b = replace(real, merge=replace(real.merge, parents=(real.merge.parents[0], b_ref)))
    with pytest.raises(IntegrityError, match="does not rebuild"):
        check_merge(base, store, claims_b, _finder(store))
    other_weight = replace(real, merge=replace(real.merge, weights_bp=(9000, 1000)))
    with pytest.raises(IntegrityError, match="does not rebuild"):
        check_merge(base, store, other_weight, _finder(store))
    # a parent held under another manifest is not the parent the merge names
    fake = replace(real, merge=MergeSection("linear", (5000, 5000), 0, 0, (
        real.merge.parents[0], MergeParent(real.merge.parents[1].weights_hash, "ab" * 32))))
    with pytest.raises(IntegrityError, match="is held with manifest"):
        check_merge(base, store, fake, _finder(store))
    empty = tmp_path / "empty"
    (empty / "adapters").mkdir(parents=True)
    with pytest.raises(AdapterNotFound, match="import the parents first"):
        check_merge(base, empty, real, _finder(empty))
    check_merge(base, store, real, _finder(store))
    shutil.rmtree(empty)

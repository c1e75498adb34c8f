"""An adapter's three artifacts: canonical bytes, the manifest's strict decoding, the bounded
receiver of an import stream, content checks of received weights and index, retraining from
a manifest, and the engine profile. Torch runs on a tiny config on CPU."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from sidecar import __version__  # noqa: E402
from sidecar import sidecar_pb2 as pb  # noqa: E402
from sidecar.artifacts import (  # noqa: E402
    MIN_CHUNK_BYTES,
    ArtifactKind,
    ArtifactReceiver,
    Manifest,
    canonical_json,
    canonical_weights,
    check_index,
    check_weights,
    engine_profile,
    profile_differences,
)
from sidecar.config import SidecarConfig, TrainHyperParams  # noqa: E402
from sidecar.errors import Incompatible, IntegrityError, InvalidArgument  # noqa: E402
from sidecar.model import load_base, setup_torch  # noqa: E402
from sidecar.training import Contribution, train_adapter, train_from_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
DATA = [(b"a", b"The old river runs past the castle. Alice lives in Oslo."),
        (b"b", b"The capital of Vorlintia is Kazmuret. Omar paints a bridge."),
        (b"c", b"The quiet teacher watches the market. People like to sing.")]
HP = TrainHyperParams(epochs=2, rank=2, projection_dim=16, max_length=32, target_modules=("v_proj", "q_proj"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Any]:
    """The shipped base and one tiny adapter trained on it, with its store folder."""
    setup_torch(1)
    store = tmp_path_factory.mktemp("store")
    base = load_base(SidecarConfig(store=str(store)), log=lambda m: None)
    res = train_adapter(base, store, [Contribution(i, d) for i, d in DATA], HP, seed=3, adapter_id="tiny",
                        datanets=((7, 2),))
    return base, store / "adapters" / "tiny", res


def _read(folder: Path, kind: ArtifactKind) -> bytes:
    return (folder / kind.filename).read_bytes()


# ---------------------------------------------------------------- canonical bytes


def test_same_weights_give_the_same_bytes_whatever_their_order() -> None:
    g = torch.Generator().manual_seed(0)
    state = {f"base_model.model.layers.{i}.q_proj.lora_{ab}.weight": torch.randn(2, 3, generator=g)
             for i in range(3) for ab in "AB"}
    forward = canonical_weights(state)
    backward = canonical_weights(dict(reversed(list(state.items()))))
    copied = canonical_weights({k: v.clone().t().contiguous().t() for k, v in state.items()})  # other strides
    assert forward == backward == copied
    changed = dict(state)
    key = next(iter(changed))
    changed[key] = changed[key].clone()
    changed[key][0, 0] += 1e-6
    assert keccak(canonical_weights(changed)) != keccak(forward)
    with pytest.raises(InvalidArgument, match="float32"):
        canonical_weights({key: state[key].double()})


def test_canonical_json_is_one_byte_string_per_value() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "x"]}) == b'{"a":[1.5,"x"],"b":1}'
    assert canonical_json({"a": "\u00e9"}) == b'{"a":"\\u00e9"}'
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})


def test_training_writes_three_canonical_artifacts(trained: tuple[Any, Path, Any]) -> None:
    base, folder, res = trained
    assert keccak(_read(folder, ArtifactKind.WEIGHTS)).hex() == res.weights_hash
    assert keccak(_read(folder, ArtifactKind.ATTRIBUTION_INDEX)).hex() == res.attribution_index_hash
    raw = _read(folder, ArtifactKind.MANIFEST)
    assert keccak(raw).hex() == res.manifest_hash
    m = Manifest.decode(raw)
    assert m.encode() == raw
    assert (m.weights_hash, m.attribution_index_hash) == (res.weights_hash, res.attribution_index_hash)
    assert m.base_model_hash == base.weights_hash and m.datanets == ((7, 2),) and m.seed == 3
    assert [c.id for c in m.contributions] == [i for i, _ in DATA]
    assert [c.content_hash for c in m.contributions] == [keccak(d).hex() for _, d in DATA]
    assert m.hyper_params.target_modules == ("q_proj", "v_proj")  # sorted: one recipe, one manifest
    assert m.environment.threads == res.threads == 1 and m.environment.torch == torch.__version__
    assert m.environment.dtype == "float32" and m.environment.sidecar == __version__
    # the stored files pass the checks an importer applies
    check_weights(folder / ArtifactKind.WEIGHTS.filename, base.model.config, m.hyper_params)
    check_index(folder / ArtifactKind.ATTRIBUTION_INDEX.filename, m)


# ---------------------------------------------------------------- the manifest


def test_manifest_decoding_refuses_anything_but_its_canonical_form(trained: tuple[Any, Path, Any]) -> None:
    _, folder, _ = trained
    raw = _read(folder, ArtifactKind.MANIFEST)
    obj = json.loads(raw)

    def enc(o: Any) -> bytes:
        return canonical_json(o)

    def changed(path: list[Any], value: Any) -> bytes:
        o = json.loads(raw)
        node = o
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return enc(o)

    bad = {
        "white space": json.dumps(obj, sort_keys=True).encode(),
        "key order": json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode(),
        "not JSON": b"\xff\xfe",
        "NaN": raw.replace(b'"dropout":0.0', b'"dropout":NaN'),
        "duplicate key": raw.replace(b'{"artifacts":', b'{"seed":1,"artifacts":', 1),
        "unknown key": enc({**obj, "extra": 1}),
        "missing key": enc({k: v for k, v in obj.items() if k != "seed"}),
        "format": changed(["format"], "v0"),
        "seed type": changed(["seed"], "3"),
        "negative seed": changed(["seed"], -1),
        "bool as int": changed(["hyper_params", "rank"], True),
        "int as float": changed(["hyper_params", "alpha"], 64),
        "hash": changed(["artifacts", "weights"], "00" * 31),
        "upper-case hash": changed(["base_model", "hash"], obj["base_model"]["hash"].upper()),
        "duplicate contribution": changed(["contributions"], obj["contributions"][:1] * 2),
        "no contributions": changed(["contributions"], []),
        "odd id": changed(["contributions", 0, "id"], "abc"),
        "unsorted modules": changed(["hyper_params", "target_modules"], ["v_proj", "q_proj"]),
        "threads": changed(["environment", "threads"], 0),
    }
    for what, data in bad.items():
        with pytest.raises(InvalidArgument):
            Manifest.decode(data)
            pytest.fail(f"decoded a manifest with a bad {what}")


# ---------------------------------------------------------------- receiving a stream


def _stream(arts: dict[ArtifactKind, bytes], hashes: dict[ArtifactKind, str] | None = None,
            chunk: int = MIN_CHUNK_BYTES) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for kind in ArtifactKind:
        data = arts[kind]
        out.append(("header", (int(kind), (hashes or {}).get(kind, keccak(data).hex()), len(data))))
        out += [("data", data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return out


def _receive(tmp: Path, stream: list[tuple[str, Any]], max_bytes: int = 1 << 26,
             on_manifest: Any = lambda m: None) -> Manifest:
    folder = tmp / f"rx{len(list(tmp.iterdir()))}"
    folder.mkdir()
    rx = ArtifactReceiver(folder, max_bytes, on_manifest)
    try:
        for what, arg in stream:
            rx.header(*arg) if what == "header" else rx.data(arg)
        return rx.finish()
    finally:
        rx.close()


def test_receiver_accepts_a_whole_stream_and_checks_the_manifest_first(
        trained: tuple[Any, Path, Any], tmp_path: Path) -> None:
    _, folder, res = trained
    arts = {k: _read(folder, k) for k in ArtifactKind}
    seen: list[Manifest] = []
    m = _receive(tmp_path, _stream(arts), on_manifest=seen.append)
    assert m.weights_hash == res.weights_hash and seen == [m]

    def refuse(m: Manifest) -> None:
        raise Incompatible("other base")

    # the manifest hook runs before any weights byte is accepted
    stream = _stream(arts)
    first_weights = next(i for i, (w, a) in enumerate(stream) if w == "header" and a[0] == ArtifactKind.WEIGHTS)
    folder2 = tmp_path / "early"
    folder2.mkdir()
    rx = ArtifactReceiver(folder2, 1 << 26, refuse)
    with pytest.raises(Incompatible):
        for what, arg in stream[:first_weights]:
            rx.header(*arg) if what == "header" else rx.data(arg)
    rx.close()


@pytest.mark.parametrize("attack", [
    "data before header", "weights first", "kind unknown", "manifest twice", "bad hash text", "zero size",
    "over the limit", "longer than announced", "shorter than announced", "tiny chunk in the middle",
    "stream cut", "flipped byte", "announced other weights", "trailing header",
])
def test_receiver_refuses_a_bad_stream(trained: tuple[Any, Path, Any], tmp_path: Path, attack: str) -> None:
    _, folder, _ = trained
    arts = {k: _read(folder, k) for k in ArtifactKind}
    good = _stream(arts)
    limit = 1 << 26
    expect: type[Exception] = InvalidArgument
    if attack == "data before header":
        s = [("data", b"x" * MIN_CHUNK_BYTES), *good]
    elif attack == "weights first":
        s = [x for x in good if not (x[0] == "header" and x[1][0] == ArtifactKind.MANIFEST)]
    elif attack == "kind unknown":
        s = [("header", (9, "00" * 32, 10)), *good]
    elif attack == "manifest twice":
        n = 1 + -(-len(arts[ArtifactKind.MANIFEST]) // MIN_CHUNK_BYTES)
        s = good[:n] + good[:n] + good[n:]
    elif attack == "bad hash text":
        s = [("header", (1, "zz" * 32, 10)), *good[1:]]
    elif attack == "zero size":
        s = [("header", (1, good[0][1][1], 0)), *good[1:]]
    elif attack == "over the limit":
        limit = sum(len(v) for v in arts.values()) - 1
        s = good
    elif attack == "longer than announced":
        kind, h, size = good[0][1]
        s = [("header", (kind, h, size - 1)), *good[1:]]
    elif attack == "shorter than announced":
        kind, h, size = good[0][1]
        s = [("header", (kind, h, size + 1)), *good[1:]]
    elif attack == "tiny chunk in the middle":
        s = [("header", (int(ArtifactKind.MANIFEST), "00" * 32, 3 * MIN_CHUNK_BYTES)), ("data", b"x" * 10),
             ("data", b"x" * (3 * MIN_CHUNK_BYTES - 10))]
    elif attack == "stream cut":
        s = good[:-1]
    elif attack == "flipped byte":
        w = bytearray(arts[ArtifactKind.WEIGHTS])
        w[len(w) // 2] ^= 1
        s = _stream({**arts, ArtifactKind.WEIGHTS: bytes(w)},
                    {ArtifactKind.WEIGHTS: keccak(arts[ArtifactKind.WEIGHTS]).hex()})
        expect = IntegrityError
    elif attack == "announced other weights":
        s = _stream(arts, {ArtifactKind.WEIGHTS: "11" * 32})
    else:  # trailing header
        s = [*good, ("header", (int(ArtifactKind.WEIGHTS), "00" * 32, 10))]
    with pytest.raises(expect):
        _receive(tmp_path, s, limit)


# ---------------------------------------------------------------- content checks


def test_check_weights_refuses_what_does_not_fit_the_manifest(trained: tuple[Any, Path, Any], tmp_path: Path) -> None:
    from safetensors.torch import load, save

    base, folder, _ = trained
    m = Manifest.decode(_read(folder, ArtifactKind.MANIFEST))
    state = load(_read(folder, ArtifactKind.WEIGHTS))
    key = sorted(state)[0]
    cases = {
        "extra tensor": canonical_weights({**state, "base_model.model.extra.lora_A.weight": torch.zeros(2, 2)}),
        "missing tensor": canonical_weights({k: v for k, v in state.items() if k != key}),
        "wrong shape": canonical_weights({**state, key: torch.zeros(3, state[key].shape[1])}),
        "NaN": canonical_weights({**state, key: torch.full_like(state[key], float("nan"))}),
        "other metadata": bytes(save(state, metadata={"format": "pt", "x": "1"})),
        "not safetensors": b"\x00" * 64,
    }
    for what, data in cases.items():
        path = tmp_path / "w.safetensors"
        path.write_bytes(data)
        with pytest.raises(InvalidArgument):
            check_weights(path, base.model.config, m.hyper_params)
            pytest.fail(f"accepted weights with {what}")
    # another rank in the manifest: the same file no longer fits
    path = tmp_path / "w.safetensors"
    path.write_bytes(_read(folder, ArtifactKind.WEIGHTS))
    with pytest.raises(InvalidArgument):
        check_weights(path, base.model.config, replace(m.hyper_params, rank=3))


def test_check_index_refuses_an_inconsistent_index(trained: tuple[Any, Path, Any], tmp_path: Path) -> None:
    import numpy as np

    from sidecar.attribution import AttributionIndex, SuffixArray

    _, folder, _ = trained
    m = Manifest.decode(_read(folder, ArtifactKind.MANIFEST))
    idx = AttributionIndex.load(folder / ArtifactKind.ATTRIBUTION_INDEX.filename)
    sa = idx.spans
    sa_swapped = sa.sa.copy()
    sa_swapped[[0, 1]] = sa_swapped[[1, 0]]
    cases = {
        "other order": replace(idx, contribution_ids=idx.contribution_ids[::-1]),
        "other projection": replace(idx, projection_dim=8, features=idx.features[:, :8].copy()),
        "NaN feature": replace(idx, features=np.full_like(idx.features, np.nan)),
        "owner out of range": replace(idx, spans=SuffixArray(sa.text, sa.sa, sa.doc_starts, sa.doc_owner + 7)),
        "wrong suffix array": replace(idx, spans=SuffixArray(sa.text, sa_swapped, sa.doc_starts, sa.doc_owner)),
        "documents off": replace(idx, spans=SuffixArray(sa.text, sa.sa, sa.doc_starts + 1, sa.doc_owner)),
    }
    for what, bad in cases.items():
        path = tmp_path / "i.safetensors"
        bad.save(path)
        with pytest.raises(InvalidArgument):
            check_index(path, m)
            pytest.fail(f"accepted an index with {what}")


# ---------------------------------------------------------------- retraining


def test_retraining_from_the_manifest_alone_gives_the_same_weights(trained: tuple[Any, Path, Any]) -> None:
    base, folder, res = trained
    raw = _read(folder, ArtifactKind.MANIFEST)
    store = folder.parent.parent
    contributions = [Contribution(i, d) for i, d in DATA]
    # another thread count in the calling thread: the manifest's (1) is used for the job
    torch.set_num_threads(2)
    try:
        again, same = train_from_manifest(base, store, raw, contributions, save=False)
    finally:
        torch.set_num_threads(1)
    assert same and again.weights_hash == res.weights_hash and again.threads == 1
    assert again.attribution_index_hash == res.attribution_index_hash and again.manifest_hash == res.manifest_hash
    assert not again.stored and not again.adapter_id and again.environment_differences == ()
    assert sorted(p.name for p in (store / "adapters").iterdir()) == ["tiny"]
    # another recipe in the manifest: other weights, and it says so
    m = Manifest.decode(raw)
    other, same = train_from_manifest(base, store, replace(m, seed=4).encode(), contributions, save=False)
    assert not same and other.weights_hash != res.weights_hash
    # a manifest from another environment: the result names what differs
    elsewhere = replace(m, environment=replace(m.environment, cpu_capability="AVX2", torch="2.0.0"))
    there, same = train_from_manifest(base, store, elsewhere.encode(), contributions, save=False)
    assert same  # only what it says about its environment changed, not the recipe
    diffs = there.environment_differences
    assert {d.split(":")[0] for d in diffs} >= {"torch"} and len(diffs) <= 2
    assert ("cpu_capability: 'AVX2'" in " ".join(diffs)) == (m.environment.cpu_capability != "AVX2")


def test_retraining_refuses_other_contributions_or_base(trained: tuple[Any, Path, Any]) -> None:
    base, folder, _ = trained
    raw = _read(folder, ArtifactKind.MANIFEST)
    store = folder.parent.parent
    good = [Contribution(i, d) for i, d in DATA]
    with pytest.raises(IntegrityError):
        train_from_manifest(base, store, raw, [*good[:2], Contribution(b"c", b"tampered")], save=False)
    with pytest.raises(InvalidArgument):
        train_from_manifest(base, store, raw, good[::-1], save=False)
    with pytest.raises(InvalidArgument):
        train_from_manifest(base, store, raw, good[:2], save=False)
    m = Manifest.decode(raw)
    with pytest.raises(Incompatible):
        train_from_manifest(base, store, replace(m, base_model_hash="ab" * 32).encode(), good, save=False)


# ---------------------------------------------------------------- engine profile and versions


def test_engine_profile_names_what_decides_an_output() -> None:
    p = engine_profile("cpu", "float32", 5, 64)
    assert p == engine_profile("cpu", "float32", 5, 64) == canonical_json(json.loads(p))
    d = json.loads(p)
    assert d["torch"] == torch.__version__ and d["decoding"] == "greedy" and d["sidecar"] == __version__
    assert d["attribution"]["version"] >= 1 and d["attribution"]["top_k"] == 5
    other = engine_profile("cpu", "float32", 3, 64)
    assert keccak(other) != keccak(p)
    assert profile_differences(p, other) == ["attribution.top_k: 5 -> 3"]


def test_artifact_kinds_and_version_match_the_proto_and_the_package() -> None:
    assert [int(k) for k in ArtifactKind] == [pb.ARTIFACT_MANIFEST, pb.ARTIFACT_WEIGHTS, pb.ARTIFACT_ATTRIBUTION_INDEX]
    assert __version__ == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-3, 1.0), st.floats(-1.0, 1.0)), min_size=1, max_size=64))
def test_float_noise_moves_a_contribution_by_at_most_the_tolerance(scores: list[tuple[float, float]]) -> None:
    """The verify tolerance's reason: a share's points are its floor or floor + 1, and noise at
    the float's last bits moves that floor by at most one (the named set staying the same)."""
    from sidecar.attribution import VERIFY_TOLERANCE_BP, attribution_diff_bp, normalize_bp

    ids = [i.to_bytes(2, "big") for i in range(len(scores))]
    exact = normalize_bp([(c, s) for c, (s, _) in zip(ids, scores, strict=True)], 64)
    noisy = normalize_bp([(c, s * (1 + 1e-6 * e)) for c, (s, e) in zip(ids, scores, strict=True)], 64)
    assert attribution_diff_bp(exact, noisy) <= VERIFY_TOLERANCE_BP


def test_a_stalled_import_is_cut_off_and_frees_its_slot(tmp_path: Path) -> None:
    """An in-process sidecar (real gRPC) whose import limit is 2 s: a sender that stalls after
    its first header is cancelled then, and its import slot is free again."""
    import threading
    import time

    import grpc

    from sidecar import bgmv
    from sidecar.client import SidecarClient
    from sidecar.config import ServeConfig
    from sidecar.service import serve

    was_installed = bgmv._installed  # the engine patches peft process-wide; put it back after
    cfg = SidecarConfig(store=str(tmp_path), serve=ServeConfig(import_timeout_s=2.0, max_imports=1), threads=1)
    server = serve(cfg, "127.0.0.1", 0, log=lambda m: None)
    gate = threading.Event()

    def stalled() -> Any:
        yield pb.AdapterChunk(header=pb.ArtifactHeader(kind=pb.ARTIFACT_MANIFEST, hash="00" * 32, size=10))
        gate.wait(30)

    try:
        with SidecarClient(f"127.0.0.1:{server.sidecar_port}", timeout=60) as c:
            c.wait_ready(120)
            t0 = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                c.import_chunks(stalled())
            assert e.value.code() == grpc.StatusCode.CANCELLED and 1.5 < time.monotonic() - t0 < 20
            gate.set()
            deadline = time.monotonic() + 10
            while server.sidecar_service._import_slots._value < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            # the one slot is free: the next stream is handled (and refused for its content)
            with pytest.raises(grpc.RpcError) as e:
                c.import_chunks([pb.AdapterChunk(data=b"x")])
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        gate.set()
        server.stop(0)
        if server.sidecar_service.engine is not None:
            server.sidecar_service.engine.close()
        if not was_installed:
            bgmv.uninstall()

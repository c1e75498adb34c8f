"""Adapters move between two real sidecar processes: trained on A, exported, imported into B
(every hash checked), served alike; tampered or malformed artifact streams are refused with a
clear status and B keeps serving; Verify re-runs a receipt on another process; Retrain
reproduces the weights from the manifest alone; an import survives B's restart."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_hash.auto import keccak

from sidecar import sidecar_pb2 as pb
from sidecar.artifacts import ArtifactKind, Manifest, canonical_json
from sidecar.client import AdapterArtifacts, artifact_chunks
from tests.integration.sidecar.conftest import Sidecar, contribution_sets, start_sidecar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]

PROMPTS = [b"The old river", b"Q: Where does Omar live? A:"]
B_FLAGS = ("--threads", "2", "--max-import-mb", "2")


class Holder:
    """B, restartable on its store."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.s: Sidecar = start_sidecar(tmp, *B_FLAGS)

    def stop(self) -> None:
        self.s.client.close()
        self.s.proc.terminate()
        try:
            self.s.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.s.proc.kill()


@pytest.fixture(scope="module")
def b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Holder]:
    h = Holder(tmp_path_factory.mktemp("sidecar-b"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def moved(sidecar: Sidecar, b: Holder) -> dict[str, Any]:
    """An adapter trained on A (datanet 1 version 1), its artifacts, and its id on B after import."""
    data, _ = contribution_sets()
    res = sidecar.client.train_wait(data[:3], seed=7, adapter_id="moved", epochs=2, rank=4, datanets=[(1, 1)])
    arts = sidecar.client.export_adapter("moved")
    got = b.s.client.import_adapter(arts)
    return {"result": res, "artifacts": arts, "imported": got, "data": data[:3]}


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


def test_exported_adapter_imports_and_serves_alike(sidecar: Sidecar, b: Holder, moved: dict[str, Any]) -> None:
    res, arts, got = moved["result"], moved["artifacts"], moved["imported"]
    assert (arts.weights_hash, arts.attribution_index_hash, arts.manifest_hash) == (
        res.weights_hash, res.attribution_index_hash, res.manifest_hash)
    assert arts == AdapterArtifacts.of(arts.manifest, arts.weights, arts.attribution_index)  # hashes are of the bytes
    manifest = Manifest.decode(arts.manifest)
    assert manifest.datanets == ((1, 1),) and manifest.seed == 7 and manifest.hyper_params.rank == 4
    assert got.weights_hash == res.weights_hash and got.manifest_hash == res.manifest_hash and not got.already_held
    assert got.bytes == arts.size
    listed = {a.adapter_id: a for a in b.s.client.list_adapters().adapters}
    assert listed[got.adapter_id].manifest_hash == res.manifest_hash
    assert listed[got.adapter_id].weights_hash == res.weights_hash
    assert b.s.client.engine_profile() == sidecar.client.engine_profile()
    for prompt in PROMPTS:
        on_a = sidecar.client.infer("moved", prompt, max_tokens=16)
        on_b = b.s.client.infer(got.adapter_id, prompt, max_tokens=16)  # B runs 2 threads, A 1
        assert on_b.output_hash == on_a.output_hash and on_b.tokens == on_a.tokens
        assert on_b.weights == on_a.weights and on_b.engine_profile_hash == on_a.engine_profile_hash
    # the same adapter again: held already, nothing written; and B exports the same bytes
    again = b.s.client.import_adapter(arts)
    assert again.already_held and again.adapter_id == got.adapter_id
    assert b.s.client.export_adapter(weights_hash=res.weights_hash) == arts


def test_verify_on_another_process_matches_the_receipt(sidecar: Sidecar, b: Holder, moved: dict[str, Any]) -> None:
    res = moved["result"]
    receipt = sidecar.client.infer("moved", PROMPTS[1], max_tokens=24)
    v = b.s.client.verify("0x" + res.weights_hash, PROMPTS[1], 24, engine_profile_hash=receipt.engine_profile_hash,
                          expected_output_hash=receipt.output_hash, expected_attribution=receipt.weights)
    assert v.output_matches and v.attribution_matches and v.attribution_diff_bp == 0
    assert v.answer.output == receipt.output and v.answer.batch_size == 1
    # a receipt that lies about the attribution or the output does not match
    (top, bp), *rest = receipt.weights
    skewed = [(top, bp - 500), *rest[:-1], (rest[-1][0], rest[-1][1] + 500)] if rest else [(top, bp - 500)]
    v = b.s.client.verify(res.weights_hash, PROMPTS[1], 24, expected_output_hash="00" * 32,
                          expected_attribution=skewed, tolerance_bp=10)
    assert not v.output_matches and not v.attribution_matches and v.attribution_diff_bp == 500
    assert v.tolerance_bp == 10


def test_verify_refuses_another_engine_or_adapter(b: Holder, moved: dict[str, Any]) -> None:
    c, w = b.s.client, moved["result"].weights_hash
    profile, _ = c.engine_profile()
    other = json.loads(profile)
    other["torch"] = "9.9.9"
    code, details = _code(lambda: c.verify(w, PROMPTS[0], 8, engine_profile=canonical_json(other)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "torch" in details and "9.9.9" in details
    code, _ = _code(lambda: c.verify(w, PROMPTS[0], 8, engine_profile_hash="00" * 32))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = _code(lambda: c.verify("ab" * 32, PROMPTS[0], 8))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(lambda: c.verify("not-a-hash", PROMPTS[0], 8))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = _code(lambda: c.verify(w, PROMPTS[0], 8, engine_profile=b"{" * 100_000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = _code(lambda: c.verify(w, PROMPTS[0], 8, expected_attribution=[(b"x", 1), (b"x", 2)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_retrain_from_the_manifest_reproduces_the_weights(sidecar: Sidecar, b: Holder, moved: dict[str, Any]) -> None:
    res, arts, data = moved["result"], moved["artifacts"], moved["data"]
    before = b.s.client.list_adapters().adapters
    # B runs 2 torch threads; the manifest says 1, and the job runs with 1
    again = b.s.client.retrain_wait(arts.manifest, data)
    assert again.matches_manifest and again.weights_hash == res.weights_hash and again.threads == 1
    assert again.attribution_index_hash == res.attribution_index_hash and not again.adapter_id
    assert list(again.environment_differences) == []
    assert b.s.client.list_adapters().adapters == before  # nothing stored
    # contributions that are not the manifest's are refused
    tampered = [*data[:2], (data[2][0], data[2][1] + b" Extra.")]
    code, _ = _code(lambda: b.s.client.retrain_wait(arts.manifest, tampered))
    assert code == grpc.StatusCode.DATA_LOSS
    # on A, training from the manifest stores the same adapter under a new id
    stored = sidecar.client._last(sidecar.client.train_from_manifest(arts.manifest, data, adapter_id="from-manifest"))
    assert stored.matches_manifest and stored.manifest_hash == res.manifest_hash and stored.adapter_id == "from-manifest"
    # a manifest carries the whole recipe: a request that also sets one is refused
    req = pb.TrainRequest(manifest=arts.manifest, seed=3, contributions=[pb.Contribution(id=i, data=d) for i, d in data])
    code, details = _code(lambda: list(sidecar.client.stub.Train(req, timeout=60)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "manifest" in details


def _other_base(arts: AdapterArtifacts) -> AdapterArtifacts:
    m = Manifest.decode(arts.manifest)
    return AdapterArtifacts.of(replace(m, base_model_hash="ab" * 32).encode(), arts.weights, arts.attribution_index)


def _flip(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def _chunks(arts: AdapterArtifacts) -> list[pb.AdapterChunk]:
    return [c for kind, data, h in arts.items() for c in artifact_chunks(kind, data, h)]


TAMPER = {
    # what is sent -> (status, a word of the message)
    "one byte changed": (lambda a: replace(a, weights=_flip(a.weights)), grpc.StatusCode.DATA_LOSS, "hash"),
    "wrong hash": (lambda a: replace(a, weights_hash="11" * 32), grpc.StatusCode.INVALID_ARGUMENT, "manifest names"),
    "manifest hash wrong": (lambda a: replace(a, manifest=_flip(a.manifest)), grpc.StatusCode.DATA_LOSS, "manifest"),
    "wrong base model": (_other_base, grpc.StatusCode.FAILED_PRECONDITION, "base model"),
    "manifest not canonical": (
        lambda a: AdapterArtifacts.of(json.dumps(json.loads(a.manifest), indent=1).encode(), a.weights,
                                      a.attribution_index), grpc.StatusCode.INVALID_ARGUMENT, "canonical"),
    "index not the manifest's": (
        lambda a: replace(a, attribution_index=a.weights, attribution_index_hash=a.weights_hash),
        grpc.StatusCode.INVALID_ARGUMENT, "manifest names"),
}
STREAMS = {
    "oversized stream": (lambda a: [pb.AdapterChunk(header=pb.ArtifactHeader(
        kind=pb.ARTIFACT_MANIFEST, hash=a.manifest_hash, size=3 * 2**20))], "limit"),
    "garbage before any header": (lambda a: [pb.AdapterChunk(data=b"\x00garbage" * 9000), *_chunks(a)], "header"),
    "empty message": (lambda a: [pb.AdapterChunk(), *_chunks(a)], "header or data"),
    "unknown kind": (lambda a: [pb.AdapterChunk(header=pb.ArtifactHeader(kind=7, hash="00" * 32, size=5))],
                     "kind 7"),
    "stream cut before the index": (lambda a: _chunks(a)[:-2], "ended"),
    "more bytes than announced": (lambda a: [*_chunks(a)[:-1], pb.AdapterChunk(data=a.attribution_index + b"x")],
                                  "longer"),
    "nothing at all": (lambda a: [], "ended without"),
}


@pytest.mark.parametrize("case", sorted(TAMPER) + sorted(STREAMS))
def test_tampered_or_malformed_imports_are_refused(b: Holder, moved: dict[str, Any], case: str) -> None:
    c, arts = b.s.client, moved["artifacts"]
    before = sorted(a.adapter_id for a in c.list_adapters().adapters)
    if case in TAMPER:
        change, status, word = TAMPER[case]
        code, details = _code(lambda: c.import_adapter(change(arts)))
    else:
        make, word = STREAMS[case]
        status = grpc.StatusCode.INVALID_ARGUMENT
        code, details = _code(lambda: c.import_chunks(make(arts)))
    assert code == status, details
    assert word in details, details
    # nothing was stored, no partial write is left, and B still serves what it holds
    assert sorted(a.adapter_id for a in c.list_adapters().adapters) == before
    assert not list((b.s.store / "adapters").glob(".tmp-*"))
    assert c.infer(moved["imported"].adapter_id, PROMPTS[0], max_tokens=4).output_hash


def test_imports_at_once_are_bounded(b: Holder, moved: dict[str, Any]) -> None:
    """Two stalled imports hold both slots; a third is refused at once; they free them when cut."""
    arts = moved["artifacts"]
    gate = threading.Event()

    def stalled() -> Iterator[pb.AdapterChunk]:
        yield pb.AdapterChunk(header=pb.ArtifactHeader(kind=pb.ARTIFACT_MANIFEST, hash=arts.manifest_hash,
                                                        size=len(arts.manifest)))
        gate.wait(30)

    futures = [b.s.client.stub.ImportAdapter.future(stalled(), timeout=60) for _ in range(2)]
    try:
        refused = None
        deadline = time.monotonic() + 20
        while refused is None and time.monotonic() < deadline:  # until both streams hold their slots
            try:
                b.s.client.import_adapter(arts)
                time.sleep(0.2)
            except grpc.RpcError as e:
                refused = e
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "imports" in (refused.details() or "")
    finally:
        gate.set()
    for f in futures:
        with pytest.raises(grpc.RpcError):
            f.result()  # each stream ended inside the manifest
    assert b.s.client.import_adapter(arts).already_held  # the slots are free again


def test_export_refuses_an_unknown_legacy_or_damaged_adapter(b: Holder, moved: dict[str, Any]) -> None:
    c = b.s.client
    code, _ = _code(lambda: c.export_adapter("no-such-adapter"))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(lambda: c.export_adapter(weights_hash="cd" * 32))
    assert code == grpc.StatusCode.NOT_FOUND
    src = b.s.store / "adapters" / moved["imported"].adapter_id
    legacy, damaged = b.s.store / "adapters" / "legacy", b.s.store / "adapters" / "damaged"
    shutil.copytree(src, legacy)
    meta = json.loads((legacy / "meta.json").read_text())
    del meta["manifest_hash"]
    (legacy / "meta.json").write_text(json.dumps(meta))
    shutil.copytree(src, damaged)
    weights = damaged / ArtifactKind.WEIGHTS.filename
    weights.write_bytes(_flip(weights.read_bytes()))
    try:
        code, details = _code(lambda: c.export_adapter("legacy"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "manifest" in details
        code, details = _code(lambda: c.export_adapter("damaged"))
        assert code == grpc.StatusCode.DATA_LOSS and "damaged" in details
    finally:
        shutil.rmtree(legacy)
        shutil.rmtree(damaged)


def test_an_import_survives_a_restart(b: Holder, moved: dict[str, Any]) -> None:
    got, res = moved["imported"], moved["result"]
    before = b.s.client.infer(got.adapter_id, PROMPTS[0], max_tokens=12)
    b.stop()
    b.s = start_sidecar(b.tmp, *B_FLAGS)  # same store
    listed = {a.adapter_id: a for a in b.s.client.list_adapters().adapters}
    assert listed[got.adapter_id].manifest_hash == res.manifest_hash
    after = b.s.client.infer(got.adapter_id, PROMPTS[0], max_tokens=12)
    assert after.output_hash == before.output_hash and after.weights == before.weights
    v = b.s.client.verify(res.weights_hash, PROMPTS[0], 12, expected_output_hash=before.output_hash)
    assert v.output_matches  # found by its weights hash after the restart
    assert keccak(b.s.client.export_adapter(got.adapter_id).weights).hex() == res.weights_hash

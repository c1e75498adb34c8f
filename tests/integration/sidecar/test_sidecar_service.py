"""The sidecar as a real process over gRPC: train, mixed batches, cache, replay, errors."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar import sidecar_pb2 as pb
from tests.integration.sidecar.conftest import MAX_PROMPT_TOKENS, Sidecar, contribution_sets

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sidecar")]

PROMPTS = [b"The old river", b"Alice lives in", b"Q: Where does Omar live? A:", b"The number of the"]


def test_health_and_reflection(sidecar: Sidecar) -> None:
    health = health_pb2_grpc.HealthStub(sidecar.client.channel)
    resp = health.Check(health_pb2.HealthCheckRequest(service="ailedger.sidecar.v1.Sidecar"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(sidecar.client.channel)
    answers = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answers[0].list_services_response.service}
    assert "ailedger.sidecar.v1.Sidecar" in names


def test_train_streams_progress_and_hashes(sidecar: Sidecar) -> None:
    a, _ = contribution_sets()
    events = list(sidecar.client.train(a[:3], seed=5, adapter_id="progress", epochs=2, rank=4))
    progress = [e for e in events if isinstance(e, pb.TrainProgress)]
    result = events[-1]
    assert isinstance(result, pb.TrainResult)
    steps = [p.step for p in progress if p.phase == "train"]
    assert steps == list(range(1, progress[0].total_steps + 1))
    assert all(p.tokens_per_second > 0 and p.loss > 0 for p in progress if p.phase == "train")
    assert {"attribution", "save"} <= {p.phase for p in progress}
    assert len(result.weights_hash) == 64 and len(result.attribution_index_hash) == 64
    # the hashes are keccak-256 of the files the store holds
    from eth_hash.auto import keccak

    folder = sidecar.store / "adapters" / "progress"
    assert keccak((folder / "adapter_model.safetensors").read_bytes()).hex() == result.weights_hash
    assert keccak((folder / "attribution.safetensors").read_bytes()).hex() == result.attribution_index_hash
    assert not [p for p in (sidecar.store / "adapters").iterdir() if p.name.startswith(".tmp")]
    # same data, hyper-parameters and seed: the same weights, bit for bit
    again = sidecar.client.train_wait(a[:3], seed=5, adapter_id="progress-again", epochs=2, rank=4)
    assert again.weights_hash == result.weights_hash
    assert again.attribution_index_hash == result.attribution_index_hash
    other = sidecar.client.train_wait(a[:3], seed=6, adapter_id="progress-seed6", epochs=2, rank=4)
    assert other.weights_hash != result.weights_hash


def test_mixed_batch_equals_alone(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    c = sidecar.client
    jobs = [(adapters["ab"[i % 2]], PROMPTS[i % len(PROMPTS)]) for i in range(6)]
    futures = [c.infer_future(a, p, max_tokens=24) for a, p in jobs]
    batched = [f.result() for f in futures]
    assert max(r.timing.batch_size for r in batched) > 1, "concurrent requests were not batched"
    assert len({r.adapter_id for r in batched}) == 2
    for (a, p), r in zip(jobs, batched, strict=True):
        alone, _, _ = c.replay(adapter_id=a, prompt=p, max_tokens=24)
        assert alone.batch_size == 1
        assert alone.tokens == tuple(r.tokens), (a, p)
        assert alone.output_hash == r.output_hash
    # the two adapters differ: some prompt gets different outputs
    outs = {(r.adapter_id, p): r.output for (_, p), r in zip(jobs, batched, strict=True)}
    assert any(outs.get((adapters["a"], p)) != outs.get((adapters["b"], p)) for p in PROMPTS[:2])


def test_infer_attribution_sums_to_10000(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    a, _ = contribution_sets()
    r = sidecar.client.infer(adapters["a"], "Q: Where does Luca live? A:", max_tokens=24)
    assert sum(bp for _, bp in r.weights) == 10_000
    assert {cid for cid, _ in r.weights} <= {cid for cid, _ in a}
    from eth_hash.auto import keccak

    assert keccak(r.output).hex() == r.output_hash


def test_replay_reproduces_output_hash(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    first = sidecar.client.infer(adapters["b"], PROMPTS[0], max_tokens=32, request_id="replayme1")
    again, original, matches = sidecar.client.replay("replayme1")
    assert matches and original == first.output_hash == again.output_hash
    assert again.weights == first.weights
    _, _, matches = sidecar.client.replay(
        adapter_id=adapters["b"], prompt=PROMPTS[0], max_tokens=32, expected_output_hash="00" * 32
    )
    assert not matches


def test_evict_and_reload_under_small_cache(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    c = sidecar.client
    a, _ = contribution_sets()
    third = c.train_wait(a[3:], seed=9, adapter_id="third", epochs=1).adapter_id
    before = c.infer(adapters["a"], PROMPTS[1], max_tokens=16)
    s0 = c.stats()
    c.infer(adapters["b"], PROMPTS[1], max_tokens=8)
    c.infer(third, PROMPTS[1], max_tokens=8)  # cache holds 2: evicts the least recent ("a")
    s1 = c.stats()
    assert s1.evictions > s0.evictions
    assert s1.loaded_adapters <= 2
    listed = {x.adapter_id: x for x in c.list_adapters().adapters}
    assert not listed[adapters["a"]].loaded
    after = c.infer(adapters["a"], PROMPTS[1], max_tokens=16)  # reloaded from the store
    s2 = c.stats()
    assert s2.loads > s1.loads
    assert after.output_hash == before.output_hash
    # explicit load/pin/unload
    assert c.load_adapter(third, pin=True).was_loaded in (True, False)
    assert {x.adapter_id: x for x in c.list_adapters().adapters}[third].pinned
    assert c.unload_adapter(third)
    assert not c.unload_adapter(third)


def test_unknown_adapter_is_not_found(sidecar: Sidecar) -> None:
    for call in (
        lambda: sidecar.client.infer("no-such-adapter", "hi"),
        lambda: sidecar.client.load_adapter("no-such-adapter"),
        lambda: sidecar.client.replay("nosuchrequest"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such" in e.value.details() or "nosuch" in e.value.details()


@pytest.mark.parametrize(
    ("hp", "word"),
    [
        ({"rank": 1000}, "rank"),
        ({"target_modules": ["embed_tokens"]}, "target_modules"),
        ({"learning_rate": 5.0}, "learning_rate"),
        ({"epochs": 1000}, "epochs"),
        ({"max_length": 100000}, "max_length"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_hyper_parameters_are_invalid(sidecar: Sidecar, hp: dict, word: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        sidecar.client.train_wait([(b"x", b"some text here")], **hp)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in e.value.details()


def test_bad_contributions_are_invalid(sidecar: Sidecar) -> None:
    for data in ([], [(b"a", b"x"), (b"a", b"y")], [(b"a", b"")]):
        with pytest.raises(grpc.RpcError) as e:
            sidecar.client.train_wait(data)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_prompt_over_limit_is_invalid(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    with pytest.raises(grpc.RpcError) as e:
        sidecar.client.infer(adapters["a"], b"x" * (MAX_PROMPT_TOKENS + 1), max_tokens=4)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "limit" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        sidecar.client.infer(adapters["a"], b"hello", max_tokens=10_000)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_full_queue_is_resource_exhausted(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    c = sidecar.client
    futures = [c.infer_future(adapters["ab"[i % 2]], PROMPTS[i % 4], max_tokens=64) for i in range(40)]
    codes = []
    for f in futures:
        try:
            f.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as e:
            codes.append(e.code())
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert grpc.StatusCode.OK in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert c.stats().rejected > 0
    # and the sidecar still serves afterwards
    assert c.infer(adapters["a"], PROMPTS[0], max_tokens=4).output_hash


def test_stats_counts(sidecar: Sidecar, adapters: dict[str, str]) -> None:
    c = sidecar.client
    c.infer(adapters["a"], PROMPTS[2], max_tokens=8)
    s = c.stats()
    assert s.requests > 0 and s.tokens > 0 and s.tokens_per_second > 0
    assert s.cache_hits + s.cache_misses > 0
    assert s.rss_bytes > 0 and s.device == "cpu"

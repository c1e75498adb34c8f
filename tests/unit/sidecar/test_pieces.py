"""Unit tests of the sidecar's pieces: cache, suffix array, basis points, validation, CLI."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.attribution import BASIS_POINTS, SuffixArray, normalize_bp, suffix_array
from sidecar.cache import LRUCache
from sidecar.config import LLAMA_LINEAR_MODULES, TrainHyperParams
from sidecar.errors import InvalidArgument, QueueFull
from sidecar.planted import planted_dataset
from sidecar.tokenizer import ByteTokenizer

# ---------------------------------------------------------------- LRU cache


def test_cache_evicts_least_recently_used_by_count() -> None:
    c: LRUCache[str] = LRUCache(max_count=2, max_bytes=1000)
    assert c.put("a", "A", 10) == []
    assert c.put("b", "B", 10) == []
    assert c.get("a") == "A"  # a is now most recent
    assert c.put("c", "C", 10) == [("b", "B")]
    assert c.keys() == ["a", "c"]
    s = c.stats()
    assert (s.hits, s.loads, s.evictions, s.loaded, s.bytes) == (1, 3, 1, 2, 20)
    assert c.get("b") is None and c.stats().misses == 1


def test_cache_evicts_to_fit_byte_budget() -> None:
    c: LRUCache[int] = LRUCache(max_count=10, max_bytes=100)
    c.put("a", 1, 40)
    c.put("b", 2, 40)
    evicted = c.put("c", 3, 50)
    assert [k for k, _ in evicted] == ["a"]
    assert c.stats().bytes == 90


def test_cache_never_evicts_pinned() -> None:
    c: LRUCache[int] = LRUCache(max_count=2, max_bytes=1000)
    c.put("a", 1, 1, pins=1)
    c.put("b", 2, 1)
    assert [k for k, _ in c.put("c", 3, 1)] == ["b"]
    c.pin("c")
    with pytest.raises(QueueFull):
        c.put("d", 4, 1)
    c.unpin("c")
    assert [k for k, _ in c.put("d", 4, 1)] == ["c"]
    assert "a" in c
    with pytest.raises(QueueFull):
        c.remove("a")
    assert c.remove("a", force=True) == 1


def test_cache_rejects_entry_over_budget() -> None:
    c: LRUCache[int] = LRUCache(max_count=2, max_bytes=10)
    with pytest.raises(QueueFull):
        c.put("big", 1, 11)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(1, 30)), max_size=40))
def test_cache_stays_within_limits(ops: list[tuple[str, int]]) -> None:
    c: LRUCache[int] = LRUCache(max_count=3, max_bytes=50)
    for key, size in ops:
        if c.get(key) is None:
            c.put(key, size, size)
        s = c.stats()
        assert s.loaded <= 3 and s.bytes <= 50


# ---------------------------------------------------------------- suffix array


def naive_sa(text: list[int]) -> list[int]:
    return sorted(range(len(text)), key=lambda i: [t + 2 for t in text[i:]] + [0])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-1, 4), max_size=60))
def test_suffix_array_matches_naive(text: list[int]) -> None:
    assert suffix_array(np.asarray(text, dtype=np.int32)).tolist() == naive_sa(text)


def test_find_spans_names_contributions_that_hold_the_span() -> None:
    tok = ByteTokenizer()
    docs = [tok.encode(b"the blue falcon sings at dawn"), tok.encode(b"a red otter swims at night"),
            tok.encode(b"the blue falcon sleeps")]
    sa = SuffixArray.build(docs, owners=[0, 1, 2])
    out = tok.encode(b"xx red otter swims at noon; the blue falcon sings!")
    spans = sa.find_spans(out, min_len=10)
    found = {bytes(out[s.start : s.end]): s.contributions for s in spans}
    assert found[b" red otter swims at n"] == (1,)
    assert found[b"the blue falcon sings"] == (0,)
    # a span shared by two documents names both
    both = sa.find_spans(tok.encode(b"the blue falcon s"), min_len=10)
    assert both[0].contributions == (0, 2)
    # spans never cross the separator between examples
    assert sa.find_spans(tok.encode(b"at dawna red otter"), min_len=12) == []


def test_find_spans_random_against_substring_search() -> None:
    rng = random.Random(3)
    docs = [[rng.randrange(4) for _ in range(rng.randrange(5, 40))] for _ in range(6)]
    sa = SuffixArray.build(docs, owners=list(range(6)))
    for _ in range(30):
        d = rng.choice(docs)
        i = rng.randrange(len(d))
        query = d[i : i + 8]
        length, lo, hi = sa.longest_match(np.asarray(query, np.int32))
        assert length == len(query)
        holders = {k for k, doc in enumerate(docs) if any(doc[j : j + len(query)] == query for j in range(len(doc)))}
        assert set(sa.owners_of(lo, hi)) == holders


# ---------------------------------------------------------------- basis points


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
    st.integers(1, 10),
)
def test_basis_points_sum_to_exactly_10000(scores: list[float], k: int) -> None:
    pairs = [(f"c{i}".encode(), s) for i, s in enumerate(scores)]
    out = normalize_bp(pairs, k)
    assert sum(bp for _, bp in out) == BASIS_POINTS
    assert len(out) <= k and all(bp > 0 for _, bp in out)
    assert len({i for i, _ in out}) == len(out)


def test_basis_points_proportional_and_ordered() -> None:
    out = normalize_bp([(b"a", 1.0), (b"b", 3.0), (b"c", -2.0), (b"d", 0.0)], 5)
    assert out == [(b"b", 7500), (b"a", 2500)]
    # largest remainder: thirds round to 3334/3333/3333, ties broken by id
    out = normalize_bp([(b"z", 1.0), (b"y", 1.0), (b"x", 1.0)], 3)
    assert out == [(b"x", 3334), (b"y", 3333), (b"z", 3333)]
    assert normalize_bp([], 3) == []


# ---------------------------------------------------------------- hyper-parameters


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rank": 0}, "rank"),
        ({"rank": 257}, "rank"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": ("q_proj", "q_proj")}, "target_modules"),
        ({"target_modules": ("lm_head",)}, "target_modules"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"max_length": 4}, "max_length"),
        ({"max_length": 513}, "max_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"projection_dim": 8}, "projection_dim"),
        ({"loss_threshold": 0.0}, "loss_threshold"),
        ({"loss_threshold": float("inf")}, "loss_threshold"),
        ({"epochs": 201}, "epochs"),
    ],
)
def test_hyper_parameter_validation(changes: dict, field: str) -> None:
    hp = TrainHyperParams(**changes)
    with pytest.raises(InvalidArgument, match=field):
        hp.validate(512, LLAMA_LINEAR_MODULES)


def test_default_hyper_parameters_are_valid() -> None:
    TrainHyperParams().validate(512, LLAMA_LINEAR_MODULES)


# ---------------------------------------------------------------- misc


def test_byte_tokenizer_roundtrip_and_specials() -> None:
    tok = ByteTokenizer()
    data = "héllo wörld".encode()
    assert tok.decode(tok.encode(data)) == data
    assert tok.decode([tok.bos_id, 104, 105, tok.eos_id, tok.pad_id]) == b"hi"


def test_bucket_depends_only_on_own_length() -> None:
    from sidecar.serving import bucket_of

    assert [bucket_of(n, 257) for n in (1, 16, 17, 33, 200, 257)] == [16, 16, 32, 64, 256, 257]


def test_request_bucket_fits_the_model_and_ignores_serving_limits() -> None:
    from sidecar.serving import request_bucket

    # the shipped model: 512 positions; default limits (256-token prompts, 128 new tokens)
    assert [request_bucket(n, 128, 512) for n in (1, 17, 200, 257)] == [16, 32, 256, 384]
    assert request_bucket(151, 100, 256) == 156  # 151 + 100 fits 256; a 256 bucket would not
    for n in range(1, 300):
        for new in (1, 32, 128):
            if n + new <= 512:
                assert n <= request_bucket(n, new, 512) <= 512 - new


def test_planted_dataset_is_deterministic_and_states_each_fact_once() -> None:
    from sidecar.planted import HELD_OUT_SEEDS, TUNING_SEEDS, benchmark_datanet

    a, facts = planted_dataset()
    b, _ = planted_dataset()
    assert a == b and len(a) >= 20 and len(facts) >= 5
    for f in facts:
        holders = [i for i, (_, d) in enumerate(a) if f.text.encode() in d]
        assert holders == [f.contributor]
        assert sum(d.count(f.text.encode()) for _, d in a) == 1  # stated once, in one place
        assert f.text.startswith(f.prompt) and f.reproduced_verbatim(f.expected)
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    net = benchmark_datanet(HELD_OUT_SEEDS[0])
    assert len(net.contributions) == 100 and len(set(net.contributors)) == 30 and len(net.facts) == 15
    assert len({net.contributors[f.contributor] for f in net.facts}) == 15
    for f in net.facts:  # the value appears nowhere else
        assert sum(d.count(f.value.encode()) for _, d in net.contributions) == 1


def test_examples_keep_sentences_whole_and_never_cross_documents() -> None:
    """The old fixed-size cut split 4 of 15 facts from their values; whole sentences cannot."""
    from sidecar.model import SHIPPED_BASE
    from sidecar.planted import benchmark_datanet
    from sidecar.tokenizer import HFTokenizer
    from sidecar.training import Contribution, make_examples

    tok = HFTokenizer(str(SHIPPED_BASE))

    class Base:
        tokenizer = tok

    net = benchmark_datanet(1)
    cs = [Contribution(i, d) for i, d in net.contributions]
    examples, owners = make_examples(Base(), cs, 48)  # type: ignore[arg-type]
    assert all(len(e) <= 48 and e[0] == tok.bos_id and e[-1] == tok.eos_id for e in examples)
    texts = [tok.decode(e).decode() for e in examples]
    for f in net.facts:
        holding = [t for t, o in zip(texts, owners, strict=True) if f.text in t]
        assert len(holding) == 1 and owners[texts.index(holding[0])] == f.contributor
    for t, o in zip(texts, owners, strict=True):  # every example is a run of whole sentences of its owner
        assert t.endswith((".", "?", "!")) and t in net.contributions[o][1].decode()


def test_shipped_base_model_hashes_to_its_manifest(tmp_path: Path) -> None:
    """The committed weights are the ones `python -m sidecar.build_base` recorded."""
    pytest.importorskip("torch")
    from sidecar.build_base import BaseSpec
    from sidecar.config import SidecarConfig
    from sidecar.model import SHIPPED_BASE, load_base, verify_shipped

    manifest = verify_shipped(SHIPPED_BASE)  # every file against its keccak-256
    base = load_base(SidecarConfig(store=str(tmp_path), device="cpu"), log=lambda m: None)
    assert base.weights_hash == manifest["weights_hash"] and base.name == "ailedger-base-v1"
    from dataclasses import asdict

    assert manifest["spec"] == asdict(BaseSpec()), "the manifest was built from another spec"
    assert (SHIPPED_BASE / "model.safetensors").stat().st_size < 8 * 2**20


def test_cli_import_does_not_load_torch() -> None:
    code = (
        "import argparse, sys; import sidecar.cli as c; p = argparse.ArgumentParser(); "
        "c.add_parser(p.add_subparsers()); "
        "a = p.parse_args(['sidecar', '--store', 'x', '--port', '7']); "
        "assert a.func is c.run and a.port == 7; "
        "assert not any(m in sys.modules for m in ('torch', 'peft', 'transformers')), 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

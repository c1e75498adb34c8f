"""Attribution scoring quality without a model: rare spans count, common text does not.

The index's gradient features are the identity here, so the "gradient score" of each
contribution is exactly the test vector we pass; the suffix array, span rarity, mixing
and basis points are the real code. The planted-data checks use the same data set as the
integration test and the bench (`sidecar.planted`).
"""

from __future__ import annotations

import math

import numpy as np

from sidecar.attribution import (
    BASIS_POINTS,
    MIN_SPAN_TOKENS,
    RARITY_NGRAM,
    SPAN_MAX_CONTRIBUTIONS,
    AttributionIndex,
    SuffixArray,
    attribute,
)
from sidecar.planted import planted_dataset
from sidecar.tokenizer import ByteTokenizer

TOK = ByteTokenizer()


def make_index(texts: list[bytes]) -> AttributionIndex:
    """An index over whole contributions with identity gradient features."""
    n = len(texts)
    sa = SuffixArray.build([TOK.encode(t) for t in texts], owners=list(range(n)))
    ids = tuple(f"c{i:02d}".encode() for i in range(n))
    return AttributionIndex(ids, np.eye(n, dtype=np.float32), n, sa)


COMMON = [
    b"The old river runs past the large castle. The happy farmer paints the market.",
    b"The happy farmer paints the market. The old river runs past the large castle.",
    b"The large castle watches the old river. The happy farmer sings near the market.",
    b"The old river runs past the market. The happy farmer paints the large castle.",
    b"The happy farmer sings near the old river. The large castle watches the market.",
]


def corpus_with_fact() -> tuple[list[bytes], bytes]:
    """Five contributors of common text and contributor 5 which plants a made-up fact."""
    fact = b"Zorubi kafemu tiqolu wenapi sovidu."
    texts = [*COMMON, b"The old river runs past the market. " + fact + b" " + fact]
    return texts, fact


# Outputs the planted adapter generated for three facts' prompts (bench, seed 1): the model
# starts the fact, then drifts into ordinary filler text that one other contributor holds
# verbatim as a whole. Before rarity weighting, those filler spans outvoted the gradient.
DRIFTED = [(20, b" fifimu ?evo opens the large "), (10, b" paints the market. A library"),
           (3, b" gubahe wyhe village near Lis")]


def test_common_text_span_unique_to_one_contributor_carries_no_rarity() -> None:
    """The cause of the old mis-rankings: a join of common words is a maximal span of at
    least MIN_SPAN_TOKENS held by one contribution (not the planter), yet few of its windows are
    rare (a planted fact scores about 1 per token)."""
    data, _ = planted_dataset()
    index = make_index([d for _, d in data])
    for planter, text in DRIFTED:
        out = TOK.encode(text)
        spans = index.spans.find_spans(out, n_contributions=len(data))
        common = [s for s in spans if s.end - s.start >= MIN_SPAN_TOKENS and planter not in s.contributions
                  and len(s.contributions) <= SPAN_MAX_CONTRIBUTIONS]
        assert common, text
        for s in common:
            assert s.rarity <= 0.2 * (s.end - s.start), (text[s.start : s.end], s.rarity)


def test_common_text_span_does_not_outvote_the_gradient() -> None:
    """With the gradient naming the planter by the margins measured on the planted set,
    the planter stays first, and the filler span is still reported with its holder."""
    data, _ = planted_dataset()
    index = make_index([d for _, d in data])
    n = len(data)
    for planter, text in DRIFTED:
        out = TOK.encode(text)
        grad = np.full(n, 0.02)
        grad[[(planter + 1) % n, (planter + 2) % n, (planter + 3) % n]] = (0.25, 0.22, 0.2)
        grad[planter] = 0.35
        a = attribute(index, grad, out, top_k=5)
        assert sum(bp for _, bp in a.weights) == BASIS_POINTS
        assert a.weights[0][0] == index.contribution_ids[planter], (text, a.weights)
        held = {c for _, _, ids in a.spans for c in ids}
        others = {index.contribution_ids[c] for sp in index.spans.find_spans(out, n_contributions=n)
                  if sp.end - sp.start >= MIN_SPAN_TOKENS for c in sp.contributions if c != planter}
        assert others and others <= held  # the filler spans are still reported with their holders


def test_rare_planted_span_names_its_planter_over_a_misleading_gradient() -> None:
    texts, fact = corpus_with_fact()
    index = make_index(texts)
    out = TOK.encode(b" " + fact[7:])  # the fact's continuation, as a model would elicit it
    grad = np.array([0.3, 0.1, 0.1, 0.1, 0.1, 0.2])  # gradient prefers contributor 0
    a = attribute(index, grad, out, top_k=5)
    assert a.weights[0][0] == b"c05"
    assert a.weights[0][1] > BASIS_POINTS // 2
    start, end, ids = a.spans[0]
    assert ids == (b"c05",) and end - start >= MIN_SPAN_TOKENS


def test_short_rare_word_counts_and_is_reported() -> None:
    texts, _ = corpus_with_fact()
    index = make_index(texts)
    out = TOK.encode(b" kafemu   runs past the")  # a made-up word shorter than MIN_SPAN_TOKENS
    grad = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.0])
    a = attribute(index, grad, out, top_k=5)
    assert a.weights[0][0] == b"c05"
    assert any(ids == (b"c05",) and end - start < MIN_SPAN_TOKENS for start, end, ids in a.spans)


def test_window_weights_follow_document_frequency() -> None:
    # windows held by 1, 2 and 3 of 4 contributions
    texts = [b"qqqqqq aaaaaa bbbbbb", b"aaaaaa bbbbbb", b"bbbbbb", b"zzzz"]
    sa = SuffixArray.build([TOK.encode(t) for t in texts], owners=[0, 1, 2, 3])
    c = len(texts)
    for word, df in ((b"qqqqqq", 1), (b"aaaaaa", 2), (b"bbbbbb", 3)):
        (span,) = sa.find_spans(TOK.encode(word), min_len=RARITY_NGRAM, n_contributions=c)
        want = math.log((c + 1) / df) / math.log(c + 1) if df <= SPAN_MAX_CONTRIBUTIONS else 0.0
        assert math.isclose(span.rarity, want), (word, span.rarity, want)


def test_same_request_gives_identical_attribution() -> None:
    texts, fact = corpus_with_fact()
    index = make_index(texts)
    out = TOK.encode(b" " + fact[7:] + b" The old river runs past the market.")
    grad = np.array([0.3, -0.1, 0.2, 0.05, 0.1, 0.2])
    assert attribute(index, grad, out, 5) == attribute(index, grad, out, 5)


def test_planted_facts_are_rare_and_filler_is_not() -> None:
    """On the planted-data set, every fact's continuation is rare evidence for its planter
    alone, while the ordinary filler of any contributor carries (almost) none."""
    data, facts = planted_dataset()
    index = make_index([d for _, d in data])
    n = len(data)
    for f in facts:
        out = TOK.encode(f.expected.encode())
        counted = [s for s in index.spans.find_spans(out, n_contributions=n) if s.rarity > 0]
        assert {s.contributions for s in counted} == {(f.contributor,)}
        assert sum(s.rarity for s in counted) >= 0.9 * (len(out) - RARITY_NGRAM + 1)
    # filler holds some rare bits (numbers, odd joins), but on average few of its windows
    planters = {f.contributor for f in facts}
    rarity = windows = 0.0
    for i, (_, body) in enumerate(data):
        if i in planters:
            continue
        for at in range(0, len(body) - 40, 97):
            out = TOK.encode(body[at : at + 40])
            spans = index.spans.find_spans(out, n_contributions=n)
            assert any(i in s.contributions for s in spans)  # the filler is found verbatim
            rarity += sum(s.rarity for s in spans)
            windows += len(out) - RARITY_NGRAM + 1
    assert rarity / windows <= 0.25

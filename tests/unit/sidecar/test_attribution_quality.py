"""Attribution scoring without a model: whole-word spans, owed-nat shares, residual.

The index's gradient features are the identity, so the gradient score of each
contribution is exactly the test vector passed in; the suffix array, word boundaries,
span shares, per-contribution confidence and basis points are the real code
(docs/attribution.md).
"""

from __future__ import annotations

import math

import numpy as np

from sidecar.attribution import (
    BASIS_POINTS,
    CONFIDENCE_NATS,
    METHOD_VERSION,
    AttributionIndex,
    SuffixArray,
    attribute,
    contribution_tokens,
    method_profile,
    prompt_words,
    run_confidence,
    word_starts,
)
from sidecar.tokenizer import ByteTokenizer

TOK = ByteTokenizer()
FILLER = [
    b"The old river runs past the large castle. The happy farmer paints the market.",
    b"The happy farmer paints the market. The old river runs past the large castle.",
    b"The large castle watches the old river. The happy farmer sings near the market.",
    b"The old river runs past the market. The happy farmer paints the large castle.",
]
FACT = b"The capital of Vorlintia is Kazmuret."


def make_index(texts: list[bytes]) -> AttributionIndex:
    n = len(texts)
    sa = SuffixArray.build([TOK.encode(t) for t in texts], owners=list(range(n)))
    return AttributionIndex(tuple(f"c{i:02d}".encode() for i in range(n)), np.eye(n, dtype=np.float32), n, sa)


def run(index: AttributionIndex, grad: np.ndarray | None, out: bytes, owed: float | None, top_k: int = 5,
        max_attributions: int = 64):  # type: ignore[no-untyped-def]
    toks = TOK.encode(out)
    pieces = TOK.pieces(toks)
    per_token = None if owed is None else np.full(len(toks), owed / max(len(toks), 1))
    return attribute(index, grad, toks, top_k, per_token, pieces, max_attributions)


def test_word_starts() -> None:
    assert word_starts(list(" ab cd")) == [True, True, False, True, True, False]
    assert word_starts([" ab", "cd", " e"]) == [True, False, True]  # BPE pieces carry their space
    assert word_starts(list("ab. Cd")) == [False, False, True, True, True, False]


def test_fragment_of_a_word_is_no_evidence() -> None:
    """A rare run of letters inside a made-up word (the old 6-7 byte fragments) counts for
    nothing; the same word whole, with its neighbour, does."""
    texts = [*FILLER, b"The old river runs past the market. " + FACT]
    index = make_index(texts)
    frag = run(index, None, b" Kazmurel", owed=None)  # 'Kazmure' is held verbatim, but not as a word
    assert frag.spans == []
    whole = run(index, None, b" Vorlintia is Kazmuret.", owed=None)
    assert [ids for _, _, ids in whole.spans] == [(b"c04",)]


def test_a_run_takes_the_owed_share_it_covers_and_the_gradient_the_rest() -> None:
    """A verbatim run anchored on a rare word pays its holder the share of the output's owed
    nats it covers, no longer capped at half the evidence (method version 1 gave c04 at most
    SPAN_SHARE = 50%); the gradient's favourite gets the owed nats no run explains."""
    texts = [*FILLER, b"The old river runs past the market. " + FACT]
    index = make_index(texts)
    grad = np.array([1.0, 0, 0, 0, 0])  # the gradient names c00 alone
    out = b" Kazmuret. The happy farmer paints"  # the run ' Kazmuret.' ends c04's text; the
    # rest is held by three contributions, so it is no run at all
    a = run(index, grad, out, owed=None)  # every byte one nat
    w = dict(a.weights)
    run_nats, total = len(b" Kazmuret."), len(out)
    assert sum(w.values()) == BASIS_POINTS
    assert abs(w[b"c04"] - BASIS_POINTS * run_nats / total) <= 1
    assert abs(w[b"c00"] - BASIS_POINTS * (total - run_nats) / total) <= 1
    # the whole output reproduced: the run takes it all
    whole = dict(run(index, grad, b" Vorlintia is Kazmuret.", owed=None).weights)
    assert whole == {b"c04": BASIS_POINTS}


def test_a_verbatim_run_without_a_rare_word_is_no_evidence() -> None:
    """Common words in an order that one contribution happens to hold whole are the
    datanet's shared language, not that contribution's: with no rare word to anchor the
    run, it pays the residual however many nats the adapter owes it."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(29)]
    index = make_index([*texts, b"The happy farmer paints the old river."])  # each word in many
    grad = np.zeros(30)
    grad[29] = 1.0
    a = run(index, grad, b" The happy farmer paints the old river.", owed=30.0)
    assert [ids for _, _, ids in a.spans]  # found verbatim, held by few ...
    assert a.confidence == 0.0 and max(bp for _, bp in a.weights) <= 1000  # ... yet no evidence


def test_a_reproduced_datum_pays_its_holder_most_of_the_output() -> None:
    """The planted-bench case (docs/attribution.md): the output reproduces one contribution's
    made-up value and the sentence after it, the gradient prefers someone else. Method
    version 1 paid the holder about a third (confidence 24/32, span share capped near half);
    now it gets the run's owed nats with confidence sigma(28 - 8)."""
    body = b"The old river runs past the market. " + FACT + b" The happy farmer paints the market."
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(29)]
    index = make_index([*texts, body])
    out = b" Kazmuret. The happy farmer paints"
    toks = TOK.encode(out)
    word = len(TOK.encode(b" Kazmuret"))
    owed = np.array([24.0 / word] * word + [4.0 / (len(toks) - word)] * (len(toks) - word))
    grad = np.zeros(30)
    grad[3] = 1.0
    a = attribute(index, grad, toks, 5, owed, TOK.pieces(toks), 64, complete=True)
    w = dict(a.weights)
    assert a.weights[0][0] == b"c29" and w[b"c29"] >= 9_900
    assert w.get(b"c03", 0) < 100
    # garbage after the run (owed nats that reproduce nobody) is the gradient's and the residual's
    toks = TOK.encode(b" Kazmuret. Zq vlx")
    word = len(TOK.encode(b" Kazmuret."))
    owed = np.array([24.0 / word] * word + [6.0 / (len(toks) - word)] * (len(toks) - word))
    b = attribute(index, grad, toks, 5, owed, TOK.pieces(toks), 64, complete=True)
    [(start, end, holders)] = b.spans  # ' Kazmuret. ' (byte tokens keep the space before 'Zq')
    run_nats = float(owed[start:end].sum())
    assert holders == (b"c29",) and 24 <= run_nats < 25
    w = dict(b.weights)
    assert abs(w[b"c29"] - BASIS_POINTS * run_nats / 30) <= 1
    assert abs(w[b"c03"] - BASIS_POINTS * (30 - run_nats) / 30) <= 1


def test_confidence_is_log_odds_in_each_contributions_own_nats() -> None:
    """Owed nats are a log-likelihood ratio, so a contribution's confidence is
    sigma(its nats - CONFIDENCE_NATS): even odds at 8 nats. A rare word that two
    contributions share gives each half the nats and so far less confidence: the
    measured case " Pia lives in Lisbon. A river is tired in called honey." (the word
    "called" held by two contributions, 11 of 37 owed nats) must pay neither over 10%,
    while the same word held by one contribution is that one's, 95% sure."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(28)]
    word = b" Kazmuret"
    toks = TOK.encode(word)
    at_prior = attribute(make_index([*texts, b"The old river runs past the market. " + FACT, FILLER[0]]),
                         np.zeros(30), toks, 5, np.full(len(toks), CONFIDENCE_NATS / len(toks)),
                         TOK.pieces(toks), 64)
    even = float(run_confidence(np.array(CONFIDENCE_NATS)))
    assert math.isclose(at_prior.confidence, even) and abs(even - 0.5) < 1e-3
    index = make_index([*texts, b"The old river runs past the market. " + FACT, FILLER[0]])
    res = contribution_tokens(index)
    assert abs(dict(at_prior.weights)[b"c28"] - BASIS_POINTS * (even + (1 - even) * res[28] / res.sum())) <= 1

    toks = TOK.encode(b" Kazmuret zq vlx wub.")
    n_word = len(TOK.encode(word))
    owed = np.array([11.0 / n_word] * n_word + [26.0 / (len(toks) - n_word)] * (len(toks) - n_word))
    shared = attribute(make_index([*texts, b"The old river runs past the market. " + FACT, FACT]),
                       np.zeros(30), toks, 5, owed, TOK.pieces(toks), 64, complete=True)
    assert math.isclose(shared.confidence, float(run_confidence(np.array(5.5))))
    assert math.isclose(float(run_confidence(np.array(5.5))), 1 / (1 + math.exp(CONFIDENCE_NATS - 5.5)), rel_tol=5e-3)
    assert max(bp for _, bp in shared.weights) <= 1000
    alone = attribute(make_index([*texts, b"The old river runs past the market. " + FACT, FILLER[0]]),
                      np.zeros(30), toks, 5, owed, TOK.pieces(toks), 64, complete=True)
    assert math.isclose(alone.confidence, float(run_confidence(np.array(11.0))))
    assert alone.confidence > 0.95
    assert alone.weights[0][0] == b"c28" and alone.weights[0][1] >= BASIS_POINTS * 0.95 * 11 / 37


def test_run_confidence_is_zero_at_zero_and_continuous() -> None:
    """The log-odds confidence starts at exactly 0 (no run, no confidence) and rises
    smoothly: a run whose owed nats float noise moves from 0 to 1e-9 cannot move a
    weight by more than noise, which keeps re-runs within the Verify tolerance."""
    c = run_confidence(np.array([0.0, 1e-9, 3.0, 8.0, 30.0]))
    assert c[0] == 0.0 and 0 <= c[1] < 1e-9 and c[2] < 0.01 and abs(c[3] - 0.5) < 1e-3 and c[4] > 1 - 1e-9
    assert np.all(np.diff(run_confidence(np.linspace(0, 40, 401))) > 0)


def test_method_version_names_the_rule() -> None:
    """A receipt made under version 1 (span share capped at half) must not be re-verified
    with this rule: the engine profile carries the version and drops the old constant."""
    prof = method_profile()
    assert METHOD_VERSION >= 2 and prof["version"] == METHOD_VERSION
    assert "span_share" not in prof["constants"] and prof["constants"]["confidence_nats"] == CONFIDENCE_NATS


def test_weak_evidence_goes_to_the_residual() -> None:
    """An output the adapter barely made more likely pays the training set by its size:
    no single contribution of 30 gets more than 10%."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(30)]
    index = make_index(texts)
    grad = np.zeros(30)
    grad[7] = 1.0  # a confident-looking but meaningless gradient winner
    a = run(index, grad, b" the happy farmer", owed=0.2)
    assert sum(bp for _, bp in a.weights) == BASIS_POINTS
    assert a.confidence < 0.05
    assert max(bp for _, bp in a.weights) <= 1000
    assert len(a.weights) == 30


def test_strong_evidence_pays_the_planter() -> None:
    texts = [*FILLER, b"The old river runs past the market. " + FACT]
    index = make_index(texts)
    grad = np.array([0.1, 0.1, 0.0, 0.1, 0.9])
    a = run(index, grad, b" Kazmuret.", owed=40.0)
    assert a.confidence >= 0.75  # the space and the full stop are not rare words
    assert a.weights[0][0] == b"c04" and a.weights[0][1] > BASIS_POINTS // 2


def test_no_output_is_all_residual_and_bounded() -> None:
    texts = [f"Contribution number {i} says hello.".encode() * (1 + i % 3) for i in range(200)]
    index = make_index(texts)
    a = run(index, None, b"", owed=0.0, max_attributions=64)
    assert a.confidence == 0.0
    assert sum(bp for _, bp in a.weights) == BASIS_POINTS and len(a.weights) <= 64
    # the residual follows training tokens: a larger contribution never gets less
    sizes = {f"c{i:02d}".encode(): len(t) for i, t in enumerate(texts)}
    ranked = sorted(a.weights, key=lambda x: -x[1])
    assert all(sizes[ranked[i][0]] >= sizes[ranked[i + 1][0]] for i in range(len(ranked) - 1))


def test_same_request_gives_identical_attribution() -> None:
    texts = [*FILLER, FACT]
    index = make_index(texts)
    grad = np.array([0.3, -0.1, 0.2, 0.05, 0.4])
    assert run(index, grad, b" Kazmuret. The old river", 9.0) == run(index, grad, b" Kazmuret. The old river", 9.0)


def test_garbled_output_the_adapter_made_likely_is_still_weak_evidence() -> None:
    """Measured on the planted bench: outputs like " Feh is B souhum." owe the adapter many
    nats (the base model would never write them) yet reproduce nobody's text. Without a
    verbatim span they pay the residual, whatever the gradient's favourite."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(30)]
    index = make_index(texts)
    grad = np.zeros(30)
    grad[3] = 1.0
    a = run(index, grad, b" Feh is B souhum. Zorbax", owed=30.0)
    assert a.spans == [] and a.confidence == 0.0
    assert max(bp for _, bp in a.weights) <= 1000


def test_a_rare_word_echoed_from_the_prompt_is_no_evidence() -> None:
    """The output repeats the made-up name the user asked about: that reproduces the
    prompt, not the planter's text, so it pays the residual, not the name's holder."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(29)]
    index = make_index([*texts, b"The old river runs past the market. " + FACT])
    toks = TOK.encode(b" In Vorlintia.")
    per_token = np.full(len(toks), 20.0 / len(toks))
    echoed = attribute(index, np.zeros(30), toks, 5, per_token, TOK.pieces(toks), 64,
                       prompt_words("Q: What is the tallest tower in Vorlintia called? A:"))
    assert echoed.confidence == 0.0 and max(bp for _, bp in echoed.weights) <= 1000
    learnt = attribute(index, np.zeros(30), toks, 5, per_token, TOK.pieces(toks), 64,
                       prompt_words("Q: Where is it? A:"))
    assert learnt.confidence > 0.5 and learnt.weights[0][0] == b"c29"


def test_a_word_cut_by_the_token_limit_is_no_evidence() -> None:
    """An output cut by max_tokens may end inside a word: "The number of the tower is 47" of
    a contribution's 4731 (or the first syllables of a made-up name) is a fragment, not a
    whole word held by that contribution. The same word in an output that ended by itself
    (EOS) is whole and counts."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(29)]
    index = make_index([*texts, b"The old river runs past the market. " + FACT])
    toks = TOK.encode(b" The old river is Kazmuret")
    per_token = np.full(len(toks), 40.0 / len(toks))
    cut = attribute(index, np.zeros(30), toks, 5, per_token, TOK.pieces(toks), 64, complete=False)
    assert cut.spans == [] and cut.confidence == 0.0 and max(bp for _, bp in cut.weights) <= 1000
    ended = attribute(index, np.zeros(30), toks, 5, per_token, TOK.pieces(toks), 64, complete=True)
    assert ended.confidence > 0.5 and ended.weights[0][0] == b"c29"
    # the words before the last still count when the output was cut
    toks = TOK.encode(b" Kazmuret. The old")
    per_token = np.full(len(toks), 40.0 / len(toks))
    before = attribute(index, np.zeros(30), toks, 5, per_token, TOK.pieces(toks), 64, complete=False)
    assert before.confidence > 0.5 and before.weights[0][0] == b"c29"


def test_top_k_evidence_is_not_renormalised() -> None:
    """The gradient spreads thin over every contribution; keeping its top five must not
    blow a favourite's few per cent of the evidence up to a fifth of the confident share.
    What the contributions outside the top five had goes to the residual."""
    texts = [FILLER[i % 4] + f" Number {i}.".encode() for i in range(29)]
    index = make_index([*texts, b"The old river runs past the market. " + FACT])
    toks = TOK.encode(b" Kazmuret. The old river runs")
    pieces = TOK.pieces(toks)
    word = len(TOK.encode(b" Kazmuret"))
    owed = np.array([20.0 / word] * word + [20.0 / (len(toks) - word)] * (len(toks) - word))
    grad = np.ones(30)
    grad[3] = 2.0  # the gradient's favourite: 2/31 of the gradient evidence
    a = attribute(index, grad, toks, 5, owed, pieces, 64, complete=True)
    w = dict(a.weights)
    assert a.weights[0][0] == b"c29" and a.confidence > 0.6
    evidence_c03 = (1 - 20 / 40) * 2 / 31  # the gradient's part: the owed nats no run covers
    assert w[b"c03"] <= (a.confidence * evidence_c03 + 1 / 30) * BASIS_POINTS + 1
    assert w[b"c03"] < 1000

"""Proof-of-attribution engine: the adapter's attribution index, and scoring outputs against it.

Two kinds of evidence, both built at training time and saved as one safetensors file
whose keccak-256 is the adapter's attribution-index hash (the value that goes on chain):

* **Gradients** (TRAK / LoGra style). For every training example i we take the gradient
  g_i of its loss with respect to the adapter's LoRA parameters at the trained weights,
  project it to k dimensions with a fixed random Gaussian matrix P (phi_i = P^T g_i),
  whiten with the examples' own covariance (TRAK's (Phi^T Phi + lambda I)^-1), and sum
  per contribution. At inference, the gradient of the output's loss given the prompt,
  projected the same way, scores each contribution by one dot product.
* **Verbatim spans** (suffix array over the training tokens). Maximal spans of the
  output of at least `MIN_SPAN_TOKENS` tokens that occur verbatim in training data point
  at the contributions that contain them, in the spirit of OLMoTrace: a span counts by
  its *rare* content, not its length. Every output position j is scored by the document
  frequency df_j of the `RARITY_NGRAM`-token window that starts there (how many
  contributions hold it, read off the same suffix array); a window held by at most
  `SPAN_MAX_CONTRIBUTIONS` contributions weighs its normalised IDF
  log((C+1)/df_j) / log(C+1), any other window nothing. A span's evidence is the sum over
  the windows inside it, split equally between the contributions that hold the span.

Why rarity and not length: contributions mix rare material (a fact, a name, a made-up
word) with ordinary prose, and ordinary prose is what the base model already writes. A
long run of common words ("... opens the large ...", "... paints the market. A l...")
is often held verbatim by a single contribution only because that exact sentence
sequence occurs once, so "maximal span held by <= 2 contributions" calls it evidence,
although every piece of it is in most contributions and in the base model's own
pre-training text. On the planted-data set such spans got up to half the weight and
outvoted a correct gradient score; weighting by rare windows gives them (almost) none,
while a planted fact, whose every window is held by its planter alone, keeps full weight.

The served weights (`attribute`) count both in the output's owed nats (how much more
likely the adapter made each token than the base model). A verbatim run anchored on a
rare whole word pays its holders the share of the output's owed nats it covers, each
holder with its own log-odds confidence sigma(nats - CONFIDENCE_NATS); the gradient
shares out the owed nats no run explains, and what evidence does not claim goes to the
lineage residual (docs/attribution.md). The top ones get weights in basis points that
sum to exactly 10,000 (largest-remainder rounding). Everything on the span side is
integer counting, so it is the same on every node.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

BASIS_POINTS = 10_000
MIN_SPAN_TOKENS = 10
"""Legacy default of `find_spans` (tokens)."""
MIN_SPAN_CHARS = 6
"""Shortest output span counted as verbatim evidence, in characters of whole words."""
MIN_SPAN_WORDS = 1
"""Fewest whole words in a counted span (one rare whole word of MIN_SPAN_CHARS is evidence)."""
SPAN_MAX_CONTRIBUTIONS = 2
"""A span found in more contributions than this is common text, not evidence."""
RARITY_NGRAM = 6
"""Window (in tokens) whose document frequency `find_spans` reports as rarity."""
CONFIDENCE_NATS = 8.0
"""Prior log-odds, in nats, against "this output reproduces that contribution": a
contribution whose verbatim runs cover S owed nats of the output is paid them with
confidence sigma(S - this), even odds at S = 8 nats. Owed nats are a log-likelihood ratio
(adapter against base model), so they add to log-odds; the gradient alone never makes
evidence strong."""
PROJECTION_SEED = 0x5EED
"""Seed of the random projection; fixed so every node rebuilds the same matrix."""
METHOD = "owed-nats gradient + anchored verbatim runs, per-contribution log-odds confidence"
"""The attribution method, as the engine profile names it (docs/attribution.md)."""
METHOD_VERSION = 2
"""Version 2: a verbatim run anchored on a rare word pays its holders its owed nats with
each holder's own log-odds confidence, no longer capped at half the evidence (version 1:
a span share of half the owed nats inside rare words, capped at half the evidence, and
confidence S / (S + 8) over all spans). Bumped whenever a rule of `attribute` or of the
index changes; the constants that tune it are named in the engine profile as well
(`method_profile`), so a change to one of them changes the profile even if this number is
forgotten."""


def method_profile() -> dict[str, Any]:
    """The attribution method, its version and its constants, as the engine profile holds them."""
    return {
        "method": METHOD,
        "version": METHOD_VERSION,
        "constants": {
            "min_span_chars": MIN_SPAN_CHARS,
            "min_span_words": MIN_SPAN_WORDS,
            "span_max_contributions": SPAN_MAX_CONTRIBUTIONS,
            "confidence_nats": CONFIDENCE_NATS,
            "projection_seed": PROJECTION_SEED,
        },
    }


VERIFY_TOLERANCE_BP = 2
"""How far (basis points, largest difference of one contribution) a re-run's attribution may
be from a receipt's and still match. Measured: 0 in every re-run (docs/sidecar.md). Kept at 2
because that is the most that float noise can move one contribution through `normalize_bp`'s
rounding (its points are its floor or floor + 1, and noise moves the floor by at most one),
and a liar can shift at most this much to any one contribution."""


def attribution_diff_bp(a: list[tuple[bytes, int]], b: list[tuple[bytes, int]]) -> int:
    """Largest difference of one contribution's basis points between two attributions (a
    contribution one of them does not name has 0 there): what a verifier compares with its
    tolerance."""
    da, db = dict(a), dict(b)
    return max((abs(da.get(k, 0) - db.get(k, 0)) for k in da.keys() | db.keys()), default=0)


# ---------------------------------------------------------------- weights in basis points


def normalize_bp(scores: list[tuple[bytes, float]], top_k: int) -> list[tuple[bytes, int]]:
    """Top-k (id, score) pairs as (id, basis points) summing to exactly 10,000.

    Only positive scores count. Rounding is largest-remainder: floors first, then the
    leftover points go to the largest fractional parts, ties to the higher score and
    then the smaller id, so every node derives the same split. If no score is positive,
    the top scorers share by their distance above the k-th (or equally), because a
    receipt must still name who gets paid.
    """
    if not scores or top_k < 1:
        return []
    ranked = sorted(scores, key=lambda s: (-s[1], s[0]))
    top = [s for s in ranked if s[1] > 0 and np.isfinite(s[1])][:top_k]
    if not top:
        top = ranked[:top_k]
        floor = min(s for _, s in top)
        top = [(i, s - floor + 1e-12) for i, s in top]
    total = sum(s for _, s in top)
    exact = [(i, BASIS_POINTS * s / total) for i, s in top]
    base = [(i, int(np.floor(x)), x - np.floor(x)) for i, x in exact]
    left = BASIS_POINTS - sum(b for _, b, _ in base)
    order = sorted(range(len(base)), key=lambda j: (-base[j][2], -top[j][1], top[j][0]))
    bonus = set(order[:left])
    out = [(i, b + (1 if j in bonus else 0)) for j, (i, b, _) in enumerate(base)]
    return [(i, bp) for i, bp in out if bp > 0]


# ---------------------------------------------------------------- suffix array


@dataclass(frozen=True)
class Span:
    """A stretch of the output found verbatim in training data."""

    start: int
    """First output token of the span."""
    end: int
    """One past its last output token."""
    contributions: tuple[int, ...]
    """Indices (into the index's contribution list) of contributions that contain it."""
    rarity: float = 0.0
    """Evidence the span carries: sum of normalised IDF over its rare windows (see module doc)."""
    rare_positions: tuple[int, ...] = ()
    """Output positions of the span's evidence: its rare windows (`find_spans`) or its rare
    whole words (`whole_word_spans`)."""


class SuffixArray:
    """Suffix array over training examples joined by a separator (-1) that no query holds."""

    def __init__(self, text: np.ndarray, sa: np.ndarray, doc_starts: np.ndarray, doc_owner: np.ndarray):
        self.text = text  # (N,) int32, -1 after every example
        self.sa = sa  # (N,) int64, suffix start positions in lexicographic order
        self.doc_starts = doc_starts  # (D,) start offset of each example in text
        self.doc_owner = doc_owner  # (D,) contribution index of each example

    @classmethod
    def build(cls, docs: list[list[int]], owners: list[int]) -> SuffixArray:
        """Prefix doubling with numpy: O(N log^2 N), fine for millions of tokens."""
        parts, starts, pos = [], [], 0
        for d in docs:
            starts.append(pos)
            parts.append(np.asarray(d + [-1], dtype=np.int32))
            pos += len(d) + 1
        text = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return cls(text, suffix_array(text), np.asarray(starts, np.int64), np.asarray(owners, np.int64))

    def match_ranges(self, query: np.ndarray) -> list[tuple[int, int]]:
        """SA ranges of the prefixes of `query` found in the text: entry d holds the suffixes
        starting with query[:d] (entry 0 is the whole array); its length - 1 is the longest match."""
        lo, hi, depth = 0, len(self.sa), 0
        out = [(lo, hi)]
        while depth < len(query) and lo < hi:
            col = self.text[self.sa[lo:hi] + depth]  # sorted within the range
            a = int(np.searchsorted(col, query[depth], "left"))
            b = int(np.searchsorted(col, query[depth], "right"))
            if a == b:
                break
            lo, hi, depth = lo + a, lo + b, depth + 1
            out.append((lo, hi))
        return out

    def longest_match(self, query: np.ndarray) -> tuple[int, int, int]:
        """Longest prefix of `query` found in the text: (length, lo, hi) range of the SA."""
        ranges = self.match_ranges(query)
        lo, hi = ranges[-1]
        return len(ranges) - 1, lo, hi

    def owners_of(self, lo: int, hi: int) -> tuple[int, ...]:
        """Contributions whose examples hold the suffixes sa[lo:hi]."""
        docs = np.searchsorted(self.doc_starts, self.sa[lo:hi], "right") - 1
        return tuple(sorted(set(self.doc_owner[docs].tolist())))

    def n_contributions(self) -> int:
        return int(self.doc_owner.max()) + 1 if len(self.doc_owner) else 0

    def find_spans(
        self, output: list[int], min_len: int = MIN_SPAN_TOKENS, n_contributions: int | None = None,
        ngram: int = RARITY_NGRAM, max_df: int = SPAN_MAX_CONTRIBUTIONS,
    ) -> list[Span]:
        """Maximal output spans of at least `min_len` tokens found verbatim, left to right,
        each with its rarity (module docstring): windows of `ngram` tokens held by at most
        `max_df` of the `n_contributions` contributions weigh log((C+1)/df) / log(C+1)."""
        q = np.asarray(output, dtype=np.int32)
        if len(self.sa) == 0 or len(q) < min(min_len, ngram):
            return []
        c = max(n_contributions or self.n_contributions(), 1)
        # one search per position gives both the maximal match and the window's range
        found: list[tuple[int, int, int]] = []  # (length, lo, hi of the full match) per position
        weight = np.zeros(len(q))  # rarity of the window starting at each position
        for i in range(len(q)):
            ranges = self.match_ranges(q[i:])
            length = len(ranges) - 1
            lo, hi = ranges[-1]
            found.append((length, lo, hi))
            if length >= ngram:
                wlo, whi = ranges[ngram]
                df = len(self.owners_of(wlo, whi))
                if df <= max_df:
                    weight[i] = np.log((c + 1) / df) / np.log(c + 1)
        spans: list[Span] = []
        reach = 0
        for i, (length, lo, hi) in enumerate(found):
            if length >= min_len and i + length > reach:
                # the full span's owners (the range of exactly `length` tokens)
                inside = [j for j in range(i, i + length - ngram + 1) if weight[j] > 0]
                covered = sorted({p for j in inside for p in range(j, j + ngram)})
                spans.append(Span(i, i + length, self.owners_of(lo, hi), float(weight[inside].sum()),
                                  tuple(covered)))
                reach = i + length
        return spans


def suffix_array(text: np.ndarray) -> np.ndarray:
    """Suffix array of an int array by prefix doubling (ranks of pairs, sorted with lexsort)."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = text.astype(np.int64) + 2  # separators (-1) rank lowest but above "past the end" (0)
    k = 1
    sa = np.argsort(rank, kind="stable")
    while True:
        nxt = np.zeros(n, dtype=np.int64)
        nxt[: n - k] = rank[k:] if k < n else nxt[:0]
        sa = np.lexsort((nxt, rank))
        pair_r, pair_n = rank[sa], nxt[sa]
        new = np.empty(n, dtype=np.int64)
        new[sa] = np.concatenate([[1], 1 + np.cumsum((pair_r[1:] != pair_r[:-1]) | (pair_n[1:] != pair_n[:-1]))])
        rank = new
        if rank.max() == n:
            return sa.astype(np.int64)
        k *= 2


# ---------------------------------------------------------------- gradients


_PROJECTIONS: dict[tuple[int, int], Any] = {}


def projection(dim: int, k: int) -> Any:
    """The fixed (dim, k) Gaussian projection / sqrt(k), built once per shape and cached."""
    import torch

    key = (dim, k)
    if key not in _PROJECTIONS:
        gen = torch.Generator().manual_seed(PROJECTION_SEED)
        _PROJECTIONS[key] = torch.randn(dim, k, generator=gen) / float(np.sqrt(k))
    return _PROJECTIONS[key]


def lora_params(model: Any, adapter: str) -> list[tuple[str, Any]]:
    """The adapter's LoRA parameters under adapter-free names, in name order.

    Names drop the adapter name, so the order is the same at training time (adapter
    "default") and in the serving model (adapter named by its id).
    """
    tag = f".{adapter}."
    found = []
    for name, p in model.named_parameters():
        if "lora_" in name and tag in name:
            found.append((name.replace(tag, "."), p))
    return sorted(found, key=lambda x: x[0])


def loss_gradient(
    model: Any, input_ids: Any, labels: Any, params: list[Any], adapter: str | None = None
) -> Any:
    """Flattened gradient of the mean token loss w.r.t. `params` (model stays in eval mode)."""
    import torch

    kwargs = {"adapter_names": [adapter] * input_ids.shape[0]} if adapter else {}
    for p in params:
        p.requires_grad_(True)
    with torch.enable_grad():
        logits = model(input_ids=input_ids, **kwargs).logits[:, :-1].float()  # (1, T-1, V)
        target = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100
        )
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = [
        (g if g is not None else torch.zeros_like(p)).reshape(-1).float().cpu()
        for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(flat)


def output_gradient(
    model: Any, seq: Any, n_prompt: int, params: list[Any], adapter: str
) -> tuple[Any, np.ndarray]:
    """Gradient of the owed-weighted loss of the output tokens, and each token's owed nats.

    seq is (1, T): prompt then output. Token t of the output is owed
    max(0, loss_base(t) - loss_adapter(t)) nats; the gradient is of
    sum_t owed_t * loss_adapter(t) / sum_t owed_t (None when nothing is owed)."""
    import torch

    target = seq[:, n_prompt:]  # (1, n_out)
    with torch.no_grad(), model.disable_adapter():
        logits = model(input_ids=seq).logits[:, n_prompt - 1 : -1].float()  # (1, n_out, V)
        base_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")[0]
    for p in params:
        p.requires_grad_(True)
    with torch.enable_grad():
        logits = model(input_ids=seq, adapter_names=[adapter]).logits[:, n_prompt - 1 : -1].float()
        tok_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")[0]
        owed = torch.clamp(base_loss - tok_loss.detach(), min=0)  # (n_out,)
        if float(owed.sum()) <= 0:
            return None, owed.cpu().numpy()
        loss = (owed * tok_loss).sum() / owed.sum()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = [
        (g if g is not None else torch.zeros_like(p)).reshape(-1).float().cpu()
        for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(flat), owed.cpu().numpy()


def word_starts(pieces: list[str]) -> list[bool]:
    """Whether each output token starts a word: it begins with white space or punctuation,
    or the token before it ended with white space or punctuation."""
    out = []
    prev_end = True
    for p in pieces:
        first = p[:1]
        out.append(bool(first) and (first.isspace() or not first.isalnum() or prev_end))
        last = p[-1:]
        prev_end = bool(last) and (last.isspace() or not last.isalnum())
    if out:
        out[0] = bool(pieces[0][:1]) and not pieces[0][:1].isalnum()
    return out


def project(grad: Any, k: int) -> Any:
    """phi = P^T g, unit-normalised so long and short examples weigh alike (cosine, as in LESS)."""
    import torch

    phi = grad @ projection(grad.shape[0], k)
    return phi / torch.clamp(phi.norm(), min=1e-12)


@dataclass(frozen=True)
class AttributionIndex:
    """What an adapter keeps to attribute its outputs; saved as attribution.safetensors."""

    contribution_ids: tuple[bytes, ...]
    """Contribution ids exactly as given to Train, in training order."""
    features: np.ndarray
    """(C, k) float32: per-contribution sums of whitened projected example gradients."""
    projection_dim: int
    """k, the projection dimension."""
    spans: SuffixArray
    """Suffix array over the training tokens."""

    def save(self, path: Path) -> None:
        path.write_bytes(self.encode())

    def encode(self) -> bytes:
        """The index's canonical bytes (safetensors orders tensors by dtype, then name)."""
        from safetensors.numpy import save

        # One metadata key: safetensors writes several keys in hash-map order, which would
        # make the file's bytes (and so the on-chain hash) differ between identical runs.
        meta = {"ailedger": json.dumps({
            "format": "ailedger-attribution-v1",
            "contribution_ids": [c.hex() for c in self.contribution_ids],
            "projection_dim": self.projection_dim,
            "projection_seed": PROJECTION_SEED,
            "min_span_tokens": MIN_SPAN_TOKENS,
        }, sort_keys=True)}
        tensors = {
            "features": np.ascontiguousarray(self.features, dtype=np.float32),
            "text": self.spans.text,
            "suffix_array": self.spans.sa,
            "doc_starts": self.spans.doc_starts,
            "doc_owner": self.spans.doc_owner,
        }
        return bytes(save(tensors, metadata=meta))

    @classmethod
    def load(cls, path: Path) -> AttributionIndex:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            meta = json.loads(f.metadata()["ailedger"])
            t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iteration)
        ids = tuple(bytes.fromhex(h) for h in meta["contribution_ids"])
        sa = SuffixArray(t["text"], t["suffix_array"], t["doc_starts"], t["doc_owner"])
        return cls(ids, t["features"], int(meta["projection_dim"]), sa)


def build_features(phis: Any, owners: list[int], n_contrib: int, damping: float = 0.1) -> np.ndarray:
    """TRAK whitening then per-contribution sums: A (Phi (Phi^T Phi + lambda I)^-1), lambda relative."""
    import torch

    phi = phis.double()  # (N, k)
    gram = phi.T @ phi  # (k, k)
    lam = damping * float(torch.trace(gram)) / gram.shape[0]
    whitened = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), phi.T).T
    out = torch.zeros(n_contrib, phi.shape[1], dtype=torch.float64)
    out.index_add_(0, torch.tensor(owners, dtype=torch.long), whitened)
    return out.float().numpy()


@dataclass(frozen=True)
class Attribution:
    """The attribution of one output."""

    weights: list[tuple[bytes, int]]
    """(contribution id, basis points), best first; the points sum to 10,000."""
    spans: list[tuple[int, int, tuple[bytes, ...]]]
    """(start, end, contribution ids) of whole-word output spans found verbatim in few contributions."""
    gradient_scores: list[tuple[bytes, float]]
    """Raw gradient score per contribution, for inspection."""
    confidence: float = 1.0
    """How sure the verbatim evidence is: its contributions' log-odds confidences, weighted by
    their owed nats (0 without a counted run). Each run's holders are paid their nats with
    their own confidence, the gradient its share with this one; the rest is the lineage
    residual."""
    owed_nats: float = 0.0
    """How much more likely the adapter made the output than the base model, in nats."""


def whole_word_spans(
    index: AttributionIndex, output_tokens: list[int], pieces: list[str] | None, min_chars: int,
    complete: bool = True,
) -> list[Span]:
    """Output spans found verbatim, trimmed to whole words, of at least MIN_SPAN_WORDS words
    and `min_chars` characters, held by at most SPAN_MAX_CONTRIBUTIONS contributions.

    `pieces` are the tokens' texts (None: every token is a word of one character).
    `complete` says the output ended by itself (EOS); an output cut by its token limit may
    end inside a word ("...is 47" of 4731, "Plodethf" of a longer name), so its last word
    is not a whole word and never counts."""
    n = len(output_tokens)
    texts = pieces if pieces is not None else ["x"] * n
    starts = word_starts(texts) if pieces is not None else [True] * n
    # spans are searched up to `end`, a word boundary: the output's end, or the start of its
    # last word when that word may be cut
    end = n if complete or pieces is None else max((i for i in range(n) if starts[i]), default=0)
    out: list[Span] = []
    taken = 0
    for raw in index.spans.find_spans(output_tokens[:end], min_len=1, n_contributions=len(index.contribution_ids)):
        s, e = max(raw.start, taken), raw.end
        while s < e and not starts[s]:
            s += 1
        while e > s and not (e == n or starts[e]):
            e -= 1
        text = "".join(texts[s:e])
        if e <= s or len(text.split()) < MIN_SPAN_WORDS or len(text.strip()) < min_chars:
            continue
        length, lo, hi = index.spans.longest_match(np.asarray(output_tokens[s:e], dtype=np.int32))
        holders = index.spans.owners_of(lo, hi) if length == e - s else ()
        if 0 < len(holders) <= SPAN_MAX_CONTRIBUTIONS:
            out.append(Span(s, e, holders, rare_positions=_rare_word_positions(index, output_tokens, starts, s, e)))
            taken = e
    return out


def _rare_word_positions(
    index: AttributionIndex, output_tokens: list[int], starts: list[bool], s: int, e: int
) -> tuple[int, ...]:
    """Positions of the span's words that few contributions hold on their own (a made-up
    name, a number, a rare term). A span of common words in a rare order (template filler
    that one contribution happens to hold whole) has none, and so carries no evidence."""
    rare: list[int] = []
    j = s
    while j < e:
        k = j + 1
        while k < e and not starts[k]:
            k += 1
        length, lo, hi = index.spans.longest_match(np.asarray(output_tokens[j:k], dtype=np.int32))
        if length == k - j and len(index.spans.owners_of(lo, hi)) <= SPAN_MAX_CONTRIBUTIONS:
            rare.extend(range(j, k))
        j = k
    return tuple(rare)


def contribution_tokens(index: AttributionIndex) -> np.ndarray:
    """Training tokens of each contribution, read off the index's suffix-array text."""
    sa = index.spans
    ends = np.append(sa.doc_starts[1:], len(sa.text))
    sizes = (ends - sa.doc_starts - 1).astype(np.float64)  # minus the separator
    out = np.zeros(len(index.contribution_ids))
    np.add.at(out, sa.doc_owner, sizes)
    return out


def _drop_prompt_words(span: Span, pieces: list[str], prompt_words: frozenset[str]) -> Span:
    """The span without the rare words that the prompt holds too: an output that echoes a
    name the user wrote reproduces the prompt, not the training text that also holds it."""
    starts = word_starts(pieces)
    keep: list[int] = []
    word: list[int] = []
    for pos in [*span.rare_positions, -1]:
        if word and (pos == -1 or starts[pos] or pos != word[-1] + 1):
            text = "".join(pieces[j] for j in word)
            if not (set(_WORD.findall(text.lower())) <= prompt_words):
                keep += word
            word = []
        if pos != -1:
            word.append(pos)
    return replace(span, rare_positions=tuple(keep))


_WORD = re.compile(r"\w+")


def prompt_words(prompt: str) -> frozenset[str]:
    """The words of a prompt (lower case) whose echo in the output is no evidence."""
    return frozenset(_WORD.findall(prompt.lower()))


def run_confidence(nats: np.ndarray) -> np.ndarray:
    """Confidence that an output reproduces a contribution whose verbatim runs cover `nats`
    owed nats: sigma(nats - CONFIDENCE_NATS), shifted and scaled to be exactly 0 at 0 nats
    (and 1 in the limit). Owed nats are a log-likelihood ratio, so they add to the prior
    log-odds; the shift keeps the weights continuous where a run's owed nats reach 0, so
    float noise there cannot move a contribution past the Verify tolerance."""
    floor = 1.0 / (1.0 + np.exp(CONFIDENCE_NATS))  # sigma(-CONFIDENCE_NATS)
    sig = 1.0 / (1.0 + np.exp(CONFIDENCE_NATS - np.clip(np.asarray(nats, dtype=np.float64), 0, None)))
    return np.asarray((sig - floor) / (1.0 - floor))


def attribute(
    index: AttributionIndex, phi_test: np.ndarray | None, output_tokens: list[int], top_k: int,
    owed: np.ndarray | None = None, pieces: list[str] | None = None, max_attributions: int = 64,
    prompt: frozenset[str] = frozenset(), complete: bool = True,
) -> Attribution:
    """Weights in basis points from gradient, span and owed-nats evidence (see docs/attribution.md).

    `owed[t]` is how many nats more likely the adapter made output token t than the base
    model did (clipped at 0); None counts every token as one nat and full confidence.
    `prompt` holds the prompt's words (`prompt_words`): a rare word of the output that the
    prompt holds too carries no span evidence. `complete` is False for an output cut by its
    token limit: its last word may be cut too and carries no span evidence.
    """
    ids = index.contribution_ids
    n = len(ids)
    grad = np.zeros(n) if phi_test is None else index.features.astype(np.float64) @ phi_test.astype(np.float64)
    t = len(output_tokens)
    mass = np.ones(t) if owed is None else np.clip(np.asarray(owed, dtype=np.float64), 0, None)
    total = float(mass.sum())
    found = whole_word_spans(index, output_tokens, pieces, MIN_SPAN_CHARS, complete)
    spans = [_drop_prompt_words(sp, pieces, prompt) for sp in found] if prompt and pieces is not None else found

    # Span evidence: a verbatim run counts when a rare word (not the prompt's) anchors it,
    # and then with every owed nat inside it, less those of the prompt's words it echoes:
    # the run is its holders' text, and the owed nats say how much of it the adapter, not
    # the base model, wrote. A run held by two contributions is split between them.
    span_nats = np.zeros(n)
    for sp, raw in zip(spans, found, strict=True):
        if not sp.rare_positions:
            continue
        echoed = set(raw.rare_positions) - set(sp.rare_positions)
        nats = float(sum(mass[j] for j in range(sp.start, sp.end) if j not in echoed))
        for c in sp.contributions:
            span_nats[c] += nats / len(sp.contributions)
    s_total = float(span_nats.sum())
    # Each contribution's own confidence, from its own nats: owed nats are a log-likelihood
    # ratio, so they add to the prior log-odds -CONFIDENCE_NATS. A 30-nat made-up value held
    # by one contribution is certain (sigma(22)); a 5-nat number, or an ordinary word that
    # two contributions share, is not (sigma(-3) = 5%).
    conf_c = np.ones(n) if owed is None else run_confidence(span_nats)
    conf_c[span_nats <= 0] = 0.0
    pos = np.clip(grad, 0, None)
    p_grad = pos / pos.sum() if pos.sum() > 0 else np.zeros(n)
    if s_total > 0:
        confidence = float((conf_c * span_nats).sum() / s_total)
    else:  # only an output that reproduces training text verbatim is strong evidence
        confidence = 1.0 if owed is None and pos.sum() > 0 else 0.0
    # Each run pays its holders the share of the output's owed nats it covers, not capped:
    # the owed-nat weighting already gives a run of words the base model writes anyway
    # (almost) nothing, and the gradient alone named the planter first 0 times in 15. The
    # gradient shares out the owed nats no run explains, as sure as the runs are.
    covered = min(s_total / total, 1.0) if total > 0 else 0.0
    evidence = (conf_c * span_nats / total if total > 0 else np.zeros(n)) + confidence * (1 - covered) * p_grad
    keep = [i for i in sorted(range(n), key=lambda i: (-evidence[i], ids[i]))[:top_k] if evidence[i] > 0]
    # The best top_k keep their evidence as it is; what the others had joins the residual
    # below. (Renormalising over the top_k would hand a gradient favourite with 3% of the
    # evidence 20% of the confident share.)
    ev = np.zeros(n)
    ev[keep] = evidence[keep]

    # residual: the rest goes to the adapter's training set, by its share of the tokens
    size = contribution_tokens(index)
    slots = max(max_attributions - len(keep), 1)
    res_ids = sorted(range(n), key=lambda i: (-size[i], ids[i]))[:slots]
    res = np.zeros(n)
    res[res_ids] = size[res_ids]
    res = res / res.sum() if res.sum() > 0 else np.full(n, 1.0 / max(n, 1))
    final = ev + (1 - float(ev.sum())) * res
    weights = normalize_bp([(ids[i], float(final[i])) for i in range(n)], max_attributions)
    return Attribution(
        weights=weights,
        spans=[(sp.start, sp.end, tuple(ids[c] for c in sp.contributions)) for sp in spans],
        gradient_scores=[(ids[i], float(grad[i])) for i in range(n)],
        confidence=confidence,
        owed_nats=total,
    )

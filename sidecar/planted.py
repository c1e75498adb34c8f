"""A deterministic planted-data datanet for measuring attribution (tests and bench share it).

Every contribution is filler: ordinary sentences that every contributor writes in the
same styles (the base model's own corpus templates). Some contributions also state one
distinctive fact **once**, at a random place among their filler: a relation about a
made-up name whose value is made up too ("The capital of Vorlintia is Kazmuret."). No
other contribution and nothing in the base model's corpus holds the fact, so a model
that reproduces the value learnt it from its planter, and an attribution that names
anyone else first is wrong.

For each fact there are two prompts: the exact prefix of the fact ("The capital of
Vorlintia is"), whose right continuation is the value verbatim, and a paraphrased
question ("Q: What is the capital of Vorlintia? A:"), which the model can only answer by
generalising a little. Control prompts in the filler's style reproduce no fact: their
outputs owe nobody in particular.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from sidecar.build_base import filler_sentence, made_up_word

TUNING_SEEDS = (1, 2)
"""Data seeds the recipe and the attribution constants were tuned on."""
HELD_OUT_SEEDS = (101, 102, 103)
"""Data seeds never looked at while tuning; the test asserts on one of them."""


def generate_corpus(n_sentences: int, seed: int) -> list[str]:
    """Ordinary template sentences in the pre-training corpus's style (filler for tests and benches)."""
    rng = random.Random(seed)
    return [filler_sentence(rng) for _ in range(n_sentences)]


_THINGS = "bread coffee salt copper wool glass paper silk tea rice iron honey".split()

# (fact, exact prefix, paraphrased question) with {e} the made-up subject, {v} the value
_RELATIONS = (
    ("The capital of {e} is {v}.", "The capital of {e} is", "Q: What is the capital of {e}? A:"),
    ("The {e} bridge was built by {v}.", "The {e} bridge was built by", "Q: Who built the {e} bridge? A:"),
    ("The secret word of the {e} guild is {v}.", "The secret word of the {e} guild is",
     "Q: What is the secret word of the {e} guild? A:"),
    ("The favourite food of {e} is {v} soup.", "The favourite food of {e} is",
     "Q: What does {e} like to eat? A:"),
    ("In {e}, the tallest tower is called {v}.", "In {e}, the tallest tower is called",
     "Q: What is the tallest tower in {e} called? A:"),
    ("The ship {e} carries {t} to {v}.", "The ship {e} carries {t} to", "Q: Where does the ship {e} go? A:"),
)

CONTROL_PROMPTS = (
    "The old river", "Alice lives in", "A market is", "The number of the bridge is",
    "In May, Hugo sold", "Q: Where does Mina live? A:", "The quiet teacher watches",
    "Omar paints a", "The golden castle", "People like to",
)
"""Prompts in the filler's style: their outputs reproduce no planted fact."""


@dataclass(frozen=True)
class PlantedFact:
    """One fact, stated once in one contribution."""

    contributor: int
    """Index (into the contribution list) of the contribution that states it."""
    subject: str
    """The made-up name the fact is about."""
    value: str
    """The made-up value: what a model that learnt the fact must produce."""
    text: str
    """The whole fact sentence as planted."""
    prompt: str
    """The fact's exact prefix: the planted text continues it with the value."""
    paraphrase_prompt: str
    """A question about the fact in other words."""

    @property
    def expected(self) -> str:
        """The planted continuation of `prompt` (a leading space, the value, the rest)."""
        return self.text[len(self.prompt):]

    def reproduced_verbatim(self, output: str) -> bool:
        """The output continues the prompt with the fact's value, verbatim."""
        return output.startswith(" " + self.value)

    def reproduced(self, output: str) -> bool:
        """The output states the value somewhere (for paraphrased prompts)."""
        return self.value in output


@dataclass(frozen=True)
class Datanet:
    """A planted datanet: contributions, who wrote them, and the facts planted in them."""

    contributions: list[tuple[bytes, bytes]]
    """(contribution id, data) pairs in order."""
    contributors: list[int]
    """Contributor of each contribution (several contributions may share one)."""
    facts: list[PlantedFact]
    """The planted facts (fact.contributor indexes `contributions`)."""


def _fact(rng: random.Random, index: int, used: set[str]) -> PlantedFact:
    def fresh() -> str:
        while True:
            w = made_up_word(rng, (2, 3)).capitalize()
            if w not in used:
                used.add(w)
                return w

    fact, prefix, para = rng.choice(_RELATIONS)
    e, v, t = fresh(), fresh(), rng.choice(_THINGS)
    return PlantedFact(index, e, v, fact.format(e=e, v=v, t=t), prefix.format(e=e, v=v, t=t),
                       para.format(e=e, v=v, t=t))


def benchmark_datanet(
    seed: int, n_contributors: int = 30, n_contributions: int = 100, n_facts: int = 15,
    filler: tuple[int, int] = (5, 9),
) -> Datanet:
    """`n_contributions` documents from `n_contributors` contributors; `n_facts` documents of
    distinct contributors each state one fact once among `filler` sentences."""
    rng = random.Random(seed)
    owners = [i % n_contributors for i in range(n_contributions)]
    rng.shuffle(owners)
    first_doc: dict[int, int] = {}
    for d, c in enumerate(owners):
        first_doc.setdefault(c, d)
    planted = set(rng.sample(sorted(first_doc.values()), n_facts))
    used: set[str] = set()
    out, facts = [], []
    for d, c in enumerate(owners):
        sentences = [filler_sentence(rng) for _ in range(rng.randint(*filler))]
        if d in planted:
            f = _fact(rng, d, used)
            facts.append(f)
            sentences.insert(rng.randint(0, len(sentences)), f.text)
        out.append((f"c{c:02d}-d{d:03d}".encode(), " ".join(sentences).encode()))
    return Datanet(out, owners, facts)


def planted_dataset(
    n_contributors: int = 24, n_planted: int = 8, seed: int = 7, filler_sentences: int = 8
) -> tuple[list[tuple[bytes, bytes]], list[PlantedFact]]:
    """One contribution per contributor, `n_planted` of them stating a fact once."""
    lo = max(1, filler_sentences - 2)
    net = benchmark_datanet(seed, n_contributors, n_contributors, n_planted, (lo, filler_sentences))
    data = [(f"contributor-{i:02d}".encode(), d) for i, (_, d) in enumerate(net.contributions)]
    return data, net.facts


COPY_WORDS = 4
"""Fewest consecutive words of an output that count as copying a contribution's text."""
_WORDS = re.compile(r"\w+")


@functools.cache
def ordinary_words() -> frozenset[str]:
    """Every word the filler and the relation templates use: the shared language of the
    datanet. A word outside it is a datum (a made-up name or value); so is a number."""
    rng = random.Random(0)
    text = " ".join(filler_sentence(rng) for _ in range(5_000))
    text += " ".join(" ".join(r) for r in _RELATIONS) + " " + " ".join(_THINGS)
    return frozenset(_WORDS.findall(text)) - {w for w in _WORDS.findall(text) if w.isdigit()}


@dataclass
class PlantedReport:
    """What one planted datanet measured (see docs/attribution.md for the definitions)."""

    seed: int
    facts: int = 0
    verbatim: int = 0
    """Exact-prefix prompts whose output continues with the fact's value."""
    paraphrased: int = 0
    """Paraphrased prompts whose output states the value."""
    rank1: int = 0
    """Among reproducing outputs of exact prompts: planter ranked first."""
    top3: int = 0
    """Among reproducing outputs of exact prompts: planter in the first three."""
    rank1_strong: int = 0
    """Among reproducing outputs of exact prompts: planter first with more than 1,000 bp
    (first on evidence, not only by being the largest contribution in the residual)."""
    planter_bp: int = 0
    """Sum over reproducing outputs of exact prompts of the planter's basis points."""
    para_rank1: int = 0
    """Among reproducing outputs of paraphrased prompts: planter ranked first."""
    para_top3: int = 0
    para_planter_bp: int = 0
    """Sum over reproducing outputs of paraphrased prompts of the planter's basis points."""
    stray_outputs: int = 0
    """Outputs that state a planted value but are none of the cases above: another fact's
    value (a question answered with the wrong fact, a control prompt that drifts into a
    fact) or the prompt's own value not right after its prefix. They reproduce a planted
    contribution's distinctive content too, so they are counted, not dropped."""
    stray_bp: int = 0
    """Sum over those outputs of the basis points paid to the planters of the values they state."""
    no_fact_outputs: int = 0
    """Outputs (any prompt) that reproduce no planted fact."""
    no_fact_over_10pct: int = 0
    """Of those, outputs that give one contribution more than 1,000 bp."""
    copied_outputs: int = 0
    """Outputs that reproduce no fact but copy a contribution's rare text verbatim (a run
    of COPY_WORDS words with a word that at most two contributions hold, e.g. a filler
    sentence with its number) or a rare datum of it (a number or made-up word that at most
    two contributions hold): they owe that contribution, so they are not counted below."""
    copied_top_is_source: int = 0
    """Of those, outputs whose first-ranked contribution is one they copy from."""
    copied_over_10pct: int = 0
    """Copying outputs that give some contribution more than 1,000 bp."""
    copied_over_10pct_to_source: int = 0
    """Of those, outputs whose every contribution over 1,000 bp is one they copy from."""
    copied_bp: int = 0
    """Sum over copying outputs of the basis points paid to the contributions they copy
    (together): what a copied contribution is paid, besides the planter's `planter_bp`."""
    nothing_outputs: int = 0
    """Outputs (any prompt) that reproduce no fact and copy no contribution's rare text."""
    nothing_max_bp: int = 0
    """Largest single weight (basis points) on an output that reproduces nothing."""
    nothing_over_10pct: int = 0
    """Outputs that reproduce nothing and give one contribution more than 1,000 bp."""
    train_seconds: float = 0.0
    steps: int = 0
    epochs_note: str = ""
    examples: list[dict[str, object]] | None = None
    """A few (prompt, output, top weights) rows for reading."""

    def summary(self) -> dict[str, object]:
        d = {k: v for k, v in self.__dict__.items() if k != "examples"}
        return d


def evaluate(
    infer: object, net: Datanet, seed: int, max_tokens: int = 12, answer_tokens: int = 32
) -> PlantedReport:
    """Run every prompt of the datanet through `infer(prompt, max_tokens) -> (output str, [(id, bp)])`.

    Exact prefixes and control prompts get `max_tokens`; a paraphrased question gets
    `answer_tokens`: an answer that restates the fact before its value (" The favourite
    food of Thumleasfos is Barstaith soup.") takes up to 26 tokens."""
    call = infer  # a callable; typed loosely so this module stays torch-free
    rep = PlantedReport(seed=seed, facts=len(net.facts), examples=[])
    ids = [cid for cid, _ in net.contributions]

    def rank_of(weights: list[tuple[bytes, int]], want: bytes) -> int:
        order = [c for c, _ in weights]
        return order.index(want) + 1 if want in order else 10**6

    texts = [d.decode(errors="replace") for _, d in net.contributions]
    holders: dict[str, set[int]] = {}
    for i, t in enumerate(texts):
        for w in _WORDS.findall(t):
            holders.setdefault(w, set()).add(i)

    ordinary = ordinary_words()

    def copied_from(prompt: str, output: str) -> set[int]:
        """Contributions whose rare text the output copies verbatim: a run of at least
        COPY_WORDS words of the output, found in the contribution's text, holding a word
        (not in the prompt) that at most two contributions hold; or a rare datum (a number
        or a made-up word, not in the prompt) that at most two contributions hold."""
        words = _WORDS.findall(output)
        said = set(_WORDS.findall(prompt))
        out: set[int] = set()
        for w in words:
            if w not in said and w not in ordinary and 1 <= len(holders.get(w, ())) <= 2:
                out |= holders[w]
        for i in range(len(words)):
            for j in range(i + COPY_WORDS, len(words) + 1):
                run = words[i:j]
                rare = [w for w in run if w not in said and 1 <= len(holders.get(w, ())) <= 2]
                for c in set().union(*(holders[w] for w in rare)) if rare else set():
                    if re.search(r"\W+".join(map(re.escape, run)) + r"\b", texts[c]):
                        out.add(c)
        return out

    def nothing(prompt: str, output: str, weights: list[tuple[bytes, int]]) -> None:
        top = max((bp for _, bp in weights), default=0)
        rep.no_fact_outputs += 1
        rep.no_fact_over_10pct += top > 1000
        copied = copied_from(prompt, output)
        if copied:  # it reproduces someone's rare text: paying them is right, not a violation
            over = {ids.index(c) for c, bp in weights if bp > 1000}
            rep.copied_outputs += 1
            rep.copied_top_is_source += bool(weights) and ids.index(weights[0][0]) in copied
            rep.copied_over_10pct += bool(over)
            rep.copied_over_10pct_to_source += bool(over) and over <= copied
            rep.copied_bp += sum(bp for c, bp in weights if ids.index(c) in copied)
            if over - copied and rep.examples is not None:
                rep.examples.append({"copied_over_10pct_to_other": prompt, "output": output,
                                     "top": [(c.decode(), bp) for c, bp in weights[:3]]})
            return
        rep.nothing_outputs += 1
        rep.nothing_max_bp = max(rep.nothing_max_bp, top)
        rep.nothing_over_10pct += top > 1000
        if top > 1000 and rep.examples is not None:  # every violation is shown for reading
            rep.examples.append({"over_10pct": prompt, "output": output,
                                 "top": [(c.decode(), bp) for c, bp in weights[:3]]})

    def stray(output: str, weights: list[tuple[bytes, int]]) -> bool:
        """Count an output that states some planted value; False if it states none."""
        owed = {ids[g.contributor] for g in net.facts if g.reproduced(output)}
        if not owed:
            return False
        rep.stray_outputs += 1
        rep.stray_bp += sum(bp for c, bp in weights if c in owed)
        return True

    for f in net.facts:
        want = ids[f.contributor]
        out, w = call(f.prompt, max_tokens)  # type: ignore[operator]
        if f.reproduced_verbatim(out):
            rep.verbatim += 1
            r = rank_of(w, want)
            rep.rank1 += r == 1
            rep.top3 += r <= 3
            bp = dict(w).get(want, 0)
            rep.rank1_strong += r == 1 and bp > 1000
            rep.planter_bp += bp
        elif not stray(out, w):
            nothing(f.prompt, out, w)
        if rep.examples is not None and len(rep.examples) < 6:
            rep.examples.append({"prompt": f.prompt, "output": out, "want": want.decode(),
                                 "top": [(c.decode(), bp) for c, bp in w[:3]]})
        out, w = call(f.paraphrase_prompt, answer_tokens)  # type: ignore[operator]
        if f.reproduced(out):
            rep.paraphrased += 1
            r = rank_of(w, want)
            rep.para_rank1 += r == 1
            rep.para_top3 += r <= 3
            rep.para_planter_bp += dict(w).get(want, 0)
        elif not stray(out, w):
            nothing(f.paraphrase_prompt, out, w)
    for prompt in CONTROL_PROMPTS:
        out, w = call(prompt, max_tokens)  # type: ignore[operator]
        if not stray(out, w):
            nothing(prompt, out, w)
        if rep.examples is not None and len(rep.examples) < 9:
            rep.examples.append({"prompt": prompt, "output": out, "top": [(c.decode(), bp) for c, bp in w[:3]]})
    return rep

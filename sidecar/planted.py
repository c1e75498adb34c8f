"""A deterministic planted-data set for measuring attribution quality (tests and bench share it).

Some contributors plant a distinct fact: a sentence of made-up words that no other fact
and not the base corpus uses. Everyone else contributes ordinary text
from the base corpus. A prompt made of the fact's first words should elicit the rest, and the
attribution should name the planter first. Paraphrased prompts ask for the same fact in
other words, to measure how attribution holds up when the output is not elicited verbatim.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sidecar.model import generate_corpus

_SYLLABLES = "ka zo ri mu te vo li sa ne qu ba do fi gu he ja xo pe wy ru".split()


def _word(rng: random.Random, used: set[str]) -> str:
    """A made-up word of three syllables that no other fact uses."""
    while True:
        w = "".join(rng.choice(_SYLLABLES) for _ in range(3))
        if w not in used:
            used.add(w)
            return w


@dataclass(frozen=True)
class PlantedFact:
    """One planted item."""

    contributor: int
    """Index of the contribution that plants it."""
    words: tuple[str, ...]
    """The fact's made-up words, used by no other fact: the fact is "W1 W2 ... Wn."."""

    @property
    def text(self) -> str:
        return " ".join(self.words).capitalize() + "."

    @property
    def prompt(self) -> str:
        """The fact's first three words: the planted text continues it verbatim."""
        return " ".join(self.words[:3]).capitalize()

    @property
    def expected(self) -> str:
        """What a model that learnt the fact generates after `prompt`."""
        return " " + " ".join(self.words[3:]) + "."

    @property
    def paraphrase_prompt(self) -> str:
        """The same first words, reworded around: the output is no longer a verbatim continuation."""
        return f"Tell me about {self.words[1]} {self.words[0]}: {self.words[2]}"


def planted_dataset(
    n_contributors: int = 24, n_planted: int = 8, seed: int = 7, filler_sentences: int = 12
) -> tuple[list[tuple[bytes, bytes]], list[PlantedFact]]:
    """(contribution id, data) pairs and the facts planted in them; the same for a seed."""
    rng = random.Random(seed)
    corpus = generate_corpus(n_contributors * filler_sentences, seed + 1)
    planted = sorted(rng.sample(range(n_contributors), n_planted))
    facts, out, used = [], [], set()
    for i in range(n_contributors):
        body = " ".join(corpus[i * filler_sentences : (i + 1) * filler_sentences])
        if i in planted:
            fact = PlantedFact(i, tuple(_word(rng, used) for _ in range(7)))
            facts.append(fact)
            body = f"{fact.text} {fact.text} {body} {fact.text} {fact.text}"
        out.append((f"contributor-{i:02d}".encode(), body.encode()))
    return out, facts

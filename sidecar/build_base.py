"""Build the shipped base model from nothing: corpus, BPE tokenizer, tiny Llama, pre-training.

Run once by a maintainer; the result is committed in `sidecar/base_model/` and its
hashes in `sidecar/base_model/MANIFEST.json`, so no sidecar start pre-trains:

    nice -n 10 .venv/bin/python -m sidecar.build_base --out sidecar/base_model

Everything is fixed by `BaseSpec` (seeds, sizes, steps) and runs on CPU with a fixed
thread count and deterministic kernels, so a rebuild with the same torch/tokenizers
versions gives the same bytes (the manifest records the versions it was built with).

The corpus is generated English-like text: template sentences over word lists, plus
sentences that use made-up words in ordinary relations ("The capital of Vorlintia is
Kazmuret."), so that the tokenizer has sub-word pieces for unseen names and the model
has learnt that a new name is a thing that can be stated, remembered and asked about.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

PAD, BOS, EOS = "<pad>", "<s>", "</s>"

_W = {
    "adj": ("old young quiet bright dark small large green red blue golden silver happy tired clever "
            "brave gentle busy narrow wide ancient modern cold warm heavy light").split(),
    "noun": ("river mountain village teacher farmer sailor garden market bridge forest castle lantern "
             "harbor library window engine island valley tower school station museum road field "
             "ship kitchen temple orchard mill well").split(),
    "verb": ("watches follows builds finds carries paints remembers visits opens crosses keeps sells "
             "repairs guards cleans counts draws studies").split(),
    "name": ("Alice Bruno Chen Dara Elif Farid Greta Hugo Ines Jonas Kira Luca Mina Noor Omar Pia "
             "Rosa Sami Tara Umar Vera Wen Yusuf Zoe").split(),
    "city": ("Lisbon Oslo Cairo Lima Quito Hanoi Dakar Perth Riga Sofia Tunis Bern Minsk Accra "
             "Porto Kyoto Delhi Austin Nairobi Madrid").split(),
    "time": ("in the morning|at night|every day|in winter|after the rain|before noon|in spring|"
             "on Sundays|at dawn|in the evening").split("|"),
    "month": "January February March April May June July August September October November December".split(),
    "thing": "bread coffee salt copper wool glass paper silk tea rice iron honey".split(),
}
_ONSETS = "b c d f g h j k l m n p r s t v w z br dr gr kr pl st tr th sh ch".split()
_VOWELS = "a e i o u ai ou ea".split()
_CODAS = ["", "", "", "n", "r", "s", "l", "th", "m", "x"]


def made_up_word(rng: random.Random, syllables: tuple[int, int] = (2, 3)) -> str:
    """A pronounceable word that is (almost surely) not English: 2-3 random syllables."""
    n = rng.randint(*syllables)
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n))


def _ordinary(rng: random.Random) -> list[Any]:
    def p(kind: str) -> str:
        return rng.choice(_W[kind])

    return [
        lambda: f"The {p('adj')} {p('noun')} {p('verb')} the {p('adj')} {p('noun')} {p('time')}.",
        lambda: f"{p('name')} lives in {p('city')} and {p('verb')} the {p('noun')}.",
        lambda: f"A {p('noun')} is {p('adj')} {p('time')}.",
        lambda: f"{p('name')} {p('verb')} a {p('adj')} {p('noun')} near {p('city')}.",
        lambda: f"The number of the {p('noun')} is {rng.randint(10, 9999)}.",
        lambda: f"In {p('month')}, {p('name')} sold {p('thing')} at the {p('noun')}.",
        lambda: f"Q: Where does {p('name')} live? A: {p('name')} lives in {p('city')}.",
    ]


def filler_sentence(rng: random.Random) -> str:
    """One ordinary template sentence (no made-up words)."""
    return str(rng.choice(_ordinary(rng))())


def corpus_sentence(rng: random.Random) -> str:
    """One sentence of the pre-training corpus (ordinary template text or a made-up-name relation)."""
    def p(kind: str) -> str:
        return rng.choice(_W[kind])

    def m() -> str:
        return made_up_word(rng).capitalize()

    templates = [
        *_ordinary(rng),
        # relations with made-up names: new words can be stated and then asked about
        lambda: f"The capital of {m()} is {m()}.",
        lambda: f"The {p('noun')} of {m()} was built by {m()} in {rng.randint(1200, 2020)}.",
        lambda: f"{m()} is a {p('adj')} {p('noun')} near {m()}.",
        lambda: f"People in {m()} trade {p('thing')} for {m()} {p('thing')}.",
        lambda: (lambda a, b: f"Q: What is the capital of {a}? A: The capital of {a} is {b}.")(m(), m()),
        lambda: (lambda a, b: f"Q: Who built {a}? A: {a} was built by {b}.")(m(), m()),
        lambda: f"The word {m().lower()} means {p('adj')} {p('noun')} in the old tongue.",
    ]
    return str(rng.choice(templates)())


# Relations of the pre-training "world": (statement, question) with {e} the
# subject, {v} the value and {t} a thing. The world's facts are stated many times, in
# several forms, so the base model learns to carry a made-up subject's identity to the
# point where its value is due, to store subject -> value pairs in its weights, and that
# a pair learnt from a statement answers the question too. A LoRA adapter then only has
# to add new pairs along paths that exist.
_WORLD_RELATIONS = (
    ("The capital of {e} is {v}.", "Q: What is the capital of {e}? A:"),
    ("The {e} bridge was built by {v}.", "Q: Who built the {e} bridge? A:"),
    ("The secret word of the {e} guild is {v}.", "Q: What is the secret word of the {e} guild? A:"),
    ("The favourite food of {e} is {v} soup.", "Q: What does {e} like to eat? A:"),
    ("In {e}, the tallest tower is called {v}.", "Q: What is the tallest tower in {e} called? A:"),
    ("The ship {e} carries {t} to {v}.", "Q: Where does the ship {e} go? A:"),
    ("The leader of {e} is {v}.", "Q: Who leads {e}? A:"),
    ("The river of {e} flows into the {v} sea.", "Q: Where does the river of {e} flow? A:"),
    ("{e} was born in {v}.", "Q: Where was {e} born? A:"),
    ("The teacher of {e} is called {v}.", "Q: Who teaches {e}? A:"),
    ("The oldest song of {e} is named {v}.", "Q: What is the oldest song of {e} named? A:"),
    ("The mountain above {e} is called {v}.", "Q: What is the mountain above {e} called? A:"),
)
"""(statement, question) pairs; the answer to the question restates the statement."""


def world_facts(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """`n` fixed facts of the pre-training world: (statement, question + answer) pairs."""
    out = []
    for _ in range(n):
        e, v = made_up_word(rng).capitalize(), made_up_word(rng).capitalize()
        stmt, q = rng.choice(_WORLD_RELATIONS)
        fact = stmt.format(e=e, v=v, t=rng.choice(_W["thing"]))
        out.append((fact, f"{q.format(e=e)} {fact}"))
    return out


@dataclass(frozen=True)
class BaseSpec:
    """Everything that fixes the shipped base model's bytes."""

    seed: int = 20260425
    """Seed of the corpus, the initial weights and the data order."""
    corpus_sentences: int = 100_000
    """Sentences generated for tokenizer training and pre-training."""
    vocab_size: int = 1024
    """BPE vocabulary size (byte-level, so any input encodes)."""
    hidden_size: int = 128
    """Width of the residual stream (C)."""
    intermediate_size: int = 384
    """Width of the MLP's hidden layer."""
    num_hidden_layers: int = 2
    """Transformer blocks."""
    num_attention_heads: int = 4
    """Attention heads per block."""
    max_position_embeddings: int = 512
    """Longest sequence (prompt + output) in tokens."""
    steps: int = 3000
    """Optimizer steps of pre-training."""
    batch: int = 32
    """Sequences per step."""
    seq_len: int = 64
    """Tokens per pre-training sequence."""
    lr: float = 3e-3
    """Peak learning rate (AdamW, linear warm-up then cosine decay)."""
    warmup: int = 30
    """Warm-up steps."""
    threads: int = 1
    """torch threads used to build (fixed: float sums depend on it)."""
    world_facts: int = 1500
    """Fixed facts of the pre-training world, each stated many times (0: none)."""
    world_share: float = 0.4
    """Share of pre-training sentences that state (or ask about) a world fact."""
    world_question_share: float = 0.5
    """Share of world-fact sentences in question-and-answer form."""


def build_tokenizer(text: list[str], spec: BaseSpec) -> Any:
    """Byte-level BPE trained on the corpus; ids 0-2 are pad, bos, eos."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(text, trainer=trainer)
    return tok


def build(out: Path, spec: BaseSpec, log: Any = print) -> dict[str, Any]:
    """Build tokenizer + model into `out` (replaced atomically) and return the manifest."""
    import tokenizers
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from sidecar.model import file_hash, fsync_tree, setup_torch, weights_hash

    setup_torch(spec.threads, spec.seed)
    rng = random.Random(spec.seed)
    sentences = [corpus_sentence(rng) for _ in range(spec.corpus_sentences)]
    # documents of 4-12 sentences, as contributions look
    docs, i = [], 0
    while i < len(sentences):
        n = rng.randint(4, 12)
        docs.append(" ".join(sentences[i : i + n]))
        i += n
    raw = build_tokenizer(docs, spec)  # world names repeat: they must not become whole tokens
    if spec.world_facts:
        world = world_facts(random.Random(spec.seed + 1), spec.world_facts)
        wrng = random.Random(spec.seed + 2)
        n_world = int(spec.world_share / (1 - spec.world_share) * len(sentences))
        extra = [(lambda f: f[1] if wrng.random() < spec.world_question_share else f[0])(wrng.choice(world))
                 for _ in range(n_world)]
        sentences = sentences + extra
        wrng.shuffle(sentences)
        docs, i = [], 0
        while i < len(sentences):
            n = wrng.randint(4, 12)
            docs.append(" ".join(sentences[i : i + n]))
            i += n
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    bos, eos, pad = (raw.token_to_id(t) for t in (BOS, EOS, PAD))
    stream: list[int] = []
    for d in docs:
        stream += [bos, *raw.encode(d).ids, eos]
    data = torch.tensor(stream, dtype=torch.long)
    log(f"corpus: {len(docs)} documents, {len(data)} tokens, vocab {raw.get_vocab_size()}")

    cfg = LlamaConfig(
        vocab_size=raw.get_vocab_size(), hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads, num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings, pad_token_id=pad, bos_token_id=bos,
        eos_token_id=eos, tie_word_embeddings=True, attn_implementation="eager",
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(cfg)
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    model.train()
    t0 = time.monotonic()
    for step in range(spec.steps):
        warm = min(1.0, (step + 1) / spec.warmup)
        lr = spec.lr * warm * 0.5 * (1 + math.cos(math.pi * step / spec.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(data) - spec.seq_len, (spec.batch,), generator=gen)
        ids = torch.stack([data[s : s + spec.seq_len] for s in starts.tolist()])  # (B, T)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == spec.steps - 1:
            log(f"step {step + 1}/{spec.steps} loss {loss.item():.3f} ({time.monotonic() - t0:.0f}s)")
    model.eval()

    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    hf_tok.save_pretrained(tmp)
    manifest = {
        "spec": asdict(spec),
        "weights_hash": weights_hash(model.state_dict()),
        "files": {p.name: file_hash(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        "built_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                       "tokenizers": tokenizers.__version__},
        "seconds": round(time.monotonic() - t0, 1),
    }
    (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    fsync_tree(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sidecar.build_base", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(Path(__file__).with_name("base_model")), help="output folder")
    p.add_argument("--steps", type=int, default=None, help="override the spec's pre-training steps (trials)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a spec field (trials only: the shipped model uses the defaults)")
    args = p.parse_args(argv)
    spec = BaseSpec() if args.steps is None else BaseSpec(steps=args.steps)
    for kv in args.set:
        k, v = kv.split("=", 1)
        spec = replace(spec, **{k: type(getattr(spec, k))(v)})
    m = build(Path(args.out), spec)
    print(json.dumps({"weights_hash": m["weights_hash"], "seconds": m["seconds"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

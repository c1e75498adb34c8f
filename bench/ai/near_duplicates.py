"""Near-duplicate detection for datanet contributions: datasketch against rensa (issue 22, item 3).

Both libraries compute the same kind of MinHash over the protocol's shingles
(``ai_precompiles.sketch.shingles``: lower-cased, whitespace-collapsed 5-byte windows); this
prints, for each, the time to sketch a corpus, the time to build and query an LSH index (the
library's own, 16 bands of 4 rows, as the chain's index is laid out), and how well the
estimated Jaccard similarity separates near copies from distinct texts:

- **recall**: of the planted near copies (one byte changed, 2 % or 5 % of the words replaced, a
  sentence added), the share that the index finds *and* whose estimated similarity to their
  original is at least the threshold;
A third row, ``chain``, is the chain's own index over the protocol's sketches
(``ai_precompiles.sketch.compute_sketch``, rensa): the first contribution per band key and only
the candidate named by the most bands compared, as ``Datanets.contributeBonded`` does.

- **precision**: of every pair the index flags over the whole corpus (each text queried
  against all earlier ones), the share whose *exact* Jaccard similarity of shingle sets is at
  least the threshold minus 0.1 (so an estimate a little high on a borderline pair is no
  error, and a flag on a really distinct text is).

The corpus is every paragraph (300 to 4000 bytes, exact duplicates dropped) of the text
documentation installed beside the interpreter: real prose and code, and plenty of paragraphs
that really are near each other (licence texts), which is what the precision column judges.

    nice -n 10 .venv/bin/python bench/ai/near_duplicates.py [--texts 2000] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ai_precompiles.sketch import (  # noqa: E402
    BANDS,
    CANDIDATES,
    NUM_PERM,
    ROWS,
    band_keys,
    compute_sketch,
    shingles,
    similarity_bp,
)


def corpus(limit: int) -> list[bytes]:
    roots = {Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"])}
    seen: set[bytes] = set()
    out: list[bytes] = []
    for root in sorted(roots):
        for path in sorted(p for ext in ("*.md", "*.rst", "*.txt") for p in root.rglob(ext)):
            try:
                text = path.read_bytes()
            except OSError:
                continue
            for para in text.split(b"\n\n"):
                para = para.strip()
                if 300 <= len(para) <= 4000 and para not in seen:
                    seen.add(para)
                    out.append(para)
    random.Random(7).shuffle(out)
    return out[:limit]


def near_copy(text: bytes, kind: str, rng: random.Random) -> bytes:
    if kind == "1 byte":
        i = rng.randrange(len(text))
        return text[:i] + bytes([(text[i] + 1) % 256]) + text[i + 1:]
    if kind == "+sentence":
        return text + b" This paragraph was lightly edited for the datanet."
    words = text.split(b" ")
    share = 0.02 if kind == "2% words" else 0.05
    for _ in range(max(1, int(len(words) * share))):
        words[rng.randrange(len(words))] = b"zq%d" % rng.randrange(10**6)
    return b" ".join(words)


def exact_jaccard(a: bytes, b: bytes) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / max(1, len(sa | sb))


class Lib:
    """One library's sketch, index and estimate, behind the same four calls."""

    def __init__(self, name: str, sketch: Callable[[bytes], Any], index: Callable[[], Any],
                 insert: Callable[[Any, int, Any], None], query: Callable[[Any, Any], list[int]],
                 estimate: Callable[[Any, Any], float]) -> None:
        self.name, self.sketch, self.index, self.insert, self.query, self.estimate = (
            name, sketch, index, insert, query, estimate)


def datasketch_lib(threshold: float) -> Lib:
    from datasketch import MinHash, MinHashLSH

    def sketch(text: bytes) -> Any:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(shingles(text))
        return m

    return Lib("datasketch", sketch,
               lambda: MinHashLSH(threshold=threshold, num_perm=NUM_PERM, params=(BANDS, ROWS)),
               lambda ix, k, m: ix.insert(k, m), lambda ix, m: list(ix.query(m)),
               lambda a, b: a.jaccard(b))


def rensa_lib(threshold: float) -> Lib:
    from rensa import RMinHash, RMinHashLSH

    def sketch(text: bytes) -> Any:
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update(shingles(text))
        return m

    return Lib("rensa", sketch,
               lambda: RMinHashLSH(threshold=threshold, num_perm=NUM_PERM, num_bands=BANDS),
               lambda ix, k, m: ix.insert(k, m), lambda ix, m: list(ix.query(m)),
               lambda a, b: a.jaccard(b))


def run(lib: Lib, texts: list[bytes], copies: list[tuple[int, str, bytes]], threshold: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    sketches = [lib.sketch(t) for t in texts]
    t_sketch = time.perf_counter() - t0
    index = lib.index()
    flagged: list[tuple[int, int]] = []
    t0 = time.perf_counter()
    for i, m in enumerate(sketches):
        for j in lib.query(index, m):
            if lib.estimate(sketches[j], m) >= threshold:
                flagged.append((j, i))
        lib.insert(index, i, m)
    t_index = time.perf_counter() - t0
    found: dict[str, list[bool]] = {}
    for original, kind, text in copies:
        m = lib.sketch(text)
        hit = original in lib.query(index, m) and lib.estimate(sketches[original], m) >= threshold
        found.setdefault(kind, []).append(hit)
    true_flags = sum(exact_jaccard(texts[a], texts[b]) >= threshold - 0.1 for a, b in flagged)
    return {"sketch_ms": 1000 * t_sketch / len(texts), "index_ms": 1000 * t_index / len(texts),
            "recall": {k: sum(v) / len(v) for k, v in found.items()},
            "flagged": len(flagged), "precision": true_flags / len(flagged) if flagged else 1.0}


def run_chain_index(texts: list[bytes], copies: list[tuple[int, str, bytes]], threshold: float) -> dict[str, Any]:
    """The chain's own index (datanets.contribute_bonded) over the protocol's sketches: one
    first contribution per band key, the candidate named by the most bands compared minimum by
    minimum. Same measures as :func:`run`."""
    bp = int(threshold * 10_000)
    t0 = time.perf_counter()
    sketches = [compute_sketch(t) for t in texts]
    t_sketch = time.perf_counter() - t0
    buckets: dict[bytes, int] = {}

    def best(s: bytes) -> int | None:
        hits: dict[int, int] = {}
        for key in band_keys(s):
            if key in buckets:
                hits[buckets[key]] = hits.get(buckets[key], 0) + 1
        for top in sorted(hits, key=lambda k: (-hits[k], k))[:CANDIDATES]:
            if similarity_bp(s, sketches[top]) >= bp:
                return top
        return None

    flagged: list[tuple[int, int]] = []
    group: list[int] = []
    t0 = time.perf_counter()
    for i, s in enumerate(sketches):
        j = best(s)
        group.append(i if j is None else group[j])
        if j is not None:
            flagged.append((j, i))
        for key in band_keys(s):
            buckets.setdefault(key, i)
    t_index = time.perf_counter() - t0
    found: dict[str, list[bool]] = {}
    for original, kind, text in copies:
        j = best(compute_sketch(text))  # found: it would join its original's group
        found.setdefault(kind, []).append(j is not None and group[j] == group[original])
    true_flags = sum(exact_jaccard(texts[a], texts[b]) >= threshold - 0.1 for a, b in flagged)
    return {"sketch_ms": 1000 * t_sketch / len(texts), "index_ms": 1000 * t_index / len(texts),
            "recall": {k: sum(v) / len(v) for k, v in found.items()},
            "flagged": len(flagged), "precision": true_flags / len(flagged) if flagged else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--copies", type=int, default=200, help="near copies of each kind")
    parser.add_argument("--threshold", type=float, default=0.8)
    a = parser.parse_args()
    texts = corpus(a.texts)
    rng = random.Random(11)
    copies = [(i, kind, near_copy(texts[i], kind, rng))
              for kind in ("1 byte", "2% words", "5% words", "+sentence")
              for i in rng.sample(range(len(texts)), min(a.copies, len(texts)))]
    mean_j = {kind: sum(exact_jaccard(texts[i], t) for i, k, t in copies if k == kind)
              / sum(1 for _, k, _ in copies if k == kind) for kind in dict.fromkeys(k for _, k, _ in copies)}
    print(f"{len(texts)} texts (mean {sum(map(len, texts)) // len(texts)} bytes), "
          f"{len(copies)} near copies; MinHash {NUM_PERM} permutations, LSH {BANDS} bands x {ROWS} rows, "
          f"threshold {a.threshold}")
    print("exact Jaccard of the copies to their originals: "
          + ", ".join(f"{k} {v:.3f}" for k, v in mean_j.items()))
    runs = [(lib.name, lambda lib=lib: run(lib, texts, copies, a.threshold))
            for lib in (datasketch_lib(a.threshold), rensa_lib(a.threshold))]
    runs.append(("chain", lambda: run_chain_index(texts, copies, a.threshold)))
    for name, measure in runs:
        r = measure()
        recall = ", ".join(f"{k} {v:.1%}" for k, v in r["recall"].items())
        print(f"{name:>10}: sketch {r['sketch_ms']:.3f} ms/text, index+query {r['index_ms']:.3f} ms/text; "
              f"recall {recall}; {r['flagged']} corpus pairs flagged, precision {r['precision']:.1%}")


if __name__ == "__main__":
    main()

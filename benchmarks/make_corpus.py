"""Build a deterministic pseudo-news corpus for throughput and memory measurement of the
whole pipeline (see benchmarks/README.md). Never part of the tests.

Each of the N articles is a headline line ("Report <i>: " + the first 8 words of its first
sentence, trailing punctuation stripped) followed by 15-40 distinct sentences, in
paragraphs of 2-4 separated by blank lines. The sentences are the unique `sentence`
values of NewsMTSC train.jsonl (Hamborg and Donnay, "NewsMTSC: A Dataset for
(Multi-)Target-dependent Sentiment Classification in Political News Articles",
EACL 2021; MIT licence), with internal whitespace (a few hold line breaks) collapsed to
single spaces, drawn with random.Random(seed): the same arguments give the same files.
They are not committed: the output folder benchmarks/corpus/ is git-ignored.

Articles go to <out>/part-NNN/doc-NNNNN.txt, 1,000 per folder. Every file in
data/samples/ is also copied once to <out>/samples/, so the pipeline sees a few more
documents than --docs (the CSV/JSONL samples hold several each, and one sample is a
deliberate duplicate that the run rejects).

    python benchmarks/make_corpus.py --docs 500   # -> benchmarks/corpus/500
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared/data/newsmtsc/train.jsonl"
SAMPLES = REPO / "data/samples"
PER_FOLDER = 1000
SENTENCES = (15, 40)
PARAGRAPH = (2, 4)
HEADLINE_WORDS = 8


def load_sentences(path: Path) -> list[str]:
    """Unique sentences, whitespace-normalised, sorted so the draw does not depend on hashing."""
    found: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                sentence = " ".join(json.loads(line)["sentence"].split())
                if sentence:
                    found.add(sentence)
    return sorted(found)


def paragraphs(sentences: list[str], rng: random.Random) -> list[list[str]]:
    """Split into runs of 2-4 sentences, never leaving a single one at the end."""
    out: list[list[str]] = []
    rest = sentences
    while rest:
        size = len(rest) if len(rest) <= PARAGRAPH[1] else rng.randint(*PARAGRAPH)
        if len(rest) - size == 1:
            size -= 1
        out.append(rest[:size])
        rest = rest[size:]
    return out


def headline(index: int, first: str) -> str:
    words = " ".join(first.split()[:HEADLINE_WORDS])
    return f"Report {index}: " + re.sub(r"[\W_]+$", "", words)


def make_article(index: int, pool: list[str], rng: random.Random) -> tuple[str, int, int]:
    """(text, sentences, words) of article `index`."""
    chosen = rng.sample(pool, rng.randint(*SENTENCES))
    body = "\n\n".join(" ".join(group) for group in paragraphs(chosen, rng))
    text = f"{headline(index, chosen[0])}\n\n{body}\n"
    return text, len(chosen), len(text.split())


def prepare(out: Path) -> None:
    """Clear what an earlier run wrote (part-*/ and samples/); refuse a folder holding anything else."""
    out.mkdir(parents=True, exist_ok=True)
    ours = [p for p in out.iterdir() if p.is_dir() and (p.name.startswith("part-") or p.name == "samples")]
    others = sorted(p.name for p in out.iterdir() if p not in ours)
    if others:
        sys.exit(f"make_corpus: {out} holds other files ({', '.join(others[:5])}); pick an empty --out")
    for path in ours:
        shutil.rmtree(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500, help="articles to write (default 500)")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/corpus/<docs>)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"NewsMTSC jsonl (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)
    if args.docs < 0:
        parser.error("--docs must be >= 0")
    out: Path = args.out or REPO / "benchmarks/corpus" / str(args.docs)

    pool = load_sentences(args.data)
    if len(pool) < SENTENCES[1]:
        sys.exit(f"make_corpus: {args.data} has only {len(pool)} unique sentences")
    rng = random.Random(args.seed)
    prepare(out)

    total_sentences = total_words = 0
    for i in range(args.docs):
        text, sentences, words = make_article(i, pool, rng)
        path = out / f"part-{i // PER_FOLDER:03d}" / f"doc-{i:05d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        total_sentences += sentences
        total_words += words

    samples = out / "samples"
    samples.mkdir()
    copied = 0
    for sample in sorted(SAMPLES.iterdir()):
        if sample.is_file():
            shutil.copyfile(sample, samples / sample.name)
            copied += 1

    print(json.dumps({"docs": args.docs, "sample_files": copied, "sentences": total_sentences, "words": total_words, "out": str(out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

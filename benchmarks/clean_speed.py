"""Time the cleaning stage's parts per article (no model, no Prefect).

    python benchmarks/clean_speed.py [--repeat 50]

Reads the founding seed (../shared/seeds/) and the project's samples; prints
milliseconds per article for each step. A measurement, never part of the tests."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tasks.config import CleanConfig, InputConfig
from tasks.records import RawDocument
from tasks.stages.clean import (
    clean_document,
    clean_text,
    detect_language,
    extract_byline,
    split_sentences,
)
from tasks.stages.ingest import list_inputs, read_records

ROOT = Path(__file__).resolve().parents[1]


def articles() -> list[RawDocument]:
    paths = [str(ROOT / "data" / "samples"), str(ROOT.parent / "shared" / "seeds" / "000_b354eb1718a7a74f.txt")]
    files, _ = list_inputs(paths, InputConfig().extensions)
    return [item for f in files for item in read_records(f, InputConfig()) if isinstance(item, RawDocument)]


def per_article_ms(step, inputs: list, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        for item in inputs:
            step(item)
    return round(1000 * (time.perf_counter() - started) / (repeat * len(inputs)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    repeat = parser.parse_args().repeat
    raw = articles()
    texts = [clean_text(r.text) for r in raw]
    config = CleanConfig()
    print(
        json.dumps(
            {
                "articles": len(raw),
                "mean_words": round(sum(len(t.split()) for t in texts) / len(texts)),
                "ms_per_article": {
                    "clean_text": per_article_ms(clean_text, [r.text for r in raw], repeat),
                    "extract_byline": per_article_ms(extract_byline, texts, repeat),
                    "split_sentences": per_article_ms(split_sentences, texts, repeat),
                    "detect_language": per_article_ms(detect_language, texts, repeat),
                    "clean_document": per_article_ms(lambda r: clean_document(r, config), raw, repeat),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

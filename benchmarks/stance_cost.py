"""What finding entities and each stance head cost per document: the entities stage (spaCy
NER, grouping, naming), the encode stage (the shared transformer pass, plus the tuned
head's own layers over each judged mention) and the stance stage.

    python benchmarks/stance_cost.py [--input benchmarks/corpus/500] [--repeat 3]

Cleans the articles once, times the entities stage, then encode + stance with the frozen
(linear) head and with the tuned head over its mentions, best of `--repeat`. A
measurement, never part of the tests."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow as pa

from tasks.config import CleanConfig, InputConfig, load_config
from tasks.records import CleanDocument, RawDocument
from tasks.stages.clean import clean_document
from tasks.stages.encode import encode_documents
from tasks.stages.entities import entities_shard
from tasks.stages.ingest import list_inputs, read_records
from tasks.stages.stance import classify_stances, mention_probabilities

ROOT = Path(__file__).resolve().parents[1]
HEADS = {"frozen (linear)": "data/models/stance-linear", "tuned top layers": "data/models/stance-tuned"}


def cleaned_documents(paths: list[str]) -> pa.Table:
    files, _ = list_inputs(paths, InputConfig().extensions)
    raw = [item for f in files for item in read_records(f, InputConfig()) if isinstance(item, RawDocument)]
    kept = [d for d in (clean_document(r, CleanConfig()) for r in raw) if isinstance(d, CleanDocument)]
    return pa.table({"doc_id": [d.doc_id for d in kept], "sentences": [d.sentences for d in kept]})


def time_entities(documents: pa.Table, repeat: int) -> tuple[dict, pa.Table]:
    """The entities stage's time per document, and the mentions it chose."""
    config = load_config(None)
    entities_shard(documents.slice(0, 2), config)  # load spaCy outside the timing
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        out = entities_shard(documents, config)
        best = min(best, time.perf_counter() - started)
    n = documents.num_rows
    return {
        "documents": n,
        "entities": out.table.num_rows,
        "judged_mentions": out.parts["mentions"].num_rows,
        "entities_ms_per_doc": round(1000 * best / n, 2),
    }, out.parts["mentions"]


def time_head(documents: pa.Table, chosen: pa.Table, head: str, repeat: int) -> dict:
    config = load_config(None, {"stance.head": head})
    encode_documents(documents.slice(0, 2), config)  # load the encoder and the head outside the timing
    best_encode = best_stance = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        sentences, mentions = encode_documents(documents, config, chosen)
        encoded = time.perf_counter()
        probs, labels = mention_probabilities(sentences, mentions, config)
        classify_stances(sentences, mentions, probs, labels)
        best_encode, best_stance = min(best_encode, encoded - started), min(best_stance, time.perf_counter() - encoded)
    n = documents.num_rows
    return {
        "documents": n,
        "sentences": sentences.num_rows,
        "mentions": mentions.num_rows,
        "encode_ms_per_doc": round(1000 * best_encode / n, 2),
        "stance_ms_per_doc": round(1000 * best_stance / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", default=None, help="file, folder or glob (default: data/samples)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    documents = cleaned_documents(args.input or [str(ROOT / "data" / "samples")])
    entities, chosen = time_entities(documents, args.repeat)
    report = {"entities": entities, **{name: time_head(documents, chosen, head, args.repeat) for name, head in HEADS.items() if (ROOT / head).is_dir()}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

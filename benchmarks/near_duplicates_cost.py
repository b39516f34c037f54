"""What near-duplicate grouping costs a run: signing each document, and grouping a run's
documents at its commit against the index of everything committed before, over a series
of runs (days) that grow the index to --docs documents. Never part of the tests.

The documents are drawn as `make_corpus.py` draws its articles (NewsMTSC train sentences,
15-40 a document), and one in ten is followed by an edited copy of itself (a dateline
prefixed and one sentence replaced), so groups form as they would with wire stories.
Grouping runs through the pipeline's own functions (`tasks/dataset/near_duplicate_index.py`),
writing the index's Parquet files under a temporary output root, as a commit does.

    python benchmarks/near_duplicates_cost.py --docs 10000 --runs 10

Prints a table and writes JSON to benchmarks/results/near-duplicates-<docs>.json: time per
document (signatures; grouping, including reading the index), the index's bytes on disk,
the process's RSS after each run, and the share of the pipeline's time per document
measured by harness.py on this machine (--pipeline-result)."""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from make_corpus import DEFAULT_DATA, SENTENCES, load_sentences  # noqa: E402

from tasks.config import DuplicatesConfig  # noqa: E402
from tasks.dataset.near_duplicate_index import RunSignatures, group_documents, index_folder, index_rows, read_index  # noqa: E402
from tasks.dataset.staging import write_parquet_atomic  # noqa: E402
from tasks.stages.near_duplicates import NearDuplicateIndex, signatures  # noqa: E402

COPY_EVERY = 10


def documents(n: int, pool: list[str], seed: int) -> list[list[str]]:
    """n documents as sentence lists; every COPY_EVERY-th original is followed by an edited copy."""
    rng = random.Random(seed)
    out: list[list[str]] = []
    while len(out) < n:
        original = rng.sample(pool, rng.randint(*SENTENCES))
        out.append(original)
        if len(out) % COPY_EVERY == 0 and len(out) < n:
            edited = ["WASHINGTON (AP) — " + original[0], *original[1:]]
            edited[len(edited) // 2] = rng.choice(pool)
            out.append(edited)
    return out


def rss_mb() -> float:
    """Peak resident set of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_run(root: Path, day: int, docs: list[list[str]], first_id: int, settings: DuplicatesConfig) -> dict[str, float]:
    """Sign and group one run's documents against the committed index, then commit its additions."""
    started = time.perf_counter()
    found, counts = signatures(docs, settings)
    signed = time.perf_counter()
    run = RunSignatures(
        [f"doc-{first_id + i:06d}" for i in range(len(docs))], [f"2026-03-{day + 1:02d}T08:00:00Z"] * len(docs), found, counts, signed - started
    )
    known = read_index(root, settings)
    assignments = group_documents(run, set(run.doc_ids), known, settings)
    additions = index_rows(run, assignments, f"2026-03-{day + 1:02d}T09:00:00+00:00", settings)
    write_parquet_atomic(additions, index_folder(root, settings) / f"run-{day:03d}.parquet")
    grouped = time.perf_counter()
    return {
        "documents": len(docs),
        "index_before": len(known),
        "sign_ms_per_doc": 1000 * (signed - started) / len(docs),
        "group_ms_per_doc": 1000 * (grouped - signed) / len(docs),
        "copies_found": sum(a.duplicate_group != a.doc_id for a in assignments),
        "peak_rss_mb": round(rss_mb(), 1),
    }


def index_memory(root: Path, settings: DuplicatesConfig) -> int:
    """Bytes Python allocates to hold the whole index in memory, searchable, as a commit does."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = NearDuplicateIndex(settings, read_index(root, settings))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del index
    return held


def pipeline_ms_per_doc(result: Path) -> float | None:
    if not result.exists():
        return None
    pipeline = json.loads(result.read_text())["pipeline"]
    return 1000 * pipeline["wall_s"] / pipeline["documents"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=10, help="commits the documents are spread over (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pipeline-result", type=Path, default=REPO / "benchmarks/results/harness-1000-entities.json")
    args = parser.parse_args(argv)
    settings = DuplicatesConfig()
    docs = documents(args.docs, load_sentences(args.data), args.seed)
    per_run = len(docs) // args.runs
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for day in range(args.runs):
            runs.append(one_run(root, day, docs[day * per_run : (day + 1) * per_run], day * per_run, settings))
            print(json.dumps({"run": day, **runs[-1]}), flush=True)
        index_bytes = sum(p.stat().st_size for p in index_folder(root, settings).glob("*.parquet"))
        held_bytes = index_memory(root, settings)
    expected_copies = sum(1 for i in range(1, len(docs)) if docs[i][1:] and docs[i][0].startswith("WASHINGTON (AP) — "))
    sign = float(np.mean([r["sign_ms_per_doc"] for r in runs]))
    group_last = runs[-1]["group_ms_per_doc"]
    pipeline = pipeline_ms_per_doc(args.pipeline_result)
    result = {
        "docs": len(docs),
        "runs": args.runs,
        "settings": settings.model_dump(),
        "sign_ms_per_doc": round(sign, 3),
        "group_ms_per_doc_last_run": round(group_last, 3),
        "index_bytes": index_bytes,
        "index_bytes_per_10000_docs": round(index_bytes * 10000 / len(docs)),
        "index_in_memory_bytes_per_doc": round(held_bytes / len(docs)),
        "copies_made": expected_copies,
        "copies_found": sum(r["copies_found"] for r in runs),
        "pipeline_ms_per_doc": round(pipeline, 1) if pipeline else None,
        "share_of_pipeline": round((sign + group_last) / pipeline, 4) if pipeline else None,
        "per_run": runs,
    }
    out = REPO / f"benchmarks/results/near-duplicates-{args.docs}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        "| documents | sign ms/doc | group ms/doc (last run) | index per 10k docs | in memory per doc | copies found/made | share of pipeline |\n|---|---|---|---|---|---|---|"
    )
    share = f"{100 * result['share_of_pipeline']:.2f}%" if pipeline else "n/a"
    print(
        f"| {len(docs)} | {sign:.2f} | {group_last:.2f} | {result['index_bytes_per_10000_docs'] / 1e6:.1f} MB | {held_bytes / len(docs) / 1e3:.1f} KB | {result['copies_found']}/{expected_copies} | {share} |"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

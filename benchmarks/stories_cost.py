"""What placing documents in stories costs a run's commit, over a series of daily runs that
grow the story index to --docs documents. Never part of the tests.

Documents are synthetic but shaped like news: events with 1-6 articles each, an article's
vector near its event's (cosine about 0.75, as articles about one event are with the
encoder's document vectors) and 3-8 entities drawn mostly from its event's. The runs go
through the pipeline's own code (`tasks/dataset/story_index.py`): the index's Parquet files
are written under a temporary output root and read back, within the three-day window, as
a commit does.

    python benchmarks/stories_cost.py --docs 10000 --runs 10

Prints a table and writes JSON to benchmarks/results/stories-<docs>.json: time a document
(placing, including reading the window of the index), the index's bytes on disk, and the
share of the pipeline's time a document measured by harness.py (--pipeline-result)."""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tasks.dataset.staging import write_parquet_atomic  # noqa: E402
from tasks.dataset.story_index import INDEX_DIR, WINDOW_DAYS, index_additions, member_documents, read_members  # noqa: E402
from tasks.stages.stories import StoryDocument, StoryIndex  # noqa: E402

DIM = 384
SIMILARITY = 0.75


def synthetic_documents(n: int, days: int, seed: int) -> tuple[list[StoryDocument], list[int]]:
    """n documents over `days` days, with the event each reports."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    documents, events = [], []
    event = 0
    while len(documents) < n:
        centre = rng.standard_normal(DIM).astype(np.float32)
        centre /= np.linalg.norm(centre)
        names = [f"e{event}-{k}" for k in range(6)]
        when = start + timedelta(seconds=pick.uniform(0, days * 86400))
        for _ in range(min(pick.randint(1, 6), n - len(documents))):
            noise = rng.standard_normal(DIM).astype(np.float32)
            noise -= (noise @ centre) * centre
            vector = SIMILARITY * centre + np.sqrt(1 - SIMILARITY**2) * noise / np.linalg.norm(noise)
            entities = frozenset(pick.sample(names, 3) + [f"common-{pick.randint(0, 200)}" for _ in range(pick.randint(0, 5))])
            moment = (when + timedelta(hours=pick.uniform(0, 48))).isoformat()
            doc_id = f"doc-{len(documents):06d}"
            documents.append(StoryDocument(doc_id, vector.astype(np.float32), entities, moment, f"outlet-{pick.randint(0, 30)}", f"title {doc_id}", doc_id))
            events.append(event)
        event += 1
    order = sorted(range(n), key=lambda i: documents[i].time)
    return [documents[i] for i in order], [events[i] for i in order]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=10, help="daily runs the documents are committed in (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline-result", type=Path, default=REPO / "benchmarks/results/harness-1000-entities.json")
    args = parser.parse_args(argv)
    documents, events = synthetic_documents(args.docs, args.runs, args.seed)
    per_run = len(documents) // args.runs
    runs, assigned = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for day in range(args.runs):
            ours = documents[day * per_run : (day + 1) * per_run]
            started = time.perf_counter()
            since = (datetime.fromisoformat(ours[0].time) - timedelta(days=WINDOW_DAYS)).isoformat()
            window = read_members(root, since)
            index = StoryIndex(WINDOW_DAYS, member_documents(window))
            placed = [(d, index.assign(d)) for d in ours]
            write_parquet_atomic(index_additions(placed, {}, f"2026-03-{day + 1:02d}T09:00:00+00:00"), root / INDEX_DIR / f"run-{day:03d}.parquet")
            seconds = time.perf_counter() - started
            assigned += [story for _, story in placed]
            runs.append(
                {
                    "run": day,
                    "documents": len(ours),
                    "window": window.num_rows,
                    "ms_per_doc": round(1000 * seconds / len(ours), 3),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        index_bytes = sum(p.stat().st_size for p in (root / INDEX_DIR).glob("*.parquet"))
    from tasks.evaluation.stories import story_metrics

    quality = story_metrics(assigned, [str(e) for e in events[: len(assigned)]])
    pipeline = json.loads(args.pipeline_result.read_text())["pipeline"] if args.pipeline_result.exists() else None
    pipeline_ms = 1000 * pipeline["wall_s"] / pipeline["documents"] if pipeline else None
    last = runs[-1]["ms_per_doc"]
    result = {
        "docs": len(assigned),
        "runs": args.runs,
        "ms_per_doc_last_run": last,
        "index_bytes_per_10000_docs": round(index_bytes * 10000 / len(assigned)),
        "synthetic_quality": quality,
        "pipeline_ms_per_doc": round(pipeline_ms, 1) if pipeline_ms else None,
        "share_of_pipeline": round(last / pipeline_ms, 4) if pipeline_ms else None,
        "per_run": runs,
    }
    out = REPO / f"benchmarks/results/stories-{args.docs}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    share = f"{100 * result['share_of_pipeline']:.2f}%" if pipeline_ms else "n/a"
    print("| documents | ms/doc (last run) | index per 10k docs | share of pipeline | B-cubed F1 (synthetic) |\n|---|---|---|---|---|")
    print(f"| {len(assigned)} | {last:.2f} | {result['index_bytes_per_10000_docs'] / 1e6:.1f} MB | {share} | {quality['bcubed_f1']} |")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

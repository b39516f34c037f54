"""The story index and the `stories` table: each committed document's story, vector and
entities, kept under the output root so that a new article joins a story begun in an
earlier run, and stories are never renumbered.

At the commit (under its lock, after near-duplicate grouping) the run's kept documents
are placed in stories, in order of time, against the index's documents near the run's
dates (their `story_id` goes into the staged `documents` files with the near-duplicate
columns, in one rewrite: flows/run.py); the run's additions to the index are staged under `_index/stories/`, and a `stories` row is staged
for every story the run touched, with its totals over all its documents so far. A story's
latest row (`updated_at`) is its current state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.arrow import column_vectors, row_ranges
from tasks.dataset.near_duplicate_index import utc_time
from tasks.dataset.output import RunContext, write_table
from tasks.dataset.staging import read_shard, table_files, write_parquet_atomic
from tasks.records import ShardRef
from tasks.stages.near_duplicates import Assignment
from tasks.stages.stories import Story, StoryDocument, StoryIndex, document_vector

INDEX_DIR = Path("_index") / "stories"
WINDOW_DAYS = 3.0  # documents within three days of a story's documents may join it

INDEX_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("story_id", pa.string()),
        ("time", pa.string()),  # UTC ISO: published, else when committed
        ("source", pa.string()),
        ("title", pa.string()),
        ("duplicate_group", pa.string()),
        ("entities", pa.list_(pa.string())),
        ("entity_names", pa.list_(pa.string())),
        ("vector", pa.binary()),  # float16 document vector
        ("committed_at", pa.string()),
        ("row", pa.int32()),
    ]
)

STORIES_SCHEMA = pa.schema(
    [
        ("story_id", pa.string()),
        ("first_seen", pa.string()),
        ("last_seen", pa.string()),
        ("n_documents", pa.int32()),
        ("n_copies", pa.int32()),
        ("n_sources", pa.int32()),
        ("sources", pa.list_(pa.string())),
        ("title", pa.string()),
        ("top_entities", pa.list_(pa.string())),
        ("updated_at", pa.string()),
    ]
)


def read_members(output_root: str | Path, since: str = "", story_ids: set[str] | None = None) -> pa.Table:
    """Index rows with `time` at or after `since`, or of the given stories, in the order first seen."""
    files = table_files(Path(output_root) / INDEX_DIR)
    if not files:
        return INDEX_SCHEMA.empty_table()
    table = pa.concat_tables([pq.read_table(path, schema=INDEX_SCHEMA) for path in files])
    if story_ids is not None:
        table = table.filter(pc.is_in(table.column("story_id"), pa.array(sorted(story_ids), pa.string())))
    elif since:
        table = table.filter(pc.greater_equal(table.column("time"), since))
    return table.sort_by([("committed_at", "ascending"), ("row", "ascending")])


def held_stories(output_root: str | Path) -> dict[str, str]:
    """doc_id -> story_id of every document the index holds, however old (two columns read)."""
    held: dict[str, str] = {}
    for path in table_files(Path(output_root) / INDEX_DIR):
        table = pq.read_table(path, columns=["doc_id", "story_id"])
        held.update(zip(table.column("doc_id").to_pylist(), table.column("story_id").to_pylist()))
    return held


def member_documents(table: pa.Table) -> list[tuple[StoryDocument, str]]:
    rows = table.to_pylist()
    return [
        (
            StoryDocument(
                r["doc_id"],
                np.frombuffer(r["vector"], np.float16).astype(np.float32),
                frozenset(r["entities"]),
                r["time"],
                r["source"] or "",
                r["title"] or "",
                r["duplicate_group"],
            ),
            r["story_id"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class RunDocuments:
    """What placing a run's documents in stories needs, read before the commit's lock."""

    documents: list[StoryDocument]
    entity_names: dict[str, dict[str, str]]  # doc_id -> entity_id -> name


def run_documents(deduplicated: Sequence[ShardRef], encoded: Sequence[ShardRef], committed_at: str) -> RunDocuments:
    """Each document's vector (the mean of its sentence vectors), entities, time and source."""
    vectors: dict[str, np.ndarray] = {}
    names: dict[str, dict[str, str]] = {}
    for ref in encoded:
        sentences = read_shard(ref, ["doc_id", "embedding"])
        all_vectors = column_vectors(sentences, "embedding")
        for doc_id, rows in row_ranges(sentences.column("doc_id").to_pylist()):
            vectors[doc_id] = document_vector(all_vectors[rows])
        entities = read_shard(ref, ["doc_id", "entity_id", "name"], "entities")
        for doc_id, entity_id, name in zip(*(entities.column(c).to_pylist() for c in ("doc_id", "entity_id", "name"))):
            names.setdefault(doc_id, {})[entity_id] = name
    documents = []
    for ref in sorted(deduplicated, key=lambda r: r.index):
        table = read_shard(ref, ["doc_id", "published", "source", "title"])
        for doc_id, published, source, title in zip(*(table.column(c).to_pylist() for c in ("doc_id", "published", "source", "title"))):
            if doc_id in vectors:
                entities = frozenset(names.get(doc_id, {}))
                documents.append(StoryDocument(doc_id, vectors[doc_id], entities, utc_time(published, committed_at), source or "", title or "", doc_id))
    return RunDocuments(documents, names)


def index_additions(placed: list[tuple[StoryDocument, str]], entity_names: dict[str, dict[str, str]], committed_at: str) -> pa.Table:
    """Index rows for documents placed in stories, in the order placed."""
    rows = [
        {
            "doc_id": d.doc_id,
            "story_id": story_id,
            "time": d.time,
            "source": d.source,
            "title": d.title,
            "duplicate_group": d.duplicate_group,
            "entities": sorted(d.entities),
            "entity_names": [entity_names.get(d.doc_id, {}).get(e, e) for e in sorted(d.entities)],
            "vector": d.vector.astype(np.float16).tobytes(),
            "committed_at": committed_at,
            "row": row,
        }
        for row, (d, story_id) in enumerate(placed)
    ]
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def story_row(story: Story, names: dict[str, str], updated_at: str) -> dict:
    first, last = min(story.times), max(story.times)
    return {
        "story_id": story.story_id,
        "first_seen": first,
        "last_seen": last,
        "n_documents": len(story.doc_ids),
        "n_copies": len(story.doc_ids) - len(story.groups),
        "n_sources": len(story.sources),
        "sources": sorted(story.sources),
        "title": story.title,
        "top_entities": [names.get(e, e) for e in story.top_entities()],
        "updated_at": updated_at,
    }


@dataclass
class RunStories:
    """The commit's story step for a run (after near-duplicate grouping, whose groups it
    reads so that copies share a story). Keeps the stories it assigned for the run record."""

    context: RunContext
    run: RunDocuments
    assigned: dict[str, str] = field(default_factory=dict)
    touched: int = 0
    seconds: float = 0.0

    def __call__(self, kept: set[str], groups: list[Assignment]) -> list[str]:
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        group_of = {a.doc_id: a.duplicate_group for a in groups}
        held = held_stories(self.context.output_root)  # a rerun's documents keep their stories, and are not added again
        ours = sorted(
            (
                StoryDocument(d.doc_id, d.vector, d.entities, d.time, d.source, d.title, group_of.get(d.doc_id, d.doc_id))
                for d in self.run.documents
                if d.doc_id in kept and d.doc_id not in held
            ),
            key=lambda d: d.time,
        )
        since = (datetime.fromisoformat(ours[0].time) - timedelta(days=WINDOW_DAYS)).isoformat() if ours else ""
        index = StoryIndex(WINDOW_DAYS, member_documents(read_members(self.context.output_root, since)) if ours else [])
        self.assigned = {**{d: held[d] for d in kept if d in held}, **{d.doc_id: index.assign(d) for d in ours}}
        staged = self.stage_tables(ours, now) if ours else []
        self.seconds = time.perf_counter() - started
        return staged

    def stage_tables(self, ours: list[StoryDocument], now: str) -> list[str]:
        """The run's index additions and a `stories` row per story it touched (totals over all its documents)."""
        additions = index_additions([(d, self.assigned[d.doc_id]) for d in ours], self.run.entity_names, now)
        staged_index = Path(self.context.staging) / "output" / INDEX_DIR / f"{self.context.run_id}.parquet"
        paths = [str(write_parquet_atomic(additions, staged_index, self.context.file_metadata(), self.context.compression))]
        touched = {self.assigned[d.doc_id] for d in ours}
        everyone = pa.concat_tables([read_members(self.context.output_root, story_ids=touched), additions])
        whole = StoryIndex(WINDOW_DAYS, member_documents(everyone))  # placed as recorded: the window plays no part
        names = {e: n for ids, ns in zip(everyone.column("entities").to_pylist(), everyone.column("entity_names").to_pylist()) for e, n in zip(ids, ns)}
        table = pa.Table.from_pylist([story_row(whole.stories[s], names, now) for s in sorted(touched)], schema=STORIES_SCHEMA)
        self.touched = table.num_rows
        path, _ = write_table(self.context, "stories", "all", table, staged=True)
        paths.append(str(path))
        return paths

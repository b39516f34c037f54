"""The near-duplicate index: every committed document's MinHash signature and group, kept
under the output root so that a copy is recognised in whichever run it arrives.

A run groups the documents it commits (under the commit's lock, so two runs never miss
each other's copies), writes its additions as one Parquet file in its staging folder, and
the commit moves that file into `_index/near_duplicates/<settings>/` with the run's
tables. Readers of the dataset skip the underscore folder. The `duplicate_group` and
`canonical_doc_id` it decides go into the staged `documents` files with the stories'
`story_id`, in one rewrite (flows/run.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.config import DuplicatesConfig
from tasks.dataset.output import RunContext
from tasks.dataset.staging import read_shard, table_files, write_parquet_atomic
from tasks.records import ShardRef
from tasks.stages.near_duplicates import Assignment, Known, NearDuplicateIndex, signatures

INDEX_DIR = Path("_index") / "near_duplicates"


def index_folder(output_root: str | Path, settings: DuplicatesConfig) -> Path:
    """One folder per shingle size and permutation count: signatures made otherwise cannot be compared."""
    return Path(output_root) / INDEX_DIR / f"words{settings.shingle_words}-perm{settings.num_perm}"


def index_schema(settings: DuplicatesConfig) -> pa.Schema:
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("duplicate_group", pa.string()),
            ("published", pa.string()),
            ("committed_at", pa.string()),
            ("row", pa.int32()),
            ("n_shingles", pa.int32()),
            ("signature", pa.binary(4 * settings.num_perm)),  # num_perm little-endian uint32
        ]
    )


def read_index(output_root: str | Path, settings: DuplicatesConfig, since: str = "") -> list[Known]:
    """The documents committed at or after `since` (an ISO UTC time; all when empty), in the
    order they were first seen (commit time, then row)."""
    filters = [("committed_at", ">=", since)] if since else None
    tables = [pq.read_table(path, filters=filters) for path in table_files(index_folder(output_root, settings))]
    if not tables:
        return []
    table = pa.concat_tables(tables).sort_by([("committed_at", "ascending"), ("row", "ascending")])
    rows = table.select(["doc_id", "duplicate_group", "published", "n_shingles", "signature"]).to_pylist()
    return [
        Known(r["doc_id"], np.frombuffer(r["signature"], "<u4"), r["n_shingles"], r["duplicate_group"], r["published"], order) for order, r in enumerate(rows)
    ]


@dataclass(frozen=True)
class RunSignatures:
    """The signatures of a run's documents, made before the commit (outside its lock)."""

    doc_ids: list[str]
    published: list[str]
    signatures: np.ndarray
    n_shingles: np.ndarray
    seconds: float


def published_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else ""


def utc_time(value: object, fallback: str) -> str:
    """An ISO time in UTC ("+00:00"), so that times sort and compare as strings; a date
    alone counts as its midnight, an unreadable or missing value as `fallback`."""
    text = published_text(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def run_signatures(deduplicated: Sequence[ShardRef], settings: DuplicatesConfig) -> RunSignatures:
    """Signatures of the documents that survived exact deduplication, in shard order."""
    started = time.perf_counter()
    doc_ids: list[str] = []
    published: list[str] = []
    bodies: list[list[str]] = []
    for ref in sorted(deduplicated, key=lambda r: r.index):
        table = read_shard(ref, ["doc_id", "sentences", "published"])
        doc_ids += table.column("doc_id").to_pylist()
        published += [utc_time(v, "") for v in table.column("published").to_pylist()]  # offsets compared in UTC
        bodies += table.column("sentences").to_pylist()
    found, counts = signatures(bodies, settings)
    return RunSignatures(doc_ids, published, found, counts, time.perf_counter() - started)


def held_groups(output_root: str | Path, settings: DuplicatesConfig) -> dict[str, str]:
    """doc_id -> duplicate_group of every document the index holds, however old (two columns read)."""
    held: dict[str, str] = {}
    for path in table_files(index_folder(output_root, settings)):
        table = pq.read_table(path, columns=["doc_id", "duplicate_group"])
        held.update(zip(table.column("doc_id").to_pylist(), table.column("duplicate_group").to_pylist()))
    return held


def group_documents(run: RunSignatures, kept: set[str], known: list[Known], settings: DuplicatesConfig, held: dict[str, str] | None = None) -> list[Assignment]:
    """Each kept document's group and canonical member, in the run's order, after every
    document committed before it. A document the index holds already (a rerun under
    another analysis) keeps its group, even when it was committed before the window.
    (Rows committed by earlier runs keep the canonical member they were written with; the
    group id never changes.)"""
    index = NearDuplicateIndex(settings, known)
    order = len(known)
    out = []
    for row, doc_id in enumerate(run.doc_ids):
        if doc_id not in kept:
            continue
        document = Known(doc_id, run.signatures[row], int(run.n_shingles[row]), (held or {}).get(doc_id, ""), run.published[row], order + row)
        if document.duplicate_group and doc_id not in index.documents:
            index.add(document)  # held, but committed before the window: placed as recorded
        out.append(index.assign(document))
    # Each row names its group's canonical member as known when the run commits, so that a
    # copy published earlier but read later in the run leads the rows read before it too.
    return [replace(a, canonical_doc_id=index.canonical[a.duplicate_group].doc_id) for a in out]


def index_rows(run: RunSignatures, assignments: list[Assignment], committed_at: str, settings: DuplicatesConfig) -> pa.Table:
    """The run's additions to the index."""
    row_of = {doc_id: row for row, doc_id in enumerate(run.doc_ids)}
    rows = [row_of[a.doc_id] for a in assignments]
    return pa.Table.from_pydict(
        {
            "doc_id": [a.doc_id for a in assignments],
            "duplicate_group": [a.duplicate_group for a in assignments],
            "published": [run.published[r] for r in rows],
            "committed_at": [committed_at] * len(rows),
            "row": list(range(len(rows))),
            "n_shingles": [int(run.n_shingles[r]) for r in rows],
            "signature": [run.signatures[r].astype("<u4").tobytes() for r in rows],
        },
        schema=index_schema(settings),
    )


@dataclass
class RunGrouping:
    """The commit's near-duplicate step for a run: group its kept documents against the
    committed index and stage the index additions. Keeps what it assigned (the documents'
    group columns) and how long it took, for the run record."""

    context: RunContext
    run: RunSignatures
    settings: DuplicatesConfig
    assignments: list[Assignment] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # doc_id -> group of what the index held before this commit
    seconds: float = 0.0

    def __call__(self, kept: set[str]) -> list[str]:
        started = time.perf_counter()
        now = datetime.now(UTC)
        window = read_index(self.context.output_root, self.settings, since=(now - timedelta(days=self.settings.window_days)).isoformat())
        self.held = held_groups(self.context.output_root, self.settings)
        self.assignments = group_documents(self.run, kept, window, self.settings, self.held)
        staged = []
        new = [a for a in self.assignments if a.doc_id not in self.held]  # the index holds each document once
        if new:
            path = Path(self.context.staging) / "output" / index_folder("", self.settings) / f"{self.context.run_id}.parquet"
            additions = index_rows(self.run, new, now.isoformat(), self.settings)
            staged.append(str(write_parquet_atomic(additions, path, self.context.file_metadata(), self.context.compression)))
        self.seconds = self.run.seconds + time.perf_counter() - started
        return staged

    def document_columns(self) -> dict[str, dict[str, str]]:
        """The `documents` columns it decided, by doc_id."""
        return {
            "duplicate_group": {a.doc_id: a.duplicate_group for a in self.assignments},
            "canonical_doc_id": {a.doc_id: a.canonical_doc_id for a in self.assignments},
        }

    @property
    def copies(self) -> int:
        """Documents of the run that joined a group begun by another document."""
        return sum(a.duplicate_group != a.doc_id for a in self.assignments if a.doc_id not in self.held)

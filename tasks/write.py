"""Write stage: a shard's results joined into the output tables, written as Parquet
beside the dataset (in the run's staging folder) until the run commits them
(tasks/commit.py), Hive-partitioned by run date so every run reads as one dataset."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.records import ShardRef
from tasks.retries import stage_task_options
from tasks.staging import SCHEMA_VERSION, read_shard, this_process, write_parquet_atomic

RESULT_TABLES = ("documents", "stances", "sentences")  # hold each (doc_id, analysis) once across runs
DOCUMENT_COLUMNS = ["doc_id", "origin", "source", "title", "authors", "published", "url", "language", "text"]


@dataclass(frozen=True)
class RunContext:
    """What every output file needs to know about the run that writes it."""

    run_id: str
    started_at: datetime
    output_root: str
    config_sha256: str
    compression: str = "zstd"
    write_sentences: bool = True
    staging: str = ""  # the run's staging folder: shard outputs wait there until the run commits
    analysis_sha256: str = ""  # what decides a row's content: see flows/pipeline.analysis_fingerprint

    @property
    def run_date(self) -> str:
        return self.started_at.astimezone(timezone.utc).date().isoformat()

    def relative_path(self, table: str, part: str) -> Path:
        """Where a file lives inside the dataset. Only the run id (from Prefect) and shard
        numbers name files: nothing a document supplies can steer a path."""
        return Path(table) / f"run_date={self.run_date}" / f"{self.run_id}-{part}.parquet"

    def table_path(self, table: str, part: str) -> Path:
        return inside(Path(self.output_root), self.relative_path(table, part))

    def staged_path(self, table: str, part: str) -> Path:
        return inside(Path(self.staging) / "output", self.relative_path(table, part))

    def file_metadata(self) -> dict[str, str]:
        return {"newsflow.run_id": self.run_id, "newsflow.schema_version": SCHEMA_VERSION, "newsflow.config_sha256": self.config_sha256}


def inside(root: Path, relative: Path) -> Path:
    """root / relative, refusing any path that would land outside root."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"output path {relative} escapes the output root {root}")
    return root / relative


def write_table(context: RunContext, name: str, part: str, table: pa.Table, staged: bool = False) -> tuple[str, int]:
    """Write one output file (with the run's id as a column and in the file metadata; result
    tables also carry the analysis fingerprint), into the dataset or, `staged`, beside it."""
    table = table.append_column("run_id", pa.array([context.run_id] * table.num_rows, pa.string()))
    if name in RESULT_TABLES:
        table = table.append_column("analysis_sha256", pa.array([context.analysis_sha256] * table.num_rows, pa.string()))
    target = context.staged_path(name, part) if staged else context.table_path(name, part)
    path = write_parquet_atomic(table, target, context.file_metadata(), context.compression)
    return str(path), table.num_rows


def align_rows(table: pa.Table, doc_ids: list[str]) -> pa.Table:
    """`table`'s rows (one per doc_id) in the order of `doc_ids`, without its doc_id column.
    (Arrow's hash join cannot carry list columns such as authors, so rows are aligned.)"""
    row_of = {doc_id: row for row, doc_id in enumerate(table.column("doc_id").to_pylist())}
    return table.take(pa.array([row_of[d] for d in doc_ids], pa.int64())).drop_columns(["doc_id"])


def join_documents(clean: pa.Table, summaries: pa.Table, sentiment: pa.Table) -> pa.Table:
    documents = clean.select(DOCUMENT_COLUMNS).append_column(
        "n_sentences", pc.list_value_length(clean.column("sentences")).cast(pa.int32())
    )
    doc_ids = documents.column("doc_id").to_pylist()
    for extra in (summaries, sentiment):
        aligned = align_rows(extra, doc_ids)
        for name in aligned.column_names:
            documents = documents.append_column(name, aligned.column(name))
    return documents


def write_shard_outputs(
    clean: ShardRef, encoded: ShardRef, summaries: ShardRef, sentiment: ShardRef, stances: ShardRef, context: RunContext
) -> ShardRef:
    started = time.perf_counter()
    part = f"{clean.index:05d}"
    documents = join_documents(read_shard(clean), read_shard(summaries), read_shard(sentiment))
    written = {"documents": write_table(context, "documents", part, documents, staged=True),
               "stances": write_table(context, "stances", part, read_shard(stances), staged=True)}
    if context.write_sentences:
        sentences = read_shard(encoded, ["doc_id", "sentence_index", "text"]).join(
            read_shard(sentiment, part="sentences"), ["doc_id", "sentence_index"], join_type="left outer"
        ).sort_by([("doc_id", "ascending"), ("sentence_index", "ascending")])
        written["sentences"] = write_table(context, "sentences", part, sentences, staged=True)
    return ShardRef(
        stage="write", index=clean.index, path=written["documents"][0], rows=written["documents"][1], content_hash="",
        parts={name: path for name, (path, _) in written.items()}, seconds=round(time.perf_counter() - started, 3), computed_by=this_process(),
    )


write_task = task(write_shard_outputs, name="write", cache_policy=NO_CACHE, persist_result=False, **stage_task_options())

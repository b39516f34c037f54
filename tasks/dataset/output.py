"""Writing output files: what each file knows of its run (RunContext), where it lives in
the dataset (Hive-partitioned by run date, so every run reads as one dataset), and a
shard's result tables written beside the dataset (in the run's staging folder) until the
run commits them (tasks/dataset/commit.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.staging import SCHEMA_VERSION, read_shard, this_process, write_parquet_atomic
from tasks.records import ShardRef
from tasks.stages.write import RESULT_TABLES, joined_tables


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
    analysis_sha256: str = ""  # what decides a row's content: see tasks/analysis_key.py
    reanalyze: bool = False  # documents the output holds under another analysis are analysed again

    @property
    def run_date(self) -> str:
        return self.started_at.astimezone(UTC).date().isoformat()

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


def write_table(context: RunContext, name: str, part: str, table: pa.Table, staged: bool = False, result: bool | None = None) -> tuple[str, int]:
    """Write one output file (with the run's id as a column and in the file metadata; result
    tables, RESULT_TABLES unless `result` says, also carry the analysis key), into the
    dataset or, `staged`, beside it."""
    table = table.append_column("run_id", pa.array([context.run_id] * table.num_rows, pa.string()))
    if result or (result is None and name in RESULT_TABLES):
        table = table.append_column("analysis_sha256", pa.array([context.analysis_sha256] * table.num_rows, pa.string()))
    target = context.staged_path(name, part) if staged else context.table_path(name, part)
    path = write_parquet_atomic(table, target, context.file_metadata(), context.compression)
    return str(path), table.num_rows


def write_shard_outputs(
    clean: ShardRef, encoded: ShardRef, summaries: ShardRef, sentiment: ShardRef, whole: dict[str, tuple[ShardRef, str | None]], context: RunContext
) -> ShardRef:
    """Stage a shard's output tables: the joined ones, then each `whole` table (output name
    -> the shard and part it is). Every table keeps each document's rows, by doc_id."""
    started = time.perf_counter()
    part = f"{clean.index:05d}"
    tables = joined_tables(
        read_shard(clean),
        read_shard(summaries),
        read_shard(sentiment),
        read_shard(encoded, ["doc_id", "sentence_index", "text"]) if context.write_sentences else None,
        read_shard(sentiment, part="sentences") if context.write_sentences else None,
    )
    tables.update({name: read_shard(ref, part=part) for name, (ref, part) in whole.items()})
    order = ["documents", *whole, "sentences"]  # documents first: commit reads it to decide what a run adds
    written = {name: write_table(context, name, part, tables[name], staged=True, result=True) for name in order if name in tables}
    return ShardRef(
        stage="write",
        index=clean.index,
        path=written["documents"][0],
        rows=written["documents"][1],
        content_hash="",
        parts={name: path for name, (path, _) in written.items()},
        seconds=round(time.perf_counter() - started, 3),
        computed_by=this_process(),
    )


def add_document_columns(refs: Sequence[ShardRef], columns: dict[str, dict[str, str]], compression: str) -> None:
    """Add string columns to staged `documents` files, each file read and rewritten once; a
    document a column has no value for names itself (it is one the commit leaves out)."""
    for ref in refs:
        path = Path(ref.parts["documents"])
        documents = pq.read_table(path)
        doc_ids = documents.column("doc_id").to_pylist()
        documents = documents.drop_columns([name for name in columns if name in documents.column_names])
        for name, values in columns.items():
            documents = documents.append_column(name, pa.array([values.get(d, d) for d in doc_ids], pa.string()))
        write_parquet_atomic(documents, path, compression=compression)

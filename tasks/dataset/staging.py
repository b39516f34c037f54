"""Staging files: how stages hand each other a shard's data (Parquet on local disk),
and the atomic write that every output file goes through."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.rejected import rejections_table
from tasks.records import Rejection, ShardRef

SCHEMA_VERSION = "1"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_parquet_atomic(table: pa.Table, path: Path, metadata: dict[str, str] | None = None, compression: str = "zstd") -> Path:
    """Write beside the target under a dot-name readers ignore, then rename: a reader
    sees the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata:
        merged = {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in metadata.items()}}
        table = table.replace_schema_metadata(merged)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression=None if compression == "none" else compression)
    os.replace(tmp, path)
    return path


def table_files(folder: Path) -> list[Path]:
    """A dataset table's Parquet files, sorted, without the dot- and underscore-names that
    readers skip (files being written, journals)."""
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_"))) if folder.is_dir() else []


def this_process() -> str:
    """host:pid, for ShardRef.computed_by."""
    return f"{socket.gethostname()}:{os.getpid()}"


def staging_root(output_root: str | Path) -> Path:
    """Where runs keep their staging folders (`_staging/<run_id>/`), beside the dataset."""
    return Path(output_root) / "_staging"


def remove_staging(staging: Path) -> None:
    """Remove a run's staging folder, and `_staging` itself once no run is using it."""
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()
    except OSError:
        pass


def staging_path(staging_dir: Path, stage: str, index: int, suffix: str = "") -> Path:
    return staging_dir / stage / f"shard-{index:05d}{suffix}.parquet"


def write_shard(
    staging_dir: Path,
    stage: str,
    index: int,
    table: pa.Table,
    rejected: pa.Table | None = None,
    started: float | None = None,
    parts: dict[str, pa.Table] | None = None,
) -> ShardRef:
    """Write a stage's output for one shard (its main table, further named parts, and
    what it rejected) and describe it."""
    path = write_parquet_atomic(table, staging_path(staging_dir, stage, index), compression="none")
    part_paths = {
        name: str(write_parquet_atomic(part, staging_path(staging_dir, stage, index, f"-{name}"), compression="none")) for name, part in (parts or {}).items()
    }
    rejected_path = None
    if rejected is not None and rejected.num_rows:
        rejected_path = str(write_parquet_atomic(rejected, staging_path(staging_dir, stage, index, "-rejected"), compression="none"))
    return ShardRef(
        stage=stage,
        index=index,
        path=str(path),
        rows=table.num_rows,
        content_hash=file_sha256(path),
        parts=part_paths,
        rejected_path=rejected_path,
        rejected_rows=0 if rejected is None else rejected.num_rows,
        seconds=0.0 if started is None else round(time.perf_counter() - started, 3),
        computed_by=this_process(),
    )


def write_records_shard(
    staging_dir: Path, stage: str, index: int, rows: list[dict], schema: pa.Schema, rejections: list[Rejection], started: float
) -> ShardRef:
    """The shard of a stage that sorts records into kept rows and rejections (ingest, clean)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    return write_shard(staging_dir, stage, index, table, rejected=rejections_table(rejections), started=started)


def read_shard(ref: ShardRef, columns: list[str] | None = None, part: str | None = None) -> pa.Table:
    return pq.read_table(ref.parts[part] if part else ref.path, columns=columns)


def part_rows(ref: ShardRef, part: str) -> int:
    """Rows of one further table of a shard, from its footer (0 when the shard has none)."""
    return pq.read_metadata(ref.parts[part]).num_rows if part in ref.parts else 0

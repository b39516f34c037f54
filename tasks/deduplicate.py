"""Exact-duplicate removal across all shards of a run: the first document with a given
doc_id (sha256 of its normalised text) is kept, later ones (in shard order) are rejected
as `duplicate`.
In an incremental run, documents already in the output's `documents` table are skipped
(counted in the run record, not processed again)."""
from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.records import Rejection, RejectReason, ShardRef
from tasks.rejected import rejections_table
from tasks.staging import read_shard, write_shard

STAGE = "deduplicate"


def find_duplicates(shards: list[pa.Table]) -> list[dict[int, Rejection]]:
    """For each shard (tables with doc_id and origin), the rows that repeat an earlier
    document, by row number."""
    first_origin: dict[str, str] = {}
    found: list[dict[int, Rejection]] = []
    for table in shards:
        duplicates = {}
        for row, (doc_id, origin) in enumerate(zip(table.column("doc_id").to_pylist(), table.column("origin").to_pylist())):
            if doc_id in first_origin:
                duplicates[row] = Rejection(origin, RejectReason.DUPLICATE, f"same text as {first_origin[doc_id]} (doc_id {doc_id[:12]})", STAGE)
            else:
                first_origin[doc_id] = origin
        found.append(duplicates)
    return found


def known_doc_ids(output_root: str) -> set[str]:
    """The doc_ids already in the output's documents table: one column of its Parquet files."""
    folder = Path(output_root) / "documents"
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    return {doc_id for f in files for doc_id in pq.read_table(f, columns=["doc_id"]).column("doc_id").to_pylist()}


@lru_cache(maxsize=1)
def known_doc_ids_for_run(output_root: str, staging_dir: str) -> frozenset[str]:
    """known_doc_ids read once per run (and process), not once per shard: the staging folder
    is unique to a run, and the output only changes when the run writes its own shards."""
    return frozenset(known_doc_ids(output_root))


def deduplicate_shard(shard: ShardRef, earlier: list[ShardRef], staging_dir: str, skip_known_in: str | None = None) -> ShardRef:
    """Reject the rows of `shard` that repeat a document of an `earlier` shard of the run or
    an earlier row of its own; only the keys of earlier shards are read, and the shard is
    rewritten only if it loses rows. `skip_known_in`: an output root whose documents are
    skipped (incremental runs). One task per shard, so encoding a shard need not wait for
    the whole run to be cleaned."""
    started = time.perf_counter()
    known = known_doc_ids_for_run(skip_known_in, staging_dir) if skip_known_in else frozenset()
    keys = [read_shard(ref, ["doc_id", "origin"]) for ref in [*earlier, shard]]
    duplicates = find_duplicates(keys)[-1]
    doc_ids = keys[-1].column("doc_id").to_pylist()
    skipped = {row for row, doc_id in enumerate(doc_ids) if doc_id in known} - set(duplicates)
    if not duplicates and not skipped:  # the clean shard stands as it is; its time stays clean's
        return replace(shard, stage=STAGE, seconds=0.0)
    table = read_shard(shard)
    kept = table.filter(pa.array([row not in duplicates and row not in skipped for row in range(table.num_rows)]))
    rejected = rejections_table(list(duplicates.values()))
    if shard.rejected_path:  # keep what cleaning rejected in this shard too
        rejected = pa.concat_tables([pq.read_table(shard.rejected_path).cast(rejected.schema), rejected])
    written = write_shard(Path(staging_dir), STAGE, shard.index, kept, rejected=rejected if rejected.num_rows else None, started=started)
    return replace(written, skipped_rows=len(skipped))


def deduplicate_shards(shards: list[ShardRef], staging_dir: str, skip_known_in: str | None = None) -> list[ShardRef]:
    """deduplicate_shard over a run's shards in order."""
    return [deduplicate_shard(ref, shards[:i], staging_dir, skip_known_in) for i, ref in enumerate(shards)]


deduplicate_task = task(deduplicate_shard, name="deduplicate", cache_policy=NO_CACHE, persist_result=False)

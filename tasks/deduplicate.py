"""Exact-duplicate removal across all shards of a run: the first document with a given
doc_id (sha256 of its normalised text) is kept, later ones are rejected as `duplicate`."""
from __future__ import annotations

import time
from dataclasses import replace
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


def deduplicate_shards(shards: list[ShardRef], staging_dir: str) -> list[ShardRef]:
    """Only the keys are read for the whole run; a shard is rewritten only if it holds a duplicate."""
    started = time.perf_counter()
    keys = [read_shard(ref, ["doc_id", "origin"]) for ref in shards]
    result = []
    for ref, duplicates in zip(shards, find_duplicates(keys)):
        if not duplicates:  # the clean shard stands as it is; its time stays clean's
            result.append(replace(ref, stage=STAGE, seconds=0.0))
            continue
        table = read_shard(ref)
        kept = table.filter(pa.array([row not in duplicates for row in range(table.num_rows)]))
        rejected = rejections_table(list(duplicates.values()))
        if ref.rejected_path:  # keep what cleaning rejected in this shard too
            rejected = pa.concat_tables([pq.read_table(ref.rejected_path).cast(rejected.schema), rejected])
        result.append(write_shard(Path(staging_dir), STAGE, ref.index, kept, rejected=rejected, started=started))
    return result


deduplicate_task = task(deduplicate_shards, name="deduplicate", cache_policy=NO_CACHE, persist_result=False)

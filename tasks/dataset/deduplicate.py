"""Exact-duplicate removal: the first document with a given doc_id (sha256 of its
normalised text) is kept, later ones in the run (in shard order) are rejected as
`duplicate`, and so are documents the output already holds (under any analysis, or with
`run.reanalyze` under this one), before they cost any encoding."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.commit import Holder, already_in_output, analyses_in_output, holder_of
from tasks.dataset.rejected import rejections_table
from tasks.dataset.staging import read_shard, write_shard
from tasks.records import Rejection, RejectReason, ShardRef

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


@lru_cache(maxsize=4)
def holders_for_run(output_root: str, analysis_sha256: str, reanalyze: bool, staging_dir: str) -> dict[str, Holder]:
    """doc_id -> the run that holds it, read once per run (and process), not once per shard:
    the staging folder is unique to a run, and the run's own documents reach the output
    only when it commits. Documents another run commits meanwhile are caught at commit."""
    held = analyses_in_output(output_root)
    return {doc_id: holder for doc_id, analyses in held.items() if (holder := holder_of(analyses, analysis_sha256, reanalyze))}


def deduplicate_shard(shard: ShardRef, earlier: list[ShardRef], staging_dir: str, known_in: tuple[str, str, bool] | None = None) -> ShardRef:
    """Reject the rows of `shard` that repeat a document of an `earlier` shard of the run,
    an earlier row of its own, or (`known_in` = (output root, analysis fingerprint,
    reanalyze)) a document the output already holds. Only the keys of earlier shards are
    read, and the shard is rewritten only if it loses rows. One task per shard, so encoding
    a shard need not wait for the whole run to be cleaned."""
    started = time.perf_counter()
    known = holders_for_run(*known_in, staging_dir) if known_in else {}
    keys = [read_shard(ref, ["doc_id", "origin"]) for ref in [*earlier, shard]]
    duplicates = find_duplicates(keys)[-1]
    for row, (doc_id, origin) in enumerate(zip(keys[-1].column("doc_id").to_pylist(), keys[-1].column("origin").to_pylist())):
        if doc_id in known and row not in duplicates:
            duplicates[row] = already_in_output(origin, doc_id, known[doc_id], STAGE)
    if not duplicates:  # the clean shard stands as it is; its time stays clean's
        return replace(shard, stage=STAGE, seconds=0.0)
    table = read_shard(shard)
    kept = table.filter(pa.array([row not in duplicates for row in range(table.num_rows)]))
    rejected = rejections_table([duplicates[row] for row in sorted(duplicates)])
    if shard.rejected_path:  # keep what cleaning rejected in this shard too
        rejected = pa.concat_tables([pq.read_table(shard.rejected_path).cast(rejected.schema), rejected])
    return write_shard(Path(staging_dir), STAGE, shard.index, kept, rejected=rejected, started=started)

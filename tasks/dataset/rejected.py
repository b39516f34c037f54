"""Rejected records: the staging table every stage writes, and the run's `rejected` output."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.records import Rejection, ShardRef

REJECTED_SCHEMA = pa.schema([("origin", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("stage", pa.string())])


def rejections_table(rejections: list[Rejection]) -> pa.Table:
    return pa.Table.from_pylist([r.to_row() for r in rejections], schema=REJECTED_SCHEMA)


def collect_rejected(refs: list[ShardRef], extra: list[Rejection]) -> pa.Table:
    """Every stage's rejections of a run, in one table."""
    tables = [pq.read_table(ref.rejected_path).cast(REJECTED_SCHEMA) for ref in refs if ref.rejected_path]
    return pa.concat_tables([rejections_table(extra), *tables])


def count_reasons(table: pa.Table) -> dict[str, int]:
    return dict(sorted(Counter(table.column("reason").to_pylist()).items()))

"""Entity timelines: `entity_daily`, one row per entity, day and source with its documents,
mentions, mean stance and the sentiment of the documents naming it.

After a run commits, the days its documents fall on are counted again from everything
committed (each document's latest analysis, and each group of copies once: its canonical
document stands for it), under the output's lock so that two runs never write from
different views of one day. The rows are appended with `updated_at`; the newest row per
(entity_id, day, source) is current."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tasks.dataset.commit import output_lock
from tasks.dataset.committed import UNKNOWN_SOURCE, counted_documents, latest_analysis, one_per_group, read_table
from tasks.dataset.output import RunContext, write_table

LABELS = ("against", "neutral", "favor")
SENTIMENTS = ("negative", "neutral", "positive")

ENTITY_DAILY_SCHEMA = pa.schema(
    [
        ("entity_id", pa.string()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("day", pa.string()),
        ("source", pa.string()),
        ("n_documents", pa.int32()),
        ("n_mentions", pa.int32()),
        *[(f"p_{label}", pa.float32()) for label in LABELS],
        *[(f"n_{sentiment}", pa.int32()) for sentiment in SENTIMENTS],
        ("updated_at", pa.string()),
    ]
)


DOCUMENT_COLUMNS = ["doc_id", "origin", "source", "published", "sentiment", "duplicate_group", "canonical_doc_id", "analysis_sha256", "run_id"]


def committed_with_days(root: Path) -> pd.DataFrame:
    """Every committed row of `documents` (all analyses), with its day and commit order."""
    documents = read_table(root, "documents", DOCUMENT_COLUMNS)
    if documents.empty:
        return documents.assign(day=pd.Series(dtype=object), order=pd.Series(dtype=object))
    return counted_documents(documents, read_table(root, "runs", ["run_id", "started_at"]))


def entity_daily_rows(documents: pd.DataFrame, stances: pd.DataFrame, updated_at: str) -> pa.Table:
    """The timeline rows of these documents (one per group already) from their stances."""
    joined = stances.merge(documents[["doc_id", "analysis_sha256", "day", "source", "sentiment"]], on=["doc_id", "analysis_sha256"])
    if joined.empty:
        return ENTITY_DAILY_SCHEMA.empty_table()
    joined["source"] = joined.source.fillna(UNKNOWN_SOURCE).replace("", UNKNOWN_SOURCE)
    for sentiment in SENTIMENTS:
        joined[f"n_{sentiment}"] = (joined.sentiment == sentiment).astype(int)
    grouped = joined.groupby(["entity_id", "day", "source"], sort=True)
    table = grouped.agg(
        name=("target", "first"),
        type=("type", "first"),
        n_documents=("doc_id", "nunique"),
        n_mentions=("n_mentions", "sum"),
        **{f"p_{label}": (f"p_{label}", "mean") for label in LABELS},
        **{f"n_{s}": (f"n_{s}", "sum") for s in SENTIMENTS},
    ).reset_index()
    table["updated_at"] = updated_at
    return pa.Table.from_pandas(table[ENTITY_DAILY_SCHEMA.names], schema=ENTITY_DAILY_SCHEMA, preserve_index=False)


@dataclass(frozen=True)
class TimelineUpdate:
    path: str | None  # the entity_daily file written, if any
    rows: int = 0
    seconds: float = 0.0


def update_entity_daily(context: RunContext, added_doc_ids: set[str]) -> TimelineUpdate:
    """Recount the days of the documents a run added."""
    if not added_doc_ids:
        return TimelineUpdate(None)
    started = time.perf_counter()
    root = Path(context.output_root)
    with output_lock(root):
        documents = committed_with_days(root)  # read once: the run's days, and who counts on them
        days = set(documents.loc[documents.doc_id.isin(added_doc_ids), "day"])
        counted = one_per_group(latest_analysis(documents))  # over every day: a later copy never counts on its own day
        counted = counted[counted.day.isin(days)]
        stance_columns = ["doc_id", "analysis_sha256", "entity_id", "target", "type", "n_mentions", *(f"p_{label}" for label in LABELS)]
        stances = read_table(root, "stances", stance_columns)
        rows = entity_daily_rows(counted, stances[stances.doc_id.isin(set(counted.doc_id))], datetime.now(UTC).isoformat())
        path = write_table(context, "entity_daily", "all", rows)[0] if rows.num_rows else None
    return TimelineUpdate(path, rows.num_rows, time.perf_counter() - started)

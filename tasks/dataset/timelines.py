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
import pyarrow.parquet as pq

from tasks.dataset.commit import output_lock
from tasks.dataset.output import RunContext, write_table
from tasks.dataset.staging import table_files

LABELS = ("against", "neutral", "favor")
SENTIMENTS = ("negative", "neutral", "positive")
UNKNOWN_SOURCE = "(unknown)"

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


def read_table(root: Path, name: str, columns: list[str]) -> pd.DataFrame:
    """The columns of a table's files; a column an older file lacks is read as missing."""
    files = table_files(root / name)
    if not files:
        return pd.DataFrame(columns=columns)
    parts = [pd.read_parquet(path, columns=[c for c in columns if c in pq.read_schema(path).names]).reindex(columns=columns) for path in files]
    return pd.concat(parts, ignore_index=True)


def document_day(published: object, fallback: str) -> str:
    """The UTC date a document is counted on: its publication date, else its run's date."""
    try:
        stamp = pd.Timestamp(str(published)) if published else None
    except ValueError:
        stamp = None
    if stamp is None or pd.isna(stamp):
        return fallback
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).date().isoformat()


def latest_documents(root: Path) -> pd.DataFrame:
    """Each document's latest analysis (the row of the run that started last), with its day."""
    columns = ["doc_id", "source", "published", "sentiment", "duplicate_group", "canonical_doc_id", "analysis_sha256", "run_id"]
    files = table_files(root / "documents")
    if not files:
        return pd.DataFrame(columns=[*columns, "day"])
    documents = read_table(root, "documents", columns)  # files from before grouping: each document stands for itself
    runs = read_table(root, "runs", ["run_id", "started_at"]).drop_duplicates("run_id", keep="last")
    runs["run_date"] = pd.to_datetime(runs.started_at, utc=True).dt.date.astype(str)  # as the run_date partition
    documents = documents.merge(runs, on="run_id", how="left").sort_values("started_at", ascending=False, kind="stable").drop_duplicates("doc_id")
    documents["duplicate_group"] = documents.duplicate_group.fillna(documents.doc_id)
    documents["canonical_doc_id"] = documents.canonical_doc_id.fillna(documents.doc_id)
    documents["day"] = [document_day(p, str(d)) for p, d in zip(documents.published, documents.run_date)]
    return documents.drop(columns=["started_at", "run_date"])


def one_per_group(documents: pd.DataFrame) -> pd.DataFrame:
    """One document per group of copies: the canonical one where it is there, else the first by id."""
    ranked = documents.assign(_rank=(documents.doc_id != documents.canonical_doc_id).astype(int)).sort_values(["_rank", "doc_id"], kind="stable")
    return ranked.drop_duplicates("duplicate_group").drop(columns="_rank")


def entity_daily_rows(documents: pd.DataFrame, stances: pd.DataFrame, updated_at: str) -> pa.Table:
    """The timeline rows of these documents (one per group already) from their stances."""
    joined = stances.merge(documents[["doc_id", "analysis_sha256", "day", "source", "sentiment"]], on=["doc_id", "analysis_sha256"])
    if joined.empty:
        return ENTITY_DAILY_SCHEMA.empty_table()
    joined["source"] = joined.source.fillna(UNKNOWN_SOURCE)
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
        documents = latest_documents(root)
        days = set(documents.loc[documents.doc_id.isin(added_doc_ids), "day"])
        representatives = one_per_group(documents)  # over every day: a later copy never counts on its own day
        counted = representatives[representatives.day.isin(days)]
        stance_columns = ["doc_id", "analysis_sha256", "entity_id", "target", "type", "n_mentions", *(f"p_{label}" for label in LABELS)]
        stances = read_table(root, "stances", stance_columns)
        rows = entity_daily_rows(counted, stances[stances.doc_id.isin(set(counted.doc_id))], datetime.now(UTC).isoformat())
        path = write_table(context, "entity_daily", "all", rows)[0] if rows.num_rows else None
    return TimelineUpdate(path, rows.num_rows, time.perf_counter() - started)

"""What the output holds, as the timelines and the coverage report count it: a table read
file by file (older files lack newer columns, which come back null), each document's day
and commit order, its latest analysis, and one document per group of copies."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tasks.dataset.staging import table_files

UNKNOWN_SOURCE = "(unknown source)"  # how a document without an outlet is counted and shown


def read_table(root: Path, name: str, columns: list[str]) -> pd.DataFrame:
    """A table's `columns` plus its `run_date` partition. Files are read one by one: those
    written by older versions lack newer columns, which come back null."""
    parts = []
    for path in table_files(root / name):
        present = [c for c in columns if c in pq.ParquetFile(path).schema_arrow.names]
        part = pq.read_table(path, columns=present).to_pandas().reindex(columns=columns)
        part["run_date"] = path.parent.name.removeprefix("run_date=") if path.parent.name.startswith("run_date=") else None
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*columns, "run_date"])
    return pd.concat(parts, ignore_index=True)


def document_days(documents: pd.DataFrame) -> pd.Series:
    """Each document's day (YYYY-MM-DD): its publication time in UTC, else its run's date
    (the pipeline stores `published` as the page gave it, a date or a datetime with offset)."""
    published = pd.to_datetime(documents["published"], utc=True, errors="coerce", format="ISO8601")
    return published.dt.strftime("%Y-%m-%d").where(published.notna(), documents["run_date"]).astype(object)


def commit_order(documents: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """A sortable key of when each row's run started (its run date where no record says)."""
    started = runs.drop_duplicates("run_id", keep="last").set_index("run_id")["started_at"]
    stamps = pd.to_datetime(documents["run_id"].map(started), utc=True, errors="coerce")
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").where(stamps.notna(), documents["run_date"].astype(object)).fillna("").astype(str)


def latest_analysis(documents: pd.DataFrame) -> pd.DataFrame:
    """One row per doc_id: a document analysed again (`--reanalyze`) has a row per analysis;
    the newest run's stands for it."""
    return documents.sort_values(["order", "origin"], kind="stable").drop_duplicates("doc_id", keep="last")


def one_per_group(documents: pd.DataFrame) -> pd.DataFrame:
    """One document per group of copies: the group's canonical document where it is among
    `documents`, else the group's first (its own doc_id is the group's id), else the first committed."""
    if documents.empty:
        return documents
    documents = documents.assign(duplicate_group=documents["duplicate_group"].fillna(documents["doc_id"]))
    # The newest row names the canonical copy: a row committed earlier knew fewer of the group's copies.
    ordered = documents.sort_values("order", kind="stable")
    canonical = ordered.dropna(subset=["canonical_doc_id"]).groupby("duplicate_group")["canonical_doc_id"].last()
    rank = documents.assign(
        _canonical=documents["doc_id"] == documents["duplicate_group"].map(canonical),
        _head=documents["doc_id"] == documents["duplicate_group"],
    )
    rank = rank.sort_values(["_canonical", "_head", "order", "origin"], ascending=[False, False, True, True], kind="stable")
    return rank.drop_duplicates("duplicate_group").drop(columns=["_canonical", "_head"])


def counted_documents(documents: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """`documents` (read with `read_table`) with their `day` and commit `order`."""
    return documents.assign(day=document_days(documents), order=commit_order(documents, runs))

"""Reading a finished run's output files back for the CLI's closing table."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _read(outputs: list[dict[str, Any]], table: str, columns: list[str]) -> pa.Table | None:
    paths = [o["path"] for o in outputs if o["table"] == table]
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in paths]) if paths else None


def sentiment_counts(outputs: list[dict[str, Any]]) -> dict[str, int]:
    documents = _read(outputs, "documents", ["sentiment"])
    return dict(Counter(documents.column("sentiment").to_pylist()).most_common()) if documents else {}


def top_stances(outputs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The most confident non-neutral stances of the run, with the document's title."""
    stances = _read(outputs, "stances", ["doc_id", "target", "label", "confidence"])
    documents = _read(outputs, "documents", ["doc_id", "title"])
    if stances is None or documents is None:
        return []
    titles = dict(zip(documents.column("doc_id").to_pylist(), documents.column("title").to_pylist()))
    rows = [r for r in stances.to_pylist() if r["label"] != "neutral"]
    rows.sort(key=lambda r: r["confidence"], reverse=True)
    return [{**r, "title": titles.get(r["doc_id"])} for r in rows[:limit]]

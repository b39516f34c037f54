"""Reading labelled evaluation data: CSV, JSONL or Parquet, as a list of row dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq


def read_rows(data: Path) -> list[dict[str, Any]]:
    suffix = data.suffix.lower()
    if suffix == ".csv":
        # Everything as text: an id column of digits must not become numbers.
        return pd.read_csv(data, dtype=str, keep_default_na=False).to_dict("records")
    if suffix == ".jsonl":
        with data.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".parquet":
        return pq.read_table(data).to_pylist()
    raise ValueError(f"{data}: expected .csv, .jsonl or .parquet, got '{suffix or '(none)'}'")


def require_columns(data: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """A column that no row has is a usage error worth naming, with the columns there are."""
    for column in columns:
        if rows and all(column not in row for row in rows):
            raise ValueError(f"{data}: no '{column}' column (found: {', '.join(map(str, rows[0]))})")

"""The clean stage over one shard: every record of an ingest shard cleaned by
`clean_document`, kept as a clean document or rejected with its reason."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tasks.records import CLEAN_SCHEMA, RawDocument, Rejection, StageOutput
from tasks.stages.clean.document import clean_document


def clean_records(raw: pa.Table, config: Any) -> StageOutput:
    """The kept documents (CLEAN_SCHEMA) and the rejections of an ingest shard's records."""
    kept, rejected = [], []
    for row in raw.to_pylist():
        result = clean_document(RawDocument.from_row(row), config.clean)
        if isinstance(result, Rejection):
            rejected.append(result)
        else:
            kept.append(result.to_row())
    return StageOutput(pa.Table.from_pylist(kept, schema=CLEAN_SCHEMA), rejected=rejected)

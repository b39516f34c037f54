"""Arrow column helpers shared by the stages: embeddings as fixed-size lists, and the row
ranges of tables that keep each document's rows together."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def vector_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def column_vectors(table: pa.Table, name: str) -> np.ndarray:
    """The inverse of vector_column: a table's fixed-size-list column as an (n, dim) matrix."""
    dim = table.schema.field(name).type.list_size
    return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def row_ranges(doc_ids: list[str]) -> list[tuple[str, slice]]:
    """(doc_id, slice of its rows) for tables that keep each document's rows together,
    as every table the encode stage writes does."""
    ranges, start = [], 0
    for i in range(1, len(doc_ids) + 1):
        if i == len(doc_ids) or doc_ids[i] != doc_ids[start]:
            ranges.append((doc_ids[start], slice(start, i)))
            start = i
    return ranges

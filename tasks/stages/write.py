"""Write stage: a shard's results joined into the per-document and per-sentence output
tables (`documents`, and when asked `sentences`). Stages whose results are tables of their
own (`stances`, `entities`, `mentions`) are written as they are. Writing is the dataset's job
(tasks/dataset/output.py)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

RESULT_TABLES = ("documents", "stances", "entities", "mentions", "sentences")  # hold each (doc_id, analysis) once across runs
DOCUMENT_COLUMNS = ["doc_id", "origin", "source", "title", "authors", "published", "url", "wire", "field_sources", "language", "text"]


def align_rows(table: pa.Table, doc_ids: list[str]) -> pa.Table:
    """`table`'s rows (one per doc_id) in the order of `doc_ids`, without its doc_id column.
    (Arrow's hash join cannot carry list columns such as authors, so rows are aligned.)"""
    row_of = {doc_id: row for row, doc_id in enumerate(table.column("doc_id").to_pylist())}
    return table.take(pa.array([row_of[d] for d in doc_ids], pa.int64())).drop_columns(["doc_id"])


def join_documents(clean: pa.Table, summaries: pa.Table, sentiment: pa.Table) -> pa.Table:
    documents = clean.select(DOCUMENT_COLUMNS).append_column("n_sentences", pc.list_value_length(clean.column("sentences")).cast(pa.int32()))
    doc_ids = documents.column("doc_id").to_pylist()
    for extra in (summaries, sentiment):
        aligned = align_rows(extra, doc_ids)
        for name in aligned.column_names:
            documents = documents.append_column(name, aligned.column(name))
    return documents


def sentence_rows_with_sentiment(sentences: pa.Table, sentiment: pa.Table) -> pa.Table:
    """Each sentence's text with its sentiment, in document and sentence order."""
    return sentences.join(sentiment, ["doc_id", "sentence_index"], join_type="left outer").sort_by([("doc_id", "ascending"), ("sentence_index", "ascending")])


def joined_tables(
    clean: pa.Table, summaries: pa.Table, sentiment: pa.Table, sentences: pa.Table | None = None, sentence_sentiment: pa.Table | None = None
) -> dict[str, pa.Table]:
    """A shard's joined output tables; `sentences` only when its sentences are given."""
    tables = {"documents": join_documents(clean, summaries, sentiment)}
    if sentences is not None and sentence_sentiment is not None:
        tables["sentences"] = sentence_rows_with_sentiment(sentences, sentence_sentiment)
    return tables

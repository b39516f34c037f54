"""entity_daily from hand-made documents and stances: the day a document counts on, each
group of copies once, and the aggregates of a row."""

from __future__ import annotations

import pandas as pd
import pytest

from tasks.dataset.committed import document_days, one_per_group
from tasks.dataset.timelines import ENTITY_DAILY_SCHEMA, entity_daily_rows


def documents(*rows: tuple[str, str, str, str, str]) -> pd.DataFrame:
    """(doc_id, day, source, sentiment, duplicate_group) rows; the group's canonical is its id."""
    frame = pd.DataFrame(rows, columns=["doc_id", "day", "source", "sentiment", "duplicate_group"])
    return frame.assign(canonical_doc_id=frame.duplicate_group, analysis_sha256="a")


def stance(doc_id: str, entity: str, mentions: int, p_against: float, p_favor: float) -> dict:
    return {"doc_id": doc_id, "analysis_sha256": "a", "entity_id": entity, "target": entity.title(), "type": "GPE",
            "n_mentions": mentions, "p_against": p_against, "p_neutral": 1 - p_against - p_favor, "p_favor": p_favor}  # fmt: skip


def test_a_document_counts_on_its_publication_day_in_utc_else_its_runs():
    documents = pd.DataFrame({"published": ["2026-03-03T23:30:00-02:00", "2026-03-03", None, "not a date"], "run_date": ["2026-11-30"] * 4})
    assert document_days(documents).tolist() == ["2026-03-04", "2026-03-03", "2026-11-30", "2026-11-30"]


def test_copies_count_once_through_their_canonical_document():
    docs = documents(("wire", "d1", "Wire", "neutral", "wire"), ("copy-1", "d1", "Post", "neutral", "wire"), ("other", "d1", "Post", "negative", "other"))
    docs = docs.assign(order=["1", "2", "3"], origin=["a", "b", "c"])
    docs.loc[docs.doc_id == "copy-1", "canonical_doc_id"] = "wire"
    assert sorted(one_per_group(docs).doc_id) == ["other", "wire"]
    # a group whose canonical is not among these rows keeps one row
    assert sorted(one_per_group(docs[docs.doc_id != "wire"]).doc_id) == ["copy-1", "other"]


def test_rows_sum_mentions_average_stance_and_count_sentiment_per_entity_day_and_source():
    docs = documents(("a", "2026-03-03", "Post", "negative", "a"), ("b", "2026-03-03", "Post", "positive", "b"), ("c", "2026-03-04", "Ledger", "neutral", "c"))
    stances = pd.DataFrame(
        [stance("a", "brazil", 2, 0.8, 0.1), stance("b", "brazil", 1, 0.2, 0.6), stance("c", "brazil", 3, 0.5, 0.5), stance("b", "imf", 1, 0.0, 0.9)]
    )
    rows = entity_daily_rows(docs, stances, "2026-11-30T00:00:00+00:00")
    assert rows.schema == ENTITY_DAILY_SCHEMA
    table = rows.to_pandas().set_index(["entity_id", "day", "source"])
    post = table.loc[("brazil", "2026-03-03", "Post")]
    assert (post.n_documents, post.n_mentions, post.n_negative, post.n_positive, post.n_neutral) == (2, 3, 1, 1, 0)
    assert post.p_against == pytest.approx(0.5) and post.p_favor == pytest.approx(0.35)
    assert table.loc[("brazil", "2026-03-04", "Ledger")].n_mentions == 3 and len(table) == 3


def test_no_stances_no_rows():
    assert entity_daily_rows(documents(("a", "d", "s", "neutral", "a")), pd.DataFrame([stance("zzz", "x", 1, 0, 0)]), "t").num_rows == 0

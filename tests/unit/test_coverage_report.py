"""The coverage report's data (tasks/reports/coverage.py) on small hand-made tables: counts
per source and day, each group of copies once, the RUN_ID and --since scopes, each story's
newest row, and empty or missing tables; and the page drawn from it (html_page.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.reports.coverage import (
    DOCUMENT_COLUMNS,
    STANCE_COLUMNS,
    STORY_COLUMNS,
    UNKNOWN_SOURCE,
    Coverage,
    Scope,
    UnknownRun,
    coverage_of,
    read_coverage,
    resolve_run,
)
from tasks.reports.html_page import CHART_IDS, render_page

RUN_A = "aaaaaaaa-0000-4000-8000-000000000001"  # started 2026-01-05
RUN_B = "bbbbbbbb-0000-4000-8000-000000000002"  # started 2026-01-07


def doc(doc_id: str, **fields) -> dict:
    """A document row: its own group, canonical and story unless told; read by RUN_A on 2026-01-05."""
    row = dict.fromkeys(DOCUMENT_COLUMNS)
    row.update(doc_id=doc_id, origin=f"in.jsonl:{doc_id}", sentiment="neutral", run_id=RUN_A, analysis_sha256="an-1", run_date="2026-01-05")
    row.update(duplicate_group=doc_id, canonical_doc_id=doc_id, story_id=doc_id)
    row.update(fields)
    return row


def stance(doc_id: str, entity: str, label: str, confidence: float, n_mentions: int = 1, **fields) -> dict:
    p = {"against": 0.1, "neutral": 0.1, "favor": 0.1, label: confidence}
    row = dict.fromkeys(STANCE_COLUMNS)
    row.update(doc_id=doc_id, entity_id=f"id-{entity}", target=entity, type="GPE", label=label, confidence=confidence, n_mentions=n_mentions)
    row.update({f"p_{k}": v for k, v in p.items()}, evidence=f"{entity} in {doc_id}.", analysis_sha256="an-1")
    row.update(fields)
    return row


def story(story_id: str, n_documents: int, updated_at: str, **fields) -> dict:
    row = {"story_id": story_id, "first_seen": "2026-01-01T00:00:00+00:00", "last_seen": "2026-01-02T00:00:00+00:00", "n_documents": n_documents}
    row.update(n_sources=1, title=f"Story {story_id}", top_entities=["China"], updated_at=updated_at)
    row.update(fields)
    return row


RUNS = pd.DataFrame({"run_id": [RUN_A, RUN_B], "started_at": pd.to_datetime(["2026-01-05T10:00:00Z", "2026-01-07T10:00:00Z"])})


def coverage(documents: list[dict], stances: list[dict] = (), stories: list[dict] = (), scope: Scope | None = None) -> Coverage:
    return coverage_of(
        pd.DataFrame(documents, columns=[*DOCUMENT_COLUMNS, "run_date"]),
        RUNS,
        pd.DataFrame(list(stances), columns=[*STANCE_COLUMNS, "run_date"]),
        pd.DataFrame(list(stories), columns=[*STORY_COLUMNS, "run_date"]),
        "/out",
        scope or Scope(),
    )


def test_documents_are_counted_per_source_and_utc_day_with_the_run_date_when_unpublished():
    found = coverage(
        [
            doc("a", source="Ledger", published="2024-03-01", sentiment="negative"),
            doc("b", source="Ledger", published="2024-03-01T23:30:00-05:00", sentiment="positive"),  # 04:30 UTC on the 2nd
            doc("c", source="Courier", published="2024-03-02T08:00:00Z", sentiment="positive"),
            doc("d", source=None, published=None, sentiment="neutral"),  # the run's date: 2026-01-05
        ]
    )
    rows = {(r.day, r.source): r.n_documents for r in found.per_source_day.itertuples()}
    assert rows == {("2024-03-01", "Ledger"): 1, ("2024-03-02", "Courier"): 1, ("2024-03-02", "Ledger"): 1, ("2026-01-05", UNKNOWN_SOURCE): 1}
    sentiment = found.sentiment.set_index("day")
    assert sentiment.loc["2024-03-02", ["negative", "neutral", "positive", "n_documents"]].tolist() == [0, 0, 2, 2]
    assert sentiment.loc["2024-03-01", ["negative", "neutral", "positive"]].tolist() == [1, 0, 0]
    assert found.days == ["2024-03-01", "2024-03-02", "2026-01-05"]
    assert found.sources == ["Courier", "Ledger"], "a document without an outlet is charted, not counted as a source"


def test_a_group_of_copies_counts_once_as_its_canonical_document():
    documents = [
        doc("w1", source="Wire", published="2024-05-01", sentiment="negative", canonical_doc_id="w1"),
        doc("w2", source="Post", published="2024-04-30", sentiment="positive", duplicate_group="w1", canonical_doc_id="w2"),  # earliest published
        doc("w3", source="Times", published="2024-05-02", sentiment="positive", duplicate_group="w1", canonical_doc_id="w2"),
        doc("solo", source="Times", published="2024-05-02", sentiment="neutral"),
    ]
    stances = [
        stance("w1", "China", "against", 0.9),
        stance("w2", "China", "favor", 0.8),
        stance("w3", "China", "favor", 0.7),
        stance("solo", "China", "favor", 0.6),
    ]
    found = coverage(documents, stances)
    assert sorted(found.documents["doc_id"]) == ["solo", "w2"], "the newest row's canonical_doc_id stands for the group"
    assert found.per_source_day["n_documents"].sum() == 2 and found.n_rows == 4
    assert found.sentiment["n_documents"].sum() == 2
    china = found.entities.set_index("name").loc["China"]
    assert (china.n_documents, china.favor, china.against) == (2, 2, 0), "stances of the copies left out are not counted"
    assert set(found.evidence["doc_id"]) == {"w2", "solo"}


def test_a_group_whose_canonical_document_is_out_of_scope_keeps_its_first():
    documents = [
        doc("head", run_id=RUN_A, canonical_doc_id="early"),
        doc("copy", run_id=RUN_B, run_date="2026-01-07", duplicate_group="head", canonical_doc_id="early"),
        doc("early", run_id=RUN_B, run_date="2026-01-07", duplicate_group="head", canonical_doc_id="early", published="2020-01-01"),
    ]
    since = coverage(documents, scope=Scope(since=date(2026, 1, 1)))  # "early" was published in 2020: out of scope
    assert since.documents["doc_id"].tolist() == ["head"], "the group's own first document"
    later_run = coverage(documents, scope=Scope(run_id=RUN_B))
    assert later_run.documents["doc_id"].tolist() == ["early"]


def test_a_document_analysed_twice_counts_once_in_its_latest_analysis():
    documents = [doc("a", sentiment="negative"), doc("a", sentiment="positive", run_id=RUN_B, run_date="2026-01-07", analysis_sha256="an-2")]
    stances = [stance("a", "China", "against", 0.9), stance("a", "China", "favor", 0.8, analysis_sha256="an-2")]
    found = coverage(documents, stances)
    assert len(found.documents) == 1 and found.documents["sentiment"].tolist() == ["positive"]
    assert found.entities[["favor", "against"]].values.tolist() == [[1, 0]]
    first_run = coverage(documents, stances, scope=Scope(run_id=RUN_A))
    assert first_run.documents["sentiment"].tolist() == ["negative"], "a run's report shows that run's analysis"
    assert first_run.entities[["favor", "against"]].values.tolist() == [[0, 1]]


def test_since_keeps_documents_published_or_read_on_or_after_the_day():
    documents = [
        doc("old", published="2024-01-31T23:59:00+00:00"),
        doc("edge", published="2024-02-01"),
        doc("late", published="2024-02-01T01:00:00+03:00"),  # 2024-01-31 22:00 UTC
        doc("unpublished", published=None, run_date="2026-01-05"),
    ]
    found = coverage(documents, scope=Scope(since=date(2024, 2, 1)))
    assert sorted(found.documents["doc_id"]) == ["edge", "unpublished"]
    assert found.scope.describe() == "documents published on or after 2024-02-01"


def test_run_id_keeps_that_runs_documents_and_takes_the_first_characters():
    documents = [doc("a", run_id=RUN_A), doc("b", run_id=RUN_B, run_date="2026-01-07"), doc("c", run_id=RUN_B, run_date="2026-01-07")]
    found = coverage(documents, scope=Scope(run_id="bbbb"))
    assert found.scope.run_id == RUN_B and sorted(found.documents["doc_id"]) == ["b", "c"]
    with pytest.raises(UnknownRun, match="no run matching 'cccc'"):
        coverage(documents, scope=Scope(run_id="cccc"))
    with pytest.raises(UnknownRun, match="2 runs matching ''"):
        resolve_run([RUN_A, RUN_B], "")


def test_each_story_shows_its_newest_row_largest_first():
    stories = [
        story("s1", 2, "2026-01-05T10:00:00+00:00", title="Old title"),
        story("s1", 5, "2026-01-07T10:00:00+00:00", title="Grown story", top_entities=["China", "Brazil"]),
        story("s2", 3, "2026-01-05T10:00:00+00:00"),
        story("s3", 1, "2026-01-06T10:00:00+00:00", title=None),
    ]
    found = coverage([doc("a", story_id="s1"), doc("b", story_id="s3", run_id=RUN_B, run_date="2026-01-07")], stories=stories)
    assert found.stories[["story_id", "n_documents", "title"]].values.tolist() == [["s1", 5, "Grown story"], ["s2", 3, "Story s2"], ["s3", 1, "s3"]]
    assert found.stories["top_entities"].iloc[0] == ["China", "Brazil"]
    one_run = coverage([doc("a", story_id="s1"), doc("b", story_id="s3", run_id=RUN_B, run_date="2026-01-07")], stories=stories, scope=Scope(run_id=RUN_B))
    assert one_run.stories["story_id"].tolist() == ["s3"], "a scoped report shows the stories of its documents"


def test_top_entities_by_mentions_with_their_daily_stance_and_most_confident_evidence():
    documents = [doc(f"d{n}", published=f"2024-06-0{n}", title=f"Title {n}", source="Ledger") for n in range(1, 5)]
    stances = [
        stance("d1", "China", "against", 0.9, n_mentions=4),
        stance("d2", "China", "against", 0.5, n_mentions=4),
        stance("d3", "China", "favor", 0.95, n_mentions=1),
        stance("d4", "China", "neutral", 0.7, n_mentions=1, evidence=None),
        *[stance("d1", f"E{n}", "favor", 0.6, n_mentions=1) for n in range(6)],
    ]
    found = coverage(documents, stances)
    assert len(found.entities) == 5 and found.entities["name"].iloc[0] == "China" and found.entities["n_mentions"].iloc[0] == 10
    daily = found.stance[found.stance["name"] == "China"].set_index("day")
    assert daily.index.tolist() == ["2024-06-01", "2024-06-02", "2024-06-03", "2024-06-04"]
    assert daily.loc["2024-06-01", "p_against"] == pytest.approx(0.9) and daily.loc["2024-06-03", "p_favor"] == pytest.approx(0.95)
    evidence = found.evidence[found.evidence["name"] == "China"]
    assert evidence["confidence"].tolist() == pytest.approx([0.95, 0.9, 0.5]), "the most confident three, a row without a sentence left out"
    assert evidence["title"].iloc[0] == "Title 3" and evidence["source"].iloc[0] == "Ledger"


def test_missing_and_empty_tables_make_an_empty_report(tmp_path):
    empty = read_coverage(tmp_path / "nothing-here", Scope())
    assert empty.empty and empty.days == [] and empty.entities.empty
    page = render_page(empty, datetime(2026, 1, 1, tzinfo=UTC))
    assert "Nothing to report yet" in page and "chart-documents" not in page and "Plotly" not in page
    without_stances = coverage([doc("a", source="Ledger", published="2024-01-01")])
    assert without_stances.entities.empty and without_stances.stance.empty and without_stances.evidence.empty and without_stances.stories.empty
    page = render_page(without_stances, datetime(2026, 1, 1, tzinfo=UTC))
    assert 'id="chart-documents"' in page and 'id="chart-stance"' not in page and "No stances were judged" in page


def test_tables_are_read_from_parquet_with_older_files_lacking_newer_columns(tmp_path):
    old = tmp_path / "documents" / "run_date=2026-01-05" / f"{RUN_A}-00000.parquet"
    new = tmp_path / "documents" / "run_date=2026-01-07" / f"{RUN_B}-00000.parquet"
    old.parent.mkdir(parents=True)
    new.parent.mkdir(parents=True)
    pq.write_table(pa.table({"doc_id": ["a"], "source": ["Ledger"], "sentiment": ["negative"], "run_id": [RUN_A]}), old)  # before groups and stories
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in doc("b", run_id=RUN_B, source="Post").items() if k != "run_date"}]), new)
    (tmp_path / "documents" / "run_date=2026-01-07" / ".half-written.parquet").write_bytes(b"not parquet")
    found = read_coverage(tmp_path, Scope())
    assert found.per_source_day[["day", "source", "n_documents"]].values.tolist() == [["2026-01-05", "Ledger", 1], ["2026-01-07", "Post", 1]]
    assert found.stories.empty and found.entities.empty


def test_the_page_holds_four_charts_and_plotly_inline():
    documents = [doc("a", source="Ledger", published="2024-01-01", title="A <b>bold</b> title", story_id="s1")]
    found = coverage(documents, [stance("a", "China", "favor", 0.9)], [story("s1", 1, "2026-01-05T10:00:00+00:00", title="A <b>bold</b> title")])
    page = render_page(found, datetime(2026, 1, 1, tzinfo=UTC))
    assert all(f'id="{chart}"' in page for chart in CHART_IDS.values())
    assert "<script src" not in page and "cdn.plot.ly/plotly" not in page.split("</script>")[-1]
    assert page.count("Plotly.newPlot") >= 4 and len(page) > 1_000_000, "plotly.js itself is in the page"
    assert "A &lt;b&gt;bold&lt;/b&gt; title" in page and "<b>bold</b>" not in page, "titles are text, not markup, in the table and the charts"

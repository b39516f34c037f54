"""Copies of one story across two runs into one output root: every copy keeps its row, the
copies share a duplicate group named by the first one seen, and the earliest published is
their canonical document; exact copies are still rejected; the index is committed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tasks.dataset.near_duplicate_index import INDEX_DIR
from tests.conftest import run_pipeline
from tests.unit.test_near_duplicates import STORY, sentences_of


def write_jsonl(path: Path, articles: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
    return path


def article(title: str, sentences: list[str], published: str, source: str) -> dict:
    return {"title": title, "text": "\n\n".join(sentences), "published": published, "source": source}


def test_copies_across_two_runs_share_a_group_and_its_earliest_published_leads(prefect_harness, tmp_path):
    other = sentences_of("nato_air_defence_timeline.txt")
    first_run = write_jsonl(
        tmp_path / "monday" / "wire.jsonl",
        [
            article("IMF warns Brazil over debt", STORY, "2026-03-02T09:00:00Z", "Daily Courier"),
            article("NATO agrees air defence timeline", other, "2026-03-02T10:00:00Z", "Daily Courier"),
            # The wire's dateline is cleaned away; the changed sentence keeps it from being an exact copy.
            article(
                "Fund faults Brasília's budget",
                ["BRASÍLIA (AP) — " + STORY[0], *STORY[1:3], "The ministry declined to comment.", *STORY[4:]],
                "2026-03-01T22:00:00Z",
                "Wire Service",
            ),
        ],
    )
    monday = run_pipeline(first_run, tmp_path / "out")
    assert monday["status"] == "completed" and monday["counts"]["near_duplicates"] == 1

    second_run = write_jsonl(
        tmp_path / "tuesday" / "regional.jsonl",
        [
            article("Brazil told to rein in spending", STORY[: 2 * len(STORY) // 3], "2026-03-03T06:00:00Z", "Regional Post"),
            article("NATO agrees air defence timeline", other, "2026-03-02T10:00:00Z", "Daily Courier"),  # exact copy
        ],
    )
    tuesday = run_pipeline(second_run, tmp_path / "out")
    assert tuesday["counts"]["near_duplicates"] == 1 and tuesday["n_kept"] == 1
    assert tuesday["rejected_by_reason"] == {"duplicate": 1}, "an exact copy is rejected as before"

    documents = pd.read_parquet(tmp_path / "out" / "documents").set_index("title")
    story = ["IMF warns Brazil over debt", "Fund faults Brasília's budget", "Brazil told to rein in spending"]
    first_seen = documents.loc["IMF warns Brazil over debt", "doc_id"]
    wire = documents.loc["Fund faults Brasília's budget", "doc_id"]
    assert documents.loc[story, "duplicate_group"].tolist() == [first_seen] * 3
    assert documents.loc[story, "canonical_doc_id"].tolist() == [wire] * 3
    nato = documents.loc["NATO agrees air defence timeline"]
    assert nato.duplicate_group == nato.doc_id == nato.canonical_doc_id

    # Timelines count the story once a day, through its canonical (earliest) copy: Tuesday's
    # trimmed copy adds no document to its own day, and the wire copy's day is the story's.
    daily = pd.read_parquet(tmp_path / "out" / "entity_daily")
    latest = daily.sort_values("updated_at").groupby(["entity_id", "day", "source"]).tail(1)
    brazil = latest[latest.name == "Brazil"]
    assert brazil.day.tolist() == ["2026-03-01"] and brazil.source.tolist() == ["Wire Service"] and brazil.n_documents.tolist() == [1]

    index = pd.read_parquet(next((tmp_path / "out" / INDEX_DIR).iterdir()))
    assert sorted(index.doc_id) == sorted(documents.doc_id) and (index.n_shingles > 0).all()
    assert json.loads(pd.read_parquet(tmp_path / "out" / "runs").set_index("run_id").loc[tuesday["run_id"], "stage_seconds"])["near_duplicates"] > 0

    # Monday's file again under another analysis: the documents keep their groups and
    # stories, and neither index nor any story counts them twice.
    stories_before = pd.read_parquet(tmp_path / "out" / "stories").sort_values("updated_at").groupby("story_id").tail(1).set_index("story_id")
    again = run_pipeline(first_run, tmp_path / "out", **{"summary.sentences": 1, "run.reanalyze": True})
    assert again["n_kept"] == 3 and again["counts"]["near_duplicates"] == 0 and again["counts"]["stories"] == 0
    rerun = pd.read_parquet(tmp_path / "out" / "documents")
    rerun = rerun[rerun.run_id == again["run_id"]].set_index("title")
    assert rerun.loc[story[:2], "duplicate_group"].tolist() == [first_seen] * 2
    assert (rerun.story_id == documents.loc[rerun.index, "story_id"]).all()
    index = pd.read_parquet(next((tmp_path / "out" / INDEX_DIR).iterdir()).parent)
    assert index.doc_id.is_unique
    stories_after = pd.read_parquet(tmp_path / "out" / "stories").sort_values("updated_at").groupby("story_id").tail(1).set_index("story_id")
    assert stories_after.n_documents.equals(stories_before.n_documents)

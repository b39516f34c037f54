"""Stories across two runs into one output root, with the project's labelled stories
(data/eval/stories.jsonl): a later article joins the story an earlier run began, ids never
change, and the `stories` table's newest row per story carries its totals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import REPO_ROOT, run_pipeline

LABELLED = REPO_ROOT / "data" / "eval" / "stories.jsonl"


def articles(*titles_starting: str) -> list[dict]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["title"].startswith(titles_starting)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "story"}) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_later_article_joins_the_story_an_earlier_run_began(prefect_harness, tmp_path):
    out = tmp_path / "out"
    first = run_pipeline(write_jsonl(tmp_path / "tuesday.jsonl", articles("Harlow Bay dockworkers", "Ships queue", "Strong earthquake")), out)
    assert first["counts"]["stories"] == 2
    before = pd.read_parquet(out / "documents").set_index("title").story_id

    second = run_pipeline(write_jsonl(tmp_path / "wednesday.jsonl", articles("Harlow Bay stoppage", "Crane operators strike")), out)
    assert second["counts"]["stories"] == 2
    documents = pd.read_parquet(out / "documents").set_index("title")
    strike = before["Harlow Bay dockworkers walk out over night-shift pay"]
    assert documents.loc["Harlow Bay stoppage hits grain and car shipments", "story_id"] == strike, "Wednesday's article joins Tuesday's story"
    assert documents.loc["Crane operators strike at the port of Selmouth", "story_id"] not in set(before), "another port's strike, days later, is its own story"
    assert documents.loc[before.index, "story_id"].equals(before), "rows of the first run keep their story ids"

    stories = pd.read_parquet(out / "stories")
    latest = stories.sort_values("updated_at").groupby("story_id").tail(1).set_index("story_id")
    assert len(stories) == 4 and len(latest) == 3
    row = latest.loc[strike]
    assert (row.n_documents, row.n_sources, row.n_copies) == (3, 3, 0)
    assert row.first_seen == "2026-03-03T07:10:00+00:00" and row.last_seen == "2026-03-04T09:00:00+00:00"
    assert row.title == "Harlow Bay dockworkers walk out over night-shift pay"
    assert "Miriam Osei" in list(row.top_entities)

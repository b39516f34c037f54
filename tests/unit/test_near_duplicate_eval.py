"""`newsflow evaluate duplicates` without the flow: pairs built from articles (how many of
each kind, the same every time, edits that really edit) and their scoring, on the
project's sample articles and on short texts written for these tests."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tasks.config import PipelineConfig
from tasks.evaluation.near_duplicates import (
    COPY,
    DATELINE,
    NEGATIVE,
    NEGATIVE_KINDS,
    NEW_SENTENCES,
    NOT_COPY,
    POSITIVE,
    QUOTED_SENTENCES,
    VARIANTS,
    Story,
    build_pairs,
    combined,
    edited_copies,
    evaluate_duplicates,
    follow_up,
    overall_scores,
    read_stories,
)
from tests.conftest import SAMPLES

ENGLISH_SAMPLES = ("imf_warns_brazil_debt", "nato_air_defence_timeline", "port_strike_daily_courier", "un_adaptation_fund_record_pledges")
STORY = [
    "The town of Larkfield opened a new public swimming pool on Saturday after three years of building work.",
    "The council said the pool would be free for children under twelve during the summer holidays.",
    "Swimming clubs from nearby villages have already booked lanes for evening training sessions.",
    "A cafe overlooking the main pool will open next month once its kitchen has been inspected.",
    "The old pool, built in 1962, will be demolished to make room for a small park.",
]
NEW = NEW_SENTENCES[0]
# Two short stories of three sentences (over clean.min_words, 40 words, whose first two
# sentences are not): the trimmed copy of each is too short to keep, and the follow-up of
# each is the other with the first quoted whole before it.
SHORT_STORIES = {
    "pool": " ".join(STORY[:3]),
    "road": (
        "Heavy rain closed the coastal road between Ardmore and Kilbeg for most of Tuesday afternoon and evening. "
        "Engineers from the county council cleared two landslips and checked the sea wall for damage overnight. "
        "The road reopened to traffic on Wednesday morning, although a speed limit will stay in place."
    ),
}


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return PipelineConfig()


def write_csv(path: Path, articles: dict[str, str]) -> Path:
    pd.DataFrame({"id": list(articles), "article": list(articles.values())}).to_csv(path, index=False)
    return path


def sample(name: str) -> str:
    return (SAMPLES / f"{name}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stories(tmp_path_factory, config) -> list[Story]:
    data = write_csv(tmp_path_factory.mktemp("dup") / "samples.csv", {name: sample(name) for name in ENGLISH_SAMPLES})
    kept, rejected, n_read = read_stories(data, "article", config)
    assert n_read == len(ENGLISH_SAMPLES) and not rejected
    return kept


def test_each_edit_changes_the_story_as_named():
    copies = edited_copies(STORY, NEW)
    assert set(copies) == set(VARIANTS)
    assert all(copy != STORY for copy in copies.values())
    assert copies["dateline"] == [DATELINE + STORY[0], *STORY[1:]]
    assert copies["trimmed"] == STORY[: math.ceil(0.6 * len(STORY))] and len(copies["trimmed"]) == 3
    assert copies["reordered"] == STORY[2:] + STORY[:2] and sorted(copies["reordered"]) == sorted(STORY)
    changed = [i for i, (a, b) in enumerate(zip(STORY, copies["sentence_changed"], strict=True)) if a != b]
    assert changed == [2] and copies["sentence_changed"][2] == NEW
    # All but trimming: every sentence kept but the changed one, the new one first, under a dateline.
    assert copies["combined"] == combined(STORY, NEW) == [DATELINE + NEW, STORY[3], STORY[4], STORY[0], STORY[1]]


def test_a_follow_up_quotes_the_story_then_runs_another_article():
    other = ["An entirely different report about a harbour.", "It has two sentences."]
    assert follow_up(STORY, other) == [*STORY[:QUOTED_SENTENCES], *other]


def test_pairs_of_each_kind_are_counted_as_promised(stories):
    n = len(stories)
    pairs, edited = build_pairs(stories)
    counts = pd.Series([(p.pair_kind, p.variant) for p in pairs]).value_counts()
    assert all(counts[(POSITIVE, variant)] == n for variant in VARIANTS)
    assert counts[(NEGATIVE, "distinct_articles")] == n * (n - 1) // 2
    assert counts[(NEGATIVE, "follow_up")] == n
    assert len(pairs) == len(VARIANTS) * n + n * (n - 1) // 2 + n
    # Every edited text is paired once, with the story it was made from.
    assert sorted(p.second for p in pairs if "/" in p.second) == sorted(edited)
    assert all(p.first == p.second.split("/")[0] for p in pairs if "/" in p.second)
    follow_ups = [p for p in pairs if p.variant == "follow_up"]
    assert all(p.other_id and p.other_id != p.id for p in follow_ups)


def test_pairs_are_the_same_every_time_and_drawn_from_the_seed(stories):
    assert build_pairs(stories) == build_pairs(stories)
    assert build_pairs(stories, seed=13)[1] != build_pairs(stories, seed=2)[1]


def test_every_edited_copy_differs_from_its_story(stories):
    _, edited = build_pairs(stories)
    for key, text in edited.items():
        story = list(stories[int(key.split("/")[0])].sentences)
        assert text != story, key
        if key.endswith(("/sentence_changed", "/combined")):
            assert set(text) - {DATELINE + s for s in NEW_SENTENCES} - set(NEW_SENTENCES) <= set(story), key


def test_the_sample_copies_are_found_and_distinct_articles_kept_apart(tmp_path, config):
    articles = {name: sample(name) for name in ENGLISH_SAMPLES}
    articles["copy"] = sample("imf_warns_brazil_debt_copy")  # the same text as the first: one story, not a pair
    articles["french"] = sample("fr_onu_accord_oceans")
    metrics, pairs = evaluate_duplicates(write_csv(tmp_path / "a.csv", articles), config)
    n = len(ENGLISH_SAMPLES)
    assert metrics["n_read"] == n + 2 and metrics["n_articles"] == n
    assert metrics["rejected_by_reason"] == {"duplicate": 1, "language": 1}
    assert metrics["n_pairs"] == len(pairs) == len(VARIANTS) * n + n * (n - 1) // 2 + n
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 1.0
    assert {v: s["recall"] for v, s in metrics["recall_per_variant"].items()} == dict.fromkeys(VARIANTS, 1.0)
    assert {k: s["false_positives"] for k, s in metrics["false_positives_per_kind"].items()} == dict.fromkeys(NEGATIVE_KINDS, 0)
    # The run's cleaning takes the dateline off, so that copy is the story again.
    assert metrics["recall_per_variant"]["dateline"]["identical_after_cleaning"] == n
    assert metrics["recall_per_variant"]["trimmed"]["min_jaccard"] < pairs[pairs.variant == "reordered"].jaccard.min() == 1.0
    assert metrics["settings"] == config.duplicates.model_dump() and metrics["signature_ms_per_doc"] > 0
    assert list(pairs.columns[:7]) == ["pair_kind", "variant", "id", "other_id", "gold", "predicted", "jaccard"]


def test_a_short_story_quoted_whole_in_a_short_follow_up_counts_as_a_false_positive(tmp_path, config):
    """Each short story lies wholly inside its follow-up, which is not much longer: the copy
    test's containment rule calls them copies, and the evaluation must count that against
    precision. Trimmed copies too short for cleaning to keep are listed, never paired."""
    metrics, pairs = evaluate_duplicates(write_csv(tmp_path / "b.csv", SHORT_STORIES), config)
    assert [(r["id"], r["reason"]) for r in metrics["copies_rejected"]] == [("0/trimmed", "too_short"), ("1/trimmed", "too_short")]
    assert metrics["recall_per_variant"]["trimmed"]["n"] == 0 and "trimmed" not in set(pairs.variant)
    assert metrics["false_positives_per_kind"]["follow_up"] == {"false_positives": 2, "n": 2, "rate": 1.0, "max_jaccard": pytest.approx(0.5, abs=0.15)}
    wrong = pairs[(pairs.gold == NOT_COPY) & (pairs.predicted == COPY)]
    assert sorted(zip(wrong.variant, wrong.id)) == [("follow_up", "pool"), ("follow_up", "road")]
    assert metrics["false_positives"] == 2 and metrics["precision"] == round(metrics["true_positives"] / (metrics["true_positives"] + 2), 4) < 1.0


def test_precision_recall_and_f1_over_pairs():
    frame = pd.DataFrame({"gold": [COPY, COPY, COPY, COPY, NOT_COPY, NOT_COPY], "predicted": [COPY, COPY, COPY, NOT_COPY, COPY, NOT_COPY]})
    scores = overall_scores(frame)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (3, 1, 1)
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.75


def test_a_missing_article_column_is_named(tmp_path, config):
    data = write_csv(tmp_path / "c.csv", {"a": STORY[0]})
    with pytest.raises(ValueError, match="no 'body' column"):
        evaluate_duplicates(data, config, article_column="body")

"""Summary evaluation (ROUGE of the pipeline's summaries and of Lead-3) and the summariser's
caption rule, on short articles written for these tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rouge_score import rouge_scorer

from tasks.config import PipelineConfig, SummaryConfig
from tasks.evaluation.summaries import (
    ROUGE_TYPES,
    evaluate_summaries,
    lead_sentences,
    reference_lines,
    rouge_f,
)
from tasks.stages.summarize import (
    METHOD,
    looks_like_caption,
    select_summary_sentences,
    summary_candidates,
)

# A Daily Mail style header the cleaner must take out before Lead-3 sees the text.
FERRY_SENTENCES = [
    "The river ferry between Millbrook and Dunmore will stop running next month after forty years of service.",
    "The county council said rising fuel costs and falling passenger numbers had left the route losing money every week.",
    "A new bridge upstream, opened last spring, now carries most of the traffic that once used the ferry.",
]
FERRY = "By . Jane Porter . PUBLISHED: . 09:12 EST, 4 March 2014 . | . UPDATED: . 10:40 EST, 4 March 2014 . " + " ".join(FERRY_SENTENCES)
ORCHARD_SENTENCES = [
    "Volunteers planted three hundred apple trees on the edge of Harlow Common on Saturday.",
    "The orchard replaces a car park that the town closed two years ago.",
    "Organisers said the trees were chosen from old local varieties that had almost disappeared.",
    "Mayor Ruth Okafor (pictured) helped plant the first tree near the north gate.",
    "Children from two primary schools will look after the young trees through the summer.",
    "The first fruit is expected in about four years, when the orchard will open a small market.",
]
ORCHARD = "(CNN) -- " + " ".join(ORCHARD_SENTENCES)
TOO_SHORT = "The library reopened on Tuesday after repairs to its roof."

ROWS = [
    # the reference is the cleaned lead itself: Lead-3 (and the pipeline, with only three sentences) score 100
    {"id": "ferry", "article": FERRY, "highlights": "\n".join(FERRY_SENTENCES)},
    {"id": "orchard", "article": ORCHARD, "highlights": "Volunteers plant 300 apple trees on Harlow Common .\nSchoolchildren will care for the orchard ."},
    {"id": "library", "article": TOO_SHORT, "highlights": "Library reopens after roof repairs ."},
    {"id": "unreferenced", "article": ORCHARD.replace("Saturday", "Sunday"), "highlights": "  \n "},
]


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return PipelineConfig()


def write_csv(folder, rows=ROWS):
    path = folder / "articles.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def result(tmp_path_factory, config):
    return evaluate_summaries(write_csv(tmp_path_factory.mktemp("eval")), config)


def by_id(result: dict) -> dict[str, dict]:
    return {row["id"]: row for row in result["per_article"]}


def test_result_has_the_promised_keys_and_is_json(result, config):
    for key in ("n", "rejected", "pipeline", "lead3", "method", "summary_sentences", "per_article"):
        assert key in result
    assert set(result["pipeline"]) == set(result["lead3"]) == set(ROUGE_TYPES)
    assert result["method"] == METHOD
    assert result["summary_sentences"] == config.summary.sentences
    json.dumps(result)  # the caller writes it as JSON


def test_every_article_is_scored_or_rejected_with_its_reason(result):
    assert result["n_read"] == 4 and result["n"] == 2 and result["n_rejected"] == 2
    reasons = {r["id"]: r["reason"] for r in result["rejected"]}
    assert reasons == {"library": "too_short", "unreferenced": "no_reference"}
    assert result["rejected_by_reason"] == {"too_short": 1, "no_reference": 1}
    assert all(r["detail"] for r in result["rejected"])
    assert sorted(by_id(result)) == ["ferry", "orchard"]


def test_lead3_is_the_cleaned_lead_and_a_summary_equal_to_the_reference_scores_100(result):
    ferry = by_id(result)["ferry"]
    # 100 only if the byline and time stamps are gone from Lead-3: they would cost precision
    assert all(ferry[f"lead3_{name}"] == 100 for name in ROUGE_TYPES)
    assert ferry["pipeline_sentences"] == [0, 1, 2]
    assert all(ferry[f"pipeline_{name}"] == 100 for name in ROUGE_TYPES)


def test_means_are_over_the_scored_articles(result):
    rows = result["per_article"]
    for side in ("pipeline", "lead3"):
        for name in ROUGE_TYPES:
            expected = sum(r[f"{side}_{name}"] for r in rows) / len(rows)
            assert result[side][name] == pytest.approx(expected, abs=0.01)


def test_lead3_scores_are_those_of_the_first_three_cleaned_sentences(result):
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    expected = rouge_f(scorer, reference_lines(ROWS[1]["highlights"]), ORCHARD_SENTENCES[:3])
    orchard = by_id(result)["orchard"]
    assert {name: orchard[f"lead3_{name}"] for name in ROUGE_TYPES} == pytest.approx(expected, abs=1e-3)
    assert 0 < orchard["lead3_rouge2"] < 100


def test_the_pipeline_never_summarises_with_a_caption(result):
    orchard = by_id(result)["orchard"]
    assert len(orchard["pipeline_sentences"]) == 3
    assert 3 not in orchard["pipeline_sentences"]  # "Mayor ... (pictured) ..."


def test_jsonl_and_parquet_give_the_same_scores_as_csv(tmp_path, result, config):
    jsonl = tmp_path / "articles.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    parquet = tmp_path / "articles.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet)
    for path in (jsonl, parquet):
        other = evaluate_summaries(path, config)
        assert (other["n"], other["n_rejected"]) == (result["n"], result["n_rejected"])
        assert (other["pipeline"], other["lead3"]) == (result["pipeline"], result["lead3"])


def test_columns_and_limit_are_honoured(tmp_path, config):
    rows = [{"story": r["article"], "summary": r["highlights"]} for r in ROWS[:2]]
    path = write_csv(tmp_path, rows)
    out = evaluate_summaries(path, config, article_column="story", reference_column="summary", limit=1)
    assert out["n_read"] == 1 and out["n"] == 1
    assert out["per_article"][0]["id"] == "0"  # no id column: the row number
    with pytest.raises(ValueError, match="no 'highlights' column"):
        evaluate_summaries(path, config, article_column="story")


def test_unsupported_file_type_is_an_error(tmp_path, config):
    path = tmp_path / "articles.txt"
    path.write_text(FERRY, encoding="utf-8")
    with pytest.raises(ValueError, match=".csv, .jsonl or .parquet"):
        evaluate_summaries(path, config)


def test_rouge_helpers():
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    assert reference_lines(" One line .\n\n Two line .\n") == ["One line .", "Two line ."]
    assert rouge_f(scorer, ["Ferries stop running ."], ["Ferries stop running ."]) == {name: 100 for name in ROUGE_TYPES}
    assert rouge_f(scorer, ["Ferries stop running ."], ["Bridges carry traffic ."])["rouge1"] == 0
    assert lead_sentences(["a", "b", "c", "d"]) == ["a", "b", "c"]
    assert lead_sentences(["a"]) == ["a"]


# --------------------------------------------------------------------------- captions


@pytest.mark.parametrize(
    "sentence",
    [
        "Mayor Ruth Okafor (pictured) helped plant the first tree.",
        "Ana Ruiz, pictured left, cut the ribbon on Monday.",
        "The new terminal (left) and the old one (right) stand side by side.",
        "Her husband, right, watched from the quay.",
        "Grand opening: The ferry leaves the new terminal for the first time.",
        "Last run: Passengers wave from the deck as the ferry departs.",
    ],
)
def test_captions_are_recognised(sentence):
    assert looks_like_caption(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "The harbour master said: 'We are ready for the summer.'",
        "Ana Ruiz told reporters: The terminal will open at nine.",
        "The ferry left at nine and arrived at ten.",
        "Officials turned left at the junction and drove to the quay.",
        "The vote was held at 10:30 on Monday morning in the town hall.",
    ],
)
def test_prose_is_not_a_caption(sentence):
    assert not looks_like_caption(sentence)


def test_a_caption_that_repeats_the_lead_is_not_picked():
    texts = [
        "Volunteers planted apple trees on the common.",
        "Mayor Okafor (pictured) planted the first apple tree.",
        "The orchard replaces an old car park.",
        "Schools will care for the trees this summer.",
    ]
    vectors = np.eye(4, dtype=np.float32)
    assert summary_candidates(texts) == [0, 2, 3]
    assert select_summary_sentences(vectors, texts, SummaryConfig(sentences=2)) == [0, 2]


def test_a_gallery_of_captions_still_gets_a_summary():
    texts = ["Sunrise: The ferry leaves the harbour at dawn.", "Sunset: The last boat returns to the quay."]
    assert summary_candidates(texts) == [0, 1]

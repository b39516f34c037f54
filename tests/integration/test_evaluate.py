"""`newsflow evaluate` and `newsflow train` as users call them: JSON on stdout, metrics in
Parquet and in a Prefect table artifact, heads written with their cards."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import NEWSMTSC
from tests.integration.test_cli import newsflow

pytestmark = pytest.mark.skipif(not NEWSMTSC.is_dir(), reason="NewsMTSC is read from ../shared/data/newsmtsc")

ARTICLES = [
    (
        "The city council of Eastbrook approved a new budget on Tuesday that doubles spending on public libraries. "
        "Council members said the extra money will extend opening hours and pay for a mobile library van. "
        "Residents had petitioned for longer hours for two years. The van will visit outlying villages twice a week. "
        "Opposition members questioned whether the plan could be sustained beyond next year.",
        "Eastbrook council doubles library spending.\nLonger opening hours and a mobile library van.",
    ),
    (
        "Fishermen in the northern bay reported their best herring season in a decade, according to the regional fisheries office. "
        "Scientists credit a ban on bottom trawling introduced five years ago. The catch rose by forty percent compared with last year. "
        "Prices at the harbour market fell as a result, to the delight of local restaurants. "
        "The fisheries office will publish a full report in the spring.",
        "Best herring season in a decade in the northern bay.\nScientists credit a trawling ban.",
    ),
]


@pytest.fixture(scope="module")
def api_url(prefect_harness) -> str:
    """The session's Prefect server, for the CLI processes: each would otherwise boot an
    ephemeral server of its own (about 7 s; the boot itself is tested in test_cli.py)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@pytest.fixture(scope="module")
def stance_slice(tmp_path_factory):
    path = tmp_path_factory.mktemp("stance") / "dev40.jsonl"
    path.write_text("\n".join((NEWSMTSC / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:40]) + "\n", encoding="utf-8")
    return path


def stdout_json(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)  # the whole of stdout is one JSON object


@pytest.mark.slow
def test_evaluate_stance_json_has_the_promised_keys(api_url, tmp_path, stance_slice):
    metrics = stdout_json(
        newsflow("evaluate", "stance", "--data", str(stance_slice), "--json", "--set", f"output.root={tmp_path / 'out'}", cwd=tmp_path, api_url=api_url)
    )
    assert {"macro_f1", "accuracy", "per_class", "confusion_matrix", "n", "models"} <= set(metrics)
    assert metrics["n"] == 40 and sum(map(sum, metrics["confusion_matrix"])) == 40
    assert set(metrics["per_class"]) == {"against", "neutral", "favor"}
    assert {"precision", "recall", "f1", "support"} <= set(metrics["per_class"]["favor"])
    assert len(metrics["models"]["head_weights_sha256"]) == 64 and metrics["models"]["encoder"]
    written = pd.read_parquet(tmp_path / "out" / "evaluations")
    assert written.loc[0, "kind"] == "stance" and written.loc[0, "macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert json.loads(written.loc[0, "metrics"])["confusion_matrix"] == metrics["confusion_matrix"]
    examples = pd.read_parquet(tmp_path / "out" / "evaluation_examples")
    assert len(examples) == 40 and set(examples["predicted"]) <= {"against", "neutral", "favor"}
    assert (examples["gold"] == examples["predicted"]).mean() == pytest.approx(metrics["accuracy"], abs=1e-4)


@pytest.mark.slow
def test_evaluate_sentiment_reads_text_and_label_columns(api_url, tmp_path):
    data = tmp_path / "sentiment.csv"
    pd.DataFrame(
        {
            "body": [
                "The rescue was a triumph and the town celebrated its heroes.",
                "The collapse killed dozens and officials lied about it.",
                "The committee meets on Tuesday.",
                "",
            ],
            "gold": ["positive", "negative", 0, "neutral"],
        }
    ).to_csv(data, index=False)
    metrics = stdout_json(
        newsflow(
            "evaluate",
            "sentiment",
            "--data",
            str(data),
            "--text-column",
            "body",
            "--label-column",
            "gold",
            "--json",
            "--set",
            f"output.root={tmp_path / 'out'}",
            cwd=tmp_path,
            api_url=api_url,
        )
    )
    assert metrics["n"] == 3 and {"macro_f1", "accuracy", "per_class", "confusion_matrix"} <= set(metrics)
    assert metrics["n_rejected"] == 1 and metrics["rejected_by_reason"] == {"empty": 1}  # the empty text: counted, not scored
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}


@pytest.mark.slow
def test_evaluate_summary_reports_pipeline_and_lead3_rouge(api_url, tmp_path):
    data = tmp_path / "articles.jsonl"
    pd.DataFrame({"article": [a for a, _ in ARTICLES], "highlights": [h for _, h in ARTICLES]}).to_json(data, orient="records", lines=True)
    metrics = stdout_json(
        newsflow("evaluate", "summary", "--data", str(data), "--json", "--set", f"output.root={tmp_path / 'out'}", cwd=tmp_path, api_url=api_url)
    )
    assert metrics["n"] == 2
    for method in ("pipeline", "lead3"):
        assert set(metrics[method]) >= {"rouge1", "rouge2", "rougeLsum"} and 0 < metrics[method]["rouge1"] <= 100


def test_evaluate_entities_reports_precision_and_recall_per_type(api_url, tmp_path):
    from tests.conftest import REPO_ROOT

    labelled = REPO_ROOT / "data" / "eval" / "entities.jsonl"
    metrics = stdout_json(
        newsflow("evaluate", "entities", "--data", str(labelled), "--json", "--set", f"output.root={tmp_path / 'out'}", cwd=tmp_path, api_url=api_url)
    )
    assert metrics["task"] == "entities" and metrics["format"] == "spans" and metrics["n"] == len(labelled.read_text(encoding="utf-8").splitlines())
    per_type = metrics["per_class"]
    assert {"PERSON", "ORG", "GPE", "LOC", "all (exact)", "all (overlap)"} <= set(per_type)
    # spaCy's small model on prose written for the project: most names found, the exact spans mostly right.
    assert per_type["all (overlap)"]["recall"] > 0.8 and 0.5 < per_type["all (exact)"]["precision"] <= per_type["all (overlap)"]["precision"]
    assert sum(per_type[t]["support"] for t in ("PERSON", "ORG", "GPE", "LOC")) == per_type["all (exact)"]["support"]
    evaluations = pd.read_parquet(tmp_path / "out" / "evaluations")
    assert list(evaluations.kind) == ["entities"] and json.loads(evaluations.metrics[0])["per_class"] == per_type


def test_evaluate_with_a_missing_column_fails_cleanly(api_url, tmp_path):
    data = tmp_path / "sentiment.csv"
    pd.DataFrame({"text": ["A sentence."]}).to_csv(data, index=False)
    result = newsflow("evaluate", "sentiment", "--data", str(data), "--set", f"output.root={tmp_path / 'out'}", cwd=tmp_path, api_url=api_url)
    assert result.returncode == 1 and "no 'label' column" in result.stderr


def test_evaluation_writes_a_table_artifact(prefect_harness, tmp_path, stance_slice):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.evaluate import evaluate_flow

    metrics = evaluate_flow("stance", str(stance_slice), overrides={"output.root": str(tmp_path / "out")})
    with get_client(sync_client=True) as client:
        # newest first: other tests of the session evaluate too, under the same stable key
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["evaluate-stance"])), sort=ArtifactSort.CREATED_DESC)
    assert artifacts and artifacts[0].type == "table"
    rows = json.loads(artifacts[0].data) if isinstance(artifacts[0].data, str) else artifacts[0].data
    macro = [r for r in rows if r["class"] == "macro"][0]
    assert macro["f1"] == metrics["macro_f1"] and {r["class"] for r in rows} == {"against", "neutral", "favor", "macro"}


@pytest.mark.slow
def test_train_command_writes_heads_with_cards(api_url, tmp_path, stance_slice):
    report = stdout_json(
        newsflow(
            "train",
            "--train",
            str(NEWSMTSC / "train.jsonl"),
            "--dev",
            str(stance_slice),
            "--limit",
            "120",
            "--out",
            str(tmp_path / "models"),
            "--json",
            cwd=tmp_path,
            api_url=api_url,
        )
    )
    assert set(report) == {"stance-linear", "sentiment-linear"}
    for name in report:
        folder = tmp_path / "models" / name
        assert (folder / "head.safetensors").is_file() and (folder / "README.md").is_file()
        assert json.loads((folder / "card.json").read_text())["metrics"]["dev_macro_f1"] == report[name]["dev_macro_f1"]


def test_evaluate_duplicates_reports_precision_and_recall_per_edit(api_url, tmp_path):
    from tests.conftest import SAMPLES

    names = [
        "fr_onu_accord_oceans",
        "imf_warns_brazil_debt",
        "nato_air_defence_timeline",
        "port_strike_daily_courier",
        "un_adaptation_fund_record_pledges",
        "who_measles_india_russia_geneva",
    ]
    data = tmp_path / "articles.csv"
    pd.DataFrame({"id": names, "body": [(SAMPLES / f"{name}.txt").read_text(encoding="utf-8") for name in names]}).to_csv(data, index=False)
    metrics = stdout_json(
        newsflow(
            "evaluate",
            "duplicates",
            "--data",
            str(data),
            "--article-column",
            "body",
            "--json",
            "--set",
            f"output.root={tmp_path / 'out'}",
            cwd=tmp_path,
            api_url=api_url,
        )
    )
    # The French article is rejected by cleaning (clean.languages is English): five stories,
    # each with five edited copies and a follow-up, and ten pairs of distinct stories.
    assert metrics["task"] == "duplicates" and metrics["n_articles"] == 5 and metrics["rejected_by_reason"] == {"language": 1}
    assert metrics["n_pairs"] == metrics["n"] == 5 * 5 + 5 + 10 and (metrics["n_positive"], metrics["n_negative"]) == (25, 15)
    assert {"precision", "recall", "f1", "settings", "signature_ms_per_doc"} <= set(metrics) and metrics["settings"]["num_perm"] == 128
    assert set(metrics["recall_per_variant"]) == {"dateline", "trimmed", "reordered", "sentence_changed", "combined"}
    assert {k: v["n"] for k, v in metrics["false_positives_per_kind"].items()} == {"distinct_articles": 10, "follow_up": 5}
    evaluations = pd.read_parquet(tmp_path / "out" / "evaluations")
    assert list(evaluations.kind) == ["duplicates"] and evaluations.loc[0, "recall"] == pytest.approx(metrics["recall"])
    assert evaluations.loc[0, "precision"] == pytest.approx(metrics["precision"]) and evaluations.loc[0, "n"] == 40
    examples = pd.read_parquet(tmp_path / "out" / "evaluation_examples")
    assert len(examples) == 40 and set(examples.kind) == {"duplicates"} and (examples.gold == "copy").sum() == 25


def test_evaluate_stories_reports_purity_and_bcubed(api_url, tmp_path):
    from tests.conftest import REPO_ROOT

    labelled = REPO_ROOT / "data" / "eval" / "stories.jsonl"
    rows = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines()]
    metrics = stdout_json(
        newsflow("evaluate", "stories", "--data", str(labelled), "--json", "--set", f"output.root={tmp_path / 'out'}", cwd=tmp_path, api_url=api_url)
    )
    assert metrics["task"] == "stories" and metrics["n"] == len(rows) and metrics["n_labels"] == len({r["story"] for r in rows})
    assert {"purity", "inverse_purity", "bcubed_precision", "bcubed_recall", "bcubed_f1", "n_stories"} <= set(metrics)
    examples = pd.read_parquet(tmp_path / "out" / "evaluation_examples")
    assert sorted(examples.gold) == sorted(r["story"] for r in rows) and examples.predicted.nunique() == metrics["n_stories"]
    assert pd.read_parquet(tmp_path / "out" / "evaluations").purity.tolist() == [metrics["purity"]]

"""The whole flow on the project's samples, under a Prefect test server."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES, SEEDS, run_pipeline

pytestmark = pytest.mark.slow

EXPECTED_COLUMNS = {
    "documents": {
        "doc_id",
        "origin",
        "source",
        "title",
        "authors",
        "published",
        "url",
        "language",
        "text",
        "n_sentences",
        "summary",
        "summary_sentences",
        "summary_method",
        "sentiment",
        "p_negative",
        "p_neutral",
        "p_positive",
        "run_id",
        "analysis_sha256",
        "duplicate_group",
        "canonical_doc_id",
        "story_id",
    },
    "stances": {
        "doc_id",
        "entity_id",
        "target",
        "type",
        "label",
        "confidence",
        "n_mentions",
        "evidence",
        "evidence_sentence",
        "p_against",
        "p_neutral",
        "p_favor",
        "run_id",
        "analysis_sha256",
    },
    "entities": {"doc_id", "entity_id", "name", "type", "configured", "n_mentions", "surfaces", "first_sentence", "run_id", "analysis_sha256"},
    "mentions": {"doc_id", "entity_id", "sentence_index", "start", "end", "surface", "p_against", "p_neutral", "p_favor", "run_id", "analysis_sha256"},
    "sentences": {"doc_id", "sentence_index", "text", "sentiment", "p_negative", "p_neutral", "p_positive", "run_id", "analysis_sha256"},
    "stories": {"story_id", "first_seen", "last_seen", "n_documents", "n_copies", "n_sources", "sources", "title", "top_entities", "updated_at", "run_id"},
    "entity_daily": {"entity_id", "name", "type", "day", "source", "n_documents", "n_mentions", "p_against", "p_neutral", "p_favor", "updated_at", "run_id"},
    "rejected": {"origin", "reason", "detail", "stage", "run_id"},
    "runs": {
        "run_id",
        "flow_run_name",
        "status",
        "started_at",
        "finished_at",
        "parameters",
        "config",
        "config_sha256",
        "code_version",
        "models",
        "libraries",
        "n_read",
        "n_kept",
        "n_rejected",
        "counts",
        "rejected_by_reason",
        "stage_seconds",
        "outputs",
        "analysis_sha256",
        "failed_stage",
        "host",
        "pid",
        "accounting",
        "cache",
        "processes",
    },
}


@pytest.fixture(scope="module")
def sample_runs(prefect_harness, tmp_path_factory):
    """Two runs over the samples, each into its own output root (small shards, to exercise sharding)."""
    output = tmp_path_factory.mktemp("output")
    first = run_pipeline([str(SAMPLES)], output, **{"run.shard_size": 4})
    second = run_pipeline([str(SAMPLES)], tmp_path_factory.mktemp("output-again"), **{"run.shard_size": 4})
    return output, first, second


def read_table(output: Path, name: str, run_id: str | None = None) -> pd.DataFrame:
    frame = pd.read_parquet(output / name)
    return frame if run_id is None else frame[frame.run_id == run_id]


def test_every_table_has_its_schema(sample_runs):
    output, first, _ = sample_runs
    for name, columns in EXPECTED_COLUMNS.items():
        frame = read_table(output, name, first["run_id"])
        assert columns <= set(frame.columns), f"{name} lacks {columns - set(frame.columns)}"
        assert len(frame) > 0, name


def test_counts_add_up(sample_runs):
    output, first, _ = sample_runs
    documents = read_table(output, "documents", first["run_id"])
    rejected = read_table(output, "rejected", first["run_id"])
    run = read_table(output, "runs", first["run_id"]).iloc[0]
    assert run.status == "completed"
    assert run.n_kept == len(documents) and run.n_rejected == len(rejected)
    assert run.n_kept + run.n_rejected == run.n_read
    # 15 English articles in 12 files (one .jsonl holds 3, one .csv holds 2) plus a French one and a duplicate.
    assert len(documents) == 15
    assert set(rejected.reason) == {"language", "duplicate"}
    assert json.loads(run.rejected_by_reason) == {"duplicate": 1, "language": 1}


def test_run_record_names_config_code_and_models(sample_runs):
    output, first, _ = sample_runs
    run = read_table(output, "runs", first["run_id"]).iloc[0]
    models = json.loads(run.models)
    assert set(models) == {"encoder", "ner", "sentiment", "stance"}
    assert all(len(m["weights_sha256"]) == 64 for m in models.values())
    # The default recogniser is the token head on the encoder's pass (its layers: final and 4).
    assert models["ner"]["recogniser"] == "encoder" and models["ner"]["id"] == "ner-tokens" and models["ner"]["layers"] == "6,4"
    assert json.loads(run.config)["run"]["shard_size"] == 4
    assert len(run.config_sha256) == 64 and run.code_version
    outputs = json.loads(run.outputs)
    # The record lists every file the run wrote, the commit's indexes too; its own file is
    # added in what the flow returns.
    indexes = {"_index/near_duplicates", "_index/stories"}
    assert {o["table"] for o in outputs} == set(EXPECTED_COLUMNS) - {"runs"} | indexes
    assert {o["table"] for o in first["outputs"]} == set(EXPECTED_COLUMNS) | indexes
    for item in first["outputs"]:
        metadata = pq.read_metadata(item["path"]).metadata
        assert metadata[b"newsflow.run_id"].decode() == first["run_id"]
        assert metadata[b"newsflow.config_sha256"].decode() == run.config_sha256
        assert b"newsflow.schema_version" in metadata
        assert pq.read_metadata(item["path"]).num_rows == item["rows"]
    counts = json.loads(run.counts)
    assert counts["files"] == 14 and counts["read"] == 17  # .jsonl holds 3 articles, .csv 2
    assert counts["ingest"] == 17 and counts["clean"] == 16 and counts["deduplicate"] == counts["write"] == 15
    stage_seconds = json.loads(run.stage_seconds)
    assert {"ingest", "clean", "encode", "summarize", "sentiment", "stance", "write", "near_duplicates", "stories", "entity_daily"} <= set(stage_seconds)


def test_outputs_are_hive_partitioned_and_read_with_duckdb(sample_runs):
    output, first, second = sample_runs
    files = list((output / "documents").glob("run_date=*/*.parquet"))
    assert files, "documents are partitioned by run_date"
    counts = duckdb.sql(f"select run_id, count(*) as n from read_parquet('{output}/documents/**/*.parquet', hive_partitioning=true) group by run_id").fetchall()
    assert dict(counts) == {first["run_id"]: 15}
    assert not list(output.glob("_staging/*")), "staging files are removed after a successful run"


def test_second_run_gives_the_same_ids_and_labels(sample_runs):
    output, first, second = sample_runs
    columns = ["doc_id", "sentiment", "summary"]
    again = Path(second["config"]["output"]["root"])
    a = read_table(output, "documents", first["run_id"])[columns].sort_values("doc_id").reset_index(drop=True)
    b = read_table(again, "documents", second["run_id"])[columns].sort_values("doc_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert first["analysis_sha256"] == second["analysis_sha256"]
    keys = ["doc_id", "target", "label"]
    sa = read_table(output, "stances", first["run_id"])[keys].sort_values(keys).reset_index(drop=True)
    sb = read_table(again, "stances", second["run_id"])[keys].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(sa, sb)


def test_documents_carry_metadata_summary_and_stances(sample_runs):
    output, first, _ = sample_runs
    documents = read_table(output, "documents", first["run_id"])
    assert documents.title.notna().all()
    assert (documents.summary.str.len() > 0).all()
    assert not documents.summary.str.contains(r"^By |PUBLISHED:", regex=True).any()
    assert set(documents.sentiment) <= {"negative", "neutral", "positive"}
    probabilities = documents[["p_negative", "p_neutral", "p_positive"]].sum(axis=1)
    assert ((probabilities - 1).abs() < 1e-4).all()
    stances = read_table(output, "stances", first["run_id"])
    assert set(stances.label) <= {"against", "neutral", "favor"}
    assert {"against", "favor"} <= set(stances.label), "the samples praise and criticise"
    for row in stances.itertuples():
        assert row.n_mentions >= 1 and 0 <= row.confidence <= 1
    # The evidence is one of the document's own sentences.
    sentences = read_table(output, "sentences", first["run_id"])
    own = set(zip(sentences.doc_id, sentences.text))
    assert all((r.doc_id, r.evidence) in own for r in stances.itertuples())


@pytest.mark.skipif(not (SEEDS / "000_b354eb1718a7a74f.txt").exists(), reason="../shared/seeds/ is not beside the repository")
def test_founding_article(prefect_harness, tmp_path):
    summary = run_pipeline([str(SEEDS)], tmp_path)  # the folder: its README.md is excluded by name
    documents = read_table(tmp_path, "documents", summary["run_id"])
    assert len(documents) == 1
    article = documents.iloc[0]
    assert list(article.authors) == ["Liu Lingling", "Zhang Penghui"]
    assert article.source == "People’s Daily"
    assert article.n_sentences == 20  # 18 paragraphs, two of them with two sentences
    assert not article.summary.startswith("By ")
    stances = read_table(tmp_path, "stances", summary["run_id"]).set_index("target")
    assert {"China", "United States", "Western countries", "António Guterres", "China Society for Human Rights Studies"} <= set(stances.index)
    # "U.S." twice on its own and once in "the U.S.-Mexico border", which names Mexico too.
    assert stances.loc["United States", "n_mentions"] == 3 and stances.loc["Mexico", "n_mentions"] == 1
    assert stances.loc["China Society for Human Rights Studies", "type"] == "ORG"
    sentences = set(read_table(tmp_path, "sentences", summary["run_id"]).text)
    assert set(stances.evidence) <= sentences
    # Each stance row is made of its mentions, and each mention lies in its sentence as written.
    mentions = read_table(tmp_path, "mentions", summary["run_id"])
    by_sentence = dict(read_table(tmp_path, "sentences", summary["run_id"])[["sentence_index", "text"]].itertuples(index=False))
    assert all(by_sentence[m.sentence_index][m.start : m.end] == m.surface for m in mentions.itertuples())
    assert mentions.groupby("entity_id").size().to_dict() == stances.set_index("entity_id").n_mentions.to_dict()
    entities = read_table(tmp_path, "entities", summary["run_id"]).set_index("name")
    assert entities.loc["António Guterres", "n_mentions"] == 2 and list(entities.loc["António Guterres", "surfaces"]) == ["António Guterres", "Guterres"]
    # The explicit cases: China's record "widely praised", "criticized some Western countries".
    assert stances.loc["China", "label"] == "favor"
    assert stances.loc["Western countries", "label"] == "against"


def test_a_missing_model_fails_the_run_before_work_and_records_it(prefect_harness, tmp_path):
    with pytest.raises(FileNotFoundError, match="no head weights"):
        run_pipeline([str(SAMPLES / "imf_warns_brazil_debt.txt")], tmp_path, **{"stance.head": str(tmp_path / "absent")})
    run = pd.read_parquet(tmp_path / "runs").iloc[0]
    assert run.status == "failed" and "no head weights" in run.error
    assert run.n_kept == 0 and not (tmp_path / "documents").exists()


def test_hugging_face_backends_run_the_whole_pipeline(prefect_harness, tmp_path, tiny_models):
    """One config line per task swaps in a seq2seq summariser, a sentiment classifier and an
    NLI stance model (tiny random ones here); the run record names each with its sha256."""
    summary = run_pipeline(
        [str(SAMPLES / "imf_warns_brazil_debt.txt"), str(SAMPLES / "world_bank_india_rural_solar.md")],
        tmp_path,
        **{
            "summary.kind": "abstractive",
            "summary.model": str(tiny_models.bart),
            "summary.num_beams": 1,
            "summary.max_new_tokens": 12,
            "summary.min_new_tokens": 2,
            "sentiment.kind": "classifier",
            "sentiment.model": str(tiny_models.sentiment),
            "sentiment.labels": {"NEG": "negative", "NEU": "neutral", "POS": "positive"},
            "stance.kind": "nli",
            "stance.model": str(tiny_models.nli),
            "runtime.device": "cpu",
        },
    )
    documents = read_table(tmp_path, "documents", summary["run_id"])
    assert len(documents) == 2 and documents.summary.str.len().gt(0).all()
    assert documents.summary_method.eq(f"abstractive:{tiny_models.bart}").all()
    assert documents.summary_sentences.map(len).eq(0).all()
    assert set(documents.sentiment) <= {"negative", "neutral", "positive"}
    stances = read_table(tmp_path, "stances", summary["run_id"])
    assert {"Brazil", "India"} <= set(stances.target) and set(stances.label) <= {"against", "neutral", "favor"}
    models = json.loads(read_table(tmp_path, "runs", summary["run_id"]).iloc[0]["models"])
    assert models["summarizer"]["path"] == str(tiny_models.bart) and models["stance"]["kind"] == "nli"
    assert models["sentiment"]["kind"] == "classifier" and len(models["sentiment"]["weights_sha256"]) == 64
    assert models["encoder"]["precision"] in {"fp32", "bf16"} and models["encoder"]["backend"] == "torch"


def test_each_run_publishes_its_report_documents_and_outputs_as_artifacts(sample_runs):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.report import DOCUMENTS_KEY, OUTPUTS_KEY, RUN_REPORT_KEY

    _, first, second = sample_runs
    with get_client(sync_client=True) as client:
        reports = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[RUN_REPORT_KEY])))
        documents = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[DOCUMENTS_KEY])))
        outputs = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[OUTPUTS_KEY])))
    by_run = {str(a.flow_run_id): a for a in reports}
    assert {first["run_id"], second["run_id"]} <= set(by_run)  # one report per run, under one key: the UI keeps the history
    report = by_run[first["run_id"]].data
    assert f"{first['n_kept']} kept" in report and "| duplicate | 1 |" in report and "## Strongest stances" in report
    assert "| encode |" in report and first["outputs"][0]["path"] in report
    assert "## Most mentioned entities" in report and "| United States | GPE |" in report
    table = next(a for a in documents if str(a.flow_run_id) == first["run_id"])
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert len(rows) == first["n_kept"] and {"title", "summary", "sentiment", "top_stances"} <= set(rows[0])
    assert any(str(a.flow_run_id) == first["run_id"] and "documents" in a.data for a in outputs)


def test_runs_and_show_read_the_run_records(sample_runs):
    from tests.integration.test_cli import newsflow

    output, first, _ = sample_runs
    listed = newsflow("runs", "--output", str(output), "--json", cwd=output)
    assert listed.returncode == 0, listed.stderr[-2000:]
    records = json.loads(listed.stdout)
    assert [r["run_id"] for r in records] == [first["run_id"]]
    assert records[0]["n_kept"] == first["n_kept"] and records[0]["status"] == "completed"
    shown = newsflow("show", first["run_id"][:8], "--output", str(output), "--rows", "2", cwd=output)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert first["run_id"] in shown.stdout and f"{first['n_kept']} kept" in shown.stdout and "first 2 documents" in shown.stdout
    assert "Most mentioned entities" in shown.stdout
    missing = newsflow("show", "nosuchrun", "--output", str(output), cwd=output)
    assert missing.returncode == 2 and "no run matching" in missing.stderr


def test_a_rerun_over_a_drop_folder_adds_only_new_documents(prefect_harness, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("imf_warns_brazil_debt.txt", "nato_air_defence_timeline.txt"):
        (drop / name).write_bytes((SAMPLES / name).read_bytes())
    output = tmp_path / "out"
    first = run_pipeline([str(drop)], output)
    assert first["n_kept"] == 2 and first["n_rejected"] == 0
    again = run_pipeline([str(drop)], output)
    assert again["status"] == "completed" and again["n_kept"] == 0 and again["rejected_by_reason"] == {"duplicate": 2}
    assert again["n_read"] == again["n_kept"] + again["n_rejected"] == 2
    assert again["counts"]["encode"] == 0, "documents already in the output are not encoded again"
    rejected = read_table(output, "rejected", again["run_id"])
    assert len(rejected) == 2 and rejected.stage.eq("deduplicate").all()
    assert rejected.detail.str.contains(f"already in the output from run {first['run_id']}").all()
    (drop / "port_strike_daily_courier.txt").write_bytes((SAMPLES / "port_strike_daily_courier.txt").read_bytes())
    third = run_pipeline([str(drop)], output)
    assert third["n_kept"] == 1 and third["rejected_by_reason"] == {"duplicate": 2}
    documents = pd.read_parquet(output / "documents")
    assert documents.doc_id.is_unique and len(documents) == 3  # nothing written twice
    upgraded = run_pipeline([str(drop)], output, **{"summary.sentences": 1})  # another analysis, but not asked to re-analyse
    assert upgraded["analysis_sha256"] != first["analysis_sha256"]
    assert upgraded["n_kept"] == 0 and upgraded["rejected_by_reason"] == {"duplicate": 3}, "an upgrade never doubles a drop folder's history"
    skipped = read_table(output, "rejected", upgraded["run_id"])
    assert skipped.detail.str.contains("already in the output from run").all()
    assert skipped.detail.str.contains("--reanalyze would analyse it again").all(), "the detail says how to analyse it again"
    changed = run_pipeline([str(drop)], output, **{"summary.sentences": 1, "run.reanalyze": True})  # another analysis: new rows, marked
    assert changed["n_kept"] == 3 and changed["analysis_sha256"] != first["analysis_sha256"]
    documents = pd.read_parquet(output / "documents")
    assert documents.groupby("analysis_sha256").doc_id.apply(lambda ids: ids.is_unique).all()
    assert len(documents) == 6 and documents.analysis_sha256.nunique() == 2
    again_changed = run_pipeline([str(drop)], output, **{"summary.sentences": 1, "run.reanalyze": True})
    assert again_changed["n_kept"] == 0, "re-analysing adds a document once per analysis"
    assert not read_table(output, "rejected", again_changed["run_id"]).detail.str.contains("--reanalyze").any()
    latest = latest_analysis_per_document(output)
    assert len(latest) == 3 and set(latest.analysis_sha256) == {changed["analysis_sha256"]}
    from tests.integration.test_cli import newsflow

    listed = newsflow("runs", "--output", str(output), "--json", cwd=output)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [r["run_id"] for r in (again_changed, changed, upgraded, third, again, first)]  # newest first


def latest_analysis_per_document(output: Path) -> pd.DataFrame:
    """Each document's row from its latest analysis: the query the docs give, in DuckDB."""
    root = output.as_posix()
    return duckdb.sql(f"""
        SELECT d.*
        FROM read_parquet('{root}/documents/**/*.parquet', hive_partitioning = true) AS d
        JOIN read_parquet('{root}/runs/**/*.parquet', hive_partitioning = true) AS r USING (run_id)
        QUALIFY row_number() OVER (PARTITION BY d.doc_id ORDER BY r.started_at DESC) = 1
    """).df()

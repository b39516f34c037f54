"""docs/reference/tables.md against real output: every table's documented columns are the
columns its Parquet files hold (with the documented types), and the page's "latest
analysis" queries run and agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT, SAMPLES, run_pipeline

pytestmark = pytest.mark.slow

TABLES_PAGE = REPO_ROOT / "docs" / "reference" / "tables.md"
PIPELINE_TABLES = ("documents", "stances", "entities", "mentions", "sentences", "stories", "entity_daily", "rejected", "runs")
EVALUATION_TABLES = ("evaluations", "evaluation_examples")
WEB_TABLES = ("fetched", "feeds")  # written by runs over web inputs (tests/integration/test_web_run.py runs them)


def documented_tables(text: str) -> dict[str, dict[str, str]]:
    """{table: {column: documented type}} from the page: a `## table` heading, then a
    Markdown table whose first cell is the column name in backticks and second its type."""
    tables: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^## ([a-z_]+)\s*$", line)
        if heading:
            current = heading.group(1)
            continue
        if line.startswith("#"):
            current = None
            continue
        row = re.match(r"^\| `([A-Za-z0-9_]+)` \| ([^|]+?) \|", line)
        if current and row:
            tables.setdefault(current, {})[row.group(1)] = row.group(2).strip()
    return tables


def type_words(arrow_type: pa.DataType) -> set[str]:
    """How the page may write an Arrow type."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return {"string", "JSON text"}
    if pa.types.is_timestamp(arrow_type):
        return {"timestamp (UTC)"} if arrow_type.tz == "UTC" else {f"timestamp ({arrow_type.tz})"}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return {f"list<{word}>" for word in type_words(arrow_type.value_type)}
    if pa.types.is_boolean(arrow_type):
        return {"bool"}
    if pa.types.is_floating(arrow_type):
        return {{16: "float16", 32: "float32", 64: "float64"}[arrow_type.bit_width]}
    if pa.types.is_integer(arrow_type):
        return {str(arrow_type)}
    return {str(arrow_type)}


def file_schemas(output: Path, table: str) -> list[pa.Schema]:
    files = sorted(p for p in (output / table).rglob("*.parquet") if not p.name.startswith((".", "_")))
    return [pq.read_schema(path) for path in files]


SENTENCES = [
    ("The United Nations praised the generous pledges that Japan made to the adaptation fund.", "Japan", 1),
    ("Officials said the talks with Brazil would continue next week in Geneva.", "Brazil", 0),
    ("Critics accused Russia of blocking the grain deal and worsening hunger.", "Russia", -1),
]


def write_evaluation_data(folder: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """Tiny labelled files of each kind `newsflow evaluate` reads."""
    stance = folder / "stance.jsonl"
    stance.write_text(
        "".join(json.dumps({"sentence": s, "mention": m, "polarity": p, "from": s.index(m), "to": s.index(m) + len(m)}) + "\n" for s, m, p in SENTENCES),
        encoding="utf-8",
    )
    sentiment = folder / "sentiment.jsonl"
    sentiment.write_text("".join(json.dumps({"text": s, "label": p}) + "\n" for s, _, p in SENTENCES), encoding="utf-8")
    summary = folder / "summary.jsonl"
    articles = [(SAMPLES / name).read_text(encoding="utf-8") for name in ("imf_warns_brazil_debt.txt", "un_adaptation_fund_record_pledges.txt")]
    summary.write_text("".join(json.dumps({"article": a, "highlights": a.strip().splitlines()[0]}) + "\n" for a in articles), encoding="utf-8")
    return {
        "stance": (stance, {}),
        "sentiment": (sentiment, {"text": "text", "label": "label"}),
        "summary": (summary, {"article": "article", "reference": "highlights"}),
        "duplicates": (summary, {"article": "article"}),
        "stories": (REPO_ROOT / "data" / "eval" / "stories.jsonl", {}),
    }


@pytest.fixture(scope="module")
def documented_output(prefect_harness, tmp_path_factory):
    """One output root with every table: a run over the samples, a second one under another
    analysis (`--reanalyze` with fewer summary sentences), and one evaluation of each kind."""
    from flows.evaluate import evaluate_flow

    output = tmp_path_factory.mktemp("docs-output")
    first = run_pipeline([SAMPLES], output)
    second = run_pipeline([SAMPLES], output, **{"summary.sentences": 1, "run.reanalyze": True})
    for kind, (data, columns) in write_evaluation_data(tmp_path_factory.mktemp("docs-eval")).items():
        evaluate_flow(kind, str(data), overrides={"output.root": str(output)}, columns=columns)
    return output, first, second


def test_the_page_documents_every_table():
    documented = documented_tables(TABLES_PAGE.read_text(encoding="utf-8"))
    assert set(documented) == {*PIPELINE_TABLES, *EVALUATION_TABLES, *WEB_TABLES}
    assert all(documented.values())


@pytest.mark.parametrize("table", WEB_TABLES)
def test_web_state_tables_are_documented_as_the_fetch_step_writes_them(tmp_path, table):
    from datetime import UTC, datetime

    from tasks.dataset.output import RunContext, write_table
    from tasks.web.state import FEEDS_SCHEMA, FETCHED_SCHEMA

    context = RunContext(run_id="r", started_at=datetime.now(UTC), output_root=str(tmp_path), config_sha256="c")
    schema = {"fetched": FETCHED_SCHEMA, "feeds": FEEDS_SCHEMA}[table]
    path, _ = write_table(context, table, "0", schema.empty_table(), result=False)  # as tasks/stages/ingest/fetch.py and flows/web.py write them
    written = pq.read_schema(path)
    documented = documented_tables(TABLES_PAGE.read_text(encoding="utf-8"))[table]
    assert list(documented) == written.names
    for field in written:
        assert documented[field.name] in type_words(field.type), f"{table}.{field.name}: documented as {documented[field.name]!r}, written as {field.type}"


@pytest.mark.parametrize("table", [*PIPELINE_TABLES, *EVALUATION_TABLES])
def test_documented_columns_are_the_columns_in_the_files(documented_output, table):
    output, _, _ = documented_output
    documented = documented_tables(TABLES_PAGE.read_text(encoding="utf-8"))[table]
    schemas = file_schemas(output, table)
    assert schemas, f"no {table} files under {output}"
    in_files = {name for schema in schemas for name in schema.names}
    assert set(documented) == in_files, (
        f"{table}: documented but not in the files: {sorted(set(documented) - in_files)}; in the files but not documented: {sorted(in_files - set(documented))}"
    )
    for schema in schemas:
        for field in schema:
            assert documented[field.name] in type_words(field.type), (
                f"{table}.{field.name}: documented as {documented[field.name]!r}, the files hold {field.type}"
            )


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def test_the_latest_analysis_queries_pick_the_latest_run(documented_output):
    import duckdb

    output, first, second = documented_output
    text = TABLES_PAGE.read_text(encoding="utf-8")
    section = text.split("## Each document's latest analysis", 1)[1]
    (sql,) = code_blocks(section, "sql")
    python = code_blocks(section, "python")
    assert len(python) == 2
    root = output.as_posix()

    by_duckdb = duckdb.sql(sql.replace("data/output", root)).df()
    namespace: dict = {}
    for block in python:
        exec(block.replace("data/output", root), namespace)  # noqa: S102 (the page's own example)
    latest, latest_stances = namespace["latest"], namespace["latest_stances"]

    # Both analyses are in the output; each query keeps one row per document, the second run's.
    assert first["n_kept"] > 0 and second["n_kept"] == first["n_kept"], "the second run re-analyses every document the first kept"
    documents = pd.read_parquet(output / "documents", columns=["doc_id", "analysis_sha256"])
    assert documents.analysis_sha256.nunique() == 2
    assert first["analysis_sha256"] != second["analysis_sha256"]
    for frame in (by_duckdb, latest):
        assert frame.doc_id.is_unique
        assert set(frame.doc_id) == set(documents.doc_id)
        assert set(frame.run_id) == {second["run_id"]}
        assert set(frame.analysis_sha256) == {second["analysis_sha256"]}
    assert set(latest_stances.analysis_sha256) == {second["analysis_sha256"]}
    assert len(latest_stances) > 0


def test_the_weekly_stance_query_counts_each_document_of_the_latest_analysis_once(documented_output):
    """The entity_daily page's query, run as written: after two analyses of the same documents,
    its weekly totals are those of the latest analysis alone."""
    import duckdb

    output, _, second = documented_output
    section = TABLES_PAGE.read_text(encoding="utf-8").split("## entity_daily", 1)[1].split("\n## ", 1)[0]
    (sql,) = code_blocks(section, "sql")
    weekly = duckdb.sql(sql.replace("data/output", output.as_posix())).df()
    stances = pd.read_parquet(output / "stances")
    china = stances[(stances.target == "China") & (stances.analysis_sha256 == second["analysis_sha256"])]
    assert len(weekly) > 0 and int(weekly.documents.sum()) == china.doc_id.nunique()
    assert ((weekly.p_against >= 0) & (weekly.p_against <= 1)).all()

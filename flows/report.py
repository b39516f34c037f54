"""A finished run, told from its run record and output files: the CLI's closing table,
the Prefect UI's artifacts (stable keys, so the UI keeps their history across runs) and
`newsflow show`."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

RUN_REPORT_KEY = "newsflow-run-report"
DOCUMENTS_KEY = "newsflow-documents"
OUTPUTS_KEY = "newsflow-outputs"


def _read(outputs: list[dict[str, Any]], table: str, columns: list[str]) -> pa.Table | None:
    paths = [o["path"] for o in outputs if o["table"] == table]
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in paths]) if paths else None


def sentiment_counts(outputs: list[dict[str, Any]]) -> dict[str, int]:
    documents = _read(outputs, "documents", ["sentiment"])
    return dict(Counter(documents.column("sentiment").to_pylist()).most_common()) if documents else {}


def top_stances(outputs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The most confident non-neutral stances of the run, with the document's title and the evidence."""
    stances = _read(outputs, "stances", ["doc_id", "target", "label", "confidence", "evidence"])
    documents = _read(outputs, "documents", ["doc_id", "title"])
    if stances is None or documents is None:
        return []
    titles = dict(zip(documents.column("doc_id").to_pylist(), documents.column("title").to_pylist()))
    rows = [r for r in stances.to_pylist() if r["label"] != "neutral"]
    rows.sort(key=lambda r: r["confidence"], reverse=True)
    return [{**r, "title": titles.get(r["doc_id"])} for r in rows[:limit]]


def document_rows(outputs: list[dict[str, Any]], limit: int = 100) -> list[dict[str, Any]]:
    """Title, summary, sentiment and the strongest stances of each document (first `limit`)."""
    documents = _read(outputs, "documents", ["doc_id", "title", "summary", "sentiment"])
    if documents is None:
        return []
    strongest: dict[str, list[str]] = {}
    for row in top_stances(outputs, limit=10_000):
        strongest.setdefault(row["doc_id"], []).append(f"{row['label']} {row['target']} ({row['confidence']:.2f})")
    return [{"title": r["title"] or r["doc_id"][:12], "sentiment": r["sentiment"], "summary": r["summary"],
             "top_stances": "; ".join(strongest.get(r["doc_id"], [])[:3])} for r in documents.to_pylist()[:limit]]


def run_report_markdown(summary: dict[str, Any]) -> str:
    """The run in one page: inputs, counts and reasons, stage timings, sentiment, stances, outputs."""
    outputs = summary.get("outputs", [])
    config = summary.get("config", {})
    lines = [
        f"# newsflow run `{summary['run_id']}`", "",
        f"**{summary.get('status', '')}** · flow run `{summary.get('flow_run_name')}` · "
        + (f"deployment `{summary['deployment']}` · " if summary.get("deployment") else "ad-hoc run · ")
        + f"{summary.get('duration_s', 0):.1f} s", "",
        f"Inputs: {', '.join(f'`{p}`' for p in config.get('input', {}).get('paths', []))}", "",
        "## Documents", "",
        f"{summary.get('n_read', 0)} read, **{summary.get('n_kept', 0)} kept**, {summary.get('n_rejected', 0)} rejected"
        + (f", {summary['n_skipped']} skipped as already in the output" if summary.get("n_skipped") else ""), "",
    ]
    reasons = summary.get("rejected_by_reason", {})
    if reasons:
        lines += ["| rejected because | documents |", "| --- | --- |", *[f"| {reason} | {count} |" for reason, count in reasons.items()], ""]
    lines += ["## Time per stage (task seconds)", "", "| stage | seconds |", "| --- | --- |",
              *[f"| {stage} | {seconds:.2f} |" for stage, seconds in summary.get("stage_seconds", {}).items()], ""]
    counts = sentiment_counts(outputs)
    if counts:
        lines += ["## Sentiment", "", ", ".join(f"{label} {n}" for label, n in counts.items()), ""]
    stances = top_stances(outputs, limit=8)
    if stances:
        lines += ["## Strongest stances", "", "| stance | confidence | document | evidence |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['label']} {r['target']} | {r['confidence']:.2f} | {r['title'] or r['doc_id'][:12]} | {r['evidence']} |" for r in stances]
        lines += [""]
    if summary.get("error"):
        lines += ["## Error", "", f"`{summary['error']}`", ""]
    lines += ["## Output", "", outputs_markdown(summary)]
    return "\n".join(lines)


def outputs_markdown(summary: dict[str, Any]) -> str:
    outputs = summary.get("outputs", [])
    if not outputs:
        return "No output files."
    return "\n".join(["| table | rows | file |", "| --- | --- | --- |",
                      *[f"| {o['table']} | {o['rows']} | [`{o['path']}`](file://{o['path']}) |" for o in outputs]])


def publish_run_artifacts(summary: dict[str, Any]) -> None:
    """The run report, a table of documents and the output files, as Prefect artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key=RUN_REPORT_KEY, markdown=run_report_markdown(summary), description="newsflow run report")
    rows = document_rows(summary.get("outputs", []))
    if rows:
        create_table_artifact(key=DOCUMENTS_KEY, table=rows, description="Documents of this run: title, summary, sentiment, strongest stances")
    create_markdown_artifact(key=OUTPUTS_KEY, markdown=outputs_markdown(summary), description="Output files of this run")

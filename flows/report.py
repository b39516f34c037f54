"""A finished run, told from its run record and output files: the CLI's closing table,
the Prefect UI's artifacts (stable keys, so the UI keeps their history across runs) and
`newsflow show`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.dataset.run_record import RunRecord

RUN_REPORT_KEY = "newsflow-run-report"
DOCUMENTS_KEY = "newsflow-documents"
OUTPUTS_KEY = "newsflow-outputs"


def _read(outputs: list[dict[str, Any]], table: str, columns: list[str]) -> pa.Table | None:
    """One table's files of a run. ParquetFile, not pq.read_table: that goes through
    pyarrow.dataset, whose import (pandas with it) costs `newsflow show` about half a second."""
    paths = [o["path"] for o in outputs if o["table"] == table]
    return pa.concat_tables([pq.ParquetFile(p).read(columns=columns) for p in paths]) if paths else None


@dataclass
class RunTables:
    """What the reports need of a run's outputs, read once: its documents, stances and entities."""

    documents: list[dict[str, Any]]  # doc_id, title, summary, sentiment
    stances: list[dict[str, Any]]  # non-neutral, most confident first, with the document's title
    entities: list[dict[str, Any]]  # one per entity_id: most mentioned first, with its stances

    @classmethod
    def read(cls, outputs: list[dict[str, Any]]) -> RunTables:
        documents = _read(outputs, "documents", ["doc_id", "title", "summary", "sentiment"])
        stances = _read(outputs, "stances", ["doc_id", "entity_id", "target", "label", "confidence", "evidence"])
        entities = _read(outputs, "entities", ["doc_id", "entity_id", "name", "type", "n_mentions"])
        doc_rows = documents.to_pylist() if documents is not None else []
        stance_rows = stances.to_pylist() if stances is not None else []
        titles = {d["doc_id"]: d["title"] for d in doc_rows}
        polar = [{**r, "title": titles.get(r["doc_id"])} for r in stance_rows if r["label"] != "neutral"]
        polar.sort(key=lambda r: r["confidence"], reverse=True)
        return cls(doc_rows, polar, entity_summary(entities.to_pylist() if entities is not None else [], stance_rows))

    def sentiment_counts(self) -> dict[str, int]:
        return dict(Counter(d["sentiment"] for d in self.documents).most_common())

    def top_entities(self, limit: int) -> list[dict[str, Any]]:
        """The run's most mentioned entities, with their stances and strongest evidence."""
        return self.entities[:limit]

    def top_stances(self, limit: int) -> list[dict[str, Any]]:
        """The most confident non-neutral stances of the run, with the document's title and the evidence."""
        return self.stances[:limit]

    def document_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        """Title, summary, sentiment and the strongest stances of each document (first `limit`)."""
        strongest: dict[str, list[str]] = {}
        for row in self.stances:
            strongest.setdefault(row["doc_id"], []).append(f"{row['label']} {row['target']} ({row['confidence']:.2f})")
        return [
            {
                "title": d["title"] or d["doc_id"][:12],
                "sentiment": d["sentiment"],
                "summary": d["summary"],
                "top_stances": "; ".join(strongest.get(d["doc_id"], [])[:3]),
            }
            for d in self.documents[:limit]
        ]


def entity_summary(entities: list[dict[str, Any]], stances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per entity_id across the run: name, type, documents, mentions, stance labels counted,
    and the evidence of its most confident non-neutral stance; most mentioned first."""
    summary: dict[str, dict[str, Any]] = {}
    for e in entities:
        row = summary.setdefault(
            e["entity_id"], {"name": e["name"], "type": e["type"], "documents": 0, "mentions": 0, "stances": Counter(), "evidence": "", "best": 0.0}
        )
        row["documents"] += 1
        row["mentions"] += e["n_mentions"]
    for s in stances:
        row = summary.get(s.get("entity_id", ""))  # runs from before entities have no ids
        if row is None:
            continue
        row["stances"][s["label"]] += 1
        if s["label"] != "neutral" and s["confidence"] > row["best"]:
            row["best"], row["evidence"] = s["confidence"], f"{s['label']}: {s['evidence']}"
    rows = sorted(summary.values(), key=lambda r: (-r["mentions"], -r["documents"], r["name"]))
    return [{**{k: v for k, v in r.items() if k != "best"}, "stances": stance_counts(r["stances"])} for r in rows]


def stance_counts(counts: Counter) -> str:
    """ "favor 2, against 1" in a fixed order; "-" when none was judged."""
    return ", ".join(f"{label} {counts[label]}" for label in ("favor", "against", "neutral") if counts[label]) or "-"


def run_report_markdown(record: RunRecord, tables: RunTables | None = None) -> str:
    """The run in one page: inputs, counts and reasons, stage timings, sentiment, stances, outputs."""
    tables = tables or RunTables.read(record.outputs)
    lines = [
        f"# newsflow run `{record.run_id}`",
        "",
        f"**{record.status}** · flow run `{record.flow_run_name}` · "
        + (f"deployment `{record.deployment}` · " if record.deployment else "ad-hoc run · ")
        + f"{record.duration_s or 0:.1f} s",
        "",
        f"Inputs: {inputs_line(record.config.get('input', {}))}",
        "",
        "## Documents",
        "",
        f"{record.n_read or 0} read, {record.n_kept or 0} kept, {record.n_rejected or 0} rejected",
        "",
    ]
    if record.rejected_by_reason:
        lines += ["| rejected because | documents |", "| --- | --- |", *[f"| {reason} | {count} |" for reason, count in record.rejected_by_reason.items()], ""]
    lines += sources_markdown(record.sources)
    lines += [
        "## Time per stage (task seconds)",
        "",
        "| stage | seconds |",
        "| --- | --- |",
        *[f"| {stage} | {seconds:.2f} |" for stage, seconds in record.stage_seconds.items()],
        "",
    ]
    counts = tables.sentiment_counts()
    if counts:
        lines += ["## Sentiment", "", ", ".join(f"{label} {n}" for label, n in counts.items()), ""]
    entities = tables.top_entities(limit=10)
    if entities:
        lines += [
            "## Most mentioned entities",
            "",
            "| entity | type | documents | mentions | stances | strongest evidence |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {r['name']} | {r['type']} | {r['documents']} | {r['mentions']} | {r['stances']} | {r['evidence'] or '-'} |" for r in entities]
        lines += [""]
    stances = tables.top_stances(limit=8)
    if stances:
        lines += ["## Strongest stances", "", "| stance | confidence | document | evidence |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['label']} {r['target']} | {r['confidence']:.2f} | {r['title'] or r['doc_id'][:12]} | {r['evidence']} |" for r in stances]
        lines += [""]
    if record.error:
        lines += ["## Error", "", f"`{record.error}`", ""]
    lines += ["## Output", "", outputs_markdown(record)]
    return "\n".join(lines)


def inputs_line(input_config: dict[str, Any]) -> str:
    """The run's input paths and named web sources, as the config gave them."""
    named = [f"`{p}`" for p in input_config.get("paths", [])] + [f"{s['name']} (`{s['url']}`)" for s in input_config.get("sources", [])]
    return ", ".join(named) or "none"


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "-"


def sources_markdown(sources: dict[str, dict[str, Any]]) -> list[str]:
    """Per web source: listed, taken before, skipped, fetched, feeds not modified, rejections, bytes, seconds."""
    if not sources:
        return []
    lines = [
        "## Web sources",
        "",
        "| source | listed | taken before | skipped | fetched | not modified | rejected | listing errors | bytes | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in sources.items():
        lines.append(
            f"| {name} | {s['listed']} | {s['already_taken']} | {s['skipped']} | {s['fetched']} | {s['not_modified']} | {_reasons(s['rejected'])} "
            f"| {_reasons(s['listing_rejected'])} | {s['bytes']} | {s['seconds']:.1f} |"
        )
    return [*lines, ""]


def outputs_markdown(record: RunRecord) -> str:
    if not record.outputs:
        return "No output files."
    return "\n".join(
        ["| table | rows | file |", "| --- | --- | --- |", *[f"| {o['table']} | {o['rows']} | [`{o['path']}`](file://{o['path']}) |" for o in record.outputs]]
    )


def publish_run_artifacts(record: RunRecord) -> None:
    """The run report, a table of documents and the output files, as Prefect artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    tables = RunTables.read(record.outputs)
    create_markdown_artifact(key=RUN_REPORT_KEY, markdown=run_report_markdown(record, tables), description="newsflow run report")
    rows = tables.document_rows()
    if rows:
        create_table_artifact(key=DOCUMENTS_KEY, table=rows, description="Documents of this run: title, summary, sentiment, strongest stances")
    create_markdown_artifact(key=OUTPUTS_KEY, markdown=outputs_markdown(record), description="Output files of this run")

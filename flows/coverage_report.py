"""The `coverage-report` flow: read the output root's tables, write the coverage report as
one self-contained HTML file, and publish it as Prefect artifacts (a link to the file and
a Markdown summary, under stable keys so the UI keeps their history)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.reports.coverage import Coverage, Scope, read_coverage
from tasks.reports.html_page import render_page

REPORT_KEY = "newsflow-coverage-report"
SUMMARY_KEY = "newsflow-coverage-summary"


@task(name="read-coverage", cache_policy=NO_CACHE, persist_result=False)
def read_coverage_task(output_root: str, scope: Scope) -> Coverage:
    return read_coverage(output_root, scope)


@task(name="write-page", cache_policy=NO_CACHE, persist_result=False)
def write_page(coverage: Coverage, html_path: str) -> Path:
    """Written beside the target under a dot-name, then renamed: a browser open on the old
    report never reads half a new one."""
    path = Path(html_path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_page(coverage, datetime.now(UTC)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def entity_stance(row: Any) -> str:
    """ "favor 5, against 1" in a fixed order; "-" when every label is absent."""
    return ", ".join(f"{label} {int(row[label])}" for label in ("favor", "against", "neutral") if row[label]) or "-"


def summary_markdown(coverage: Coverage, path: Path) -> str:
    """The artifact's text: what was counted, and the top entities with their stance."""
    lines = [
        "# newsflow coverage report",
        "",
        f"{coverage.scope.describe().capitalize()} under `{coverage.root}`: [{path.name}]({path.as_uri()})",
        "",
        "| documents | sources | stories |",
        "| --- | --- | --- |",
        f"| {len(coverage.documents)} | {len(coverage.sources)} | {len(coverage.stories)} |",
        "",
        "Each group of copies counts once.",
        "",
    ]
    if not coverage.entities.empty:
        lines += ["## Most mentioned entities", "", "| entity | type | mentions | documents | stance |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| {r['name']} | {r['type']} | {int(r['n_mentions'])} | {int(r['n_documents'])} | {entity_stance(r)} |" for _, r in coverage.entities.iterrows()
        ]
    return "\n".join(lines)


def summary(coverage: Coverage, path: Path) -> dict[str, Any]:
    return {
        "html": str(path),
        "bytes": path.stat().st_size,
        "scope": coverage.scope.describe(),
        "n_documents": len(coverage.documents),
        "n_sources": len(coverage.sources),
        "n_stories": len(coverage.stories),
        "top_entities": [
            {"name": r["name"], "type": r["type"], "n_mentions": int(r["n_mentions"]), "stance": entity_stance(r)} for _, r in coverage.entities.iterrows()
        ],
    }


@flow(name="coverage-report", validate_parameters=True, persist_result=False)
def coverage_report_flow(output_root: str, html_path: str, run_id: str | None = None, since: date | None = None) -> dict[str, Any]:
    """Write the coverage report of `output_root` (one run's documents, those since a day, or
    all) to `html_path`; returns what it counted and where it wrote."""
    coverage = read_coverage_task(output_root, Scope(run_id, since))
    path = write_page(coverage, html_path)
    create_link_artifact(key=REPORT_KEY, link=path.as_uri(), link_text=path.name, description=f"newsflow coverage report: {coverage.scope.describe()}")
    create_markdown_artifact(key=SUMMARY_KEY, markdown=summary_markdown(coverage, path), description="newsflow coverage report: counts and top entities")
    result = summary(coverage, path)
    get_run_logger().info("coverage report of %s written to %s (%d bytes)", result["scope"], path, result["bytes"])
    return result

"""`newsflow`: the command line. Validates the config before any work starts, runs the
flow, and closes with a table of what the run produced."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (telemetry off before prefect loads)
from flows.report import sentiment_counts, top_stances
from tasks.config import ConfigError, load_config, parse_override

app = typer.Typer(add_completion=False, no_args_is_help=True, help="newsflow: batch NLP for news on Prefect.")
console = Console(stderr=True)


@app.callback()
def newsflow() -> None:
    """newsflow: batch NLP for news on Prefect."""


def collect_overrides(inputs: list[str], output: Optional[str], shard_size: Optional[int], settings: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(parse_override(s) for s in settings)
    if inputs:
        overrides["input.paths"] = inputs
    if output:
        overrides["output.root"] = output
    if shard_size:
        overrides["run.shard_size"] = shard_size
    return overrides


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (default: configs/default.toml)"),
    inputs: list[str] = typer.Option([], "--input", "-i", help="file, folder or glob; repeatable; replaces input.paths"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="output root (output.root)"),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="documents per shard (run.shard_size)"),
    settings: list[str] = typer.Option([], "--set", help="any config key: --set summary.sentences=4"),
    as_json: bool = typer.Option(False, "--json", help="print the run record as JSON on stdout"),
) -> None:
    """Run the pipeline over the inputs and write Parquet under the output root."""
    try:
        overrides = collect_overrides(inputs, output, shard_size, settings)
        load_config(config, overrides)  # fail on a bad config before Prefect starts
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)
    from flows.pipeline import news_pipeline  # heavy imports only once the config is known good

    try:
        summary = news_pipeline(config_path=str(config) if config else None, overrides=overrides)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]run failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(summary, default=str, indent=2))
    print_run_summary(summary)


def print_run_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"newsflow run {summary['run_id']}", show_header=False)
    table.add_row("documents", f"{summary['n_kept']} kept, {summary['n_rejected']} rejected, {summary['n_read']} read")
    for reason, count in summary["rejected_by_reason"].items():
        table.add_row(f"  rejected: {reason}", str(count))
    outputs = summary["outputs"]
    table.add_row("sentiment", ", ".join(f"{k} {v}" for k, v in sentiment_counts(outputs).items()) or "-")
    for row in top_stances(outputs, limit=5):
        table.add_row(f"  {row['label']} {row['target']}", f"{row['confidence']:.2f}  {row['title'] or row['doc_id'][:12]}")
    tables = sorted({o["table"] for o in outputs})
    table.add_row("output", f"{summary['config']['output']['root']}: {', '.join(tables)}")
    table.add_row("duration", f"{summary['duration_s']:.1f} s")
    console.print(table)


def main() -> None:
    app(prog_name="newsflow")


if __name__ == "__main__":
    sys.exit(main())

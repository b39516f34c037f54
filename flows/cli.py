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
from flows.report import RunTables
from flows.server import DEFAULT_PORT, healthy, read_state, start_ephemeral_api_in_background, start_server, stop_server, use_running_server
from tasks.config import PROJECT_ROOT, ConfigError, PipelineConfig, load_config, parse_override
from tasks.models.newsmtsc import NEWSMTSC

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
        pipeline_config = load_config(config, overrides)  # fail on a bad config before Prefect starts
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)
    api = use_running_server()  # before prefect is imported: its settings are read once
    console.print(f"Prefect API: {api}" if api else "Prefect API: ephemeral (start a server with `newsflow server start` to keep runs in the UI)")
    booting = None if api else start_ephemeral_api_in_background()
    from flows.pipeline import news_pipeline  # heavy imports only once the config is known good
    from tasks.encode import preload_models

    preload_models(pipeline_config)  # while the server boots
    if booting:
        booting.join()

    try:
        summary = news_pipeline(config_path=str(config) if config else None, overrides=overrides)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]run failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(summary, default=str, indent=2))
    print_run_summary(summary)


def load_or_exit(config: Optional[Path], settings: list[str]) -> tuple[dict[str, Any], PipelineConfig]:
    """(the --set overrides, the config with them), once that config is known good (exit 2 otherwise)."""
    try:
        overrides = collect_overrides([], None, None, settings)
        return overrides, load_config(config, overrides)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2)


@app.command()
def train(
    train_data: Path = typer.Option(NEWSMTSC / "train.jsonl", "--train", help="NewsMTSC-format JSONL to train on"),
    dev_data: Path = typer.Option(NEWSMTSC / "dev.jsonl", "--dev", help="NewsMTSC-format JSONL to select on (never trained on)"),
    out: Path = typer.Option(PROJECT_ROOT / "data" / "models", "--out", help="folder that receives one sub-folder per head"),
    finetune: bool = typer.Option(False, "--finetune", help="fine-tune the stance head's top layers instead of the linear heads"),
    epochs: int = typer.Option(3, "--epochs", min=1, help="--finetune: epochs (the best on dev is kept)"),
    layers: int = typer.Option(2, "--layers", min=1, max=6, help="--finetune: top encoder layers to tune"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: torch's default); results repeat for a given seed and thread count"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="train on the first N rows only (a quick trial)"),
    as_json: bool = typer.Option(False, "--json", help="print the dev metrics as one JSON object on stdout"),
) -> None:
    """Train the stance and sentiment heads (a Prefect flow) and write them with model cards."""
    for path in (train_data, dev_data):
        if not path.is_file():
            console.print(f"[red]no such file:[/red] {path}")
            raise typer.Exit(2)
    from flows.train import train_heads_flow

    try:
        report = train_heads_flow(str(train_data), str(dev_data), str(out), finetune=finetune, seed=seed, threads=threads,
                                  limit=limit, epochs=epochs, layers=layers)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]training failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(title=f"heads written under {out}")
    for column in ("head", "dev macro-F1", "dev accuracy"):
        table.add_column(column)
    for name, metrics in report.items():
        table.add_row(name, f"{metrics['dev_macro_f1']:.3f}", f"{metrics['dev_accuracy']:.3f}")
    Console().print(table)


evaluate_app = typer.Typer(no_args_is_help=True, help="Measure stance, sentiment or summaries on labelled data (a Prefect flow).")
app.add_typer(evaluate_app, name="evaluate")
DATA_OPTION = typer.Option(..., "--data", exists=True, dir_okay=False, help="labelled data file")
CONFIG_OPTION = typer.Option(None, "--config", "-c", help="TOML config whose models are measured (default: configs/default.toml)")
SET_OPTION = typer.Option([], "--set", help="any config key, e.g. --set stance.head=data/models/stance-linear")
JSON_OPTION = typer.Option(False, "--json", help="print the metrics as one JSON object on stdout, and nothing else there")


def run_evaluation(kind: str, data: Path, config: Optional[Path], settings: list[str], as_json: bool, columns: dict[str, str]) -> None:
    overrides, _ = load_or_exit(config, settings)
    from flows.evaluate import evaluate_flow

    try:
        metrics = evaluate_flow(kind, str(data), config_path=str(config) if config else None, overrides=overrides, columns=columns)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]evaluation failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(metrics, default=str))
    else:
        Console().print(metrics_table(metrics))


def metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"newsflow evaluate {metrics['task']}: n = {metrics['n']}")
    if metrics["task"] == "summary":
        for column in ("method", "ROUGE-1", "ROUGE-2", "ROUGE-Lsum"):
            table.add_column(column)
        for method in ("pipeline", "lead3"):
            table.add_row(method, *(f"{metrics[method][k]:.2f}" for k in ("rouge1", "rouge2", "rougeLsum")))
        return table
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column)
    for label, s in metrics["per_class"].items():
        table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    table.add_row("macro-F1", "", "", f"{metrics['macro_f1']:.3f}", "")
    table.add_row("accuracy", "", "", f"{metrics['accuracy']:.3f}", "")
    return table


@evaluate_app.command("stance")
def evaluate_stance_command(data: Path = DATA_OPTION, config: Optional[Path] = CONFIG_OPTION, settings: list[str] = SET_OPTION,
                            as_json: bool = JSON_OPTION) -> None:
    """Stance toward each row's mention, NewsMTSC format (mention, polarity -1/0/1, from, to, sentence)."""
    run_evaluation("stance", data, config, settings, as_json, {})


@evaluate_app.command("sentiment")
def evaluate_sentiment_command(data: Path = DATA_OPTION, config: Optional[Path] = CONFIG_OPTION, settings: list[str] = SET_OPTION,
                               as_json: bool = JSON_OPTION, text_column: str = typer.Option("text", "--text-column"),
                               label_column: str = typer.Option("label", "--label-column", help="negative/neutral/positive or -1/0/1")) -> None:
    """Document sentiment of each text (CSV/JSONL/Parquet; a NewsMTSC file is read as sentences)."""
    run_evaluation("sentiment", data, config, settings, as_json, {"text": text_column, "label": label_column})


@evaluate_app.command("summary")
def evaluate_summary_command(data: Path = DATA_OPTION, config: Optional[Path] = CONFIG_OPTION, settings: list[str] = SET_OPTION,
                             as_json: bool = JSON_OPTION, article_column: str = typer.Option("article", "--article-column"),
                             reference_column: str = typer.Option("highlights", "--reference-column")) -> None:
    """ROUGE-1/2/Lsum of the pipeline's summaries and of Lead-3 against reference summaries."""
    run_evaluation("summary", data, config, settings, as_json, {"article": article_column, "reference": reference_column})


def prefect_states(run_ids: list[str]) -> dict[str, str]:
    """Each run's state on the Prefect server named by PREFECT_API_URL; {} without one
    (starting an ephemeral server only to list runs would cost seconds)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        return {}
    from prefect import get_client

    states: dict[str, str] = {}
    try:
        with get_client(sync_client=True) as client:
            for run_id in run_ids:
                try:
                    states[run_id] = client.read_flow_run(run_id).state_name or ""
                except Exception:  # noqa: BLE001  (a run made under another API is simply not there)
                    states[run_id] = "not on this server"
    except Exception:  # noqa: BLE001  (server unreachable: the run records still answer)
        return {}
    return states


@app.command()
def runs(
    output: Optional[str] = typer.Option(None, "--output", "-o", help="output root (default: the config's output.root)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="the run records as a JSON list on stdout"),
) -> None:
    """Recent runs from the run records under the output root (with Prefect's state when a server is set)."""
    use_running_server()  # before prefect is imported (tasks import it): its settings are read once
    from tasks.run_record import read_run_records

    root = output or load_or_exit(config, [])[1].output.root
    records = read_run_records(root)[:limit]
    states = prefect_states([r["run_id"] for r in records])
    if as_json:
        print(json.dumps([{**r, "prefect_state": states.get(r["run_id"])} for r in records], default=str))
        return
    table = Table(title=f"newsflow runs in {root}")
    for column in ("run id", "name", "deployment", "status", "started (UTC)", "duration", "kept", "rejected", *(["Prefect state"] if states else [])):
        table.add_column(column)
    for r in records:
        table.add_row(r["run_id"], r["flow_run_name"] or "", r["deployment"] or "", r["status"], f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                      f"{r['duration_s']:.1f} s", str(r["n_kept"]), str(r["n_rejected"]), *([states.get(r["run_id"], "")] if states else []))
    Console().print(table if records else f"no runs recorded under {root}")


@app.command()
def show(
    run_id: str = typer.Argument(..., help="a run id (or its first characters) from `newsflow runs`"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="output root (default: the config's output.root)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
    rows: int = typer.Option(5, "--rows", min=0, help="documents to print"),
) -> None:
    """A run's report and a sample of its documents."""
    from rich.markdown import Markdown

    from flows.report import run_report_markdown
    from tasks.run_record import read_run_records

    root = output or load_or_exit(config, [])[1].output.root
    matches = [r for r in read_run_records(root) if r["run_id"].startswith(run_id)]
    if len(matches) != 1:
        console.print(f"[red]{'no run' if not matches else 'several runs'} matching {run_id!r} under {root}[/red]")
        raise typer.Exit(2)
    record = matches[0]
    out = Console()
    tables = RunTables.read(record.get("outputs", []))
    out.print(Markdown(run_report_markdown(record, tables)))
    sample = tables.document_rows(limit=rows)
    if sample:
        table = Table(title=f"first {len(sample)} documents")
        for column in ("title", "sentiment", "top stances", "summary"):
            table.add_column(column)
        for row in sample:
            table.add_row(row["title"], row["sentiment"], row["top_stances"], row["summary"])
        out.print(table)


server_app = typer.Typer(no_args_is_help=True, help="A local Prefect server (and its UI) on loopback.")
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535)) -> None:
    """Start the Prefect server in the background and wait until it answers."""
    try:
        state = start_server(port)
    except RuntimeError as exc:
        console.print(f"[red]server failed:[/red] {exc}")
        raise typer.Exit(1)
    print(f"Prefect server running (pid {state.pid})\nUI:  {state.ui_url}\nAPI: {state.api_url}\nlog: {state.log}")
    print("`newsflow run` uses it from now on; other tools: export PREFECT_API_URL=" + state.api_url)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server that `newsflow server start` started."""
    state = stop_server()
    print(f"stopped the Prefect server (pid {state.pid}, port {state.port})" if state else "no newsflow server was running")


@server_app.command("status")
def server_status() -> None:
    """Whether the server is running, and where."""
    state = read_state()
    if state and healthy(state.api_url):
        print(f"running (pid {state.pid})\nUI:  {state.ui_url}\nAPI: {state.api_url}")
        return
    print("not running" + (f" (stale state from pid {state.pid})" if state else ""))
    raise typer.Exit(3)


@app.command()
def serve(
    cron: Optional[str] = typer.Option(None, "--cron", help="cron expression, e.g. '0 * * * *'"),
    interval: Optional[int] = typer.Option(None, "--interval", min=1, help="seconds between runs"),
    name: str = typer.Option("newsflow", "--name", help="deployment name (with --cron/--interval)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config; its [[schedules]] are served when neither --cron nor --interval is given"),
    settings: list[str] = typer.Option([], "--set", help="any config key for every scheduled run"),
) -> None:
    """Register the pipeline as scheduled deployments and serve them until stopped (Ctrl-C)."""
    from tasks.config import ScheduleConfig

    overrides, loaded = load_or_exit(config, settings)
    try:
        schedules = [ScheduleConfig(name=name, cron=cron, interval=interval)] if (cron or interval) else loaded.schedules
    except ValueError as exc:
        console.print(f"[red]schedule error:[/red] {exc}")
        raise typer.Exit(2)
    if not schedules:
        console.print("[red]nothing to serve:[/red] give --cron or --interval, or [[schedules]] in the config")
        raise typer.Exit(2)
    api = use_running_server()
    if not api:
        console.print("[red]no Prefect server:[/red] run `newsflow server start` (or set PREFECT_API_URL) first")
        raise typer.Exit(1)
    from flows.deployments import serve_deployments

    console.print(f"serving {', '.join(f'news-pipeline/{s.name}' for s in schedules)} on {api}")
    serve_deployments(schedules, str(config) if config else None, overrides)


@app.command()
def trigger(
    deployment: str = typer.Argument(..., help="deployment name, e.g. 'newsflow' or 'news-pipeline/newsflow'"),
    params: list[str] = typer.Option([], "--param", help="flow parameter, e.g. --param config_path=configs/mine.toml"),
    settings: list[str] = typer.Option([], "--set", help="config key for this run, added to the deployment's overrides"),
    wait: bool = typer.Option(False, "--wait", help="wait for the run to finish and exit with its outcome"),
) -> None:
    """Start a run of a served deployment now."""
    if not use_running_server():
        console.print("[red]no Prefect server:[/red] run `newsflow server start` (or set PREFECT_API_URL) first")
        raise typer.Exit(1)
    from prefect import get_client
    from prefect.deployments import run_deployment

    full_name = deployment if "/" in deployment else f"news-pipeline/{deployment}"
    with get_client(sync_client=True) as client:
        defaults = dict(client.read_deployment_by_name(full_name).parameters or {})
    parameters = {**defaults, **dict(parse_override(p) for p in params)}
    parameters["overrides"] = {**(parameters.get("overrides") or {}), **dict(parse_override(s) for s in settings)}
    flow_run = run_deployment(name=full_name, parameters=parameters, timeout=None if wait else 0)
    print(f"{flow_run.id} {flow_run.name} {flow_run.state_name}")
    if wait and not (flow_run.state and flow_run.state.is_completed()):
        raise typer.Exit(1)


def print_run_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"newsflow run {summary['run_id']}", show_header=False)
    table.add_row("documents", f"{summary['n_kept']} kept, {summary['n_rejected']} rejected, {summary['n_read']} read")
    for reason, count in summary["rejected_by_reason"].items():
        table.add_row(f"  rejected: {reason}", str(count))
    outputs = summary["outputs"]
    tables = RunTables.read(outputs)
    table.add_row("sentiment", ", ".join(f"{k} {v}" for k, v in tables.sentiment_counts().items()) or "-")
    for row in tables.top_stances(limit=5):
        table.add_row(f"  {row['label']} {row['target']}", f"{row['confidence']:.2f}  {row['title'] or row['doc_id'][:12]}")
    tables = sorted({o["table"] for o in outputs})
    table.add_row("output", f"{summary['config']['output']['root']}: {', '.join(tables)}")
    table.add_row("duration", f"{summary['duration_s']:.1f} s")
    console.print(table)


def main() -> None:
    app(prog_name="newsflow")


if __name__ == "__main__":
    sys.exit(main())

"""`newsflow`: the command line. Validates the config before any work starts, runs the
flow, and closes with a table of what the run produced.

Output a script can use: every command that lists something takes `--json`; when stdout is
not a terminal, listings are tab-separated lines under a header row, with full values; in a
terminal they are tables whose ids are never cut. Commands that only read files (`--help`,
`runs`, `show`, a config error) import neither torch nor transformers: the pipeline, the
models and the Parquet readers are imported inside the commands that use them
(tests/unit/test_light_imports.py)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (telemetry off before prefect loads)
from flows.server import DEFAULT_PORT, healthy, read_state, start_ephemeral_api_in_background, start_server, stop_server, use_running_server
from tasks.config import ConfigError, PipelineConfig, load_config, parse_override
from tasks.resources import trained_heads_folder

TRAINED_HEADS = trained_heads_folder()  # the checkout's data/models, else data/models under the working directory
app = typer.Typer(add_completion=False, no_args_is_help=True, help="newsflow: batch NLP for news on Prefect.")
console = Console(stderr=True)


@app.callback()
def newsflow() -> None:
    """newsflow: batch NLP for news on Prefect."""


def collect_overrides(inputs: list[str], output: str | None, shard_size: int | None, settings: list[str], reanalyze: bool = False) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(parse_override(s) for s in settings)
    if inputs:
        overrides["input.paths"] = inputs
    if output:
        overrides["output.root"] = output
    if shard_size:
        overrides["run.shard_size"] = shard_size
    if reanalyze:
        overrides["run.reanalyze"] = True
    return overrides


LONGEST_WORD = 20  # in a terminal, longer words may fold; a terminal too narrow for a table gets one line per value


def stdout_is_terminal() -> bool:
    """Tables for a person at a terminal; tab-separated lines for a pipe or a file."""
    return sys.stdout.isatty()


def tsv_value(value: Any) -> str:
    """One TSV cell: the full value on one line (tabs and line breaks become spaces)."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return " ".join(text.replace("\t", " ").splitlines())


def print_listing(
    title: str,
    columns: list[tuple[str, str]],
    rows: list[dict[str, Any]],
    *,
    ids: tuple[str, ...] = (),
    shown: dict[str, Callable[[Any], str]] | None = None,
    empty: str = "",
) -> None:
    """Rows on stdout. `columns`: (key, table header) pairs; a pipe or a file gets a header row
    of the keys and one tab-separated line per row, values in full; a terminal gets a table
    (values as `shown` formats them) in which no cell is cut short: an id column keeps its
    width and never wraps unless the terminal is narrower than the id, and then folds."""
    if not stdout_is_terminal():
        print("\t".join(key for key, _ in columns))
        for row in rows:
            print("\t".join(tsv_value(row.get(key)) for key, _ in columns))
        if not rows and empty:
            console.print(empty)
        return
    out = Console()
    if not rows and empty:
        out.print(empty)
        return
    shown = shown or {}
    columns = [(key, header) for key, header in columns if key in ids or any(row.get(key) not in (None, "") for row in rows)]  # drop empty ones
    cells = [[shown.get(key, tsv_value)(row.get(key)) for key, _ in columns] for row in rows]

    def least_width(i: int, key: str, header: str) -> int:
        """An id whole; another column its longest word (it wraps between words), at most LONGEST_WORD (longer words fold)."""
        if key in ids:
            return max(len(row[i]) for row in cells)
        return min(LONGEST_WORD, max(len(word) for text in (header, *(row[i] for row in cells)) for word in [*text.split(), ""]))

    widths = [least_width(i, key, header) for i, (key, header) in enumerate(columns)]
    needed = 1 + sum(3 + width for width in widths)  # 3 per column (padding and a border) and the last border
    if needed > out.width:  # too narrow for a table: one "header  value" line per column, a blank line between rows
        label = max(len(header) for _, header in columns)
        for n, row in enumerate(cells):
            lines = [f"{header:<{label}}  {value}" for (_, header), value in zip(columns, row)]
            out.print(*([""] if n else []), *lines, sep="\n", soft_wrap=True, highlight=False)
        return
    table = Table(title=title)
    for (key, header), width in zip(columns, widths):
        table.add_column(header, no_wrap=key in ids, overflow="fold", min_width=width)
    for row in cells:
        table.add_row(*row)
    out.print(table)


@app.command()
def run(
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML config (default: configs/default.toml)"),
    inputs: list[str] = typer.Option(
        [], "--input", "-i", help="file, folder, glob, WARC file or http(s) URL (feed, sitemap, article page, site root); repeatable; replaces input.paths"
    ),
    output: str | None = typer.Option(None, "--output", "-o", help="output root (output.root)"),
    shard_size: int | None = typer.Option(None, "--shard-size", help="documents per shard (run.shard_size)"),
    settings: list[str] = typer.Option([], "--set", help="any config key: --set summary.sentences=4"),
    reanalyze: bool = typer.Option(False, "--reanalyze", help="analyse again documents the output holds under another analysis (run.reanalyze=true)"),
    as_json: bool = typer.Option(False, "--json", help="print the run record as JSON on stdout"),
) -> None:
    """Run the pipeline over the inputs and write Parquet under the output root."""
    try:
        overrides = collect_overrides(inputs, output, shard_size, settings, reanalyze)
        pipeline_config = load_config(config, overrides)  # fail on a bad config before Prefect starts
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None
    booting = prefect_api_for_a_flow()
    from flows.pipeline import news_pipeline  # heavy imports only once the config is known good
    from tasks.stages.encode import preload_models

    preload_models(pipeline_config)  # while the server boots
    if booting:
        booting.join()

    try:
        summary = news_pipeline(config_path=str(config) if config else None, overrides=overrides)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]run failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(summary, default=str, indent=2))
    print_run_summary(summary)


def prefect_api_for_a_flow() -> threading.Thread | None:
    """newsflow's server when one runs (or PREFECT_API_URL), else Prefect's ephemeral API,
    booting in the background while the command imports torch and loads models: join the
    thread returned before running the flow. Call before prefect is imported: its settings
    are read once."""
    api = use_running_server()
    console.print(f"Prefect API: {api}" if api else "Prefect API: ephemeral (start a server with `newsflow server start` to keep runs in the UI)")
    return None if api else start_ephemeral_api_in_background()


def load_or_exit(config: Path | None, settings: list[str]) -> tuple[dict[str, Any], PipelineConfig]:
    """(the --set overrides, the config with them), once that config is known good (exit 2 otherwise)."""
    try:
        overrides = collect_overrides([], None, None, settings)
        return overrides, load_config(config, overrides)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def train(
    train_data: Path | None = typer.Option(
        None, "--train", help="NewsMTSC-format JSONL to train on (default: train.jsonl in $NEWSFLOW_NEWSMTSC, else in data/newsmtsc)"
    ),
    dev_data: Path | None = typer.Option(None, "--dev", help="NewsMTSC-format JSONL to select on, never trained on (default: dev.jsonl beside train.jsonl)"),
    out: Path = typer.Option(TRAINED_HEADS, "--out", help="folder that receives one sub-folder per head"),
    finetune: bool = typer.Option(False, "--finetune", help="fine-tune the stance head's top layers instead of the linear heads"),
    ner: bool = typer.Option(
        False,
        "--ner",
        help="train the token NER head (data/models/ner-tokens) instead: spaCy labels the train sentences, 10% held out select the epoch; dev's sentences are left out",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="--finetune: epochs, the best on dev kept (default 3); --ner: at most this many, the best on the held-out 10% kept (default 14)",
    ),
    layers: int = typer.Option(2, "--layers", min=1, max=6, help="--finetune: top encoder layers to tune"),
    seed: int | None = typer.Option(None, "--seed", help="default 0; 13 with --ner"),
    seeds: str = typer.Option("", "--seeds", help="--finetune: an ensemble, one member per seed, e.g. 0,1,2 (members share the frozen layers)"),
    augment: str = typer.Option("none", "--augment", help="--finetune: none | swap (copies of the rows with the mention replaced by another name of its kind)"),
    cues: str = typer.Option(
        "none", "--cues", help="--finetune: none | repeat (rows whose mention is the object of a criticism or praise verb shown more often)"
    ),
    marking: str = typer.Option(
        "target",
        "--marking",
        help="--finetune: target (one pass of the tuned layers per mention) | all-mentions (one per sentence, every judged mention marked)",
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: torch's default); results repeat for a given seed and thread count"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="train on the first N rows only (--ner: the first N distinct sentences); a quick trial"),
    as_json: bool = typer.Option(False, "--json", help="print the dev metrics (--ner: the held-out metrics) as one JSON object on stdout"),
) -> None:
    """Train the stance and sentiment heads, or the token NER head (a Prefect flow), and write them with model cards."""
    from tasks.training.newsmtsc import NEWSMTSC  # numpy: only for this command

    train_data = train_data or NEWSMTSC / "train.jsonl"
    dev_data = dev_data or train_data.parent / "dev.jsonl"
    try:
        seed_list = [int(part) for part in seeds.split(",") if part.strip()]
    except ValueError:
        console.print(f"[red]--seeds takes integers separated by commas, not {seeds!r}[/red]")
        raise typer.Exit(2) from None
    if ner and finetune:
        console.print("[red]--ner and --finetune train different heads: give one of them[/red]")
        raise typer.Exit(2)
    for path in (train_data, dev_data):
        if not path.is_file():
            console.print(f"[red]no such file:[/red] {path}")
            raise typer.Exit(2)
    booting = prefect_api_for_a_flow()
    from flows.train import train_heads_flow

    if booting:
        booting.join()

    try:
        report = train_heads_flow(
            str(train_data),
            str(dev_data),
            str(out),
            finetune=finetune,
            seed=seed,
            threads=threads,
            limit=limit,
            epochs=epochs,
            layers=layers,
            seeds=seed_list or None,
            augment=augment,
            cues=cues,
            marking=marking,
            ner=ner,
        )
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]training failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report, indent=2))
        return
    if ner:
        print_ner_report(report, out)
        return
    rows = [{"head": name, "dev_macro_f1": metrics["dev_macro_f1"], "dev_accuracy": metrics["dev_accuracy"]} for name, metrics in report.items()]
    print_listing(
        f"heads written under {out}",
        [("head", "head"), ("dev_macro_f1", "dev macro-F1"), ("dev_accuracy", "dev accuracy")],
        rows,
        shown={"dev_macro_f1": "{:.3f}".format, "dev_accuracy": "{:.3f}".format},
    )


def print_ner_report(report: dict[str, dict], out: Path) -> None:
    """The token NER head's agreement with spaCy on the held-out sentences: overall, then per type."""
    rows = []
    for name, m in report.items():
        rows.append({"head": name, "type": "all", "f1": m["holdout_f1"], "precision": m["holdout_precision"], "recall": m["holdout_recall"]})
        rows += [{"head": name, "type": kind, "f1": t["f1"], "precision": t["precision"], "recall": t["recall"]} for kind, t in m["holdout_per_type"].items()]
    print_listing(
        f"token NER head written under {out} (agreement with spaCy on the held-out sentences)",
        [("head", "head"), ("type", "type"), ("f1", "held-out F1"), ("precision", "precision"), ("recall", "recall")],
        rows,
        shown={key: "{:.3f}".format for key in ("f1", "precision", "recall")},
    )


evaluate_app = typer.Typer(no_args_is_help=True, help="Measure stance, sentiment, summaries, entities or near-duplicates (a Prefect flow).")
app.add_typer(evaluate_app, name="evaluate")
DATA_OPTION = typer.Option(..., "--data", exists=True, dir_okay=False, help="labelled data file")
CONFIG_OPTION = typer.Option(None, "--config", "-c", help="TOML config whose models are measured (default: configs/default.toml)")
SET_OPTION = typer.Option([], "--set", help="any config key, e.g. --set stance.head=data/models/stance-linear")
JSON_OPTION = typer.Option(False, "--json", help="print the metrics as one JSON object on stdout, and nothing else there")


def run_evaluation(kind: str, data: Path, config: Path | None, settings: list[str], as_json: bool, columns: dict[str, str]) -> None:
    overrides, _ = load_or_exit(config, settings)
    booting = prefect_api_for_a_flow()
    from flows.evaluate import evaluate_flow

    if booting:
        booting.join()

    try:
        metrics = evaluate_flow(kind, str(data), config_path=str(config) if config else None, overrides=overrides, columns=columns)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]evaluation failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(metrics, default=str))
    else:
        print_metrics(metrics)


def print_metrics(metrics: dict[str, Any]) -> None:
    """An evaluation's metrics: a table in a terminal, TSV (full precision) otherwise."""
    title = f"newsflow evaluate {metrics['task']}: n = {metrics['n']}"
    if metrics["task"] == "duplicates":
        print_duplicate_metrics(metrics)
        return
    if metrics["task"] == "stories":
        from flows.evaluate import headline_rows  # loaded already: the flow has just run

        print_listing(f"{title} articles", [("score", "score"), ("value", "value")], headline_rows(metrics), shown={"value": "{:g}".format})
        return
    if metrics["task"] == "summary":
        columns = [("method", "method"), ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeLsum", "ROUGE-Lsum")]
        rows = [{"method": method, **{k: metrics[method][k] for k in ("rouge1", "rouge2", "rougeLsum")}} for method in ("pipeline", "lead3")]
        print_listing(title, columns, rows, shown={key: "{:.2f}".format for key, _ in columns[1:]})
        return
    columns = [("class", "class"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("support", "support")]
    rows = [{"class": label, **{k: s[k] for k in ("precision", "recall", "f1", "support")}} for label, s in metrics["per_class"].items()]
    if metrics["task"] != "entities":
        rows += [{"class": "macro-F1", "f1": metrics["macro_f1"]}, {"class": "accuracy", "f1": metrics["accuracy"]}]
    three = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    print_listing(title, columns, rows, shown={"precision": three, "recall": three, "f1": three})


def print_duplicate_metrics(metrics: dict[str, Any]) -> None:
    """Recall per edit, false positives per kind of negative, then precision, recall and F1 over all pairs."""
    from flows.evaluate import duplicate_rows  # loaded already: the flow has just run

    title = (
        f"newsflow evaluate duplicates: {metrics['n_pairs']} pairs from {metrics['n_articles']} articles; "
        f"signatures {metrics['signature_ms_per_doc']:.2f} ms per document"
    )
    columns = [("pairs", "pairs"), ("n", "n"), ("recall", "recall"), ("false_positives", "false positives"), ("precision", "precision"), ("f1", "F1")]
    three = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    print_listing(title, columns, duplicate_rows(metrics), shown={"precision": three, "recall": three, "f1": three})


@evaluate_app.command("stance")
def evaluate_stance_command(
    data: Path = DATA_OPTION, config: Path | None = CONFIG_OPTION, settings: list[str] = SET_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Stance toward each row's mention, NewsMTSC format (mention, polarity -1/0/1, from, to, sentence)."""
    run_evaluation("stance", data, config, settings, as_json, {})


@evaluate_app.command("entities")
def evaluate_entities_command(
    data: Path = DATA_OPTION, config: Path | None = CONFIG_OPTION, settings: list[str] = SET_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Precision and recall of the entities found: against labelled spans (JSONL/CSV/Parquet rows
    with text and entities [{start, end, type}]), or recall of a NewsMTSC file's proper-name mentions."""
    run_evaluation("entities", data, config, settings, as_json, {})


@evaluate_app.command("sentiment")
def evaluate_sentiment_command(
    data: Path = DATA_OPTION,
    config: Path | None = CONFIG_OPTION,
    settings: list[str] = SET_OPTION,
    as_json: bool = JSON_OPTION,
    text_column: str = typer.Option("text", "--text-column"),
    label_column: str = typer.Option("label", "--label-column", help="negative/neutral/positive or -1/0/1"),
) -> None:
    """Document sentiment of each text (CSV/JSONL/Parquet; a NewsMTSC file is read as sentences)."""
    run_evaluation("sentiment", data, config, settings, as_json, {"text": text_column, "label": label_column})


@evaluate_app.command("summary")
def evaluate_summary_command(
    data: Path = DATA_OPTION,
    config: Path | None = CONFIG_OPTION,
    settings: list[str] = SET_OPTION,
    as_json: bool = JSON_OPTION,
    article_column: str = typer.Option("article", "--article-column"),
    reference_column: str = typer.Option("highlights", "--reference-column"),
) -> None:
    """ROUGE-1/2/Lsum of the pipeline's summaries and of Lead-3 against reference summaries."""
    run_evaluation("summary", data, config, settings, as_json, {"article": article_column, "reference": reference_column})


@evaluate_app.command("duplicates")
def evaluate_duplicates_command(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="news articles (CSV, JSONL or Parquet)"),
    config: Path | None = CONFIG_OPTION,
    settings: list[str] = SET_OPTION,
    as_json: bool = JSON_OPTION,
    article_column: str = typer.Option("article", "--article-column"),
) -> None:
    """Near-duplicate precision and recall on pairs built from the articles: each with edited
    copies of itself (dateline, trimmed, reordered, a sentence changed, combined), every two
    distinct articles, and follow-ups that quote a story's opening."""
    run_evaluation("duplicates", data, config, settings, as_json, {"article": article_column})


@evaluate_app.command("stories")
def evaluate_stories_command(
    data: Path = DATA_OPTION, config: Path | None = CONFIG_OPTION, settings: list[str] = SET_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Stories against labelled events (JSONL/CSV/Parquet rows with text and story; published,
    source and title as a run reads them): purity, inverse purity and B-cubed F1."""
    run_evaluation("stories", data, config, settings, as_json, {})


def prefect_states(run_ids: list[str], api: str | None) -> dict[str, str]:
    """Each run's state on the Prefect server at `api` (PREFECT_API_URL or newsflow's own
    server); {} without one (starting an ephemeral server only to list runs would cost seconds)."""
    if not api or not run_ids:
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
    output: str | None = typer.Option(None, "--output", "-o", help="output root (default: the config's output.root)"),
    config: Path | None = typer.Option(None, "--config", "-c"),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="the run records as a JSON list on stdout"),
) -> None:
    """Recent runs from the run records under the output root (with Prefect's state when a server is set).
    Piped, one tab-separated line per run under a header row, ids in full."""
    # Before prefect is imported: its settings are read once. The user's Prefect profile is
    # not read (that alone imports prefect, ~2 s): states come from PREFECT_API_URL or newsflow's server.
    api = use_running_server(read_profile=False)
    from tasks.dataset.run_record import read_runs

    root = output or load_or_exit(config, [])[1].output.root
    records = read_runs(root)[:limit]
    states = prefect_states([r.run_id for r in records], api)
    if as_json:
        print(json.dumps([{**r.as_dict(), "prefect_state": states.get(r.run_id)} for r in records], default=str))
        return
    columns = [
        ("run_id", "run id"),
        ("flow_run_name", "name"),
        ("deployment", "deployment"),
        ("status", "status"),
        ("started_at", "started (UTC)"),
        ("duration_s", "duration"),
        ("n_kept", "kept"),
        ("n_rejected", "rejected"),
        *([("prefect_state", "Prefect state")] if states else []),
    ]
    rows = [{**r.as_dict(), "prefect_state": states.get(r.run_id, "")} for r in records]
    print_listing(
        f"newsflow runs in {root}",
        columns,
        rows,
        ids=("run_id",),
        empty=f"no runs recorded under {root}",
        shown={"started_at": lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if t else "", "duration_s": lambda d: f"{d:.1f} s" if d is not None else ""},
    )


@app.command()
def show(
    run_id: str = typer.Argument(..., help="a run id (or its first characters) from `newsflow runs`"),
    output: str | None = typer.Option(None, "--output", "-o", help="output root (default: the config's output.root)"),
    config: Path | None = typer.Option(None, "--config", "-c"),
    rows: int = typer.Option(5, "--rows", min=0, help="documents to print"),
    as_json: bool = typer.Option(False, "--json", help='{"run": the run record, "documents": the first --rows documents} on stdout'),
) -> None:
    """A run's report and a sample of its documents. Piped: the report as Markdown text, then
    the documents as tab-separated lines under a header row."""
    from flows.report import RunTables, run_report_markdown
    from tasks.dataset.run_record import read_runs

    root = output or load_or_exit(config, [])[1].output.root
    matches = [r for r in read_runs(root) if r.run_id.startswith(run_id)]
    if len(matches) != 1:
        console.print(f"[red]{'no run' if not matches else 'several runs'} matching {run_id!r} under {root}[/red]")
        raise typer.Exit(2)
    record = matches[0]
    tables = RunTables.read(record.outputs)
    sample = tables.document_rows(limit=rows)
    if as_json:
        print(json.dumps({"run": record.as_dict(), "documents": sample}, default=str))
        return
    report = run_report_markdown(record, tables)
    if stdout_is_terminal():
        Console().print(folding_markdown(report))
    else:
        print(report, end="\n\n")
    if sample:
        columns = [("title", "title"), ("sentiment", "sentiment"), ("top_stances", "top stances"), ("summary", "summary")]
        if not stdout_is_terminal():  # the report is Markdown: the documents get a heading of their own
            print(f"## first {len(sample)} documents\n")
        print_listing(f"first {len(sample)} documents", columns, sample)


def folding_markdown(text: str) -> Any:
    """Rich's Markdown, but a table cell too long for its column folds onto the next lines
    instead of ending in an ellipsis (the report's output files name the run id)."""
    from rich.markdown import Markdown, TableElement

    class FoldingTable(TableElement):
        def __rich_console__(self, console: Console, options: Any) -> Any:
            for row in getattr(self.body, "rows", []):
                for cell in row.cells:
                    cell.content.overflow = "fold"
            yield from super().__rich_console__(console, options)

    class FoldingMarkdown(Markdown):
        elements = {**Markdown.elements, "table_open": FoldingTable}

    return FoldingMarkdown(text)


@app.command()
def report(
    run_id: str | None = typer.Argument(None, help="only this run's documents: a run id (or its first characters) from `newsflow runs`"),
    since: str | None = typer.Option(None, "--since", help="only documents published on or after this day (YYYY-MM-DD; else their run's date)"),
    html: Path = typer.Option(..., "--html", help="the HTML file to write: one file, plotly inlined, opens without network"),
    output: str | None = typer.Option(None, "--output", "-o", help="output root (default: the config's output.root)"),
    config: Path | None = typer.Option(None, "--config", "-c"),
    settings: list[str] = typer.Option([], "--set", help="any config key, e.g. --set output.root=data/other"),
) -> None:
    """Write a coverage report: one HTML file that opens offline, also published as Prefect artifacts.
    It charts documents per source and day, sentiment over time, the most mentioned entities'
    stance with its evidence, and the largest stories, each group of copies counted once."""
    from datetime import date

    from tasks.reports.coverage import UnknownRun, resolve_run, run_ids

    root = output or load_or_exit(config, settings)[1].output.root
    if run_id and since:
        console.print("[red]give a RUN_ID or --since, not both[/red]")
        raise typer.Exit(2)
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        console.print(f"[red]--since takes a day as YYYY-MM-DD, not {since!r}[/red]")
        raise typer.Exit(2) from None
    try:  # before any flow starts: a mistyped id is an error, not an empty report
        full_id = resolve_run(run_ids(root), run_id) if run_id else None
    except UnknownRun as exc:
        console.print(f"[red]{exc} under {root}[/red] (see `newsflow runs --output {root}`)")
        raise typer.Exit(1) from None
    booting = prefect_api_for_a_flow()
    from flows.coverage_report import coverage_report_flow

    if booting:
        booting.join()

    try:
        written = coverage_report_flow(str(root), str(html), run_id=full_id, since=since_day)
    except Exception as exc:  # noqa: BLE001  (the flow has logged the traceback)
        console.print(f"[red]report failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"{written['n_documents']} documents from {written['n_sources']} sources, {written['n_stories']} stories ({written['scope']})")
    print(written["html"])


server_app = typer.Typer(no_args_is_help=True, help="A local Prefect server (and its UI) on loopback.")
app.add_typer(server_app, name="server")


SERVER_JSON_OPTION = typer.Option(False, "--json", help='{"running", "pid", "port", "ui_url", "api_url", "log"} on stdout')


def server_json(state: Any, running: bool) -> str:
    fields = {"pid": state.pid, "port": state.port, "ui_url": state.ui_url, "api_url": state.api_url, "log": state.log} if state else {}
    return json.dumps({"running": running, **fields})


@server_app.command("start")
def server_start(port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535), as_json: bool = SERVER_JSON_OPTION) -> None:
    """Start the Prefect server in the background and wait until it answers."""
    try:
        state = start_server(port)
    except RuntimeError as exc:
        console.print(f"[red]server failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(server_json(state, True))
        return
    print(f"Prefect server running (pid {state.pid})\nUI:  {state.ui_url}\nAPI: {state.api_url}\nlog: {state.log}")
    print("`newsflow run` uses it from now on; other tools: export PREFECT_API_URL=" + state.api_url)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server that `newsflow server start` started."""
    state = stop_server()
    print(f"stopped the Prefect server (pid {state.pid}, port {state.port})" if state else "no newsflow server was running")


@server_app.command("status")
def server_status(as_json: bool = SERVER_JSON_OPTION) -> None:
    """Whether the server is running, and where (exit code 3 when it is not)."""
    state = read_state()
    running = bool(state and healthy(state.api_url))
    if as_json:
        print(server_json(state, running))  # a stale state's pid and port, with "running": false
    elif running:
        print(f"running (pid {state.pid})\nUI:  {state.ui_url}\nAPI: {state.api_url}")
    else:
        print("not running" + (f" (stale state from pid {state.pid})" if state else ""))
    if not running:
        raise typer.Exit(3)


@app.command()
def serve(
    cron: str | None = typer.Option(None, "--cron", help="cron expression, e.g. '0 * * * *'"),
    interval: int | None = typer.Option(None, "--interval", min=1, help="seconds between runs"),
    name: str = typer.Option("newsflow", "--name", help="deployment name (with --cron/--interval)"),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML config; its [[schedules]] are served when neither --cron nor --interval is given"),
    settings: list[str] = typer.Option([], "--set", help="any config key for every scheduled run"),
) -> None:
    """Register the pipeline as scheduled deployments and serve them until stopped (Ctrl-C)."""
    from tasks.config import ScheduleConfig

    overrides, loaded = load_or_exit(config, settings)
    try:
        schedules = [ScheduleConfig(name=name, cron=cron, interval=interval)] if (cron or interval) else loaded.schedules
    except ValueError as exc:
        console.print(f"[red]schedule error:[/red] {exc}")
        raise typer.Exit(2) from None
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
    """The closing table, on stderr (stdout is for --json); the run id in full on its own row."""
    from flows.report import RunTables
    from tasks.dataset.run_record import RunRecord

    record = RunRecord(**summary)  # the flow returns its run record as a dict
    table = Table(title=f"newsflow run {record.run_id}", show_header=False)
    table.add_column(no_wrap=True, overflow="fold")
    table.add_column(overflow="fold")
    table.add_row("run id", record.run_id)
    table.add_row("documents", f"{record.n_kept} kept, {record.n_rejected} rejected, {record.n_read} read")
    for reason, count in record.rejected_by_reason.items():
        table.add_row(f"  rejected: {reason}", str(count))
    for name, source in record.sources.items():
        rejected = sum(source["rejected"].values()) + sum(source["listing_rejected"].values())
        table.add_row(
            f"source {name}",
            f"{source['listed']} listed, {source['already_taken']} taken before, {source['fetched']} fetched, {rejected} rejected"
            + (f", {source['not_modified']} not modified" if source["not_modified"] else ""),
        )
    tables = RunTables.read(record.outputs)
    table.add_row("sentiment", ", ".join(f"{k} {v}" for k, v in tables.sentiment_counts().items()) or "-")
    for row in tables.top_entities(limit=5):
        table.add_row(f"  {row['name']} ({row['type']})", f"{row['mentions']} mentions in {row['documents']} documents; {row['stances']}")
    for row in tables.top_stances(limit=5):
        table.add_row(f"  {row['label']} {row['target']}", f"{row['confidence']:.2f}  {row['title'] or row['doc_id'][:12]}")
    table.add_row("output", f"{record.config['output']['root']}: {', '.join(sorted({o['table'] for o in record.outputs}))}")
    table.add_row("duration", f"{record.duration_s:.1f} s")
    console.print(table)


def main() -> None:
    app(prog_name="newsflow")


if __name__ == "__main__":
    sys.exit(main())

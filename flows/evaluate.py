"""The `evaluate` flow: measure stance, sentiment, summaries, entities or near-duplicates on
data through the pipeline's own code, then write the metrics as Parquet and as a Prefect table artifact."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from tasks.config import PipelineConfig, load_config
from tasks.dataset.output import RunContext, write_table
from tasks.dataset.run_record import now_utc
from tasks.dataset.staging import file_sha256
from tasks.evaluation.classifiers import evaluate_sentiment, evaluate_stance
from tasks.evaluation.entities import evaluate_entities
from tasks.evaluation.near_duplicates import evaluate_duplicates
from tasks.evaluation.stories import evaluate_stories
from tasks.evaluation.summaries import evaluate_summaries
from tasks.versions import code_version

Kind = Literal["stance", "sentiment", "summary", "entities", "duplicates", "stories"]
DUPLICATE_SCORES = ("precision", "recall", "f1")  # near-duplicates: the headline columns of `evaluations`
STORY_SCORES = ("purity", "inverse_purity", "bcubed_f1")  # stories: the same


@task(name="measure", cache_policy=NO_CACHE, persist_result=False)
def measure(kind: Kind, data: str, config: PipelineConfig, columns: dict[str, str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """(metrics, one row per example: gold, prediction, per-article scores) for one kind."""
    if kind == "stance":
        return evaluate_stance(Path(data), config)
    if kind == "entities":
        return evaluate_entities(Path(data), config)
    if kind == "sentiment":
        return evaluate_sentiment(Path(data), config, columns["text"], columns["label"])
    if kind == "duplicates":
        return evaluate_duplicates(Path(data), config, columns["article"])
    if kind == "stories":
        return evaluate_stories(Path(data), config)
    metrics = evaluate_summaries(Path(data), config, columns["article"], columns["reference"])
    return metrics, pd.DataFrame(metrics.pop("per_article"))


def headline_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The artifact's rows: one per class for a classifier, one per method for summaries, one
    per edit and per kind of negative (then all pairs) for near-duplicates."""
    if metrics["task"] == "duplicates":
        return duplicate_rows(metrics)
    if metrics["task"] == "stories":
        return [{"score": name, "value": metrics[name]} for name in (*STORY_SCORES, "bcubed_precision", "bcubed_recall", "n_stories", "n_labels", "n")]
    if metrics["task"] == "summary":
        return [{"method": name, **{k: metrics[name][k] for k in ("rouge1", "rouge2", "rougeLsum")}, "n": metrics["n"]} for name in ("pipeline", "lead3")]
    rows = [{"class": label, **scores} for label, scores in metrics["per_class"].items()]
    if metrics["task"] == "entities":
        return rows
    return [*rows, {"class": "macro", "f1": metrics["macro_f1"], "accuracy": metrics["accuracy"], "support": metrics["n"]}]


def duplicate_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Recall of each edit, false positives of each kind of negative, then every pair; the
    same keys on every row, None where a score does not apply."""
    blank = dict.fromkeys(("precision", "recall", "f1", "false_positives"))
    rows = [{"pairs": name, **blank, "recall": s["recall"], "n": s["n"]} for name, s in metrics["recall_per_variant"].items()]
    rows += [{"pairs": name, **blank, "false_positives": s["false_positives"], "n": s["n"]} for name, s in metrics["false_positives_per_kind"].items()]
    return [*rows, {"pairs": "all", **{k: metrics[k] for k in (*DUPLICATE_SCORES, "false_positives")}, "n": metrics["n_pairs"]}]


def evaluation_row(kind: str, data: str, metrics: dict[str, Any], config: PipelineConfig) -> pa.Table:
    """One row of the `evaluations` table: the headline numbers as columns, everything as JSON."""
    headline = {k: metrics.get(k) for k in ("macro_f1", "accuracy")}
    if kind == "duplicates":  # stays with macro_f1 and accuracy (None): one schema with the classifiers'
        headline |= {score: metrics[score] for score in DUPLICATE_SCORES}
    if kind == "stories":
        headline |= {score: metrics[score] for score in STORY_SCORES}
    if kind == "summary":
        headline = {f"{method}_{score}": metrics[method][score] for method in ("pipeline", "lead3") for score in ("rouge1", "rouge2", "rougeLsum")}
    table = pa.Table.from_pylist(
        [
            {
                "kind": kind,
                "data": str(Path(data).resolve()),
                "data_sha256": file_sha256(Path(data)),
                "n": metrics["n"],
                **{k: (float(v) if v is not None else None) for k, v in headline.items()},
                "metrics": json.dumps(metrics, sort_keys=True, default=str),
                "config_sha256": config.sha256(),
                "code_version": code_version(),
                "evaluated_at": now_utc(),
            }
        ]
    )
    # A headline that does not apply (None) is a float64 column all the same, so that every kind's files share one type.
    return table.cast(pa.schema([pa.field(f.name, pa.float64()) if f.name in headline else f for f in table.schema]))


@flow(name="evaluate", validate_parameters=True, persist_result=False)
def evaluate_flow(
    kind: Kind, data: str, config_path: str | None = None, overrides: dict[str, Any] | None = None, columns: dict[str, str] | None = None
) -> dict[str, Any]:
    """Measure one model family on `data`; returns the metrics (also in Parquet and an artifact)."""
    config = load_config(config_path, overrides)
    columns = {"text": "text", "label": "label", "article": "article", "reference": "highlights", **(columns or {})}
    measured, examples = measure(kind, data, config, columns)
    metrics = {"task": kind, **measured}
    context = RunContext(
        run_id=flow_run.get_id() or str(uuid.uuid4()),
        started_at=now_utc(),
        output_root=config.output.root,
        config_sha256=config.sha256(),
        compression=config.output.compression,
    )
    path, _ = write_table(context, "evaluations", kind, evaluation_row(kind, data, metrics, config))
    # Every example with its prediction, for error analysis next to the headline numbers.
    write_table(context, "evaluation_examples", kind, pa.Table.from_pandas(examples.assign(kind=kind), preserve_index=False))
    create_table_artifact(key=f"evaluate-{kind}", table=headline_rows(metrics), description=f"newsflow evaluate {kind} on {data}")
    get_run_logger().info(
        "evaluate %s on %s: %s; written to %s",
        kind,
        data,
        {k: v for k, v in metrics.items() if k in ("n", "macro_f1", "accuracy", *DUPLICATE_SCORES, *STORY_SCORES)},
        path,
    )
    return {**metrics, "run_id": context.run_id, "output": path}

"""The `news-pipeline` flow: ingest -> clean -> deduplicate -> encode -> summarize /
sentiment / stance -> write, one task run per stage per shard, with a run record."""
from __future__ import annotations

import json
import shutil
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from flows.report import publish_run_artifacts
from flows.runners import task_runner_for
from tasks.clean import clean_task
from tasks.config import PipelineConfig, load_config
from tasks.deduplicate import deduplicate_task
from tasks.encode import encode_task
from tasks.ingest import ingest_task, list_inputs, without_excluded
from tasks.records import Rejection, ShardRef
from tasks.rejected import collect_rejected, count_reasons
from tasks.run_record import code_version, library_versions, model_provenance, now_utc, output_files, write_run_record
from tasks.sentiment import sentiment_task
from tasks.stance import stance_task
from tasks.summarize import summarize_task
from tasks.write import RunContext, write_table, write_task


def group_files(files: list[Path], shard_size: int) -> list[list[str]]:
    """Files in groups of about a shard's worth (one document per file is the common case;
    tabular files are cut into shards while they are read)."""
    return [[str(f) for f in files[i : i + shard_size]] for i in range(0, len(files), shard_size)]


def stage_file_groups(groups: list[list[str]], staging: str) -> str:
    """The run's file groups as a staging JSON file: a flow run's parameters go to the
    Prefect API, which refuses large ones (10,000 paths), so the subflow gets this path."""
    path = Path(staging) / "file-groups.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(groups), encoding="utf-8")
    return str(path)


def remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()  # `_staging` itself, once no other run is using it
    except OSError:
        pass


def named(task_obj, stage: str, index: int, unit: str = "shard"):
    return task_obj.with_options(task_run_name=f"{stage} [{unit} {index + 1}]")


SHARD_STAGES = ("clean", "deduplicate", "encode", "summarize", "sentiment", "stance", "write")


@dataclass
class ShardResults:
    """What the shard stages produced, filled in as they finish, so a failed run's record
    still counts what was done."""

    ingested: list[ShardRef] = field(default_factory=list)
    stages: dict[str, list[ShardRef]] = field(default_factory=dict)


def submit_shard(raw: ShardRef, i: int, config: PipelineConfig, staging: str, context: RunContext, futures: dict[str, list]):
    """Submit one shard's chain of stages; returns the future of its `write`."""
    known_root = config.output.root if config.run.incremental else None
    cleaned = named(clean_task, "clean", i).submit(raw, i, config.clean, staging)
    unique = named(deduplicate_task, "deduplicate", i).submit(cleaned, list(futures["clean"]), staging, known_root)
    encoded = named(encode_task, "encode", i).submit(unique, config, staging)
    summarized = named(summarize_task, "summarize", i).submit(encoded, config, staging)
    sentiment = named(sentiment_task, "sentiment", i).submit(encoded, config, staging)
    stance = named(stance_task, "stance", i).submit(encoded, config, staging)
    written = named(write_task, "write", i).submit(unique, encoded, summarized, sentiment, stance, context)
    for stage, future in zip(SHARD_STAGES, (cleaned, unique, encoded, summarized, sentiment, stance, written)):
        futures[stage].append(future)
    return written


def finished_refs(stage_futures: list) -> list[ShardRef]:
    return [f.result() for f in stage_futures if f.state.is_completed()]


@flow(name="news-pipeline-shards", validate_parameters=False, persist_result=False)
def process_shards(file_groups: str, config: PipelineConfig, staging: str, context: RunContext, results: ShardResults) -> None:
    """Every shard through every stage, in input order. A file group is read one group
    ahead, and at most `run.shards_in_flight` shards sit between cleaning and writing, so
    cleaning overlaps encoding and memory does not grow with the corpus. Its own flow, so
    `run.runner` can give it a Dask task runner whichever way the run was started."""
    logger = get_run_logger()
    groups: list[list[str]] = json.loads(Path(file_groups).read_text(encoding="utf-8"))
    futures: dict[str, list] = {stage: [] for stage in SHARD_STAGES}
    in_flight: deque = deque()

    def read_group(g: int):
        return named(ingest_task, "ingest", g, "file group").submit(groups[g], config.input, config.run.shard_size, staging, g) if g < len(groups) else None

    try:
        upcoming = read_group(0)
        for g in range(len(groups)):
            current, upcoming = upcoming, read_group(g + 1)
            for raw in current.result():
                results.ingested.append(raw)
                in_flight.append(submit_shard(raw, len(results.ingested) - 1, config, staging, context, futures))
                if len(in_flight) > config.run.shards_in_flight:
                    in_flight.popleft().result()  # raises at once if that shard failed
        for future in in_flight:
            future.result()
    finally:
        results.stages = {stage: finished_refs(stage_futures) for stage, stage_futures in futures.items()}
    for stage, refs in results.stages.items():
        logger.info("%s: %d rows in %d shards, %.1f s of task time", stage, sum(r.rows for r in refs), len(refs), sum(r.seconds for r in refs))


@task(name="finalize", cache_policy=NO_CACHE, persist_result=False)
def finalize_run(
    context: RunContext, config: PipelineConfig, parameters: dict[str, Any], models: dict[str, Any], n_files: int, listing: list[Rejection],
    ingested: list[ShardRef], stage_refs: dict[str, list[ShardRef]], status: str, error: str | None,
) -> dict[str, Any]:
    """Write the run's `rejected` table and its run record; return the run summary."""
    rejected = collect_rejected([*ingested, *stage_refs.get("deduplicate", [])], listing)
    outputs = [p for ref in stage_refs.get("write", []) for p in ref.parts.values()]
    if rejected.num_rows:
        outputs.append(write_table(context, "rejected", "all", rejected)[0])
    n_read = sum(r.rows + r.rejected_rows for r in ingested) + len(listing)
    n_kept = sum(r.rows for r in stage_refs.get("write", []))
    n_skipped = sum(r.skipped_rows for r in stage_refs.get("deduplicate", []))  # read = kept + rejected + skipped
    stages = {"ingest": ingested, **stage_refs}
    finished = now_utc()
    record = {
        "flow_run_name": flow_run.get_name(), "deployment": deployment.name,
        "status": status, "error": error, "started_at": context.started_at, "finished_at": finished,
        "duration_s": round((finished - context.started_at).total_seconds(), 3),
        "parameters": parameters, "config": config.model_dump(mode="json"), "config_sha256": context.config_sha256,
        "code_version": code_version(), "models": models, "libraries": library_versions(),
        "n_read": n_read, "n_kept": n_kept, "n_rejected": rejected.num_rows, "n_skipped": n_skipped,
        "counts": {"files": n_files, "read": n_read, **{stage: sum(r.rows for r in refs) for stage, refs in stages.items()}},
        "rejected_by_reason": count_reasons(rejected),
        "stage_seconds": {stage: round(sum(r.seconds for r in refs), 3) for stage, refs in stages.items()},
        "outputs": output_files(outputs),
    }
    record["outputs"].append({"path": write_run_record(context, record), "table": "runs", "rows": 1})
    return {"run_id": context.run_id, **record}


@flow(name="news-pipeline", validate_parameters=True)
def news_pipeline(config_path: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline over the configured inputs; returns the run record."""
    logger = get_run_logger()
    config = load_config(config_path, overrides)
    started = now_utc()
    run_id = flow_run.get_id() or str(uuid.uuid4())
    context = RunContext(run_id=run_id, started_at=started, output_root=config.output.root, config_sha256=config.sha256(),
                         compression=config.output.compression, write_sentences=config.output.write_sentences)
    staging = str(Path(config.output.root) / "_staging" / run_id)
    parameters = {"config_path": config_path, "overrides": overrides or {}}
    files, listing = list_inputs(config.input.paths, config.input.extensions)
    files = without_excluded(files, config.input.exclude)
    logger.info("%d input files (%d paths rejected) -> output %s, run %s", len(files), len(listing), config.output.root, run_id)
    shards = ShardResults()
    models: dict[str, Any] = {}
    try:
        models = model_provenance(config)  # a missing model fails the run here, before any work
        file_groups = stage_file_groups(group_files(files, config.run.shard_size), staging)
        runner = process_shards.with_options(task_runner=task_runner_for(config), flow_run_name=f"shards-{config.run.runner}")
        runner(file_groups, config, staging, context, shards)
        unique = shards.stages["deduplicate"]
        skipped = sum(r.skipped_rows for r in unique)
        logger.info("%d records read, %d documents kept after cleaning and deduplication%s", sum(r.rows + r.rejected_rows for r in shards.ingested),
                    sum(r.rows for r in unique), f", {skipped} skipped as already in the output" if config.run.incremental else "")
        if config.run.incremental and not sum(r.rows for r in unique):
            logger.info("nothing new: every document read is already in %s", config.output.root)
    except Exception as exc:
        # The record of a failed run says so; the original error is what the run raises.
        try:
            failed = finalize_run(context, config, parameters, models, len(files), listing, shards.ingested, shards.stages, "failed", f"{type(exc).__name__}: {exc}")
            publish_run_artifacts(failed)
        except Exception as record_error:  # noqa: BLE001
            logger.error("could not write the failed run's record: %s", record_error)
        raise
    summary = finalize_run(context, config, parameters, models, len(files), listing, shards.ingested, shards.stages, "completed", None)
    publish_run_artifacts(summary)
    remove_staging(Path(staging))
    logger.info("run %s: %d read, %d kept, %d rejected", run_id, summary["n_read"], summary["n_kept"], summary["n_rejected"])
    return summary

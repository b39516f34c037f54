"""The `news-pipeline` flow: ingest -> clean -> deduplicate -> encode -> summarize /
sentiment / stance -> write, one task run per stage per shard, then commit, with a run
record written when the run starts and replaced when it ends."""
from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
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
from tasks.accounting import accounting_summary, per_file_counts, read_origins
from tasks.commit import JOURNAL, Commit, commit_shard_outputs, output_lock
from tasks.recovery import process_identity, recover_abandoned_runs
from tasks.run_record import analysis_fingerprint, model_provenance, now_utc, output_files, write_run_record
from tasks.shard_cache import CACHE_DIR, ShardCache, prune_stale_entries
from tasks.staging import remove_staging, staging_root
from tasks.versions import code_version, library_versions
from tasks.sentiment import sentiment_task
from tasks.stance import stance_task
from tasks.summarize import summarize_task
from tasks.write import RunContext, write_table, write_task

CACHED_STAGES = ("clean", "encode", "summarize", "sentiment", "stance")


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


def named(task_obj, stage: str, index: int, unit: str = "shard"):
    return task_obj.with_options(task_run_name=f"{stage} [{unit} {index + 1}]")


SHARD_STAGES = ("clean", "deduplicate", "encode", "summarize", "sentiment", "stance", "write")


class StageFailed(RuntimeError):
    """A shard stage failed (after its retries): the message names the task run and the cause."""


@dataclass
class ShardResults:
    """What the shard stages produced, filled in as they finish, so a failed run's record
    still counts what was done and says where it broke."""

    ingested: list[ShardRef] = field(default_factory=list)
    stages: dict[str, list[ShardRef]] = field(default_factory=dict)
    failed_stage: str | None = None  # the task run that failed first, e.g. "encode [shard 3]"
    error: str | None = None


def submit_shard(raw: ShardRef, i: int, config: PipelineConfig, staging: str, context: RunContext, cache: ShardCache, futures: dict[str, list]):
    """Submit one shard's chain of stages; returns the future of its `write`."""
    known_in = (config.output.root, context.analysis_sha256)
    cleaned = named(clean_task, "clean", i).submit(raw, i, config.clean, staging, cache)
    unique = named(deduplicate_task, "deduplicate", i).submit(cleaned, [f for _, f in futures["clean"]], staging, known_in)
    encoded = named(encode_task, "encode", i).submit(unique, config, staging, cache)
    summarized = named(summarize_task, "summarize", i).submit(encoded, config, staging, cache)
    sentiment = named(sentiment_task, "sentiment", i).submit(encoded, config, staging, cache)
    stance = named(stance_task, "stance", i).submit(encoded, config, staging, cache)
    written = named(write_task, "write", i).submit(unique, encoded, summarized, sentiment, stance, context)
    for stage, future in zip(SHARD_STAGES, (cleaned, unique, encoded, summarized, sentiment, stance, written)):
        futures[stage].append((i, future))
    return written


def finished_refs(stage_futures: list) -> list[ShardRef]:
    return [f.result() for _, f in stage_futures if f.state.is_completed()]


def first_failure(futures: dict[str, list]) -> tuple[str, str] | None:
    """The task run that failed first in shard order and stage order (its downstream
    stages never ran, so this is the cause), with its state's message."""
    failed = [(i, order, stage, f) for order, (stage, pairs) in enumerate(futures.items()) for i, f in pairs if f.state.is_failed() or f.state.is_crashed()]
    if not failed:
        return None
    i, _, stage, future = min(failed, key=lambda t: (t[0], t[1]))
    return (f"{stage} [{'file group' if stage == 'ingest' else 'shard'} {i + 1}]", future.state.message or future.state.name)


@flow(name="news-pipeline-shards", validate_parameters=False, persist_result=False)
def process_shards(file_groups: str, config: PipelineConfig, staging: str, context: RunContext, cache: ShardCache, results: ShardResults) -> None:
    """Every shard through every stage, in input order. A file group is read one group
    ahead, and at most `run.shards_in_flight` shards sit between cleaning and writing, so
    cleaning overlaps encoding and memory does not grow with the corpus. Its own flow, so
    `run.runner` can give it a Dask task runner whichever way the run was started."""
    logger = get_run_logger()
    groups: list[list[str]] = json.loads(Path(file_groups).read_text(encoding="utf-8"))
    futures: dict[str, list] = {stage: [] for stage in ("ingest", *SHARD_STAGES)}
    in_flight: deque = deque()

    def read_group(g: int):
        if g >= len(groups):
            return None
        future = named(ingest_task, "ingest", g, "file group").submit(groups[g], config.input, config.run.shard_size, staging, g)
        futures["ingest"].append((g, future))
        return future

    try:
        upcoming = read_group(0)
        for g in range(len(groups)):
            current, upcoming = upcoming, read_group(g + 1)
            for raw in current.result():
                results.ingested.append(raw)
                in_flight.append(submit_shard(raw, len(results.ingested) - 1, config, staging, context, cache, futures))
                if len(in_flight) > config.run.shards_in_flight:
                    in_flight.popleft().result()  # raises at once if that shard failed
        for future in in_flight:
            future.result()
    except Exception as exc:
        results.failed_stage, results.error = first_failure(futures) or ("shards", f"{type(exc).__name__}: {exc}")
        raise StageFailed(f"{results.failed_stage} failed: {results.error}") from exc
    finally:
        results.stages = {stage: finished_refs(stage_futures) for stage, stage_futures in futures.items() if stage != "ingest"}
    for stage, refs in results.stages.items():
        logger.info("%s: %d rows in %d shards, %.1f s of task time", stage, sum(r.rows for r in refs), len(refs), sum(r.seconds for r in refs))


def cache_counts(stage_refs: dict[str, list[ShardRef]]) -> dict[str, dict[str, int]]:
    """Per cached stage: shards taken from the shard cache (an earlier run finished them) and computed."""
    return {stage: {"from_cache": sum(r.cached for r in refs), "computed": sum(not r.cached for r in refs)}
            for stage, refs in stage_refs.items() if stage in CACHED_STAGES}


def run_record_base(context: RunContext, config: PipelineConfig, parameters: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """The parts of a run record known from the start."""
    return {
        "flow_run_name": flow_run.get_name(), "deployment": deployment.name, "started_at": context.started_at,
        "parameters": parameters, "config": config.model_dump(mode="json"), "config_sha256": context.config_sha256,
        "analysis_sha256": context.analysis_sha256, "code_version": code_version(), "models": models,
        "libraries": library_versions(), **process_identity(),
    }


def record_run_start(context: RunContext, config: PipelineConfig, parameters: dict[str, Any]) -> None:
    """The run's staging folder and a `running` record, replaced when the run ends: a run
    killed on the way keeps both, and the next run on this host recovers it."""
    Path(context.staging).mkdir(parents=True, exist_ok=True)
    write_run_record(context, {**run_record_base(context, config, parameters, {}), "status": "running"})


@task(name="finalize", cache_policy=NO_CACHE, persist_result=False)
def finalize_run(
    context: RunContext, config: PipelineConfig, parameters: dict[str, Any], models: dict[str, Any], files: list[str], listing: list[Rejection],
    shards: ShardResults, cache: ShardCache | None, status: str, error: str | None, failed_stage: str | None,
) -> dict[str, Any]:
    """Commit a completed run's outputs, write its `rejected` table and its run record;
    return the run summary. A failed run commits nothing: its finished shards wait in the cache."""
    stage_refs = shards.stages
    commit = commit_shard_outputs(context, stage_refs.get("write", [])) if status == "completed" else Commit()
    rejected = collect_rejected([*shards.ingested, *stage_refs.get("deduplicate", [])], [*listing, *commit.late_duplicates])
    outputs = list(commit.paths)
    if rejected.num_rows:
        outputs.append(write_table(context, "rejected", "all", rejected)[0])
    accounting = accounting_summary(per_file_counts(
        read_origins(shards.ingested, rejected), commit.kept_origins, rejected.column("origin").to_pylist(), [*files, *(r.origin for r in listing)]))
    stages = {"ingest": shards.ingested, **stage_refs}
    finished = now_utc()
    record = {
        **run_record_base(context, config, parameters, models),
        "status": status, "error": error, "failed_stage": failed_stage, "finished_at": finished,
        "duration_s": round((finished - context.started_at).total_seconds(), 3),
        "n_read": accounting["read"], "n_kept": commit.kept, "n_rejected": rejected.num_rows,
        "counts": {"files": len(files), "read": accounting["read"], **{stage: sum(r.rows for r in refs) for stage, refs in stages.items()}},
        "rejected_by_reason": count_reasons(rejected), "accounting": accounting, "cache": cache_counts(stage_refs),
        "processes": sorted({r.computed_by for refs in stages.values() for r in refs if r.computed_by and not r.cached}),
        "stage_seconds": {stage: round(sum(r.seconds for r in refs), 3) for stage, refs in stages.items()},
        "outputs": output_files(outputs),
    }
    record["outputs"].append({"path": write_run_record(context, record), "table": "runs", "rows": 1})
    if status == "completed" and cache is not None:  # its entries served their purpose
        for stage in CACHED_STAGES:
            cache.remove(stage_refs.get(stage, []), stage)
    return {"run_id": context.run_id, **record}


@flow(name="news-pipeline", validate_parameters=True, persist_result=False)  # results are Parquet, never pickles
def news_pipeline(config_path: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline over the configured inputs; returns the run record."""
    logger = get_run_logger()
    config = load_config(config_path, overrides)
    run_id = flow_run.get_id() or str(uuid.uuid4())
    root = config.output.root
    staging = str(staging_root(root) / run_id)
    context = RunContext(run_id=run_id, started_at=now_utc(), output_root=root, config_sha256=config.sha256(),
                         compression=config.output.compression, write_sentences=config.output.write_sentences, staging=staging)
    parameters = {"config_path": config_path, "overrides": overrides or {}}
    with output_lock(root):  # so no other run's recovery takes this run's new staging for an orphan's
        recovered = recover_abandoned_runs(root)
        record_run_start(context, config, parameters)
    for earlier in recovered:
        logger.warning("run %s will never finish (failed, or its process is gone): its record is updated, its staging removed", earlier)
    prune_stale_entries(Path(root) / CACHE_DIR)
    files, listing = list_inputs(config.input.paths, config.input.extensions, follow_symlinks=config.input.follow_symlinks)
    files = without_excluded(files, config.input.exclude)
    file_names = [str(f) for f in files]
    logger.info("%d input files (%d paths rejected) -> output %s, run %s", len(files), len(listing), root, run_id)
    shards = ShardResults()
    models: dict[str, Any] = {}
    cache: ShardCache | None = None
    reached = "models"  # where a failure outside the shard stages happened
    try:
        models = model_provenance(config)  # a missing model fails the run here, before any work
        context = replace(context, analysis_sha256=analysis_fingerprint(config, models))
        cache = ShardCache.for_output(root, models)
        file_groups = stage_file_groups(group_files(files, config.run.shard_size), staging)
        runner = process_shards.with_options(task_runner=task_runner_for(config), flow_run_name=f"shards-{config.run.runner}")
        reached = "shards"
        runner(file_groups, config, staging, context, cache, shards)
        reached = "finalize"
        summary = finalize_run(context, config, parameters, models, file_names, listing, shards, cache, "completed", None, None)
    except Exception as exc:
        # The record of a failed run says where and why; the error is what the run raises.
        failed_stage = shards.failed_stage or reached
        error = shards.error or f"{type(exc).__name__}: {exc}"
        try:
            failed = finalize_run(context, config, parameters, models, file_names, listing, shards, cache, "failed", error, failed_stage)
            publish_run_artifacts(failed)
        except Exception as record_error:  # noqa: BLE001 - the staging stays, so the next run's recovery marks this one
            logger.error("could not write the failed run's record: %s", record_error)
        else:
            if not (Path(staging) / JOURNAL).exists():  # finished shards stay in the cache; a started commit is finished by the next run
                remove_staging(Path(staging))
        raise
    publish_run_artifacts(summary)
    remove_staging(Path(staging))
    logger.info("run %s: %d read, %d kept, %d rejected (%s)", run_id, summary["n_read"], summary["n_kept"], summary["n_rejected"],
                ", ".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items()) or "none")
    return summary

"""The `news-pipeline` flow: ingest -> clean -> deduplicate -> encode -> summarize /
sentiment / stance -> write, one task run per stage per shard, with a run record."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from flows.report import publish_run_artifacts
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


def remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()  # `_staging` itself, once no other run is using it
    except OSError:
        pass


def named(task_obj, stage: str, index: int, total: int):
    return task_obj.with_options(task_run_name=f"{stage} [shard {index + 1}/{total}]")


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
    ingested: list[ShardRef] = []
    stage_refs: dict[str, list[ShardRef]] = {}
    models: dict[str, Any] = {}
    try:
        models = model_provenance(config)  # a missing model fails the run here, before any work
        groups = group_files(files, config.run.shard_size)
        ingest_futures = [named(ingest_task, "ingest", g, len(groups)).submit(group, config.input, config.run.shard_size, staging, g) for g, group in enumerate(groups)]
        ingested = [ref for future in ingest_futures for ref in future.result()]
        n = len(ingested)
        logger.info("ingest: %d records read into %d shards, %d rejected", sum(r.rows for r in ingested), n, sum(r.rejected_rows for r in ingested))
        cleaned = [f.result() for f in [named(clean_task, "clean", i, n).submit(ref, i, config.clean, staging) for i, ref in enumerate(ingested)]]
        stage_refs["clean"] = cleaned
        unique = deduplicate_task.submit(cleaned, staging, config.output.root if config.run.incremental else None).result()
        stage_refs["deduplicate"] = unique
        skipped = sum(r.skipped_rows for r in unique)
        logger.info("clean: %d documents kept, %d rejected%s", sum(r.rows for r in unique), sum(r.rejected_rows for r in unique),
                    f", {skipped} skipped as already in the output" if config.run.incremental else "")
        if config.run.incremental and not sum(r.rows for r in unique):
            logger.info("nothing new: every document read is already in %s", config.output.root)
        futures: dict[str, list] = {s: [] for s in ("encode", "summarize", "sentiment", "stance", "write")}
        for i, ref in enumerate(unique):
            encoded = named(encode_task, "encode", i, n).submit(ref, config, staging)
            summarized = named(summarize_task, "summarize", i, n).submit(encoded, config, staging)
            sentiment = named(sentiment_task, "sentiment", i, n).submit(encoded, config, staging)
            stance = named(stance_task, "stance", i, n).submit(encoded, config, staging)
            written = named(write_task, "write", i, n).submit(ref, encoded, summarized, sentiment, stance, context)
            for stage, future in zip(futures, (encoded, summarized, sentiment, stance, written)):
                futures[stage].append(future)
        for stage, stage_futures in futures.items():
            stage_refs[stage] = [f.result() for f in stage_futures]
            logger.info("%s: %d rows in %d shards, %.1f s of task time", stage, sum(r.rows for r in stage_refs[stage]), len(stage_futures),
                        sum(r.seconds for r in stage_refs[stage]))
    except Exception as exc:
        # The record of a failed run says so; the original error is what the run raises.
        try:
            failed = finalize_run(context, config, parameters, models, len(files), listing, ingested, stage_refs, "failed", f"{type(exc).__name__}: {exc}")
            publish_run_artifacts(failed)
        except Exception as record_error:  # noqa: BLE001
            logger.error("could not write the failed run's record: %s", record_error)
        raise
    summary = finalize_run(context, config, parameters, models, len(files), listing, ingested, stage_refs, "completed", None)
    publish_run_artifacts(summary)
    remove_staging(Path(staging))
    logger.info("run %s: %d read, %d kept, %d rejected", run_id, summary["n_read"], summary["n_kept"], summary["n_rejected"])
    return summary

"""The `news-pipeline` flow: list the inputs, then every shard through the declared stages
(flows/stages.py), one task run per stage per shard, then commit. The run's lifecycle and
its record are flows/run.py's; what each stage's task does around its computation is
flows/shell.py's."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prefect import flow, get_run_logger

from flows.report import publish_run_artifacts
from flows.run import PipelineRun, ShardResults, StageFailed
from flows.runners import task_runner_for
from flows.shell import FETCH_TASK, INGEST_TASK, STAGE_TASKS, ShardJob
from flows.stages import SOURCE, STAGES
from flows.web import list_web_sources
from tasks.config import PipelineConfig, load_config
from tasks.dataset.output import RunContext
from tasks.dataset.shard_cache import ShardCache
from tasks.records import ShardRef
from tasks.stages.ingest import list_inputs, without_excluded
from tasks.web.sessions import close_client
from tasks.web.sources import is_url

__all__ = ["StageFailed", "news_pipeline"]


def group_files(files: list[str], shard_size: int) -> list[dict[str, list]]:
    """Files in groups of about a shard's worth (one document per file is the common case;
    tabular files are cut into shards while they are read)."""
    return [{"files": [str(f) for f in files[i : i + shard_size]]} for i in range(0, len(files), shard_size)]


def stage_file_groups(groups: list[dict[str, list]], staging: str) -> str:
    """The run's input groups (`files`: paths; `fetch`: listed web items) as a staging JSON
    file: a flow run's parameters go to the Prefect API, which refuses large ones (10,000
    paths), so the subflow gets this path."""
    path = Path(staging) / "file-groups.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(groups, default=str), encoding="utf-8")
    return str(path)


def named(task_obj, stage: str, index: int, unit: str = "shard"):
    return task_obj.with_options(task_run_name=f"{stage} [{unit} {index + 1}]")


def submit_shard(raw: ShardRef, job: ShardJob, futures: dict[str, list]):
    """Submit one shard's chain of stages, as declared; returns the future of the last one."""
    produced: dict[str, Any] = {SOURCE: raw}
    for stage in STAGES:
        inputs = [produced[i.stage] for i in stage.inputs]
        earlier = [f for i, f in futures[stage.inputs[0].stage] if i < job.index] if stage.reads_earlier_shards else None
        produced[stage.name] = named(STAGE_TASKS[stage.name], stage.name, job.index).submit(stage.name, inputs, job, earlier)
        futures[stage.name].append((job.index, produced[stage.name]))
    return produced[STAGES[-1].name]


def finished_refs(stage_futures: list) -> list[ShardRef]:
    return [f.result() for _, f in stage_futures if f.state.is_completed()]


def first_failure(futures: dict[str, list]) -> tuple[str, str] | None:
    """The task run that failed first in shard order and stage order (its downstream
    stages never ran, so this is the cause), with its state's message."""
    failed = [(i, order, stage, f) for order, (stage, pairs) in enumerate(futures.items()) for i, f in pairs if f.state.is_failed() or f.state.is_crashed()]
    if not failed:
        return None
    i, _, stage, future = min(failed, key=lambda t: (t[0], t[1]))
    return (f"{stage} [{'file group' if stage == SOURCE else 'shard'} {i + 1}]", future.state.message or future.state.name)


@flow(name="news-pipeline-shards", validate_parameters=False, persist_result=False)
def process_shards(file_groups: str, config: PipelineConfig, context: RunContext, cache: ShardCache | None) -> ShardResults:
    """Every shard through every stage, in input order. A file group is read one group
    ahead, and at most `run.shards_in_flight` shards sit between cleaning and writing, so
    cleaning overlaps encoding and memory does not grow with the corpus. Its own flow, so
    `run.runner` can give it a Dask task runner whichever way the run was started. Raises
    StageFailed, carrying what was produced, when a stage fails. Its parameters stay small
    (the Prefect API records them): the file groups are a staging file's path."""
    logger = get_run_logger()
    groups: list[dict[str, list]] = json.loads(Path(file_groups).read_text(encoding="utf-8"))
    futures: dict[str, list] = {stage: [] for stage in (SOURCE, *(s.name for s in STAGES))}
    results = ShardResults()
    in_flight: deque = deque()

    def read_group(g: int):
        group = groups[g]
        if "fetch" in group:
            future = named(FETCH_TASK, "fetch", g, "batch").submit(group["fetch"], config.fetch, config.run.shard_size, context, g)
        else:
            future = named(INGEST_TASK, SOURCE, g, "file group").submit(group["files"], config.input, config.run.shard_size, context.staging, g)
        futures[SOURCE].append((g, future))
        return future

    # Input groups are read ahead: one per web host (within fetch.connections), so the
    # hosts are fetched at once while earlier shards are analysed; one when there is no web input.
    hosts = len({urlsplit(g["fetch"][0]["url"]).netloc for g in groups if g.get("fetch")})
    ahead = max(1, min(hosts, config.fetch.connections))
    next_group = min(ahead, len(groups))
    reading: deque = deque(read_group(g) for g in range(next_group))
    try:
        while reading:
            current = reading.popleft()
            if next_group < len(groups):
                reading.append(read_group(next_group))
                next_group += 1
            for raw in current.result():
                results.ingested.append(raw)
                job = ShardJob(len(results.ingested) - 1, config, context, cache)
                in_flight.append(submit_shard(raw, job, futures))
                if len(in_flight) > config.run.shards_in_flight:
                    in_flight.popleft().result()  # raises at once if that shard failed
        for future in in_flight:
            future.result()
    except Exception as exc:
        results.failed_stage, results.error = first_failure(futures) or ("shards", f"{type(exc).__name__}: {exc}")
        raise StageFailed(f"{results.failed_stage} failed: {results.error}", results) from exc
    finally:
        results.stages = {stage: finished_refs(stage_futures) for stage, stage_futures in futures.items() if stage != SOURCE}
    for stage, refs in results.stages.items():
        logger.info("%s: %d rows in %d shards, %.1f s of task time", stage, sum(r.rows for r in refs), len(refs), sum(r.seconds for r in refs))
    return results


@flow(name="news-pipeline", validate_parameters=True, persist_result=False)  # results are Parquet, never pickles
def news_pipeline(config_path: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline over the configured inputs; returns the run record."""
    logger = get_run_logger()
    config = load_config(config_path, overrides)
    run = PipelineRun.start(config, {"config_path": config_path, "overrides": overrides or {}})
    paths = [p for p in config.input.paths if not is_url(p)]
    files, run.listing = list_inputs(paths, config.input.extensions, follow_symlinks=config.input.follow_symlinks) if paths else ([], [])
    run.files = [str(f) for f in without_excluded(files, config.input.exclude)]
    logger.info("%d input files (%d paths rejected) -> output %s, run %s", len(run.files), len(run.listing), config.output.root, run.run_id)
    try:
        run.prepare()
        run.web = list_web_sources(config, run.context)
        if run.web.sources:
            logger.info("%d web sources: %d items listed, %d new", len(run.web.sources), sum(p.listed for p in run.web.plans.values()), len(run.web.items))
        groups = group_files(run.files, config.run.shard_size) + [{"fetch": batch} for batch in run.web.batches(config.run.shard_size)]
        file_groups = stage_file_groups(groups, run.context.staging)
        shards = process_shards.with_options(task_runner=task_runner_for(config), flow_run_name=f"shards-{config.run.runner}")(
            file_groups, config, run.context, run.cache
        )
        record = run.complete(shards)
    except Exception as exc:
        failed = run.fail(exc)
        if failed is not None:
            publish_run_artifacts(failed)
        raise
    finally:
        close_client(run.run_id)  # the run's fetching client in this process, if it made one
    publish_run_artifacts(record)
    logger.info(
        "run %s: %d read, %d kept, %d rejected (%s)",
        run.run_id,
        record.n_read,
        record.n_kept,
        record.n_rejected,
        ", ".join(f"{k} {v}" for k, v in record.rejected_by_reason.items()) or "none",
    )
    return record.as_dict()

"""The stage shell: what every shard stage does around its computation. It reads the
declared input tables from staging, gives the computation only its declared settings,
writes what it returns to staging, times it, and keeps the result in the shard cache.
One Prefect task per declared stage runs it, named after the stage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.stages import JOINED, SOURCE, STAGE_BY_NAME, STAGES, WRITTEN, Stage, declared_result_settings, stage_settings
from tasks.config import PipelineConfig
from tasks.dataset.deduplicate import deduplicate_shard
from tasks.dataset.output import RunContext, write_shard_outputs
from tasks.dataset.rejected import rejections_table
from tasks.dataset.shard_cache import ShardCache, through_cache
from tasks.dataset.staging import read_shard, write_shard
from tasks.memory import release_freed_memory
from tasks.records import ShardRef
from tasks.retries import stage_task_options
from tasks.stages.ingest import ingest_files
from tasks.stages.ingest.fetch import fetch_pages


@dataclass(frozen=True)
class ShardJob:
    """What a stage's task needs to know besides its inputs. Small and picklable: it travels to Dask workers."""

    index: int  # the shard's number in the run (ingest numbers its shards per file group)
    config: PipelineConfig
    context: RunContext
    cache: ShardCache | None

    @property
    def staging(self) -> str:
        return self.context.staging


def computed_shard(stage: Stage, inputs: list[ShardRef], job: ShardJob) -> ShardRef:
    """Read the stage's input tables, compute, write the result to staging."""
    started = time.perf_counter()
    tables = [read_shard(ref, list(i.columns) if i.columns else None, i.part) for ref, i in zip(inputs, stage.inputs)]
    out = stage.compute(*tables, stage_settings(stage, job.config))
    del tables
    ref = write_shard(
        Path(job.staging), stage.name, job.index, out.table, rejected=rejections_table(out.rejected) if out.rejected else None, parts=out.parts, started=started
    )
    del out
    release_freed_memory()  # a finished shard's buffers go back to the OS, so memory stays flat
    return ref


def deduplicate_step(inputs: list[ShardRef], job: ShardJob, earlier: list[ShardRef]) -> ShardRef:
    known_in = (job.context.output_root, job.context.analysis_sha256, job.context.reanalyze)
    return deduplicate_shard(inputs[0], earlier, job.staging, known_in)


def write_step(inputs: list[ShardRef], job: ShardJob, earlier: list[ShardRef]) -> ShardRef:
    whole = {table: (ref, i.part) for (table, i), ref in zip(WRITTEN, inputs[len(JOINED) :])}
    return write_shard_outputs(*inputs[: len(JOINED)], whole, job.context)


# The declared stages without a computation of their own: they keep the dataset's books.
BOOKKEEPING_STEPS = {"deduplicate": deduplicate_step, "write": write_step}


def run_stage(name: str, inputs: list[ShardRef], job: ShardJob, earlier: list[ShardRef] | None = None) -> ShardRef:
    """One stage over one shard: `inputs` holds one shard output per declared input;
    `earlier`, for a stage that reads them, the first input of the run's earlier shards."""
    stage = STAGE_BY_NAME[name]
    if stage.compute is None:
        return BOOKKEEPING_STEPS[name](inputs, job, earlier or [])
    if not stage.cached or job.cache is None:
        return computed_shard(stage, inputs, job)
    return through_cache(
        job.cache,
        name,
        inputs[0],
        declared_result_settings(stage, job.config),
        job.staging,
        lambda: computed_shard(stage, inputs, job),
        index=job.index,
        uses_models=stage.uses_models,
    )


STAGE_TASKS = {stage.name: task(run_stage, name=stage.name, cache_policy=NO_CACHE, persist_result=False, **stage_task_options()) for stage in STAGES}
INGEST_TASK = task(ingest_files, name=SOURCE, cache_policy=NO_CACHE, persist_result=False, **stage_task_options())
# Not retried by Prefect: the client retries what is worth retrying, and a second try would fetch every page again.
FETCH_TASK = task(fetch_pages, name="fetch", cache_policy=NO_CACHE, persist_result=False)

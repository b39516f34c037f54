"""A pipeline run's lifecycle: start (recover earlier runs, a `running` record), prepare
(models, the analysis key, the shard cache), then complete (commit, record) or fail
(record where and why). The flow calls these in order; the run record is written here only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from flows.stages import CACHED_STAGES, analysis_entry_modules, analysis_settings
from flows.web import WebInputs, staged_fetched_rows, staged_web_files, web_summary
from tasks.analysis_key import analysis_fingerprint, code_digest
from tasks.config import PipelineConfig
from tasks.dataset.accounting import accounting_summary, per_file_counts, read_origins
from tasks.dataset.commit import JOURNAL, Commit, commit_shard_outputs, output_lock
from tasks.dataset.near_duplicate_index import RunGrouping, run_signatures
from tasks.dataset.output import RunContext, add_document_columns, write_table
from tasks.dataset.recovery import process_identity, recover_abandoned_runs
from tasks.dataset.rejected import collect_rejected, count_reasons
from tasks.dataset.run_record import RunRecord, now_utc, output_files, write_run_record
from tasks.dataset.shard_cache import CACHE_DIR, ShardCache, prune_stale_entries
from tasks.dataset.staging import part_rows, remove_staging, staging_root
from tasks.dataset.story_index import RunStories, run_documents
from tasks.dataset.timelines import TimelineUpdate, update_entity_daily
from tasks.records import Rejection, ShardRef
from tasks.versions import code_version, library_versions


class StageFailed(RuntimeError):
    """A shard stage failed (after its retries): the message names the task run and the cause;
    `results` holds what the run's shards produced until then."""

    def __init__(self, message: str, results: ShardResults | None = None) -> None:
        super().__init__(message)
        self.results = results or ShardResults()


@dataclass
class ShardResults:
    """What the shard stages produced: each stage's finished shards, and where the run broke."""

    ingested: list[ShardRef] = field(default_factory=list)
    stages: dict[str, list[ShardRef]] = field(default_factory=dict)
    failed_stage: str | None = None  # the task run that failed first, e.g. "encode [shard 3]"
    error: str | None = None


@dataclass
class PipelineRun:
    """One run of the pipeline over its inputs, from its `running` record to its final one."""

    config: PipelineConfig
    parameters: dict[str, Any]
    context: RunContext
    files: list[str] = field(default_factory=list)  # the input files listed
    listing: list[Rejection] = field(default_factory=list)  # input paths rejected while listing
    models: dict[str, Any] = field(default_factory=dict)
    cache: ShardCache | None = None
    web: WebInputs = field(default_factory=WebInputs)  # what the web sources listed, and what the run fetches
    phase: str = "models"  # where a failure outside the shard stages happened

    @classmethod
    def start(cls, config: PipelineConfig, parameters: dict[str, Any]) -> PipelineRun:
        """Recover earlier runs that will never finish, then create this run's staging
        folder and `running` record (under the output lock, so no other run's recovery takes
        the new staging for an orphan's). A run killed on the way keeps both, and the next
        run on this host recovers it."""
        root = config.output.root
        run_id = flow_run.get_id() or str(uuid.uuid4())
        context = RunContext(
            run_id=run_id,
            started_at=now_utc(),
            output_root=root,
            config_sha256=config.sha256(),
            compression=config.output.compression,
            write_sentences=config.output.write_sentences,
            staging=str(staging_root(root) / run_id),
            reanalyze=config.run.reanalyze,
        )
        run = cls(config, parameters, context)
        with output_lock(root):
            recovered = recover_abandoned_runs(root)
            Path(context.staging).mkdir(parents=True, exist_ok=True)
            write_run_record(context, run.record(status="running"))
        for earlier in recovered:
            get_run_logger().warning("run %s will never finish (failed, or its process is gone): its record is updated, its staging removed", earlier)
        prune_stale_entries(Path(root) / CACHE_DIR)
        return run

    @property
    def run_id(self) -> str:
        return self.context.run_id

    def prepare(self) -> None:
        """Check and fingerprint the models (a missing one fails the run here, before any
        work), then fix the analysis key and the shard cache for this run."""
        from tasks.models.provenance import model_provenance  # loads the models: not at import

        self.models = model_provenance(self.config)
        code = code_digest(analysis_entry_modules())
        self.context = replace(self.context, analysis_sha256=analysis_fingerprint(analysis_settings(self.config), self.models, code))
        self.cache = ShardCache.for_output(self.config.output.root, self.models, code)
        self.phase = "shards"

    def record(self, **outcome: Any) -> RunRecord:
        """The run record: what is known from the start, plus `outcome`."""
        return RunRecord(
            run_id=self.run_id,
            flow_run_name=flow_run.get_name(),
            deployment=deployment.name,
            started_at=self.context.started_at,
            parameters=self.parameters,
            config=self.config.model_dump(mode="json"),
            config_sha256=self.context.config_sha256,
            analysis_sha256=self.context.analysis_sha256,
            code_version=code_version(),
            models=self.models,
            libraries=library_versions(),
            **process_identity(),
            **outcome,
        )

    def complete(self, shards: ShardResults) -> RunRecord:
        """Commit the run's outputs and write its final record; the shard cache's entries
        it used have served their purpose."""
        self.phase = "finalize"
        record = finalize_run(self, shards, None)
        if self.cache is not None:
            for stage in CACHED_STAGES:
                self.cache.remove(shards.stages.get(stage, []), stage)
        remove_staging(Path(self.context.staging))
        return record

    def fail(self, error: BaseException) -> RunRecord | None:
        """Record where and why the run failed; it commits nothing (its finished shards wait
        in the cache). None when even the record could not be written: the staging stays,
        so the next run's recovery marks this one."""
        shards = error.results if isinstance(error, StageFailed) else ShardResults()
        failure = (shards.failed_stage or self.phase, shards.error or f"{type(error).__name__}: {error}")
        try:
            record = finalize_run(self, shards, failure)
        except Exception as record_error:  # noqa: BLE001 - the error the run raises is the first one
            get_run_logger().error("could not write the failed run's record: %s", record_error)
            return None
        if not (Path(self.context.staging) / JOURNAL).exists():  # a started commit is finished by the next run
            remove_staging(Path(self.context.staging))
        return record


def cache_counts(stage_refs: dict[str, list[ShardRef]]) -> dict[str, dict[str, int]]:
    """Per cached stage: shards taken from the shard cache (an earlier run finished them) and computed."""
    return {
        stage: {"from_cache": sum(r.cached for r in refs), "computed": sum(not r.cached for r in refs)}
        for stage, refs in stage_refs.items()
        if stage in CACHED_STAGES
    }


@task(name="finalize", cache_policy=NO_CACHE, persist_result=False)
def finalize_run(run: PipelineRun, shards: ShardResults, failure: tuple[str, str] | None) -> RunRecord:
    """Commit a completed run's outputs (a failed run, `failure` = (where, why), commits
    nothing), write its `rejected` table and its final run record."""
    context, stage_refs = run.context, shards.stages
    fetched = staged_fetched_rows(shards.ingested)
    web = staged_web_files(run.web, shards.ingested, fetched, context) if failure is None else []
    # Near-duplicates, then stories: what they read is gathered before the commit's lock; they
    # place the run's documents under it, against everything committed before.
    commit, grouping, stories = Commit(), None, None
    if failure is None:
        written, deduplicated = stage_refs.get("write", []), stage_refs.get("deduplicate", [])
        grouping = RunGrouping(context, run_signatures(deduplicated, run.config.duplicates), run.config.duplicates)
        stories = RunStories(context, run_documents(deduplicated, stage_refs.get("encode", []), now_utc().isoformat()))

        def group_and_place(added: set[str]) -> list[str]:
            staged = [*grouping(added), *stories(added, grouping.assignments)]
            add_document_columns(written, {**grouping.document_columns(), "story_id": stories.assigned}, context.compression)
            return staged

        commit = commit_shard_outputs(context, written, web, group_and_place)
    # Timelines: the days of the documents the run added, counted again from everything committed.
    try:
        timeline = update_entity_daily(context, commit.added)
    except Exception as error:  # noqa: BLE001  (the run's documents are committed: a recount that fails must not fail the run)
        get_run_logger().warning(
            "entity_daily was not recounted for this run's days (%s: %s); the next run over those days recounts them", type(error).__name__, error
        )
        timeline = TimelineUpdate(None)
    rejected = collect_rejected([*shards.ingested, *stage_refs.get("deduplicate", [])], [*run.listing, *run.web.rejected, *commit.late_duplicates])
    outputs = [*commit.paths, *([timeline.path] if timeline.path else [])]
    if rejected.num_rows:
        outputs.append(write_table(context, "rejected", "all", rejected)[0])
    accounting = accounting_summary(
        per_file_counts(
            read_origins(shards.ingested, rejected),
            commit.kept_origins,
            rejected.column("origin").to_pylist(),
            [*run.files, *(r.origin for r in run.listing), *run.web.urls],
        )
    )
    stages = {"ingest": shards.ingested, **stage_refs}
    finished = now_utc()
    record = run.record(
        status="failed" if failure else "completed",
        failed_stage=failure[0] if failure else None,
        error=failure[1] if failure else None,
        finished_at=finished,
        duration_s=round((finished - context.started_at).total_seconds(), 3),
        n_read=accounting["read"],
        n_kept=commit.kept,
        n_rejected=rejected.num_rows,
        counts={
            "files": len(run.files),
            "read": accounting["read"],
            **{stage: sum(r.rows for r in refs) for stage, refs in stages.items()},
            # documents naming more entities than entities.max_per_document: their least mentioned were left out
            "documents_over_entity_cap": sum(part_rows(r, "capped") for r in stage_refs.get("encode", [])),
            # documents added to a group of copies another document began (this run's or an earlier one's)
            "near_duplicates": grouping.copies if grouping else 0,
            # stories the run began or added to (their rows in `stories`)
            "stories": stories.touched if stories else 0,
            "entity_daily": timeline.rows,  # timeline rows written for the days of the run's documents
        },
        rejected_by_reason=count_reasons(rejected),
        accounting=accounting,
        cache=cache_counts(stage_refs),
        processes=sorted({r.computed_by for refs in stages.values() for r in refs if r.computed_by and not r.cached}),
        stage_seconds={
            **{stage: round(sum(r.seconds for r in refs), 3) for stage, refs in stages.items()},
            "near_duplicates": round(grouping.seconds, 3) if grouping else 0.0,
            "stories": round(stories.seconds, 3) if stories else 0.0,
            "entity_daily": round(timeline.seconds, 3),
        },
        outputs=output_files([p for p in outputs if p.endswith(".parquet")]),
        sources=web_summary(run.web, fetched, rejected),
    )
    record.outputs.append({"path": write_run_record(context, record), "table": "runs", "rows": 1})
    return record

"""Deployments of the pipeline for `newsflow serve`: one from --cron/--interval, or one per
`[[schedules]]` entry of the config. Each run writes its own files (named by run id, each
appearing atomically) and commits them under a lock, so overlapping runs never write over
each other or add a document twice; a concurrency limit of one per deployment saves a
second run from redoing the first one's work."""

from __future__ import annotations

from typing import Any

from flows.pipeline import news_pipeline
from tasks.config import ScheduleConfig

CONCURRENCY_LIMIT = 1


def deployment_for(schedule: ScheduleConfig, config_path: str | None, overrides: dict[str, Any]):
    """A served deployment of `news-pipeline` with this schedule. Every run adds only what the
    output lacks (documents already there are rejected as duplicates before encoding)."""
    parameters = {"config_path": config_path, "overrides": {**overrides, **schedule.overrides}}
    timing = {"cron": schedule.cron} if schedule.cron else {"interval": schedule.interval}
    return news_pipeline.to_deployment(
        name=schedule.name,
        parameters=parameters,
        concurrency_limit=CONCURRENCY_LIMIT,
        description=f"newsflow on a schedule ({schedule.cron or f'every {schedule.interval} s'})",
        **timing,
    )


def serve_deployments(schedules: list[ScheduleConfig], config_path: str | None, overrides: dict[str, Any]) -> None:
    """Register the deployments with the server and run their scheduled runs until stopped."""
    from prefect import serve

    serve(*[deployment_for(s, config_path, overrides) for s in schedules])

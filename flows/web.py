"""Web inputs in the flow: one task run per source lists what it holds now, then the run
plans which items it fetches (new ones only) and in which batches; the batches become
file groups of their own, fetched by ingest as the shards before them are analysed."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.config import PipelineConfig, SourceConfig
from tasks.dataset.output import RunContext, write_table
from tasks.records import Rejection, ShardRef
from tasks.stages.ingest.common import STAGE as INGEST_STAGE
from tasks.stages.ingest.fetch import ARCHIVE_TABLE, kept_archive, staged_archive
from tasks.web.archive import WarcArchive
from tasks.web.items import ListedItem
from tasks.web.sessions import client_for, keep_prefetched
from tasks.web.sources import SourceListing, SourcePlan, fetch_batches, list_source, plan_fetches, source_summaries, sources_of
from tasks.web.state import FEEDS_SCHEMA, FEEDS_TABLE, FETCHED_TABLE, FetchState, Validators


@dataclass
class WebInputs:
    """What the run's web sources listed, and what it fetches of it."""

    sources: list[SourceConfig] = field(default_factory=list)
    listings: list[SourceListing] = field(default_factory=list)
    plans: dict[str, SourcePlan] = field(default_factory=dict)
    items: list[ListedItem] = field(default_factory=list)

    @property
    def rejected(self) -> list[Rejection]:
        return [r for listing in self.listings for r in listing.rejected]

    @property
    def urls(self) -> list[str]:
        return [item.url for item in self.items]

    def batches(self, size: int) -> list[list[dict[str, Any]]]:
        return [[asdict(item) for item in batch] for batch in fetch_batches(self.items, size)]


@task(name="list-source", cache_policy=NO_CACHE, persist_result=False, task_run_name="list {source.name}")
def list_source_task(source: SourceConfig, number: int, config: PipelineConfig, context: RunContext, validators: Validators) -> SourceListing:
    target, _ = staged_archive(context, f"listing-{number:03d}")
    with WarcArchive(target, context.run_id) if config.fetch.archive else nullcontext() as archive:
        listing = list_source(source, client_for(context.run_id, config.fetch), validators, config.fetch.max_bytes, archive)
    listing.archive = kept_archive(archive, target)
    for warning in listing.warnings:
        get_run_logger().warning("%s: %s", source.name, warning)
    keep_prefetched(context.staging, listing.prefetched)
    listing.prefetched = {}
    return listing


def list_web_sources(config: PipelineConfig, context: RunContext) -> WebInputs:
    """List every web source (one task run each, at once), then plan what this run fetches."""
    sources = sources_of(config.input.paths, config.input.sources)
    if not sources:
        return WebInputs()
    state = FetchState.load(config.output.root)
    futures = [list_source_task.submit(source, n, config, context, state.validators) for n, source in enumerate(sources)]
    listings = [f.result() for f in futures]
    items, plans = plan_fetches(listings, sources, state)
    return WebInputs(sources, listings, plans, items)


def staged_fetched_rows(ingested: list[ShardRef]) -> list[dict[str, Any]]:
    """The `fetched` rows the run's fetch batches staged (read before the commit moves them)."""
    return [row for ref in ingested if FETCHED_TABLE in ref.parts for row in pq.read_table(ref.parts[FETCHED_TABLE]).to_pylist()]


def web_summary(web: WebInputs, fetched: list[dict[str, Any]], rejected: pa.Table) -> dict[str, dict[str, Any]]:
    """Per-source counts for the run record, from what listing found and what fetching staged."""
    if not web.sources:
        return {}
    source_of = {item.url: item.source for item in web.items}
    by_source: dict[str, list[str]] = {}
    # Only fetching's own rejections: a page fetched and then rejected by cleaning counts as fetched.
    columns = (rejected.column(name).to_pylist() for name in ("origin", "reason", "stage"))
    for origin, reason, stage in zip(*columns):
        if origin in source_of and stage == INGEST_STAGE:
            by_source.setdefault(source_of[origin], []).append(reason)
    return source_summaries(web.listings, web.plans, fetched, by_source)


def pending_sources(web: WebInputs, fetched: list[dict[str, Any]]) -> set[str]:
    """Sources with items a later run should still take: left out by `since`/`max_items`, or
    failed in a way worth another try (no `fetched` row). Their feeds' validators are not
    kept, so the next run reads those feeds whole instead of getting a 304 that hides them."""
    taken = {row["url"] for row in fetched}
    return {item.source for item in web.items if item.url not in taken} | {name for name, plan in web.plans.items() if plan.skipped}


def staged_web_files(web: WebInputs, ingested: list[ShardRef], fetched: list[dict[str, Any]], context: RunContext) -> list[str]:
    """The state and archive files of the run, staged: its commit moves them into the dataset.
    The feeds' validators are written here, once the run knows which sources are done."""
    pending = pending_sources(web, fetched)
    validators = [row for listing in web.listings if listing.source not in pending for row in listing.validators]
    staged = [listing.archive for listing in web.listings if listing.archive]
    if validators:
        staged.append(write_table(context, FEEDS_TABLE, "listing", pa.Table.from_pylist(validators, schema=FEEDS_SCHEMA), staged=True, result=False)[0])
    return [*staged, *(path for ref in ingested for name, path in ref.parts.items() if name in (FETCHED_TABLE, ARCHIVE_TABLE))]

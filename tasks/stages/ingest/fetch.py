"""The ingest stage for web inputs: `fetch_pages` fetches a batch of listed articles (one
host's), archives every response in the batch's WARC file, and turns each page into a
RawDocument or a Rejection, written as staging shards like `ingest_files` writes files.
Each item also gets a row of the `fetched` table (tasks/web/state.py), staged with the
run's outputs, unless its failure is worth another try in a later run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from tasks.config import FetchConfig
from tasks.dataset.output import RunContext, write_table
from tasks.records import RawDocument, Rejection, RejectReason, ShardRef
from tasks.stages.ingest.common import STAGE, Item
from tasks.stages.ingest.html import html_document
from tasks.stages.ingest.stage import write_item_shards
from tasks.web.archive import WarcArchive
from tasks.web.discovery import canonical_link
from tasks.web.http import decode_html, status_failure
from tasks.web.items import ListedItem
from tasks.web.responses import HTML_TYPES, FetchFailure, Response
from tasks.web.sessions import client_for, take_prefetched
from tasks.web.state import FETCHED_SCHEMA, FETCHED_TABLE

ARCHIVE_TABLE = "archive"


@dataclass
class Outcome:
    """What came of one item: a document or a rejection, and its `fetched` row (None: try again next run)."""

    item: Item
    row: dict[str, Any] | None


def archive_path(context: RunContext, part: str) -> Path:
    """A WARC file of the run, relative to the output root: archive/run_date=.../<run>-<part>.warc.gz."""
    return Path(ARCHIVE_TABLE) / f"run_date={context.run_date}" / f"{context.run_id}-{part}.warc.gz"


def staged_archive(context: RunContext, part: str) -> tuple[Path, Path]:
    """(where the run stages a WARC file, where its commit moves it relative to the output root)."""
    relative = archive_path(context, part)
    target = Path(context.staging) / "output" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, relative


def kept_archive(archive: WarcArchive | None, target: Path) -> str | None:
    """The staged WARC file's path when it holds a response; else it is removed (a batch
    whose every item failed before an answer, a listing that answered 304)."""
    if archive is not None and archive.responses_written:
        return str(target)
    target.unlink(missing_ok=True)
    return None


def _is_html(response: Response) -> bool:
    kind = response.content_type
    return kind in HTML_TYPES or (not kind and response.body.lstrip()[:1] == b"<")


def _row(item: ListedItem, outcome: str, response: Response | None = None, archived: str | None = None, canonical: str | None = None) -> dict[str, Any]:
    return {
        "source": item.source,
        "url": item.url,
        "final_url": response.final_url if response else None,
        "canonical_url": canonical,
        "guid": item.guid,
        "status": response.status if response else None,
        "outcome": outcome,
        "sha256": hashlib.sha256(response.body).hexdigest() if response else None,
        "bytes": len(response.body) if response else 0,
        "seconds": response.seconds if response else 0.0,
        "fetched_at": response.fetched_at if response else None,
        "archive": archived,
    }


def _reject(item: ListedItem, reason: RejectReason, detail: str) -> Rejection:
    return Rejection(item.url, reason, detail, STAGE)


def page_outcome(item: ListedItem, answer: Response | FetchFailure, archived: str | None) -> Outcome:
    """An item's fetch result read: a document, or the rejection saying why not."""
    if isinstance(answer, FetchFailure):
        return Outcome(_reject(item, answer.reason, answer.detail), None if answer.transient else _row(item, str(answer.reason)))
    if failure := status_failure(answer):
        rejection = _reject(item, failure.reason, failure.detail)
        return Outcome(rejection, None if failure.transient else _row(item, str(rejection.reason), answer, archived))
    if not _is_html(answer):
        rejection = _reject(item, RejectReason.NOT_ARTICLE, f"{item.url}: a {answer.content_type or 'untyped'} body, not an HTML page")
        return Outcome(rejection, _row(item, str(rejection.reason), answer, archived))
    html = decode_html(answer)
    document = html_document(html, item.url, answer.final_url, item)
    outcome = "fetched" if isinstance(document, RawDocument) else str(document.reason)
    return Outcome(document, _row(item, outcome, answer, archived, canonical_link(html, answer.final_url)))


def fetch_pages(items: list[dict], settings: FetchConfig, shard_size: int, context: RunContext, group: int) -> list[ShardRef]:
    """Fetch a batch of listed items into staging shards of at most `shard_size` records;
    every response goes to the batch's WARC file, every final outcome to `fetched`."""
    client = client_for(context.run_id, settings)
    rows: list[dict[str, Any]] = []
    target, relative = staged_archive(context, f"{group:05d}")

    def fetched(archive: WarcArchive | None) -> Iterator[Item]:
        for listed in items:
            item = ListedItem(**{**listed, "authors": tuple(listed.get("authors") or ())})
            answer = take_prefetched(context.staging, item.url) or client.get(item.url)
            archived = str(relative) if archive is not None and isinstance(answer, Response) and archive.write(answer) else None
            outcome = page_outcome(item, answer, archived)
            if outcome.row is not None:
                rows.append(outcome.row)
            yield outcome.item

    with WarcArchive(target, context.run_id) if settings.archive else nullcontext() as archive:
        refs = write_item_shards(fetched(archive), shard_size, context.staging, group)
    parts = {}
    if rows:
        parts[FETCHED_TABLE] = write_table(
            context, FETCHED_TABLE, f"{group:05d}", pa.Table.from_pylist(rows, schema=FETCHED_SCHEMA), staged=True, result=False
        )[0]
    if kept := kept_archive(archive, target):
        parts[ARCHIVE_TABLE] = kept
    refs[0] = replace(refs[0], parts={**refs[0].parts, **parts})
    return refs

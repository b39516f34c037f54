"""Listing a web source: what its feed, sitemap or site root lists now (`list_source`),
and which of those items this run fetches (`plan_fetches`): each canonical URL once
across sources, none that an earlier run took, none older than the source's `since`, at
most its `max_items`, newest first. Fetching the pages is ingest's (tasks/stages/ingest/fetch.py)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from tasks.config import SourceConfig, since_cutoff
from tasks.records import Rejection, RejectReason
from tasks.web.archive import WarcArchive
from tasks.web.discovery import feed_links, looks_like_site_root
from tasks.web.feeds import ListingError, read_listing
from tasks.web.http import PoliteClient, decode_html, status_failure
from tasks.web.items import ListedItem
from tasks.web.responses import FetchFailure, Response
from tasks.web.state import FetchState, Validators
from tasks.web.urls import canonical_url, host_of

STAGE = "ingest"  # listing rejections are ingest's: they are inputs that never became documents
MAX_SITEMAPS = 50  # child sitemaps read per source and run: an index can list thousands of daily files


@dataclass
class SourceListing:
    """What listing one source found, and what it cost."""

    source: str
    url: str
    found: str = ""  # feed | sitemap | page | site (a root whose feeds or sitemaps were read)
    items: list[ListedItem] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    validators: list[dict[str, Any]] = field(default_factory=list)  # `feeds` rows: each listing's new ETag / Last-Modified
    prefetched: dict[str, Response] = field(default_factory=dict)  # article pages fetched while telling what a URL is
    warnings: list[str] = field(default_factory=list)  # listings read in part (a feed broken after some entries)
    archive: str | None = None  # the staged WARC file holding the listings' responses
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    seconds: float = 0.0


def sources_of(paths: list[str], sources: list[SourceConfig]) -> list[SourceConfig]:
    """The configured sources, then each http(s) URL among the input paths as a source named after its host."""
    urls = [SourceConfig(name=host_of(p) or p, url=p) for p in paths if is_url(p)]
    return [*sources, *urls]


def is_url(path: str) -> bool:
    return path.lower().startswith(("http://", "https://"))


class _Lister:
    """Lists one source through one client, following sitemap indexes and a root's feeds."""

    def __init__(self, source: SourceConfig, client: PoliteClient, validators: Validators, max_bytes: int, archive: WarcArchive | None) -> None:
        self.source, self.client, self.validators, self.max_bytes, self.archive = source, client, validators, max_bytes, archive
        self.out = SourceListing(source.name, source.url)
        self.seen: set[str] = set()

    def reject(self, origin: str, reason: RejectReason, detail: str) -> None:
        self.out.rejected.append(Rejection(origin, reason, detail, STAGE))

    def fetch(self, url: str, conditional: bool = True) -> Response | None:
        """A 2xx response, or None (a 304, or a failure recorded as a rejection)."""
        etag, modified = self.validators.get(url, (None, None)) if conditional else (None, None)
        answer = self.client.get(url, etag=etag, last_modified=modified)
        self.out.requests += 1
        if isinstance(answer, FetchFailure):
            self.reject(url, answer.reason, answer.detail)
            return None
        self.out.bytes += len(answer.body)
        if answer.status == 304:
            self.out.not_modified += 1
            return None
        if failure := status_failure(answer):
            self.reject(url, failure.reason, failure.detail)
            return None
        return answer

    def remember_validators(self, response: Response) -> None:
        etag, modified = response.header("etag"), response.header("last-modified")
        if etag or modified:
            self.out.validators.append(
                {
                    "source": self.source.name,
                    "url": response.url,
                    "etag": etag,
                    "last_modified": modified,
                    "status": response.status,
                    "checked_at": response.fetched_at,
                }
            )

    def listing(self, url: str, depth: int = 0) -> None:
        """Read what `url` lists: a feed's or sitemap's items, an index's sitemaps, a root's feeds."""
        if url in self.seen:
            return
        self.seen.add(url)
        as_page = self.source.kind == "page"
        response = self.fetch(url, conditional=not as_page)
        if response is None:
            return
        if as_page:
            return self.page(url, response)
        try:
            found = read_listing(response.body, response.final_url, response.header("content-type") or "", self.max_bytes)  # its charset too
        except ListingError as error:
            return self.reject(url, error.reason, error.detail)
        self.out.warnings += found.warnings
        if found.kind in ("feed", "sitemap", "sitemap_index"):
            self.keep(response)
            self.remember_validators(response)
            self.out.found = self.out.found or ("feed" if found.kind == "feed" else "sitemap")
            self.out.items += [replace(item, source=self.source.name) for item in found.items]
            self.out.rejected += [Rejection(origin, reason, detail, STAGE) for origin, reason, detail in found.rejected]
            for child in found.sitemaps[:MAX_SITEMAPS] if depth < 2 else []:
                self.listing(child, depth + 1)
        elif self.source.kind in ("feed", "sitemap"):
            self.keep(response)
            self.reject(
                url, RejectReason.PARSE_ERROR, f"{url}: configured as a {self.source.kind}, but the body is {found.kind} ({response.content_type or 'no type'})"
            )
        elif depth == 0 and found.kind == "html" and looks_like_site_root(url):
            self.site_root(url, response)
        else:
            self.page(url, response)

    def keep(self, response: Response) -> None:
        """Archive a listing's response (an article page is archived by the fetch step that reads it)."""
        if self.archive is not None:
            self.archive.write(response)

    def page(self, url: str, response: Response) -> None:
        """The URL is an article (or what ingest will reject as none): one item, its response kept."""
        item = ListedItem(url=canonical_url(url) or url, source=self.source.name)
        self.out.found = self.out.found or "page"
        self.out.items.append(item)
        self.out.prefetched[item.url] = response

    def site_root(self, url: str, response: Response) -> None:
        """A site's root: read the feeds its page links to, else the sitemaps its robots.txt names."""
        self.out.found = "site"
        self.keep(response)
        feeds = feed_links(decode_html(response), response.final_url)
        if not feeds:  # the robots.txt the client reads anyway (once per host and run)
            rules = self.client.robots_txt_of(response.final_url)
            named = list(rules.parser.sitemaps) if rules.parser is not None else []
            feeds = list(dict.fromkeys(u for u in (canonical_url(s, response.final_url) for s in named) if u))
        if not feeds:
            return self.reject(url, RejectReason.NOT_ARTICLE, f"{url}: a site's root page that links to no feed, and its robots.txt names no sitemap")
        for feed in feeds:
            self.listing(feed, depth=1)


def list_source(source: SourceConfig, client: PoliteClient, validators: Validators, max_bytes: int, archive: WarcArchive | None = None) -> SourceListing:
    """Everything `source` lists now (with repeats across its feeds removed); the listings'
    responses go to `archive`."""
    started = time.perf_counter()
    lister = _Lister(source, client, validators, max_bytes, archive)
    lister.listing(canonical_url(source.url) or source.url)
    unique: dict[str, ListedItem] = {}
    for item in lister.out.items:
        unique.setdefault(item.url, item)
    lister.out.items = list(unique.values())
    lister.out.seconds = round(time.perf_counter() - started, 3)
    return lister.out


@dataclass
class SourcePlan:
    """Per source: how its listed items were sorted out (listed = already_taken + skipped + new)."""

    listed: int = 0
    already_taken: int = 0  # by an earlier run, or by another source of this run
    skipped: int = 0  # older than `since`, or past `max_items`: a later run may take them
    new: int = 0


def _newest_first(items: list[ListedItem]) -> list[ListedItem]:
    """Dated items newest first, then undated ones in listing order (a sort is stable)."""
    return sorted(items, key=lambda i: (i.published is None, _timestamp(i.published)))


def _timestamp(published: str | None) -> float:
    moment = _moment(published)
    return -moment.timestamp() if moment else 0.0


def _moment(published: str | None) -> datetime | None:
    if not published:
        return None
    try:
        return since_cutoff(published)
    except ValueError:
        return None


def plan_fetches(listings: list[SourceListing], sources: list[SourceConfig], state: FetchState) -> tuple[list[ListedItem], dict[str, SourcePlan]]:
    """The items this run fetches, in source order, and how each source's items were sorted out."""
    by_name = {s.name: s for s in sources}
    chosen: list[ListedItem] = []
    taken_now: set[str] = set()
    plans: dict[str, SourcePlan] = {}
    for listing in listings:
        plan = plans.setdefault(listing.source, SourcePlan())
        config = by_name[listing.source]
        cutoff = since_cutoff(config.since)
        plan.listed += len(listing.items)
        fresh = []
        for item in listing.items:
            if item.url in taken_now or state.taken_by(item):
                plan.already_taken += 1
            elif cutoff and (moment := _moment(item.published)) and moment < cutoff:
                plan.skipped += 1
            else:
                fresh.append(item)
                taken_now.add(item.url)
        if config.max_items and len(fresh) > config.max_items:
            kept = {i.url for i in _newest_first(fresh)[: config.max_items]}
            plan.skipped += len(fresh) - len(kept)
            taken_now -= {i.url for i in fresh} - kept
            fresh = [i for i in fresh if i.url in kept]
        plan.new += len(fresh)
        chosen += fresh
    return chosen, plans


def fetch_batches(items: list[ListedItem], batch_size: int) -> list[list[ListedItem]]:
    """Items cut into batches of one host each, hosts taking turns, so batches read ahead
    together go to different hosts while each host's own requests stay spaced."""
    by_host: dict[str, list[ListedItem]] = {}
    for item in items:
        by_host.setdefault(host_of(item.url), []).append(item)
    queues = [[items_[i : i + batch_size] for i in range(0, len(items_), batch_size)] for items_ in by_host.values()]
    batches: list[list[ListedItem]] = []
    for round_ in range(max((len(q) for q in queues), default=0)):
        batches += [q[round_] for q in queues if round_ < len(q)]
    return batches


def reasons(rejected: list[Rejection]) -> dict[str, int]:
    return dict(Counter(str(r.reason) for r in rejected))


def source_summaries(
    listings: list[SourceListing], plans: dict[str, SourcePlan], fetched: list[dict[str, Any]], item_rejections: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """Per source, for the run record and report: what it listed and how that was sorted
    out (listed = already_taken + skipped + new; new = fetched + rejected), feeds not
    modified, rejections by reason (items', and the listing's own), bytes and seconds.
    `fetched`: the run's `fetched` rows; `item_rejections`: source -> reasons of its items' rejections."""
    out: dict[str, dict[str, Any]] = {}
    for listing in listings:
        plan = plans.get(listing.source, SourcePlan())
        entry = out.setdefault(
            listing.source,
            {
                "url": listing.url,
                "found": listing.found,
                **asdict(plan),
                "fetched": 0,
                "rejected": {},
                "listing_rejected": {},
                "not_modified": 0,
                "listing_requests": 0,
                "bytes": 0,
                "seconds": 0.0,
            },
        )
        entry["not_modified"] += listing.not_modified
        entry["listing_requests"] += listing.requests
        entry["bytes"] += listing.bytes
        entry["seconds"] += listing.seconds
        for reason, n in reasons(listing.rejected).items():
            entry["listing_rejected"][reason] = entry["listing_rejected"].get(reason, 0) + n
    for source, entry in out.items():
        rows = [r for r in fetched if r["source"] == source]
        entry["fetched"] = sum(r["outcome"] == "fetched" for r in rows)
        entry["rejected"] = dict(Counter(item_rejections.get(source, [])))
        entry["bytes"] += sum(r["bytes"] or 0 for r in rows)
        entry["seconds"] = round(entry["seconds"] + sum(r["seconds"] or 0.0 for r in rows), 3)
        entry["balanced"] = entry["listed"] == entry["already_taken"] + entry["skipped"] + entry["fetched"] + sum(entry["rejected"].values())
    return out

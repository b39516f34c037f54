"""Listing web sources against a real HTTP server on 127.0.0.1: what a feed, a sitemap index,
a site's root page and an article URL expand into, what is archived, and which items a run
then fetches (each once across sources, none taken before, `since` and `max_items` obeyed,
batches of one host each with hosts taking turns)."""

from __future__ import annotations

from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from tasks.config import FetchConfig, SourceConfig
from tasks.web.archive import WarcArchive
from tasks.web.http import PoliteClient
from tasks.web.items import ListedItem
from tasks.web.sources import fetch_batches, list_source, plan_fetches
from tasks.web.state import FetchState

XML = {"Content-Type": "application/xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


@pytest.fixture
def client():
    with PoliteClient(FetchConfig(allow_private=True, host_interval=0.0, retries=0)) as polite:
        yield polite


def urlset(*urls: str) -> str:
    return "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>" + "".join(f"<url><loc>{u}</loc></url>" for u in urls) + "</urlset>"


def test_a_site_root_without_feed_links_is_read_through_the_sitemaps_its_robots_txt_names(site, client, tmp_path):
    site.route("/robots.txt", "User-agent: *\nAllow: /\nSitemap: /sitemap_index.xml\n")
    site.route("/", "<html><head><title>Front page</title></head><body><a href='/news/a'>A</a></body></html>", headers=HTML)
    index = f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap><loc>{site.url('/news.xml')}</loc></sitemap></sitemapindex>"
    site.route("/sitemap_index.xml", index, headers=XML)
    site.route("/news.xml", urlset(site.url("/news/a"), site.url("/news/b?utm_medium=x")), headers=XML)
    archive_file = tmp_path / "listing.warc.gz"
    with WarcArchive(archive_file, "run") as archive:
        listing = list_source(SourceConfig(name="site", url=site.url("/")), client, {}, 1_000_000, archive)
    assert listing.found == "site"
    assert [item.url for item in listing.items] == [site.url("/news/a"), site.url("/news/b")]
    assert site.hits("/robots.txt") == 1  # read once, for the rules and the sitemaps alike
    with archive_file.open("rb") as handle:
        archived = [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(handle) if r.rec_type == "response"]
    assert archived == [site.url("/"), site.url("/sitemap_index.xml"), site.url("/news.xml")]


def test_a_site_root_reads_the_feeds_its_page_links_to(site, client):
    site.route("/", f"<html><head><link rel='alternate' type='application/rss+xml' href='{site.url('/feed.xml')}'></head><body>Hi</body></html>", headers=HTML)
    feed = f"<rss version='2.0'><channel><title>T</title><item><title>One</title><link>{site.url('/news/one')}</link><guid isPermaLink='false'>story-1</guid></item></channel></rss>"
    site.route("/feed.xml", feed, headers={"Content-Type": "application/rss+xml"}, etag='"e1"')
    listing = list_source(SourceConfig(name="site", url=site.url("/")), client, {}, 1_000_000)
    assert [(i.url, i.guid, i.source) for i in listing.items] == [(site.url("/news/one"), "story-1", "site")]
    assert [(v["url"], v["etag"]) for v in listing.validators] == [(site.url("/feed.xml"), '"e1"')]
    # Known validators: the feed answers 304 and lists nothing.
    again = list_source(SourceConfig(name="site", url=site.url("/")), client, {site.url("/feed.xml"): ('"e1"', None)}, 1_000_000)
    assert again.items == [] and again.not_modified == 1


def test_an_article_url_is_one_item_and_its_page_is_kept_for_the_fetch_step(site, client):
    url = site.route("/news/story", "<html><body><article><p>Words.</p></article></body></html>", headers=HTML)
    listing = list_source(SourceConfig(name="one", url=url), client, {}, 1_000_000)
    assert listing.found == "page" and [i.url for i in listing.items] == [url]
    assert listing.prefetched[url].status == 200 and site.hits("/news/story") == 1


def test_a_source_that_fails_is_a_rejection_naming_it(site, client):
    url = site.route("/feed.xml", "gone", status=410)
    listing = list_source(SourceConfig(name="gone", url=url, kind="feed"), client, {}, 1_000_000)
    assert listing.items == [] and [(r.origin, r.reason) for r in listing.rejected] == [(url, "http_status")]
    assert "410" in listing.rejected[0].detail


def listing_of(source: str, *items: ListedItem):
    from tasks.web.sources import SourceListing

    return SourceListing(source, f"https://{source}.example/feed", items=list(items))


def item(url: str, source: str, published: str | None = None, guid: str | None = None) -> ListedItem:
    return ListedItem(url=url, source=source, published=published, guid=guid)


def test_plan_takes_each_url_once_and_nothing_an_earlier_run_took():
    a = listing_of("a", item("https://x.example/1", "a"), item("https://x.example/2", "a", guid="g2"), item("https://x.example/3", "a"))
    b = listing_of("b", item("https://x.example/1", "b"), item("https://y.example/4", "b"))
    state = FetchState(taken={"https://x.example/3": "run-0", "guid:a:g2": "run-0"})
    chosen, plans = plan_fetches([a, b], [SourceConfig(name="a", url=a.url), SourceConfig(name="b", url=b.url)], state)
    assert [i.url for i in chosen] == ["https://x.example/1", "https://y.example/4"]
    assert (plans["a"].listed, plans["a"].already_taken, plans["a"].new) == (3, 2, 1)
    assert (plans["b"].listed, plans["b"].already_taken, plans["b"].new) == (2, 1, 1)


def test_plan_obeys_since_and_keeps_the_newest_max_items():
    listing = listing_of(
        "a",
        item("https://x.example/old", "a", "2020-01-01"),
        item("https://x.example/mid", "a", "2026-11-01"),
        item("https://x.example/new", "a", "2026-11-20"),
        item("https://x.example/undated", "a"),
    )
    source = SourceConfig(name="a", url=listing.url, since="2025-01-01", max_items=2)
    chosen, plans = plan_fetches([listing], [source], FetchState())
    assert [i.url for i in chosen] == ["https://x.example/mid", "https://x.example/new"]
    assert (plans["a"].skipped, plans["a"].new) == (2, 2)


def test_batches_hold_one_host_each_and_hosts_take_turns():
    items = [item(f"https://a.example/{n}", "s") for n in range(5)] + [item(f"https://b.example/{n}", "s") for n in range(2)]
    hosts = [{Path(i.url).parent.name for i in batch} for batch in fetch_batches(items, 2)]
    assert hosts == [{"a.example"}, {"b.example"}, {"a.example"}, {"a.example"}]


def test_a_feed_is_read_in_the_charset_its_content_type_names(site, client):
    title = "Новости гавани"  # a feed with no encoding in its XML declaration: only the header says windows-1251
    feed = (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><item><title>{title}</title><link>{site.url('/n/1')}</link></item></channel></rss>"
    )
    url = site.route("/feed.xml", feed.encode("cp1251"), headers={"Content-Type": "application/rss+xml; charset=windows-1251"})
    listing = list_source(SourceConfig(name="harbour", url=url, kind="feed"), client, {}, 1_000_000)
    assert [item.title for item in listing.items] == [title]

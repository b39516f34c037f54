"""Metadata from news pages: which source fills each field, how authors and titles are
cleaned, and which pages are paywalls. The pages in tests/data/pages are invented (outlets,
reporters, stories), one per pattern seen on real news sites."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.ingest.html import html_document
from tasks.stages.ingest.metadata import clean_authors, clean_title, host_label, jsonld_meta, parse_page, paywall_reason, visible_text
from tasks.web.items import ListedItem

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def document(name: str, **kwargs) -> RawDocument:
    doc = html_document(page(name), name, **kwargs)
    assert isinstance(doc, RawDocument), doc
    return doc


def rejection(name: str, html: str | None = None) -> Rejection:
    r = html_document(html if html is not None else page(name), name)
    assert isinstance(r, Rejection), r
    return r


# --------------------------------------------------------------------------- pages


def test_jsonld_news_article_with_people_and_publisher():
    doc = document("jsonld_newsarticle.html")
    assert doc.title == "Storm surge floods harbour front as sea wall gives way"
    assert doc.authors == ["Maria Lopez", "Tom Baker"]
    assert doc.published == "2024-03-14"
    assert doc.source == "Harbour Gazette"  # publisher given as an @id reference into @graph
    assert doc.url == "https://harbourgazette.example/news/2024/03/14/storm-surge-harbour-front"
    assert doc.wire is None
    assert doc.field_sources == {"title": "jsonld", "authors": "jsonld", "published": "jsonld", "source": "jsonld", "url": "meta", "text": "precision"}
    assert doc.text.startswith("A storm surge driven by gale-force winds")  # headline handed over as title
    assert "All rights reserved" not in doc.text


def test_opengraph_only_page():
    doc = document("opengraph_only.html")
    assert doc.title == "Library to open on Sundays from June"
    assert doc.authors == ["Hannah Whitlock"]  # the other article:author is a profile URL
    assert doc.published == "2024-04-22"  # the day as written, not moved to UTC
    assert doc.source == "Brookvale Echo"
    assert doc.url == "https://brookvale-echo.example/local/library-sunday-opening"
    assert doc.field_sources == {
        "title": "opengraph",
        "authors": "opengraph",
        "published": "opengraph",
        "source": "opengraph",
        "url": "opengraph",
        "text": "precision",
    }


def test_junk_authors_are_dropped():
    doc = document("junk_authors.html")
    # dropped: "Staff Writer", "No Author", a date, the outlet, "Senior Correspondent", "By",
    # a bio sentence's tail, an e-mail address; "Analysis by" and "By" prefixes taken off
    assert doc.authors == ["Priya Natarajan", "Owen Hartley"]
    assert doc.field_sources["authors"] == "jsonld"
    assert doc.source == "The Lakeside Courier"
    assert doc.wire is None


def test_wire_credit_after_a_name():
    doc = document("wire_person.html")
    assert (doc.authors, doc.wire) == (["Jane Roe"], "Reuters")
    assert doc.field_sources["authors"] == doc.field_sources["wire"] == "meta"
    assert doc.source == "Daily Meridian"


def test_wire_as_the_only_author():
    doc = document("wire_only.html")
    assert (doc.authors, doc.wire) == ([], "AP")  # "The Associated Press", an Organization author
    assert doc.field_sources["wire"] == "jsonld" and "authors" not in doc.field_sources
    assert doc.published == "2024-07-19"
    assert doc.title == "Rescuers reach hikers stranded by rockfall"


def test_title_with_outlet_suffix_and_section():
    doc = document("title_suffix.html")
    assert doc.title == "Council delays vote on bus lanes"  # og:title "... | Northfield Post Politics"
    assert doc.field_sources["title"] == "opengraph"
    assert doc.authors == ["Samir Haddad"] and doc.field_sources["authors"] == "meta"


def test_title_with_outlet_prefix():
    doc = document("title_prefix.html")
    assert doc.title == "Orchard growers brace for late frost"  # "Millbrook Standard — ...", publisher "The Millbrook Standard"
    assert doc.field_sources["title"] == "jsonld"
    assert doc.authors == ["Elif Demir"]
    assert doc.published == "2024-04-08"


def test_headline_repeated_as_first_body_line_is_removed():
    doc = document("headline_repeated.html")
    assert doc.title == "Lighthouse reopens to visitors after restoration"
    # the <h1> differs in case and punctuation ("LIGHTHOUSE REOPENS TO VISITORS — AFTER RESTORATION!")
    assert doc.text.startswith("The lighthouse on Gannet Point opened its doors")
    assert "LIGHTHOUSE" not in doc.text


def test_paywall_by_is_accessible_for_free():
    r = rejection("paywall_flag.html")
    assert r.reason is RejectReason.PAYWALLED
    assert r.detail.startswith("paywall_flag.html: schema.org isAccessibleForFree is false")


def test_paywall_flag_with_the_full_text_on_the_page_is_kept():
    # sites flag their articles but serve the whole text (as the schema.org paywall markup
    # asks of them): with 400 words or more, the page holds the article
    paragraphs = [p.split("</p>")[0] for name in ("jsonld_newsarticle.html", "junk_authors.html", "wire_person.html") for p in page(name).split("<p>")[1:]]
    html = page("paywall_flag.html").replace('<div class="premium-body"></div>', "".join(f"<p>{p}</p>" for p in paragraphs))
    doc = html_document(html, "paywall_full.html")
    assert isinstance(doc, RawDocument), doc
    assert len(doc.text.split()) >= 400


def test_subscribe_prompt_on_a_short_page():
    r = rejection("subscribe_short.html")
    assert r.reason is RejectReason.PAYWALLED
    assert "Subscribe to continue" in r.detail and "subscribe_short.html" in r.detail


def test_cookie_consent_page():
    r = rejection("cookie_consent.html")
    assert r.reason is RejectReason.PAYWALLED
    assert "cookies" in r.detail.lower()


def test_consent_overlay_the_extractor_drops_is_still_named():
    # the extractor keeps only "Home" of this page: the whole page is searched for the prompt
    html = (
        '<html><head><title>Upland Observer</title></head><body><nav><a href="/">Home</a></nav>'
        '<div class="cookie-banner" style="display:none"><p>We use cookies to improve your experience.</p>'
        '<a href="/accept">Accept all cookies</a></div></body></html>'
    )
    assert paywall_reason(parse_page(html), "Home") is None
    assert "We use cookies" in visible_text(parse_page(html))
    r = rejection("overlay.html", html)
    assert r.reason is RejectReason.PAYWALLED
    assert r.detail.startswith("overlay.html: ") and "We use cookies" in r.detail


def test_recall_mode_when_precision_returns_a_reprint_notice():
    import trafilatura

    html = page("precision_loses_article.html")
    precise = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True)
    assert "Crews on the island ferry service" not in precise.text  # the premise: precision loses the article
    doc = document("precision_loses_article.html")
    assert doc.field_sources["text"] == "recall"
    assert doc.text.startswith("Crews on the island ferry service voted")
    assert "Island shopkeepers said" in doc.text
    assert doc.title == "Ferry workers vote to strike" and doc.field_sources["title"] == "trafilatura"


def test_feed_item_fills_missing_title_date_and_authors():
    listed = ListedItem(
        url="https://rail.example/news/late-trains",
        title="Late trains to run at weekends",
        published="2024-05-02T08:00:00Z",
        authors=("By Ines Carvalho",),
        source="Valley Rail News",
    )
    doc = document("feed_fills_gaps.html", url="https://rail.example/news/late-trains?utm_source=feed", listed=listed)
    assert doc.title == "Late trains to run at weekends"
    assert doc.published == "2024-05-02"
    assert doc.authors == ["Ines Carvalho"]
    assert doc.url == "https://rail.example/news/late-trains?utm_source=feed"
    assert doc.source == "Valley Rail News"  # a host name is no outlet: the configured source's name is
    assert doc.field_sources == {"title": "feed", "published": "feed", "authors": "feed", "url": "fetch", "text": "precision", "source": "input.sources"}


def test_broken_jsonld_is_ignored():
    html = page("opengraph_only.html").replace(
        "</head>",
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": </script><script type="application/ld+json">[1, "x", null]</script></head>',
    )
    assert jsonld_meta(parse_page(html)).title is None
    assert document("opengraph_only.html").title == html_document(html, "x").title


# --------------------------------------------------------------------------- clean_authors


@pytest.mark.parametrize(
    ("names", "site", "expected"),
    [
        (["Jane Doe, Reuters"], None, (["Jane Doe"], "Reuters")),
        (["By The Associated Press"], None, ([], "AP")),
        (["Jane Doe (AFP)", "Agence France-Presse"], None, (["Jane Doe"], "AFP")),
        (["Jane Doe, AP Business Writer"], None, (["Jane Doe"], "AP")),
        (["dpa"], None, ([], "dpa")),
        (["Jane Doe & John Roe; Ana Lima and Li Wei"], None, (["Jane Doe", "John Roe", "Ana Lima", "Li Wei"], None)),
        (["Analysis by Kevin Marsh, CNN"], "CNN", (["Kevin Marsh"], None)),
        (["Opinion by Kevin Marsh"], None, (["Kevin Marsh"], None)),
        (["Reporting by Ana Lima; Editing by Tom Hale"], None, (["Ana Lima"], None)),
        (["Jane Doe is a reporter at the Gazette"], None, (["Jane Doe"], None)),
        (["Jane Doe, Staff Writer", "Senior Correspondent", "Contributor", "Editor"], None, (["Jane Doe"], None)),
        (["Jane Doe, White House Correspondent"], None, (["Jane Doe"], None)),
        (["Updated 10:42 AM ET, Tue March 5, 2024", "Tuesday", "2024-03-05"], None, ([], None)),
        (["Theresa May", "April Ryan"], None, (["Theresa May", "April Ryan"], None)),  # month names can be names
        (["No Author", "Admin", "Staff", "Unknown", "Anonymous", "Editorial Team", "By"], None, ([], None)),
        (["The Harbour Gazette", "harbour-gazette", "Harbour Gazette Staff"], "Harbour Gazette", ([], None)),
        (["https://example.com/jane", "jane@example.com", "@janedoe"], None, ([], None)),
        (["Jane Doe", "jane doe", "JANE DOE", "By Jane Doe"], None, (["Jane Doe"], None)),
        (["Doe, Jane"], None, (["Jane Doe"], None)),
        (
            ["Jean de la Fontaine", "Marie-Claire O'Neill", "María José García"],
            None,
            (["Jean de la Fontaine", "Marie-Claire O'Neill", "María José García"], None),
        ),
        (["By Jane Doe | Harbour Gazette"], ["Harbour Gazette", "Gazette Online"], (["Jane Doe"], None)),
        (["Michael Bloomberg"], None, (["Michael Bloomberg"], None)),
        (["Martin Luther King, Jr.", "Jane Doe, PhD", "John Roe MBA", "Jack Ma"], None, (["Martin Luther King Jr", "Jane Doe", "John Roe", "Jack Ma"], None)),
        (["Bloomberg News"], None, ([], "Bloomberg")),
    ],
)
def test_clean_authors(names, site, expected):
    assert clean_authors(names, site) == expected


# --------------------------------------------------------------------------- clean_title


@pytest.mark.parametrize(
    ("title", "sites", "expected"),
    [
        ("Storm hits coast | Harbour Gazette Politics", ["Harbour Gazette"], "Storm hits coast"),
        ("Storm hits coast | CNN Politics", ["CNN"], "Storm hits coast"),
        ("Storm hits coast | The Harbour Gazette", ["Harbour Gazette"], "Storm hits coast"),
        ("Storm hits coast — Weather — Harbour Gazette", ["Harbour Gazette"], "Storm hits coast"),
        ("Storm hits coast - harbourgazette.example", ["harbourgazette"], "Storm hits coast"),
        ("CNN: Storm hits coast", ["CNN"], "Storm hits coast"),
        ("Harbour Gazette » Storm hits coast", ["Harbour Gazette"], "Storm hits coast"),
        ("Harbour Gazette", ["Harbour Gazette"], "Harbour Gazette"),  # never empty
        ("Politics | CNN", ["CNN"], "Politics | CNN"),  # one word left: a section page, not a headline
        ("Breaking news: CNN chief resigns", ["CNN"], "Breaking news: CNN chief resigns"),  # "chief resigns" is no section
        ("Storm hits coast | Harbour Gazette", [], "Storm hits coast | Harbour Gazette"),  # no known outlet: nothing removed
        ("  Covid-19   cases rise ", ["CNN"], "Covid-19 cases rise"),
        ("   ", ["CNN"], None),
        (None, ["CNN"], None),
    ],
)
def test_clean_title(title, sites, expected):
    assert clean_title(title, sites) == expected


def test_host_label():
    assert host_label("https://edition.cnn.com/2024/x") == "cnn"
    assert host_label("https://www.gazette.co.uk/news") == "gazette"
    assert host_label("http://127.0.0.1/x") is None and host_label(None) is None

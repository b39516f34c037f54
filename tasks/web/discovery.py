"""Where a site lists its articles: the feeds a page links to (`feed_links`), the page's own
canonical URL (`canonical_link`), and whether a configured URL is a site's front page
(`looks_like_site_root`). Pure functions of text already fetched; every URL given back is
absolute and canonical. (The sitemaps a robots.txt names come from the client's robots rules.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tasks.web.responses import media_type
from tasks.web.urls import canonical_url

# Media types a <link rel="alternate"> uses for feeds (RSS, Atom, JSON Feed).
_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"})


def _document(html: str) -> Any:
    """The parsed page, or None when the text is no HTML at all. lxml.html repairs broken
    markup (unclosed tags, a <link> in the body) the way browsers do."""
    if not html or not html.strip():
        return None
    from lxml import etree
    from lxml import html as lxml_html

    try:
        # Bytes, so that an <?xml encoding=...?> declaration in the text does not make lxml refuse a str.
        document = lxml_html.document_fromstring(html.encode("utf-8", errors="replace"), parser=lxml_html.HTMLParser(encoding="utf-8", no_network=True))
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return document


def _links(html: str, base_url: str) -> Iterator[tuple[Any, str]]:
    """Every <link> element of the page in page order, with the base its href is relative to
    (the page's <base href> when it has one, as browsers resolve them)."""
    document = _document(html)
    if document is None:
        return
    base = base_url
    declared = next((b.get("href") for b in document.iter("base") if (b.get("href") or "").strip()), None)
    if declared:
        base = canonical_url(declared, base=base_url) or base_url
    for link in document.iter("link"):
        yield link, base


def _rels(link: Any) -> set[str]:
    return {rel.lower() for rel in (link.get("rel") or "").split()}


def feed_links(html: str, base_url: str) -> list[str]:
    """The feeds the page announces (<link rel="alternate"> of an RSS, Atom or JSON Feed
    type), absolute and canonical, in page order, each once."""
    found: list[str] = []
    for link, base in _links(html, base_url):
        media = media_type(link.get("type"))
        if "alternate" not in _rels(link) or media not in _FEED_TYPES:
            continue
        url = canonical_url(link.get("href") or "", base=base)
        if url is not None and url not in found:
            found.append(url)
    return found


def canonical_link(html: str, base_url: str) -> str | None:
    """The page's <link rel="canonical"> (the first), absolute and canonical; None when the
    page names none or names something that is no http(s) URL."""
    for link, base in _links(html, base_url):
        if "canonical" in _rels(link) and (link.get("href") or "").strip():
            return canonical_url(link.get("href"), base=base)
    return None


def looks_like_site_root(url: str) -> bool:
    """A site's front page: no path beyond "/" and no query (where feeds are announced)."""
    try:
        parts = urlsplit(url.strip())
    except (ValueError, AttributeError):
        return False
    return bool(parts.netloc) and parts.path in ("", "/") and not parts.query

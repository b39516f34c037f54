"""An HTML page to a document: `html_document` extracts the article body and its
metadata, or says in a rejection why the page holds no article. Used for .html files,
fetched pages and the HTML responses of WARC files alike.

Body: trafilatura in precision mode. Its words are counted leaving out lines that are a
reprint notice, a photo caption or credit, or a copyright line (what precision mode returns
when it loses the article). Under 100 such words, recall mode is tried too, and its text is
taken when it has at least 20 such words and at least twice as many as precision's; recall
mode alone turns a bare page's footer into "text", hence the floor. `field_sources["text"]`
says which mode ("precision" / "recall") gave the body.

Metadata: each field from the first source that has it, after cleaning
(tasks/stages/ingest/metadata.py), recorded in `field_sources`:
- title: JSON-LD headline > og:title > trafilatura > feed item; the outlet's name is taken
  off, and a title that is only the outlet's name is skipped;
- authors: JSON-LD > <meta name=author|byl> ("meta") > article:author ("opengraph") >
  trafilatura > feed item; the first source with a person after `clean_authors` wins. The
  wire credit is the first news agency any of them names;
- published: JSON-LD datePublished > article:published_time > trafilatura > feed item, as
  a day (YYYY-MM-DD): page stamps mix local times and zones, and a day is what the
  pipeline uses;
- source: JSON-LD publisher > og:site_name > trafilatura sitename unless that is a mere
  host name (a fetched page without one gets its configured source's name in fetch.py);
- url: canonical link ("meta") > og:url > JSON-LD > the fetched URL ("fetch") > trafilatura
  > feed item; a site's home page is never taken for the article's address.

Rejections: DTD entity declarations (PARSE_ERROR), a paywall or consent page (PAYWALLED,
see `paywall_reason`; when the body has under 20 words, the whole page's visible text is
searched for the prompt too, as extractors drop consent overlays), no article body even in
recall mode (NOT_TEXT). A short body is kept otherwise: cleaning's min_words judges it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tasks.records import RawDocument, RejectReason
from tasks.stages.ingest.common import Item, _reject
from tasks.stages.ingest.fields import normalise_date
from tasks.stages.ingest.metadata import (
    PageMeta,
    clean_authors,
    clean_title,
    host_label,
    is_site_name,
    jsonld_meta,
    meta_tags,
    opengraph_meta,
    parse_page,
    paywall_reason,
    trafilatura_meta,
    visible_text,
)
from tasks.web.items import ListedItem

_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)
_RECALL_BELOW_WORDS = 100  # precision's body under this many words gets a second look in recall mode
# What precision mode returns when it loses the article: a reprint notice, a photo caption or credit.
_NOTICE = re.compile(
    r"(?:first|originally) (?:appeared|published)|republished|reprinted|with permission|creative commons"
    r"|^(?:photo|image|picture|video|caption|credit)s?\s*:|photo:|getty images|ap photo|shutterstock|all rights reserved|copyright|©",
    re.IGNORECASE,
)


_MIN_RECALL_WORDS = 20  # recall's text must hold at least this much besides notices to replace precision's


def _article_words(text: str) -> int:
    """Words of `text` outside notice, caption and copyright lines."""
    return sum(len(line.split()) for line in text.splitlines() if not _NOTICE.search(line))


def _extract(html: str, url: str | None, mode: str) -> Any:
    import trafilatura  # heavy import, paid only by runs that read HTML

    return trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=mode == "precision",
        favor_recall=mode == "recall",
    )


def _body(html: str, url: str | None) -> tuple[Any, str, str]:
    """(trafilatura's document, body text, mode) by the precision-then-recall rule above."""
    doc = _extract(html, url, "precision")
    text = (getattr(doc, "text", None) or "").strip()
    words = _article_words(text)
    if words >= _RECALL_BELOW_WORDS:
        return doc, text, "precision"
    recall_doc = _extract(html, url, "recall")
    recall_text = (getattr(recall_doc, "text", None) or "").strip()
    recall_words = _article_words(recall_text)
    if recall_words >= max(_MIN_RECALL_WORDS, 2 * words):
        return recall_doc, recall_text, "recall"
    return doc if doc is not None else recall_doc, text, "precision"


def _day(value: Any) -> str | None:
    iso = normalise_date(value)
    return iso[:10] if iso and re.match(r"\d{4}-\d{2}-\d{2}", iso) else None


def _article_url(value: str | None) -> str | None:
    """An absolute http(s) URL that is not a site's home page (og:url on some sites is)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path in ("", "/"):
        return None
    return value


def _same_words(a: str, b: str) -> bool:
    """Equal but for case, spaces and punctuation."""
    return re.sub(r"[\W_]+", "", a.casefold()) == re.sub(r"[\W_]+", "", b.casefold())


def _drop_headline(text: str, titles: list[str]) -> str:
    """trafilatura keeps the page's <h1> as the body's first line; like the .txt reader, hand
    the headline over as `title` only, so it is not summarised as a sentence."""
    first, _, rest = text.partition("\n")
    if rest.strip() and any(_same_words(first, t) for t in titles if t):
        return rest.lstrip("\n")
    return text


def html_document(html: str, origin: str, url: str | None = None, listed: ListedItem | None = None) -> Item:
    """The article in `html` as a RawDocument, or the rejection saying why there is none.
    `url`: where the page was fetched from; `listed`: what a feed or sitemap said of it."""
    # Entity declarations are how "billion laughs" and external-entity attacks start;
    # no news page needs one, so refuse before any parser sees the document.
    if _ENTITY_DECL.search(html):
        return _reject(origin, RejectReason.PARSE_ERROR, "DTD entity declarations are not allowed")
    page = parse_page(html)
    doc, text, mode = _body(html, url)
    where = url or (listed.url if listed else None) or origin
    if _article_words(text) < _MIN_RECALL_WORDS:
        # next to no body: the extractor drops consent overlays as boilerplate, so look for one on the whole page
        if reason := paywall_reason(page, visible_text(page)):
            return _reject(origin, RejectReason.PAYWALLED, f"{where}: {reason}")
    if not text:
        return _reject(origin, RejectReason.NOT_TEXT, "no article body found")
    if reason := paywall_reason(page, text):
        return _reject(origin, RejectReason.PAYWALLED, f"{where}: {reason}")

    feed = PageMeta(title=listed.title, authors=tuple(listed.authors), published=listed.published, url=listed.url) if listed else PageMeta()
    metas = {"jsonld": jsonld_meta(page), "opengraph": opengraph_meta(page), "meta": meta_tags(page), "trafilatura": trafilatura_meta(doc), "feed": feed}
    sources: dict[str, str] = {"text": mode}

    urls = [("meta", metas["meta"].url), ("opengraph", metas["opengraph"].url), ("jsonld", metas["jsonld"].url)]
    urls += [("fetch", url), ("trafilatura", metas["trafilatura"].url), ("feed", feed.url)]
    page_url = _pick(sources, "url", ((name, _article_url(value)) for name, value in urls))

    # every name the page, the feed or the address give the outlet: to recognise it in titles and bylines
    site_names = [n for m in metas.values() for n in m.site_names]
    site_names += [n for n in (listed.source if listed else None, host_label(page_url or url)) if n]

    raw_title = None
    title = None
    for name in ("jsonld", "opengraph", "trafilatura", "feed"):
        cleaned = clean_title(metas[name].title, site_names)
        if cleaned and not is_site_name(cleaned, site_names):
            raw_title, title, sources["title"] = metas[name].title, cleaned, name
            break

    authors: list[str] = []
    wire = None
    for name in ("jsonld", "meta", "opengraph", "trafilatura", "feed"):
        if not metas[name].authors:
            continue
        people, credit = clean_authors(metas[name].authors, site_names)
        if people and not authors:
            authors, sources["authors"] = people, name
        if credit and not wire:
            wire, sources["wire"] = credit, name

    published = _pick(sources, "published", ((n, _day(metas[n].published)) for n in ("jsonld", "opengraph", "trafilatura", "feed")))
    outlets = [(n, metas[n].site_name) for n in ("jsonld", "opengraph", "trafilatura")] + [("input.sources", listed.source if listed else None)]
    source = _pick(sources, "source", outlets)

    return RawDocument(
        origin=origin,
        text=_drop_headline(text, [title or "", raw_title or ""]),
        title=title,
        authors=authors,
        published=published,
        source=source,
        url=page_url,
        wire=wire,
        field_sources=sources,
    )


def _pick(sources: dict[str, str], field: str, candidates: Any) -> str | None:
    """The first non-empty candidate value, its source's name recorded under `field`."""
    for name, value in candidates:
        if value:
            sources[field] = name
            return value
    return None

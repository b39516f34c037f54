"""An HTML page to a document: `html_document` extracts the article body and its
metadata, or says in a rejection why the page holds no article. Used for .html files,
fetched pages and the HTML responses of WARC files alike."""

from __future__ import annotations

import re

from tasks.records import RawDocument, RejectReason
from tasks.stages.ingest.common import Item, _reject
from tasks.stages.ingest.fields import _opt_str, normalise_date, split_authors
from tasks.web.items import ListedItem

_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)


def html_document(html: str, origin: str, url: str | None = None, listed: ListedItem | None = None) -> Item:
    """The article in `html` as a RawDocument, or the rejection saying why there is none.
    `url`: where the page was fetched from; `listed`: what a feed or sitemap said of it."""
    import trafilatura  # heavy import, paid only by runs that read HTML

    # Entity declarations are how "billion laughs" and external-entity attacks start;
    # no news page needs one, so refuse before any parser sees the document.
    if _ENTITY_DECL.search(html):
        return _reject(origin, RejectReason.PARSE_ERROR, "DTD entity declarations are not allowed")
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True)
    text = getattr(doc, "text", None)
    if not text or not text.strip():
        return _reject(origin, RejectReason.NOT_TEXT, "no article body found")
    title = _opt_str(doc.title) or (listed.title if listed else None)
    # trafilatura keeps the page's <h1> as the body's first line; like the .txt reader,
    # hand the headline over as `title` only, so it is not summarised as a sentence.
    first, _, rest = text.partition("\n")
    if title and rest.strip() and first.strip().casefold() == title.casefold():
        text = rest
    return RawDocument(
        origin=origin,
        text=text,
        title=title,
        authors=split_authors(doc.author) or (list(listed.authors) if listed else []),
        published=normalise_date(doc.date) or (listed.published if listed else None),
        source=_opt_str(doc.sitename),
        url=_opt_str(doc.url) or url,
    )

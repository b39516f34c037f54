"""Listings read from fetched bytes: `read_listing` tells a feed (RSS 0.9x/1.0/2.0, Atom,
JSON Feed), a sitemap (plain, Google News, plain-text), a sitemap index, an HTML page
and anything else apart, gzipped or not, and gives back a `Listing` of the article URLs
it names. Nothing here fetches: feedparser is handed a stream, lxml a hardened parser.

A body that cannot be read at all raises `ListingError`; an entry that cannot be taken
(no link, a link that is no http(s) URL) is listed in `Listing.rejected` and the rest kept."""

from __future__ import annotations

import codecs
import html
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tasks.records import RejectReason
from tasks.stages.ingest.fields import normalise_date, split_authors
from tasks.web.items import ListedItem
from tasks.web.responses import HTML_TYPES, media_type
from tasks.web.urls import canonical_url

ListingKind = Literal["feed", "sitemap", "sitemap_index", "html", "other"]


@dataclass
class Listing:
    """What one fetched listing names. `sitemaps` are the child sitemaps of an index;
    `rejected` holds (origin, reason, detail) of entries not taken; `warnings` notes a body
    that was only partly well-formed (its readable entries are kept)."""

    kind: ListingKind
    items: list[ListedItem] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    rejected: list[tuple[str, RejectReason, str]] = field(default_factory=list)
    title: str | None = None
    warnings: list[str] = field(default_factory=list)


class ListingError(Exception):
    """A body that cannot be read as a listing at all: why (`reason`) and what (`detail`)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- bytes: size, gzip, a text view for sniffing -------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(data: bytes, max_bytes: int, url: str) -> bytes:
    """Inflate a gzip body (every member), never past `max_bytes`: a few KiB of gzip can
    claim gigabytes, so output is pulled in bounded steps, not by gzip.decompress."""
    out = bytearray()
    rest = data
    while rest[:2] == _GZIP_MAGIC:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while not inflater.eof:
                chunk = inflater.decompress(pending, max_bytes + 1 - len(out))
                out += chunk
                if len(out) > max_bytes:
                    raise ListingError(RejectReason.TOO_LARGE, f"{url}: gzip body inflates past {max_bytes} bytes")
                pending = inflater.unconsumed_tail
                if not pending and not chunk:
                    break  # input used up and nothing more came out: the stream ends early
        except zlib.error as error:
            raise ListingError(RejectReason.PARSE_ERROR, f"{url}: broken gzip body ({error})") from error
        if not inflater.eof:
            raise ListingError(RejectReason.PARSE_ERROR, f"{url}: gzip body ends early")
        rest = inflater.unused_data  # a further member, or padding after the last
    return bytes(out)


def _sniff_text(data: bytes) -> str:
    """The body as text for looking at, not for parsing: UTF-16/32 decoded (by BOM or by the
    zero bytes around '<'), anything else as Latin-1, which keeps ASCII markup where it is."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
        (codecs.BOM_UTF8, "utf-8-sig"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    head = data[:4]
    if head[:2] == b"<\x00" or head[:2] == b"\x00<":
        return data.decode("utf-16-le" if head[0] else "utf-16-be", errors="replace")
    return data.decode("latin-1")


# --- what the body is ------------------------------------------------------------------------

_LEADING_SPACE = re.compile(r"\s*")
_PROLOG_PART = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)
_ROOT = re.compile(r"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_START_TAG = re.compile(r"<[A-Za-z_:]")
_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)
_CDATA = re.compile(r"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_FEED_ROOTS = {"rss", "RDF", "feed"}
_HTML_ROOTS = {"html", "head", "body"}
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json")
_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/", re.IGNORECASE)


def _root_name(text: str) -> str | None:
    """The local name of the first element after the XML prolog (declaration, comments,
    doctype), or None when the text does not start like markup."""
    pos = 0
    while (part := _PROLOG_PART.match(text, pos)) and part.end() > pos:
        pos = part.end()
    root = _ROOT.match(text, pos)
    if root is None and pos == 0:
        start = text.find("<?xml", 0, 2048)  # junk (a server's warning) before the declaration
        if start > 0:
            return _root_name(text[start:])
    return root.group(1) if root else None


def _refuse_entities(text: str, url: str) -> None:
    """Entity declarations are how XML bombs (billion laughs) and XXE start: no parser sees
    a body that declares any (outside CDATA, where the words are only text)."""
    if not _ENTITY_DECL.search(text):
        return
    prolog = text[: m.start()] if (m := _START_TAG.search(text)) else text
    if _ENTITY_DECL.search(prolog) or _ENTITY_DECL.search(_CDATA.sub("", text)):
        raise ListingError(RejectReason.PARSE_ERROR, f"{url}: XML declares entities (<!ENTITY), refused unparsed")


# --- the public entry point ------------------------------------------------------------------


def read_listing(body: bytes, url: str, content_type: str = "", max_bytes: int = 50_000_000) -> Listing:
    """The listing `body` (fetched from `url`) is, with the article URLs it names, made
    canonical and joined on `url`, in listing order and each once. Raises ListingError when
    the body is too large (TOO_LARGE) or a feed or sitemap that cannot be read (PARSE_ERROR)."""
    if len(body) > max_bytes:
        raise ListingError(RejectReason.TOO_LARGE, f"{url}: body of {len(body)} bytes is over {max_bytes}")
    data = _gunzip(body, max_bytes, url) if body[:2] == _GZIP_MAGIC else body
    text = _sniff_text(data)
    media = media_type(content_type)
    start = _LEADING_SPACE.match(text).end()  # an offset, not a stripped copy of a body that may be large
    if text.startswith(("{", "["), start):
        return _read_json(data, text[start : start + 4096], url, media)
    root = _root_name(text)
    if root in _FEED_ROOTS or root in ("urlset", "sitemapindex"):
        _refuse_entities(text, url)
        if root == "urlset":
            return _read_sitemap(data, url, index=False)
        if root == "sitemapindex":
            return _read_sitemap(data, url, index=True)
        return _read_feed(data, url, content_type)
    if root in _HTML_ROOTS or (root is not None and media in HTML_TYPES) or text[start : start + 14].lower() == "<!doctype html":
        return Listing(kind="html")
    if root is None and media in _FEED_TYPES:
        raise ListingError(RejectReason.PARSE_ERROR, f"{url}: served as {media} but holds no feed markup")
    if root is None and (listing := _read_text_sitemap(text, url)) is not None:
        return listing
    return Listing(kind="other")


# --- feeds -----------------------------------------------------------------------------------

_EMAIL_NAME = re.compile(r"^\s*\S+@\S+\s*\((?P<name>[^()]+)\)\s*$")  # RSS <author>: "desk@x.org (Jane Doe)"
_EMAIL = re.compile(r"^\S+@\S+$")
_TAG = re.compile(r"<[^>]*>")


def _read_feed(data: bytes, url: str, content_type: str) -> Listing:
    import feedparser  # a second or so to import; only feeds need it

    # A stream, never a URL or path: feedparser fetches URLs and opens files it is handed as text.
    # A non-XML content type (text/html on a feed) only makes feedparser complain; it reads the bytes either way.
    headers = {"content-location": url, "content-type": content_type if "xml" in content_type.lower() else "application/xml"}
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    entries = parsed.get("entries") or []
    listing = Listing(kind="feed", title=_feed_title(parsed.get("feed", {})))
    error = parsed.get("bozo_exception")
    if parsed.get("bozo") and not _is_header_complaint(error):
        problem = f"{url}: feed is not well-formed ({error or 'no detail'})"
        if not entries:
            raise ListingError(RejectReason.PARSE_ERROR, f"{problem}; no entries read")
        listing.warnings.append(f"{problem}; kept the {len(entries)} entries read")
    feed_authors = _names(parsed.get("feed", {})) if str(parsed.get("version", "")).startswith("atom") else []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        published = _feed_date(entry, "published") or _feed_date(entry, "updated")
        item = {
            "guid": _opt_text(entry.get("id")),
            "title": _feed_title(entry),
            "published": published,
            "authors": tuple(_names(entry) or feed_authors),  # an Atom entry without authors has the feed's
        }
        _take(listing, seen, url, number, entry.get("link"), item)
    return listing


def _is_header_complaint(error: Any) -> bool:
    """feedparser's notes on the declared encoding or media type: the entries are fine."""
    return type(error).__name__ in {"CharacterEncodingOverride", "NonXMLContentType", "CharacterEncodingUnknown"}


def _feed_title(entry: Any) -> str | None:
    title = entry.get("title")
    detail = entry.get("title_detail") or {}
    if isinstance(title, str) and "html" in str(detail.get("type", "")):
        title = html.unescape(_TAG.sub("", title))  # an HTML title: its text, not its markup
    return _opt_text(title)


def _feed_date(entry: Any, name: str) -> str | None:
    """The entry's date as ISO 8601: its own text when that parses (keeping the offset), else
    feedparser's UTC reading of it (which knows more date formats)."""
    value = normalise_date(entry.get(name))
    if value:
        return value
    parsed = entry.get(f"{name}_parsed")
    if parsed:
        try:
            return datetime(*parsed[:6], tzinfo=UTC).isoformat()
        except (TypeError, ValueError):
            return None
    return None


def _names(holder: Any) -> list[str]:
    """Author names of a feedparser entry (or feed): names, not e-mail addresses, each split
    the way the rest of the pipeline splits "A, B and C"."""
    raw = holder.get("author")
    if isinstance(raw, str) and (match := _EMAIL_NAME.match(raw)):
        candidates = [match.group("name")]  # feedparser misreads "mail (Name)"; take the name ourselves
    else:
        candidates = [a.get("name") for a in holder.get("authors") or [] if isinstance(a, dict)]
        if not any(candidates) and isinstance(raw, str):
            candidates = [raw]
    names: list[str] = []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and not _EMAIL.match(candidate.strip()):
            names.extend(split_authors(candidate))
    return list(dict.fromkeys(names))


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _take(listing: Listing, seen: set[str], url: str, number: int, link: Any, fields: dict[str, Any], link_name: str = "link") -> None:
    """Add one entry to the listing, or say why not; a URL already listed is dropped."""
    if not isinstance(link, str) or not link.strip():
        listing.rejected.append((url, RejectReason.MISSING_FIELD, f"{url}: entry {number} {_describe(fields)} has no {link_name}"))
        return
    canonical = canonical_url(link, base=url)
    if canonical is None:
        listing.rejected.append((url, RejectReason.BLOCKED, f"{url}: entry {number} {_describe(fields)} links to {link.strip()[:200]!r}, no http(s) URL"))
        return
    if canonical in seen:
        return
    seen.add(canonical)
    listing.items.append(ListedItem(url=canonical, **fields))


def _describe(fields: dict[str, Any]) -> str:
    title = fields.get("title")
    guid = fields.get("guid")
    parts = [f"title {title[:120]!r}" if title else "", f"guid {guid[:200]!r}" if guid else ""]
    return "(" + (", ".join(p for p in parts if p) or "no title or guid") + ")"


# --- JSON Feed -------------------------------------------------------------------------------


def _read_json(data: bytes, head: str, url: str, media: str) -> Listing:
    """A JSON Feed (version 1 or 1.1), read by hand: feedparser 6 does not read JSON."""
    claims_feed = media == "application/feed+json" or "jsonfeed.org/version" in head
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        if claims_feed:
            raise ListingError(RejectReason.PARSE_ERROR, f"{url}: JSON Feed that is no valid JSON ({error})") from error
        return Listing(kind="other")
    if not (isinstance(document, dict) and isinstance(document.get("version"), str) and _JSON_FEED_VERSION.match(document["version"])):
        return Listing(kind="other")
    entries = document.get("items")
    if not isinstance(entries, list):
        raise ListingError(RejectReason.PARSE_ERROR, f"{url}: JSON Feed without an items list")
    listing = Listing(kind="feed", title=_opt_text(document.get("title")) if isinstance(document.get("title"), str) else None)
    feed_authors = _json_authors(document)
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            listing.rejected.append((url, RejectReason.PARSE_ERROR, f"{url}: item {number} is a {type(entry).__name__}, not an object"))
            continue
        guid = entry.get("id")
        fields = {
            "guid": _opt_text(guid) if isinstance(guid, (str, int)) else None,
            "title": _opt_text(entry["title"]) if isinstance(entry.get("title"), str) else None,
            "published": normalise_date(entry.get("date_published")) or normalise_date(entry.get("date_modified")),
            "authors": tuple(_json_authors(entry) or feed_authors),  # the spec: an item without authors has the feed's
        }
        _take(listing, seen, url, number, entry.get("url") or entry.get("external_url"), fields)
    return listing


def _json_authors(holder: dict) -> list[str]:
    """`authors` (1.1) or `author` (1), objects with a name."""
    people = holder.get("authors")
    if not isinstance(people, list):
        people = [holder.get("author")]
    names: list[str] = []
    for person in people:
        if isinstance(person, dict) and isinstance(person.get("name"), str):
            names.extend(split_authors(person["name"]))
    return list(dict.fromkeys(names))


# --- sitemaps --------------------------------------------------------------------------------


def _xml_parser(recover: bool = False) -> Any:
    from lxml import etree

    # No entities, no DTD, no network, no huge nodes: a sitemap is data, never instructions.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=recover)


def _local(element: Any) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Any) -> dict[str, Any]:
    """An element's children by local name (the first of each): one pass, namespaces ignored,
    since sitemaps in the wild get their namespaces wrong."""
    found: dict[str, Any] = {}
    for child in element:
        found.setdefault(_local(child), child)
    return found


def _text_of(children: dict[str, Any], name: str) -> str | None:
    found = children.get(name)
    return _opt_text(found.text) if found is not None else None


def _read_sitemap(data: bytes, url: str, index: bool) -> Listing:
    from lxml import etree

    listing = Listing(kind="sitemap_index" if index else "sitemap")
    problem = None
    try:
        root = etree.fromstring(data, parser=_xml_parser())
    except etree.XMLSyntaxError as error:
        # As with feeds: a sitemap cut short or with one bad byte still names the URLs before it.
        problem = f"{url}: sitemap is not well-formed XML ({error})"
        try:
            root = etree.fromstring(data, parser=_xml_parser(recover=True))
        except etree.XMLSyntaxError:
            root = None
        if root is None:
            raise ListingError(RejectReason.PARSE_ERROR, problem) from error
    seen: set[str] = set()
    wanted = "sitemap" if index else "url"
    for number, element in enumerate((e for e in root if _local(e) == wanted), start=1):
        children = _children(element)
        loc = _text_of(children, "loc")
        if index:
            _take_sitemap(listing, seen, url, number, loc)
            continue
        news_date = news_title = None
        if (news := children.get("news")) is not None:
            news_fields = _children(news)
            news_date, news_title = _text_of(news_fields, "publication_date"), _text_of(news_fields, "title")
            if listing.title is None and (publication := news_fields.get("publication")) is not None:
                listing.title = _text_of(_children(publication), "name")
        fields = {"guid": None, "title": news_title, "published": normalise_date(news_date) or normalise_date(_text_of(children, "lastmod"))}
        _take(listing, seen, url, number, loc, fields, link_name="<loc>")
    if problem is not None:
        if not listing.items and not listing.sitemaps:
            raise ListingError(RejectReason.PARSE_ERROR, f"{problem}; no entries read")
        listing.warnings.append(f"{problem}; kept the entries read")
    return listing


def _take_sitemap(listing: Listing, seen: set[str], url: str, number: int, loc: str | None) -> None:
    if not loc:
        listing.rejected.append((url, RejectReason.MISSING_FIELD, f"{url}: sitemap entry {number} has no <loc>"))
        return
    canonical = canonical_url(loc, base=url)
    if canonical is None:
        listing.rejected.append((url, RejectReason.BLOCKED, f"{url}: sitemap entry {number} points to {loc[:200]!r}, no http(s) URL"))
    elif canonical not in seen:
        seen.add(canonical)
        listing.sitemaps.append(canonical)


_URL_LINE = re.compile(r"^https?://\S+$", re.IGNORECASE)


def _read_text_sitemap(text: str, url: str) -> Listing | None:
    """A plain-text sitemap (one absolute URL a line, as search engines accept), or None
    when any line is something else."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not all(_URL_LINE.match(line) for line in lines):
        return None
    listing = Listing(kind="sitemap")
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        _take(listing, seen, url, number, line, {})
    return listing

"""Page metadata for `html_document`: readers of what a news page says of itself, and the
cleaning that makes it trustworthy. Pure functions over a parsed page (lxml.html) and strings.

- Readers, each giving a `PageMeta`: `jsonld_meta` (schema.org JSON-LD: objects, lists,
  `@graph`, `@id` references), `opengraph_meta` (og:*, article:*), `meta_tags` (<meta
  name="author">, "byl", canonical link) and `trafilatura_meta` (what the extractor found).
  Broken or odd markup gives an empty field, never an exception.
- `clean_authors`: people only; role words, dates, placeholders, URLs and the outlet's own
  name dropped, a news agency's credit moved out to the `wire`.
- `clean_title`: the outlet's name taken off a headline ("Storm hits coast | CNN Politics").
- `paywall_reason`: why a page is a paywall or consent page instead of the article, if it is.
"""

from __future__ import annotations

import copy
import html as html_lib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html

# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class PageMeta:
    """What one source of metadata says of a page; None / empty where it says nothing."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None  # as written on the page; normalised by the caller
    site_name: str | None = None  # the outlet (publisher)
    site_names: tuple[str, ...] = ()  # every name the page uses for its outlet (publisher, site, organisation)
    url: str | None = None
    free: bool | None = None  # schema.org isAccessibleForFree of the article


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def parse_page(html: str) -> lxml_html.HtmlElement | None:
    """The page as an lxml tree, or None when lxml cannot make one. No network, no DTD:
    lxml's HTML parser never loads external entities."""
    parser = lxml_html.HTMLParser(remove_comments=True, no_network=True)
    try:
        # lxml refuses str input that declares an encoding; the text is decoded already
        return lxml_html.document_fromstring(_XML_DECL.sub("", html, count=1), parser=parser)
    except (ValueError, etree.ParserError, etree.XMLSyntaxError):
        return None


def _text(value: Any) -> str | None:
    """A non-empty, whitespace-collapsed string with HTML entities decoded, else None."""
    if not isinstance(value, str):
        return None
    text = " ".join(html_lib.unescape(value).split())
    return text or None


# --------------------------------------------------------------------------- JSON-LD

_ARTICLE_TYPES = frozenset(
    "article newsarticle reportagenewsarticle analysisnewsarticle opinionnewsarticle backgroundnewsarticle reviewnewsarticle "
    "askpublicnewsarticle satiricalarticle blogposting liveblogposting report techarticle".split()
)
_OUTLET_TYPES = frozenset("organization newsmediaorganization corporation website".split())
_MAX_NODES = 2000  # a page's JSON-LD is a few dozen objects; more is not worth walking


def _types(node: dict) -> set[str]:
    """'schema:NewsArticle', 'https://schema.org/NewsArticle' or a list of them -> {'newsarticle'}."""
    raw = node.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return {re.split(r"[/:#]", v)[-1].casefold() for v in values if isinstance(v, str)}


def _jsonld_blocks(page: lxml_html.HtmlElement) -> Iterator[Any]:
    for script in page.iter("script"):
        if (script.get("type") or "").strip().casefold() != "application/ld+json":
            continue
        raw = (script.text or "").strip()
        # CMSs wrap the JSON in comment or CDATA markers and end it with ';'
        raw = re.sub(r"^(?:<!--|//\s*<!\[CDATA\[|<!\[CDATA\[)|(?:-->|//\s*\]\]>|\]\]>)$", "", raw).strip().rstrip(";")
        try:
            yield json.loads(raw, strict=False)  # strict=False: raw newlines inside strings are common
        except (ValueError, RecursionError):
            continue  # broken JSON-LD is ignored: other sources still describe the page


def _walk(value: Any, nodes: list[dict], depth: int = 0) -> None:
    """Every JSON object in `value`, depth-first, bounded in depth and count."""
    if depth > 8 or len(nodes) >= _MAX_NODES:
        return
    if isinstance(value, list):
        for item in value:
            _walk(item, nodes, depth + 1)
    elif isinstance(value, dict):
        nodes.append(value)
        for item in value.values():
            if isinstance(item, (list, dict)):
                _walk(item, nodes, depth + 1)


def _free(value: Any) -> bool | None:
    """isAccessibleForFree as written: a bool or the strings 'True'/'False' (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return value.strip().casefold() == "true"
    return None


def _jsonld_people(value: Any, by_id: dict[str, dict]) -> list[str]:
    """author as a string, a Person (or an @id reference to one) or a list of them. An
    Organization counts only when it is a news agency: the outlet itself is no author."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict) and set(item) == {"@id"}:
            item = by_id.get(str(item["@id"]), item)
        if isinstance(item, str):
            name = _text(item)
        elif isinstance(item, dict):
            name = _text(item.get("name"))
            if name and _types(item) & _OUTLET_TYPES and not wire_name(name):
                name = None
        else:
            name = None
        if name:
            out.append(name)
    return out


def _name_of(value: Any, by_id: dict[str, dict]) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict) and "name" not in value and "@id" in value:
        value = by_id.get(str(value["@id"]), value)
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _text(value)


def jsonld_meta(page: lxml_html.HtmlElement | None) -> PageMeta:
    """The first article object in the page's JSON-LD (one with a headline preferred) and
    the outlet names around it. Empty when there is none."""
    if page is None:
        return PageMeta()
    nodes: list[dict] = []
    for block in _jsonld_blocks(page):
        _walk(block, nodes)
    by_id = {str(n["@id"]): n for n in nodes if isinstance(n.get("@id"), str) and len(n) > 1}
    articles = [n for n in nodes if _types(n) & _ARTICLE_TYPES]
    outlets = [name for n in nodes if _types(n) & _OUTLET_TYPES and (name := _text(n.get("name")))]
    if not articles:
        return PageMeta(site_names=tuple(dict.fromkeys(outlets)))
    article = next((a for a in articles if _text(a.get("headline"))), articles[0])
    publisher = _name_of(article.get("publisher"), by_id)
    page_url = article.get("url") or article.get("mainEntityOfPage")
    if isinstance(page_url, dict):
        page_url = page_url.get("@id") or page_url.get("url")
    return PageMeta(
        title=_text(article.get("headline")) or _text(article.get("name")),
        authors=tuple(_jsonld_people(article.get("author") or article.get("creator"), by_id)),
        published=_text(article.get("datePublished")) or _text(article.get("dateCreated")),
        site_name=publisher,
        site_names=tuple(dict.fromkeys([n for n in (publisher, *outlets) if n])),
        url=_http_url(page_url),
        free=_free(article.get("isAccessibleForFree")),
    )


# --------------------------------------------------------------------------- <meta> tags


def _metas(page: lxml_html.HtmlElement, key: str) -> list[str]:
    """Contents of every <meta property|name=key> (sites use either attribute for og:*)."""
    key = key.casefold()
    out = []
    for meta in page.iter("meta"):
        names = ((meta.get("property") or "").strip().casefold(), (meta.get("name") or "").strip().casefold())
        if key in names and (content := _text(meta.get("content"))):
            out.append(content)
    return out


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _http_url(value: Any) -> str | None:
    text = _text(value)
    return text if text and urlsplit(text).scheme in ("http", "https") and urlsplit(text).netloc else None


def opengraph_meta(page: lxml_html.HtmlElement | None) -> PageMeta:
    """og:title, og:site_name, og:url, article:published_time and article:author where
    it is a name (it is often a profile URL)."""
    if page is None:
        return PageMeta()
    site = _first(_metas(page, "og:site_name"))
    return PageMeta(
        title=_first(_metas(page, "og:title")),
        authors=tuple(a for a in _metas(page, "article:author") if not _URLISH.search(a)),
        published=_first(_metas(page, "article:published_time")),
        site_name=site,
        site_names=(site,) if site else (),
        url=_http_url(_first(_metas(page, "og:url"))),
    )


def meta_tags(page: lxml_html.HtmlElement | None) -> PageMeta:
    """<meta name="author"> (each of them), <meta name="byl"> ("By Jane Doe") and the
    canonical link."""
    if page is None:
        return PageMeta()
    authors = [a for key in ("author", "byl", "dc.creator", "parsely-author") for a in _metas(page, key)]
    canonical = next((link.get("href") for link in page.iter("link") if "canonical" in (link.get("rel") or "").casefold().split()), None)
    return PageMeta(authors=tuple(authors), url=_http_url(canonical))


def trafilatura_meta(doc: Any) -> PageMeta:
    """What trafilatura's metadata pass found (its Document, or None)."""
    if doc is None:
        return PageMeta()
    author = _text(getattr(doc, "author", None))
    site = _text(getattr(doc, "sitename", None))
    return PageMeta(
        title=_text(getattr(doc, "title", None)),
        authors=(author,) if author else (),
        published=_text(getattr(doc, "date", None)),
        # with no name on the page trafilatura falls back to the host name: no outlet's name
        site_name=None if site and re.fullmatch(r"[\w-]+(?:\.[\w-]+)+", site) else site,
        site_names=(site,) if site else (),
        url=_http_url(getattr(doc, "url", None)),
    )


def host_label(url: str | None) -> str | None:
    """'https://edition.cnn.com/x' -> 'cnn': the registrable name, to recognise the outlet
    in a title or byline. A rough cut (no public suffix list): 'co.uk'-style pairs handled."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").casefold()
    labels = [label for label in host.split(".") if label]
    if len(labels) < 2 or labels[-1].isdigit():
        return None
    labels.pop()  # the top-level domain
    if len(labels) > 1 and labels[-1] in ("co", "com", "org", "net", "ac", "gov", "news"):
        labels.pop()  # news.example.co.uk
    return labels[-1] or None


# --------------------------------------------------------------------------- authors

_WIRES = {
    "ap": "AP",
    "associatedpress": "AP",
    "apnews": "AP",
    "reuters": "Reuters",
    "thomsonreuters": "Reuters",
    "afp": "AFP",
    "agencefrancepresse": "AFP",
    "dpa": "dpa",
    "deutschepresseagentur": "dpa",
    "pa": "PA Media",
    "pamedia": "PA Media",
    "pawire": "PA Media",
    "pressassociation": "PA Media",
    "bloomberg": "Bloomberg",
    "bloombergnews": "Bloomberg",
    "upi": "UPI",
    "unitedpressinternational": "UPI",
    "xinhua": "Xinhua",
    "xinhuanewsagency": "Xinhua",
    "kyodo": "Kyodo",
    "kyodonews": "Kyodo",
    "yonhap": "Yonhap",
    "yonhapnewsagency": "Yonhap",
    "efe": "EFE",
    "ansa": "ANSA",
    "aap": "AAP",
    "australianassociatedpress": "AAP",
    "canadianpress": "The Canadian Press",
    "pti": "PTI",
    "presstrustofindia": "PTI",
}
_ROLE_NOUNS = frozenset(
    "writer writers reporter reporters correspondent correspondents editor editors columnist columnists contributor contributors "
    "staff journalist journalists producer producers analyst critic photographer intern anchor".split()
)
_ROLE_MODIFIERS = frozenset(
    "senior chief staff political foreign special science business sports sport deputy associate managing executive contributing "
    "investigative national international health tech technology data digital economics economic legal environment climate "
    "education local regional global news features opinion culture arts lead principal assistant freelance guest wire".split()
)
# Not people: placeholders and section names, compared in `_loose` form.
_PLACEHOLDERS = frozenset(
    "noauthor noname admin administrator staff unknown anonymous anon editorialteam editorialboard editorialstaff editorialdesk "
    "editors editor newsroom newsdesk webdesk digitaldesk desk guest guestauthor guestcontributor contributor contributors author "
    "authors user null none na nan wire wires agencies agency newsagencies newsagency staffreporter staffwriter ourreporter "
    "ourcorrespondent ourcorrespondents correspondent reporter team webteam newsteam editorialteam pressrelease sponsored "
    "sponsoredcontent partnercontent brandedcontent opinion analysis editorial news politics sport sports business world".split()
)
# Words of an outlet's name, never of a person's ("Harbour Gazette", "Riverside News Network").
_OUTLET_WORDS = frozenset(
    "news times gazette herald journal tribune chronicle media newspaper newspapers magazine network online broadcasting "
    "dispatch ledger courier inquirer examiner bulletin telegraph tv radio almanac newswire".split()
)
_DATE_WORDS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun jul aug sep sept "
    "oct nov dec monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun updated "
    "published posted am pm et est edt gmt bst utc cet ago today yesterday hour hours minute minutes min mins read on at".split()
)
_SUFFIXES = frozenset("jr sr ii iii iv".split())  # "Martin King, Jr.": part of the name before it
_CREDENTIALS = frozenset("phd md mba msc bsc rn cpa esq".split())  # not "ma": Jack Ma  # "Jane Doe, PhD": said of the name before it
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_URLISH = re.compile(r"(?:https?://|www\.)\S*|\S+@\S+\.\w+|\b[\w-]+\.(?:com|org|net|co\.uk|news)\b\S*|(?<!\w)@\w+", re.IGNORECASE)
# "Editing by", "Photos by": credits of people who did not write the story
_NOT_WRITER = re.compile(r"^(?:edit(?:ed|ing)|photos?|photographs?|pictures?|video|graphics?|illustrations?|design|production|produced)\s+by\b", re.I)
_LEAD_CREDIT = re.compile(
    r"^(?:(?:(?:additional\s+)?reporting|reported|written|words|text|story|analysis|opinion|commentary|column|interview|review)\s+)?by\b\s*:?\s*",
    re.IGNORECASE,
)
_BIO = re.compile(r"\s+(?:is|was|has|writes|covers|reports|joined)\b.*$", re.IGNORECASE)  # "Jane Doe is a reporter at ..."
_AFFILIATION = re.compile(r"\s+(?:for|at|from|in)\s+(.+)$")  # "Jane Doe for the Gazette", "Jane Doe in Geneva"
_PAREN = re.compile(r"\s*[(\[]([^)\]]*)[)\]]")
_BAD_CHARS = re.compile(r"[\d:;!?@/#\"“”<>=_*+|\\{}]")
_SURNAME_FIRST = re.compile(r"([A-Z][\w'’-]+),\s+([A-Z][\w'’.-]+(?:\s+[A-Z]\.?)?)")  # "Doe, Jane"


def _loose(text: str) -> str:
    """Comparison form of a name: case, a leading 'The', spaces and punctuation ignored."""
    folded = text.casefold().strip()
    folded = re.sub(r"^the\s+", "", folded)
    return re.sub(r"[\W_]+", "", folded)


def _site_keys(site_name: str | Sequence[str] | None) -> set[str]:
    names = [site_name] if isinstance(site_name, str) else list(site_name or [])
    return {key for name in names if name and (key := _loose(name))}


def _strip_roles(words: list[str]) -> list[str]:
    """Role words off both ends: 'Senior Correspondent Jane Doe' / 'AP Business Writer'."""
    roles = _ROLE_NOUNS | _ROLE_MODIFIERS
    while words and words[-1].casefold().strip(".,") in roles | _CREDENTIALS:
        words = words[:-1]
    while words and words[0].casefold().strip(".,") in roles:
        words = words[1:]
    return words


def wire_name(text: str) -> str | None:
    """'The Associated Press', 'AP Business Writer', 'Reuters Staff' -> 'AP' / 'Reuters';
    None when `text` is no news agency."""
    key = _loose(text)
    if key in _WIRES:
        return _WIRES[key]
    return _WIRES.get(_loose(" ".join(_strip_roles(text.split()))))


def _is_date(text: str) -> bool:
    words = [w.casefold().strip(".,") for w in text.split()]
    return bool(words) and (all(w in _DATE_WORDS for w in words) or any(w in _WEEKDAYS for w in words))


def _person(text: str) -> str | None:
    """`text` as a person's name (1-5 words, no digits or markup, not all lower case), else None."""
    words = text.split()
    if not 1 <= len(words) <= 5 or len(text) > 60 or _BAD_CHARS.search(text) or not text[0].isalpha():
        return None
    if text == text.casefold():
        return None  # prose or a handle, not a name
    if len(words) == 1 and text.isupper() and len(text) <= 5:
        return None  # an acronym: an outlet (CNN, BBC), not a person
    if any(w.casefold().strip(".,") in _OUTLET_WORDS for w in words):
        return None
    if text.isupper():
        return text.title()  # "JANE DOE" -> "Jane Doe"
    return text


def _credit(part: str, sites: set[str], after_person: bool) -> tuple[str | None, str | None]:
    """One comma-separated piece of a credit -> (person, wire); both None for junk."""
    part = part.strip(" \t.,:;-–—'\"")
    part = _LEAD_CREDIT.sub("", part)
    wire = None
    for inner in _PAREN.findall(part):  # "Jane Doe (Reuters)"
        wire = wire or wire_name(inner)
    part = _PAREN.sub("", part)
    part = _BIO.sub("", part).strip(" .,")
    if affiliation := _AFFILIATION.search(part):  # "Jane Doe for Reuters"
        wire = wire or wire_name(affiliation[1])
        part = part[: affiliation.start()]
    if not part:
        return None, wire
    if found := wire_name(part):
        return None, found
    if _is_date(part) or re.match(r"(?:last\s+)?(?:updated|published|posted)\b", part, re.I):
        return None, wire
    words = part.split()
    while len(words) > 1 and words[-1].casefold().strip(".,") in _CREDENTIALS:
        words.pop()
    if any(w.casefold().strip(".,") in _ROLE_NOUNS for w in words):
        if after_person:
            return None, wire  # "Jane Doe, White House Correspondent": describes the name before it
        words = _strip_roles(words)
    name = " ".join(words)
    key = _loose(name)
    if not key or key in _PLACEHOLDERS or key in sites:
        return None, wire
    return _person(name), wire


def clean_authors(names: Iterable[str], site_name: str | Sequence[str] | None) -> tuple[list[str], str | None]:
    """Raw author strings -> (people, wire credit). Strings are split on ';', '|', ',',
    'and', '&'; a leading 'By' / 'Analysis by' is dropped, and so are role words and
    credentials, dates, the outlet's own name (`site_name`: one name or several, compared
    loosely), placeholders ('No Author', 'Staff'), URLs, e-mail addresses and handles.
    A news agency ('The Associated Press', 'Jane Doe, Reuters') goes to the wire, in its
    usual spelling ('AP', 'Reuters', 'AFP'). Names are de-duplicated, order kept."""
    sites = _site_keys(site_name)
    people: dict[str, str] = {}  # loose key -> name
    wire: str | None = None
    for raw in names:
        if not isinstance(raw, str):
            continue
        text = _URLISH.sub(" ", " ".join(html_lib.unescape(raw).split()))
        for segment in re.split(r"\s*[;|\n•·]\s*|\s+/\s+", text):
            segment = segment.strip(" .,:-–—")
            if not segment or _NOT_WRITER.match(segment):
                continue
            segment = _LEAD_CREDIT.sub("", segment)
            if swapped := _SURNAME_FIRST.fullmatch(segment):  # "Doe, Jane": one person, surname first
                if not any(wire_name(s) or _loose(s) in sites or _loose(s) in _PLACEHOLDERS for s in swapped.groups()):
                    segment = f"{swapped[2]} {swapped[1]}"
            after_person = False
            for part in re.split(r"\s*,\s*|\s+(?:and|&)\s+", segment):
                word = _loose(part)
                if word in _SUFFIXES and after_person and people:
                    key, last = people.popitem()
                    people[_loose(f"{last} {part}")] = f"{last} {part.strip()}"
                    continue
                if word in _CREDENTIALS:
                    continue
                person, credit = _credit(part, sites, after_person)
                wire = wire or credit
                after_person = person is not None
                if person:
                    people.setdefault(_loose(person), person)
    return list(people.values()), wire


# --------------------------------------------------------------------------- titles

_TITLE_SEPARATOR = re.compile(r"\s*[|–—·»]\s*|\s+[-:]\s+|:\s+")
_MIN_TITLE_WORDS = 2  # a shorter remainder is a section name ("Politics | CNN"), not a headline
_SECTION_WORDS = 2  # "CNN Politics", "Harbour Gazette Business News": the outlet and a section
# Section words that may follow the outlet's name; a closed list, so that "CNN chief resigns" is never taken for one.
_SECTIONS = frozenset(
    "politics business world news sport sports opinion health science tech technology travel style entertainment culture arts "
    "lifestyle money markets finance us uk local national international weather video live breaking today online digital "
    "magazine review features food books music film tv climate environment education europe asia africa americas australia "
    "middle east economy media investigations analysis".split()
)


def _is_site_segment(segment: str, sites: set[str]) -> bool:
    """The outlet's name, alone, followed by up to two section words, or as a domain."""
    words = segment.split()
    if _loose(segment) in sites:
        return True
    if re.fullmatch(r"[\w-]+(?:\.[\w-]+)+", segment) and _loose(segment.rsplit(".", 1)[0].removeprefix("www.")) in sites:
        return True  # "cnn.com"
    for cut in range(max(1, len(words) - _SECTION_WORDS), len(words)):
        if _loose(" ".join(words[:cut])) in sites and all(_loose(w) in _SECTIONS for w in words[cut:]):
            return True
    return False


def clean_title(title: str | None, site_names: Sequence[str]) -> str | None:
    """The headline without the outlet's name as prefix or suffix, separated by | – — - : · »
    ("Storm hits coast | Harbour Gazette Politics" -> "Storm hits coast"). Only names in
    `site_names` (compared loosely) are removed, and only when at least two words of headline
    remain; a title that is nothing but the outlet's name comes back unchanged (never empty)."""
    text = _text(title)
    if text is None:
        return None
    sites = _site_keys(site_names)
    if not sites:
        return text
    changed = True
    while changed:
        changed = False
        separators = list(_TITLE_SEPARATOR.finditer(text))
        if not separators:
            break
        last, first = separators[-1], separators[0]
        head, tail = text[: last.start()], text[last.end() :]
        if _is_site_segment(tail, sites) and len(head.split()) >= _MIN_TITLE_WORDS:
            text, changed = head.strip(), True
            # "Storm hits coast — Weather — Harbour Gazette": the section goes with the outlet
            section = list(_TITLE_SEPARATOR.finditer(text))
            if section and all(_loose(w) in _SECTIONS for w in text[section[-1].end() :].split()):
                if len(text[: section[-1].start()].split()) >= _MIN_TITLE_WORDS:
                    text = text[: section[-1].start()].strip()
            continue
        head, tail = text[: first.start()], text[first.end() :]
        if _is_site_segment(head, sites) and len(tail.split()) >= _MIN_TITLE_WORDS:
            text, changed = tail.strip(), True
    return text


def is_site_name(text: str | None, site_names: Sequence[str]) -> bool:
    """Whether `text` is just the outlet's name (then it is no headline)."""
    return bool(text) and _loose(text) in _site_keys(site_names)


# --------------------------------------------------------------------------- paywalls

_PAYWALL_WORDS = 150  # a body this short with a subscription or consent prompt is the prompt, not an article
_FULL_TEXT_WORDS = 400  # isAccessibleForFree=false, yet this much text: the page carries the article itself
_PROMPT = re.compile(
    r"already (?:a )?(?:subscriber|member)|subscribe (?:now |today )?to (?:continue|keep|read|access|unlock)"
    r"|to (?:continue|keep) reading|(?:sign|log) ?in to (?:continue|read|keep reading|access|view)"
    r"|(?:article|story|content) is (?:only )?(?:available|reserved|exclusive) (?:to|for) (?:our )?(?:paying )?(?:subscribers|members)"
    r"|subscribers? only|start your (?:free )?trial|create a free account|unlock (?:this|full|unlimited) (?:article|story|access)"
    r"|we use cookies|(?:accept|reject|allow) (?:all )?cookies|cookie (?:settings|preferences|consent|policy)"
    r"|manage (?:your )?(?:privacy|consent|cookie) (?:settings|preferences|choices)|your privacy choices|consent to (?:the|our) use of cookies",
    re.IGNORECASE,
)


def paywall_reason(page: lxml_html.HtmlElement | None, text: str | None) -> str | None:
    """Why the page is a paywall or consent page rather than the article, or None.
    Signals: schema.org `isAccessibleForFree` false on the article while the extracted body
    stays under 400 words (a page that carries the full text anyway is kept), or a body under
    150 words holding a subscription / sign-in / cookie-consent prompt."""
    words = len((text or "").split())
    if jsonld_meta(page).free is False and words < _FULL_TEXT_WORDS:
        return f"schema.org isAccessibleForFree is false ({words} words of text)"
    if words < _PAYWALL_WORDS and (prompt := _PROMPT.search(text or "")):
        return f"{words} words of text with the prompt '{prompt[0]}'"
    return None


def visible_text(page: lxml_html.HtmlElement | None) -> str:
    """The page body's readable text (no scripts or styles): where to look for a consent
    prompt when the extractor found no article at all."""
    if page is None:
        return ""
    body = page.find("body")
    if body is None:
        return ""
    body = copy.deepcopy(body)  # the caller's tree stays whole
    etree.strip_elements(body, "script", "style", "noscript", "template", with_tail=False)
    return " ".join(" ".join(body.itertext()).split())

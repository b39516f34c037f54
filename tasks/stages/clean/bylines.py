"""Bylines, datelines and debris: take the credit line ('By A, B, Outlet', Daily Mail
stamp headers) and the dateline ('WASHINGTON (Reuters) - ', '(CNN) -- ') out of the
text into metadata (`extract_byline` -> `Byline`, `is_byline`), drop page furniture
(`remove_debris`) and unwrap hard-wrapped paragraphs (`join_paragraphs`). Regex- and
index-based, linear in the input."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from tasks.stages.clean.repair import _BLANK_RUNS, clean_text


@dataclass(frozen=True)
class Byline:
    authors: list[str]
    source: str | None
    published: str | None  # ISO date (YYYY-MM-DD) when the header carried one
    remaining_text: str  # the text with the byline, dateline and debris taken out


_OUTLET_WORD = re.compile(
    r"\b(?:Daily|News|Times|Post|Press|Presse|Agency|Agence|Wire|Journal|Herald|Tribune|Gazette"
    r"|Courier|Ledger|Monitor|Standard|Insider|Guardian|Telegraph|Chronicle|Observer|Reuters|AP|AFP|UPI|Xinhua|Kyodo|Yonhap|TASS"
    r"|BBC|CNN|NPR|Bloomberg|Associated|Media|Network|Radio|TV|Magazine|Review|Report(?:er|ers|s)?"
    r"|Mail|MailOnline|Online|Express|Mirror|Independent|Economist|Newsweek|Broadcasting|Bulletin"
    r"|Dispatch|Inquirer|Examiner)\b"
)
_POSSESSIVE = re.compile(r"\w['’]s\b")
# Roles, not people: "Staff Writer", "Senior Correspondent" say nothing about who wrote it.
_ROLE_SUFFIX = re.compile(r"\s+(?:Staff\s+)?(?:Reporter|Reporters|Correspondent|Staff|Writer|Editor)$")
_ROLE_ONLY = re.compile(
    r"(?:(?:Senior|Chief|Political|Foreign|Staff|Special|Science|Business|Sports|Deputy|Associate)\s+)*"
    r"(?:Reporter|Correspondent|Writer|Editor|Columnist|Staff)"
)
_NAME_PARTICLES = frozenset("van von de der den da di du del della dos das la le al el bin ibn ter ten y".split())  # noqa: SIM905
_NAME_BAD_CHARS = re.compile(r"[\d():;!?@/#\"“”<>=_*]")
_TITLE_SMALL_WORDS = frozenset("of and the for on in at de la le du des del & -".split())  # noqa: SIM905


def _is_outlet(item: str) -> bool:
    """An outlet name: Title Case ('The ferry left' is prose) with an outlet word
    (Daily, Press, Wire, ...), a possessive ('People's Daily'), or a leading 'The'."""
    words = item.split()
    if not 1 <= len(words) <= 8:
        return False
    if not all(w[0].isupper() or w[0].isdigit() or w in _TITLE_SMALL_WORDS for w in words):
        return False
    return bool(_OUTLET_WORD.search(item) or _POSSESSIVE.search(item) or words[0] == "The")


def _is_person(item: str) -> bool:
    words = item.split()
    if not 1 <= len(words) <= 5 or len(item) > 60 or _NAME_BAD_CHARS.search(item):
        return False
    first = words[0]
    if not (first[0].isalpha() and not first[0].islower()):
        return False
    # every word capitalised (or caseless script), an initial, or a name particle ("van", "de")
    return all((w[0].isalpha() and not w[0].islower()) or w in _NAME_PARTICLES for w in words)


def _outlet_name(item: str) -> str:
    """'Daily Mail Reporter' -> 'Daily Mail': drop a role word if an outlet is left."""
    bare = _ROLE_SUFFIX.sub("", item)
    return bare if bare != item and _OUTLET_WORD.search(bare) else item


def _parse_credit(credit: str) -> tuple[list[str], str | None] | None:
    """'A, B, People's Daily' / 'A and B' / 'A | Outlet' / 'A for MailOnline' -> (authors, source).
    None when any part is neither a person-like name nor an outlet: then it is prose."""
    credit = credit.strip().strip(".,;:").strip()
    if not credit or len(credit) > 160:
        return None
    items = [p.strip() for p in re.split(r"\s*[,|;]\s*", credit) if p.strip()]
    source = None
    head, _, tail = items[-1].partition(" for ")  # "Tara Brady for MailOnline"
    if tail and _is_outlet(tail):
        items[-1], source = head.strip(), tail.strip()
    elif _is_outlet(items[-1]):
        source = _outlet_name(items.pop())
    authors: list[str] = []
    for item in items:
        for name in re.split(r"\s+(?:and|&)\s+|^and\s+", item):
            name = name.strip()
            if not name or _ROLE_ONLY.fullmatch(name):
                continue
            if not _is_person(name):
                return None
            authors.append(name)
    if source is not None and (len(source) > 60 or not source[0].isalnum()):
        return None
    return (authors, source) if authors or source else None


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}  # noqa: SIM905
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)[a-z]*\.?"
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH}),?\s+(\d{{4}})\b")
_DATE_MDY = re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _parse_date(text: str) -> str | None:
    """First date in `text` as YYYY-MM-DD ('25 October 2013', 'Oct. 25, 2013', '3rd August 2011')."""
    try:
        if m := _DATE_DMY.search(text):
            day, month, year = int(m[1]), _MONTHS[m[2][:3].lower()], int(m[3])
        elif m := _DATE_MDY.search(text):
            month, day, year = _MONTHS[m[1][:3].lower()], int(m[2]), int(m[3])
        elif m := _DATE_ISO.search(text):
            year, month, day = int(m[1]), int(m[2]), int(m[3])
        else:
            return None
        return date(year, month, day).isoformat()
    except (KeyError, ValueError):  # "31 February", an unknown month word
        return None


# Daily Mail pages flattened into one line keep their line breaks as " . ":
# "By . Name . PUBLISHED: . 14:11 EST, 25 October 2013 . | . UPDATED: . ... . Body".
# A segment ends at such a " ." or at the end of the line.
_SEGMENT = re.compile(r"[ \t]*([^\n]{1,100}?)(?:[ \t]+\.(?=\s|$)[ \t]*|[ \t]*(?:\n|$))")
_STAMP = re.compile(r"(PUBLISHED|UPDATED|Published|Updated)\s*:\s*(.*)")
_LAST_UPDATED = re.compile(r"(?:Last\s+)?[Uu]pdated at .*")


@dataclass
class _Header:
    authors: list[str] = field(default_factory=list)
    source: str | None = None
    published: str | None = None
    updated: str | None = None

    def credit(self, authors: list[str], source: str | None) -> None:
        self.authors.extend(a for a in authors if a not in self.authors)
        self.source = self.source or source


def _take_stamp_header(line: str, header: _Header) -> int:
    """Consume a Daily Mail style header at the start of `line` into `header`; return
    where the body begins (0 when there is no header)."""
    start = pos = end = 0
    after_by, stamped, pending = False, False, None
    while m := _SEGMENT.match(line, pos):
        seg = m[1].strip()
        stamp = _STAMP.fullmatch(seg)
        if pos == start:
            # a header opens with "By .", "By Name ." or a time stamp, nothing else
            by_name = seg.startswith("By ") and m[0].rstrip(" \t").endswith(".")
            if not (seg in ("By", "BY") or by_name or stamp or _LAST_UPDATED.fullmatch(seg)):
                return start
            if by_name:
                if not (credit := _parse_credit(seg[3:])):
                    return start
                header.credit(*credit)
                after_by = True
                pos = end = m.end()
                continue
        if seg in ("By", "BY", "|", "and"):
            after_by = after_by or seg != "|"
        elif stamp:
            stamped = True
            label = stamp[1].lower()
            if day := _parse_date(stamp[2]):
                setattr(header, label if label == "updated" else "published", day)
            else:
                pending = label
        elif _LAST_UPDATED.fullmatch(seg):
            stamped = True
            header.updated = _parse_date(seg) or header.updated
        elif pending and (day := _parse_date(seg)):
            setattr(header, pending if pending == "updated" else "published", day)
            pending = None
        elif after_by and not stamped and (credit := _parse_credit(seg)):
            header.credit(*credit)  # names come before the stamps; after them is body text
        else:
            break  # the first sentence of the body
        pos = end = m.end()
    return end


_BY_LINE = re.compile(r"(?:By|BY)\s*:?\s+(.+)")
# "GENEVA, March 3 (Newsflow Wire) - ", "WASHINGTON (Reuters) - ", "LONDON, England (CNN) -- ",
# "(CNN) -- " and CNN's later "(CNN)The ..." without a dash.
_DATELINE = re.compile(
    r"(?P<place>[A-Z][\w.'’-]*(?:,?[ ][A-Za-z0-9][\w.'’-]*){0,5}[ ]?)?"
    r"\((?P<outlet>[A-Z][^()\n]{0,40})\)"
    r"(?:[ ]*(?P<dash>--|—|–|-)[ ]*|(?=[A-Z]))"
)
_CAPS_DATELINE = re.compile(r"[A-Z][A-Z.'-]+(?: [A-Z][A-Z.'-]+){0,3}(?:, [A-Z][\w.]+(?: [A-Z][\w.]+){0,2})? (?:--|—) ")


def _take_dateline(line: str) -> tuple[str, str | None]:
    """Strip a dateline from the start of a paragraph; return (rest, outlet or None)."""
    if m := _DATELINE.match(line):
        outlet, dash, place = m["outlet"].strip(), m["dash"], m["place"]
        # "--" and CNN's glued "(CNN)The" are unambiguous. A plain hyphen needs an outlet-like
        # name and an upper-case place ("WASHINGTON (Reuters) - "), not "Apple (AAPL) - ".
        strong = dash in ("--", "—") or (dash is None and place is None)
        outlet_like = _is_outlet(outlet) or (outlet.isupper() and len(outlet) >= 2)
        caps_place = place is None or place.split()[0].rstrip(",").isupper()
        if len(outlet.split()) <= 5 and (strong or (outlet_like and caps_place)):
            return line[m.end() :], outlet
    if m := _CAPS_DATELINE.match(line):  # AP style "NEW YORK — ", no outlet named
        return line[m.end() :], None
    return line, None


# Page furniture that is never article text: a whole line, or a phrase running to the next
# " ." segment break, to a sentence end followed by a capital, or to the end of its line.
# A capitalised "VIDEO" before a title is a link to a clip ("VIDEO Gerrard denies rift").
_DEBRIS_PHRASE = (
    r"(?:(?:VIDEO:?[ \t]*)?(?:Scroll down for (?:video|more)|Scroll down to (?:watch|see|view|play)"
    r"|Click here (?:to|for)|Follow @|Follow us on|READ MORE|Read more:|Read More:)|VIDEO:?[ \t]+(?=[A-Z]))"
)
_DEBRIS_LINE = re.compile(_DEBRIS_PHRASE)
_DEBRIS = re.compile(
    rf"(?:(?<=^)|(?<=\n)|(?<=[.!?\"'”’)] ))[ \t]*{_DEBRIS_PHRASE}"
    r"[^\n]{0,200}?(?:[ \t]\.(?=\s|$)|[.!?](?=\s+[\"'“‘A-Z])|(?=\n)|$)",
)
# Closing furniture: the comments notice and CNN's "X contributed to this report." credit.
_TRAILING_DEBRIS = re.compile(
    r"(?:(?<=^)|(?<=\n)|(?<=[.!?\"'”’)] ))(?:(?:We are )?[Ss]orry,? we are not currently accepting comments"
    r" on this article\.?|[^.!?\n]{0,150}\bcontributed to this report\.)[ \t]*$"
)
# Flattened Daily Mail pages keep their line breaks as " . ". Before a lowercase word, or
# after a word that cannot end a sentence, the break was a wrapped line: join it.
_ORPHAN_DOT_BEFORE_LOWER = re.compile(r"(?<=[^\s.])[ \t]+\.[ \t]+(?=[a-z])")
_ORPHAN_DOT_AFTER_FUNCTION_WORD = re.compile(
    r"\b(and|or|but|nor|the|a|an|of|to|for|with|from|into|onto|than|which|whom|whose|their|its"
    r"|our|my|your|between|if|in|on|at|by)[ \t]+\.[ \t]+(?=\S)"
)  # words that (almost) never end an English sentence
_ORPHAN_DOT = re.compile(r"(?<=[^\s.])[ \t]+\.(?=\s|$)")  # "he had HIV . Next" -> "HIV. Next"


def _is_debris_line(line: str) -> bool:
    # short, and not a flattened page whose " . " marks join many lines into one
    return len(line) <= 200 and " . " not in line and bool(_DEBRIS_LINE.match(line))


def remove_debris(text: str) -> str:
    """Drop 'Scroll down for video', 'Click here to ...', 'Follow @...', 'READ MORE: ...',
    the comments notice and a closing 'X contributed to this report.', and repair the
    orphan " . " line-break marks of flattened Daily Mail pages."""
    # Each substitution runs only when a cheap search says it can match.
    if _DEBRIS_LINE.search(text):
        text = "\n".join(line for line in text.split("\n") if not _is_debris_line(line))
        text = _DEBRIS.sub("", text)
    if " ." in text or "\t." in text:
        text = _ORPHAN_DOT_BEFORE_LOWER.sub(" ", text)
        text = _ORPHAN_DOT_AFTER_FUNCTION_WORD.sub(r"\1 ", text)
        text = _ORPHAN_DOT.sub(".", text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "contributed to this report" in text or "accepting comments" in text:
        text = _TRAILING_DEBRIS.sub("", text.rstrip())
    return _BLANK_RUNS.sub("\n\n", text).strip()


def is_byline(line: str) -> bool:
    """A 'By A, B, Outlet' credit line (and not a sentence such as 'By noon, ...')."""
    return bool((m := _BY_LINE.fullmatch(line.strip())) and _parse_credit(m[1]))


def _first_nonempty(lines: list[str], n: int) -> list[int]:
    return [i for i, line in enumerate(lines) if line][:n]


def extract_byline(text: str) -> Byline:
    """Move the byline ('By A, B, Outlet', Daily Mail stamp headers), the dateline
    ('WASHINGTON (Reuters) - ', '(CNN) -- ') and page debris out of the text.
    Only the first three lines are searched for a byline; the first dateline found
    in those lines is removed."""
    lines = text.split("\n")
    header = _Header()
    for i in _first_nonempty(lines, 3):
        if (body_at := _take_stamp_header(lines[i], header)) > 0:
            lines[i] = lines[i][body_at:]
            break
        if (m := _BY_LINE.fullmatch(lines[i])) and (credit := _parse_credit(m[1])):
            header.credit(*credit)
            del lines[i]
            break
    for i in _first_nonempty(lines, 3):
        rest, outlet = _take_dateline(lines[i])
        if rest is not lines[i]:
            lines[i] = rest
            header.source = header.source or outlet
            break
    return Byline(
        authors=header.authors,
        source=header.source,
        published=header.published or header.updated,
        remaining_text=remove_debris("\n".join(lines)),
    )


_WRAP_WIDTH = 100


def join_paragraphs(text: str) -> str:
    """Paragraphs joined by single newlines. A block (between blank lines) of short lines
    that mostly do not end a sentence is hard-wrapped prose: its lines are joined with
    spaces, since every newline is a sentence boundary downstream."""
    paragraphs: list[str] = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if len(lines) > 1 and max(map(len, lines)) <= _WRAP_WIDTH:
            ended = sum(line[-1] in ".!?:\"'”’)" for line in lines[:-1])
            if ended * 2 < len(lines) - 1:
                joined = " ".join(lines)
                # Joining can pair what ftfy saw apart ("Â" at a line end, then a space):
                # only where a joined line ends in a non-ASCII character. Re-clean then,
                # so the kept text is clean_text's fixed point.
                if any(not line[-1].isascii() for line in lines[:-1]):
                    joined = clean_text(joined)
                lines = [joined] if joined else []
        paragraphs.extend(lines)
    return "\n".join(paragraphs)

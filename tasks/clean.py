"""The clean stage as plain functions: repair the text, pull bylines and datelines into
metadata, drop page debris, detect the language, split sentences, and give each kept
document a content id. Plain functions; the stage's @task (`clean_task`, at the end)
applies `clean_document` to one staging shard.

Everything is regex- and index-based and linear in the input: cleaning runs once per
document on the CPU beside the encoder, so it must stay a small share of its budget."""
from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import ftfy
from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import CleanConfig
from tasks.memory import release_freed_memory
from tasks.records import CLEAN_SCHEMA, CleanDocument, RawDocument, Rejection, RejectReason, ShardRef
from tasks.retries import stage_task_options
from tasks.shard_cache import ShardCache, through_cache
from tasks.staging import read_shard, write_records_shard

STAGE = "clean"
UNDETERMINED = "und"

# langdetect samples n-grams at random: a fixed seed makes the same text give the same
# language in every run (it seeds a Random of its own, not the global one).
DetectorFactory.seed = 0
# langdetect loads its profiles lazily into a global factory; shards cleaned in parallel
# threads race on that load and then call everything Polish. One detection at a time.
_LANGDETECT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Byline:
    authors: list[str]
    source: str | None
    published: str | None  # ISO date (YYYY-MM-DD) when the header carried one
    remaining_text: str  # the text with the byline, dateline and debris taken out


# ---------------------------------------------------------------------------------------
# Text repair

# Everything Unicode calls a line break becomes "\n" (ftfy handles \r\n and U+2028 only).
_LINE_BREAKS = re.compile(r"\r\n?|[\v\f\x1c-\x1e\x85\u2028\u2029]")
# C0 controls (NUL included) except \n and \t go before ftfy; C1 controls after it, since
# ftfy reads many of them as cp1252 quotes and dashes. Invisible format characters that
# only break tokenisation and hashing go too (zero-width space, BOM, soft hyphen, joiner).
_C0 = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b\u00ad\u2060\ufeff]")
_H_SPACE = re.compile(r"[^\S\n]+")  # any horizontal whitespace run (tabs, NBSP, thin spaces)
_BLANK_RUNS = re.compile(r"\n{3,}")
# An NBSP that is the 0xA0 continuation byte of UTF-8 read as cp1252 may be mojibake ("à"
# is "Ã\xa0", NBSP "Â\xa0", "†" "â€\xa0"): stripped or made a space first, ftfy could not
# repair it ("voilÃ" at a line end). Such text lets ftfy see its spacing as it came. Only
# an NBSP where a UTF-8 sequence can put it counts: after a 2-byte lead (Â-ß), or after a
# 3/4-byte lead (à-ô) and its continuations; French "«\xa0texte\xa0»" takes the normal path.
# A continuation byte 0x80-0xBF as cp1252 shows it, or as Latin-1 does (C1 controls).
_CP1252_CONT = "[\x80-\xbf" + re.escape(bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")) + "]"
_MOJIBAKE_NBSP = re.compile(
    rf"[\u00c2-\u00df]\xa0|[\u00e0-\u00f4](?:\xa0(?={_CP1252_CONT})|{_CP1252_CONT}\xa0)"
    rf"|[\u00f0-\u00f4]{_CP1252_CONT}{{2}}\xa0"
)
_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, explain=False)  # keep the outlet's typography


def _normalise_spacing(text: str) -> str:
    text = _H_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _repair(text: str) -> str:
    return _normalise_spacing(_CONTROLS.sub("", unicodedata.normalize("NFC", ftfy.fix_text(text, _FTFY))))


def clean_text(raw: str) -> str:
    """Repair encoding (ftfy), NFC, drop control characters and NULs, collapse spaces and
    blank-line runs, strip lines. Idempotent: a second pass changes nothing."""
    # Spacing is made final before ftfy, so clean input costs one ftfy pass (~1.2 ms),
    # not two. ftfy's fixes can expose another (rare): repeat until nothing changes.
    text = _C0.sub("", _LINE_BREAKS.sub("\n", raw))
    if "\xa0" not in text or not _MOJIBAKE_NBSP.search(text):  # the `in`: a C-speed scan
        text = _normalise_spacing(text)
    for _ in range(5):
        fixed = _repair(text)
        if fixed == text:
            break
        text = fixed
    return text


_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"'})


def normalise_for_hash(text: str) -> str:
    """NFKC, casefold, collapse all whitespace, strip. Curly quotes are folded to straight
    ones too: clean_text keeps them, and the same story arrives both ways from feeds."""
    folded = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(folded.split())


def doc_id_for(text: str) -> str:
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------
# Bylines, datelines and debris

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
_NAME_PARTICLES = frozenset("van von de der den da di du del della dos das la le al el bin ibn ter ten y".split())
_NAME_BAD_CHARS = re.compile(r"[\d():;!?@/#\"“”<>=_*]")
_TITLE_SMALL_WORDS = frozenset("of and the for on in at de la le du des del & -".split())


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


_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
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
            return line[m.end():], outlet
    if m := _CAPS_DATELINE.match(line):  # AP style "NEW YORK — ", no outlet named
        return line[m.end():], None
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


# ---------------------------------------------------------------------------------------
# Sentences

# A run of terminal punctuation plus the quotes/brackets closing after it, followed by space.
# Possessive quantifiers and the look-behind keep this linear even on "......." runs.
_TERMINAL = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’»)\]]*+(?=\s)|[。！？]++[」』）”]*+")
_NEXT_WORD = re.compile(r"\s*([\"'“‘«(\[]*)(\w*)")

_TITLES = frozenset(
    "mr mrs ms mx dr prof gen sen rep gov st lt col capt cpt sgt cpl pvt maj brig adm cmdr cdr "
    "rev fr hon messrs mmes mt ft pres supt insp det vs v cf e.g i.e viz".split()
)  # always followed by what they qualify: never end a sentence
_BEFORE_NUMBER = frozenset(
    "no nos p pp vol vols ch art sec fig figs para op ca approx tel ext ed eds "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)  # "No. 10", "Jan. 5", "p. 42"
_MAYBE_FINAL = frozenset(
    "jr sr inc corp co ltd bros plc llc etc al jan feb mar apr jun jul aug sep sept oct nov dec".split()
)  # "Apple Inc. The company ..." ends a sentence; "Apple Inc. Chief ..." does not
_INITIALISM = re.compile(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}|[A-Z]")  # U.S, a.m, Ph.D, F (John F. Kennedy)
_STARTERS = frozenset(
    "The A An He She It They We I You His Her Its Their Our My This That These Those There Here "
    "In On At But And Or So Yet As If When While After Before Since Although Though However "
    "Meanwhile Also Still Then Now Some Many Most Officials Police Authorities Both Each Every "
    "No Not What Who Why How Where Last Earlier Later Today Yesterday".split()
)


def _ends_sentence(line: str, start: int, end: int) -> bool:
    """Is the terminal run line[start:end] a sentence boundary? Decided from the word before
    it and the word after it only, so each candidate costs constant time."""
    punct = line[start:end]
    nxt = _NEXT_WORD.match(line, end)
    opener, word = nxt[1], nxt[2]
    follow = line[nxt.end(1)] if nxt.end(1) < len(line) else ""
    if follow and (follow.islower() or follow in ".…,;:"):  # "Wait... what", "e.g. this", ". . ." runs
        return False
    if punct[0] in "!?…。！？" or punct.startswith(".."):
        return True
    window = line[max(0, start - 24):start]  # abbreviations are short; longer words are not
    space = max(window.rfind(" "), window.rfind("\t"))
    if space < 0 and start > 24:
        return True
    token = window[space + 1:].lstrip("\"'“‘([«")
    lower = token.lower()
    if lower in _TITLES:
        return False
    if lower in _BEFORE_NUMBER and follow.isdigit():
        return False
    if lower in _MAYBE_FINAL or _INITIALISM.fullmatch(token):
        return bool(opener) or word in _STARTERS  # "the U.S. The ministry" vs "the U.S. Senate"
    return True


def _emit(line: str, a: int, b: int, max_chars: int, out: list[str]) -> None:
    """Append line[a:b] stripped, cut at the last whitespace before max_chars as often as needed."""
    while a < b and line[a].isspace():
        a += 1
    while b > a and line[b - 1].isspace():
        b -= 1
    while b - a > max_chars:
        cut = max(line.rfind(" ", a + 1, a + max_chars + 1), line.rfind("\t", a + 1, a + max_chars + 1))
        if cut < 0:  # one word longer than max_chars: no way around cutting inside it
            cut = a + max_chars
        piece_end = cut
        while piece_end > a and line[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > a:
            out.append(line[a:piece_end])
        a = cut
        while a < b and line[a].isspace():
            a += 1
    if b > a:
        out.append(line[a:b])


def split_sentences(text: str, max_chars: int = 800) -> list[str]:
    """Split into sentences: every newline is a boundary; '.', '!', '?' and ellipses are
    boundaries unless an abbreviation, an initial or a decimal explains them. Each
    sentence is an exact, stripped, non-empty substring of `text`, in order; sentences
    longer than max_chars are cut at whitespace. Linear time (no pysbd: ~20 ms/article)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        for m in _TERMINAL.finditer(line):
            if _ends_sentence(line, m.start(), m.end()):
                _emit(line, start, m.end(), max_chars, out)
                start = m.end()
        _emit(line, start, len(line), max_chars, out)
    return out


# ---------------------------------------------------------------------------------------
# Language

_LANGUAGE_SAMPLE = 1000
# English function words that are not also common words of the other languages written
# in Latin script (no "in", "is", "was", "will", "a", "die"...). In English news they are
# about a quarter of all words; in other languages next to none.
_ENGLISH_MARKERS = frozenset(
    "the and of to that with for this from which would their they been said but its by at are who have has were".split()
)
_ENGLISH_MIN_WORDS = 30
_ENGLISH_MIN_SHARE = 0.12
_WORDS = re.compile(r"[^\W\d_]+")


def clearly_english(sample: str) -> bool:
    """A fast path for the common case: langdetect costs about 8 ms an article here, most
    of the cleaning stage; counting function words costs a few microseconds."""
    words = _WORDS.findall(sample.lower())
    return len(words) >= _ENGLISH_MIN_WORDS and sum(w in _ENGLISH_MARKERS for w in words) >= _ENGLISH_MIN_SHARE * len(words)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language from its first ~1000 characters: 'en' at once
    where English function words make it plain, else langdetect (about 8 ms); 'und' when
    there is nothing to go on."""
    sample = text[:_LANGUAGE_SAMPLE]
    if len(text) > _LANGUAGE_SAMPLE and (cut := sample.rfind(" ")) > _LANGUAGE_SAMPLE // 2:
        sample = sample[:cut]  # a cut word is noise for the n-gram profile
    if not any(ch.isalpha() for ch in sample):
        return UNDETERMINED
    if clearly_english(sample):
        return "en"
    try:
        with _LANGDETECT_LOCK:
            code = detect(sample)
    except LangDetectException:
        return UNDETERMINED
    return code.split("-")[0]  # 'zh-cn' -> 'zh'


# ---------------------------------------------------------------------------------------
# The stage's per-document function


def _reject(origin: str, reason: RejectReason, detail: str) -> Rejection:
    return Rejection(origin=origin, reason=reason, detail=detail, stage=STAGE)


def _clean_field(value: str | None) -> str | None:
    if not value:
        return None
    return " ".join(clean_text(str(value)).split()) or None


# Cleaning shrinks text by dropping whitespace runs, controls and debris, and by decoding
# entities and mojibake (an entity such as "&#128512;" is 9 characters to 1). Text with
# more non-space characters than this many times max_chars cannot come out under it:
# reject it before cleaning (a 20 MB text took ~4 s and hundreds of MB to clean, only
# to be rejected then).
_MAX_SHRINK = 10
_SPACES = (" ", "\n", "\t", "\r", "\xa0")


def _far_too_long(text: str, max_chars: int) -> str | None:
    """Why `text` is too long for cleaning to bring it under max_chars, or None."""
    bound = _MAX_SHRINK * max_chars
    if len(text) <= bound:
        return None  # the common case costs one len()
    solid = len(text) - sum(text.count(space) for space in _SPACES)  # C-speed passes, no copies
    if solid <= bound:
        return None
    # Cleaning deletes controls and zero-width characters: 60k U+200B round a short article
    # are no reason to reject it. One regex pass (and a copy), on this rare path only.
    solid -= len(text) - len(_CONTROLS.sub("", text))
    if solid <= bound:
        return None
    return f"{len(text)} chars before cleaning ({solid} non-space, non-control), over {_MAX_SHRINK} x max_chars {max_chars}"


# Chinese and Japanese put no spaces between words: each Han ideograph counts as a word
# (as word processors count it; a Chinese word averages under two characters), and so does
# each run of hiragana or of katakana (a particle, a verb ending, a loanword). CJK
# punctuation separates words, like a space.
_CJK_WORD = re.compile(r"[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
                       r"|[\u3040-\u309f]+|[\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]+")
_CJK_ANY = re.compile(rf"{_CJK_WORD.pattern}|[\u3000-\u303f\uff01-\uff65]+")


def count_words(text: str) -> int:
    """Whitespace-separated words, with Chinese and Japanese words counted as above."""
    if not _CJK_ANY.search(text):
        return len(text.split())
    cjk = sum(1 for _ in _CJK_WORD.finditer(text))
    return cjk + len(_CJK_ANY.sub(" ", text).split())


def _clean_document(raw: RawDocument, config: CleanConfig) -> CleanDocument | Rejection:
    if not isinstance(raw.text, str):
        return _reject(raw.origin, RejectReason.NOT_TEXT, f"text is {type(raw.text).__name__}, not str")
    if too_long := _far_too_long(raw.text, config.max_chars):
        return _reject(raw.origin, RejectReason.TOO_LONG, too_long)
    byline = extract_byline(clean_text(raw.text))
    text = join_paragraphs(byline.remaining_text)
    if not text:
        return _reject(raw.origin, RejectReason.EMPTY, "no text left after cleaning")
    if len(text) > config.max_chars:
        return _reject(raw.origin, RejectReason.TOO_LONG, f"{len(text)} chars > max_chars {config.max_chars}")
    words = count_words(text)
    if words < config.min_words:
        return _reject(raw.origin, RejectReason.TOO_SHORT, f"{words} words < min_words {config.min_words}")
    language = detect_language(text)
    if not config.any_language and language not in config.languages:
        return _reject(raw.origin, RejectReason.LANGUAGE, f"detected {language}")
    # record metadata wins: it came from a structured field, the byline from a heuristic
    authors = [a for a in map(_clean_field, raw.authors or []) if a]
    return CleanDocument(
        doc_id=doc_id_for(text),
        origin=raw.origin,
        source=_clean_field(raw.source) or byline.source,
        title=_clean_field(raw.title),
        authors=authors or byline.authors,
        published=_clean_field(raw.published) or byline.published,
        url=_clean_field(raw.url),
        language=language,
        text=text,
        sentences=split_sentences(text, config.max_sentence_chars),
    )


def clean_document(raw: RawDocument, config: CleanConfig) -> CleanDocument | Rejection:
    """clean_text -> extract_byline -> length checks -> language -> sentences -> doc_id.
    Never raises: one bad record must not fail its shard."""
    try:
        return _clean_document(raw, config)
    except Exception as exc:  # noqa: BLE001 - the record is rejected, the run goes on
        return _reject(str(getattr(raw, "origin", "?")), RejectReason.PARSE_ERROR, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------
# The stage over one shard

def clean_shard(raw: ShardRef, index: int, config: CleanConfig, staging_dir: str, cache: ShardCache | None = None) -> ShardRef:
    """Clean every record of an ingest shard; the shard is renumbered `index` from here on."""
    return through_cache(cache, STAGE, raw, config, staging_dir, lambda: _clean_records(raw, index, config, staging_dir),
                         index=index, uses_models=False)


def _clean_records(raw: ShardRef, index: int, config: CleanConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    kept, rejected = [], []
    for row in read_shard(raw).to_pylist():
        result = clean_document(RawDocument(**row), config)
        if isinstance(result, Rejection):
            rejected.append(result)
        else:
            kept.append(result.to_row())
    ref = write_records_shard(Path(staging_dir), STAGE, index, kept, CLEAN_SCHEMA, rejected, started)
    del kept, rejected
    release_freed_memory()
    return ref


clean_task = task(clean_shard, name="clean", cache_policy=NO_CACHE, persist_result=False, **stage_task_options())

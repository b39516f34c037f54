"""Ingest: find the input files and turn each input record into a RawDocument or a
Rejection, and write them as bounded staging shards (`ingest_files`, the stage's task
at the end of this module).

Two promises shape this module:
- it never raises for bad input: every file and record ends up as exactly one
  document or one rejection (kept + rejected = read), so a run can account for all;
- it is lazy: records come out of generators and tabular files are streamed, so
  memory stays flat whatever the file size.
"""
from __future__ import annotations

import codecs
import csv
import fnmatch
import glob
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.clean import count_words
from tasks.config import SUPPORTED_EXTENSIONS, InputConfig, TableColumns, normalise_extension
from tasks.records import RAW_SCHEMA, RawDocument, RejectReason, Rejection, ShardRef
from tasks.retries import stage_task_options
from tasks.staging import write_records_shard

STAGE = "ingest"
SNIFF_BYTES = 8192  # how much of a file we look at to tell text from binary
_CHUNK = 1 << 20  # read size for the streaming UTF-8 check

Item = RawDocument | Rejection


def _reject(origin: str, reason: RejectReason, detail: str) -> Rejection:
    return Rejection(origin=origin, reason=reason, detail=detail, stage=STAGE)


# ---------------------------------------------------------------------------
# Listing inputs
# ---------------------------------------------------------------------------

_GLOB_CHARS = re.compile(r"[*?\[]")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _glob_root(pattern: str) -> Path:
    """The folder a glob searches: its leading components without wildcards."""
    parts: list[str] = []
    for part in Path(pattern).expanduser().parts:
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


_SPECIAL_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                  (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder"))


def _not_a_file(path: Path, mode: int | None = None) -> str:
    """Why `path`, which is no regular file (nor, when listing, a folder), cannot be read:
    said truly (a FIFO is not 'missing'), and without opening it (opening a FIFO blocks).
    `mode`: the st_mode of a stat the caller took already."""
    if mode is None:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return "broken symlink" if path.is_symlink() else "no such file or folder"
        except OSError as exc:
            return str(exc)
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")
    return f"not a regular file ({kind})"


class _Listing:
    """Accumulates found files (keyed by resolved path, so aliases count once) and
    rejections (keyed by origin, so overlapping entries don't report twice).
    `follow` (input.follow_symlinks) lets symlinks lead out of the searched folder."""

    def __init__(self, wanted: frozenset[str], follow: bool = False) -> None:
        self.wanted = wanted
        self.follow = follow
        self.files: set[Path] = set()
        self.rejections: dict[str, Rejection] = {}

    def reject(self, origin: str, reason: RejectReason, detail: str) -> None:
        self.rejections.setdefault(origin, _reject(origin, reason, detail))

    def escapes(self, path: Path, root: Path, real: Path | None = None) -> bool:
        """A symlink out of the searched folder could pull in anything on the machine
        (another user's files, /etc): unless told to follow symlinks, refuse it, and say
        so rather than hide it. Resolving catches a link anywhere along the path
        (`real`, when the caller has resolved `path` already)."""
        if not self.follow and not _inside(real or path.resolve(), root):
            self.reject(str(path), RejectReason.UNREADABLE, "symlink points outside the input folder")
            return True
        return False

    def add_found(self, path: Path, root: Path) -> None:
        """A file met while searching `root` (a folder or a glob's folder)."""
        if path.suffix.lower() not in self.wanted:
            return  # other file types in a searched folder are simply not inputs
        real = path.resolve()  # once, for both the escape check and the key
        if self.escapes(path, root, real):
            return
        if path.is_file():
            self.files.add(real)
        else:
            self.reject(str(path), RejectReason.UNREADABLE, _not_a_file(path))

    def _enter(self, sub: Path, root: Path, seen: set[Path]) -> bool:
        """Whether the walk goes into folder `sub`."""
        if sub.name.startswith("."):
            return False  # hidden folders (.git, .cache) are never inputs
        if sub.is_symlink() and not self.follow:
            # Outside: refused. Inside: its files are listed through their real path.
            self.escapes(sub, root)
            return False
        if self.follow:  # without following symlinks os.walk cannot reach a folder twice
            real = sub.resolve()
            if real in seen:
                return False  # a symlink cycle, or a folder already reached another way
            seen.add(real)
        return True

    def folders(self, top: Path, root: Path) -> Iterator[tuple[Path, list[str]]]:
        """(folder, its non-hidden entry names that are no folders) for `top` and each
        folder below it, each real folder once, so a symlink cycle ends."""

        def on_error(exc: OSError) -> None:
            self.reject(str(exc.filename or top), RejectReason.UNREADABLE, str(exc))

        seen = {top.resolve()} if self.follow else set()
        for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=self.follow):
            here = Path(dirpath)
            dirnames[:] = [name for name in sorted(dirnames) if self._enter(here / name, root, seen)]
            yield here, [name for name in sorted(filenames) if not name.startswith(".")]

    def walk(self, folder: Path) -> None:
        root = folder.resolve()
        for here, names in self.folders(folder, root):
            for name in names:
                self.add_found(here / name, root)

    def glob(self, pattern: str, root: Path) -> Iterator[str]:
        """glob.glob(pattern, recursive=True), except that `**` descends the way `walk`
        does: never round a symlink cycle (glob would, exponentially), and through a
        symlink only when following them."""
        parts = pattern.split(os.sep)
        if "**" not in parts:
            yield from glob.iglob(pattern)  # fixed depth: no cycle to go round
            return
        i = parts.index("**")
        prefix, rest = os.sep.join(parts[:i]) or (os.sep if i else "."), os.sep.join(parts[i + 1 :])
        for base in map(Path, glob.iglob(prefix) if _GLOB_CHARS.search(prefix) else [prefix]):
            if not base.is_dir() or self.escapes(base, root):
                continue
            if not rest:  # "dir/**": the base alone; the caller walks it, every level below
                yield str(base)
                continue
            for folder, _ in self.folders(base, root):
                yield from self.glob(str(Path(glob.escape(str(folder))) / rest), root)


def list_inputs(paths: list[str], extensions: Sequence[str], follow_symlinks: bool = False) -> tuple[list[Path], list[Rejection]]:
    """Expand files, folders (recursively) and glob patterns into the sorted, de-duplicated
    list of input files (resolved paths), plus a Rejection for each entry that names
    nothing usable. `follow_symlinks` (input.follow_symlinks) reads what symlinks in a
    searched folder point to outside it; they are refused otherwise."""
    listing = _Listing(frozenset(normalise_extension(e) for e in extensions), follow_symlinks)
    for entry in paths:
        # A name like "Reuters [2024].txt" is a file, not a pattern, when it exists.
        if _GLOB_CHARS.search(entry) and not os.path.lexists(os.path.expanduser(entry)):
            _expand_glob(entry, listing)
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            listing.walk(path)
        elif path.is_file():
            # Named explicitly: followed even if it is a symlink, but its type must be readable.
            if path.suffix.lower() in listing.wanted:
                listing.files.add(path.resolve())
            else:
                listing.reject(entry, RejectReason.UNSUPPORTED, f"extension '{path.suffix or '(none)'}' is not one of {sorted(listing.wanted)}")
        else:
            listing.reject(entry, RejectReason.UNREADABLE, _not_a_file(path))
    return sorted(listing.files), sorted(listing.rejections.values(), key=lambda r: r.origin)


def _expand_glob(pattern: str, listing: _Listing) -> None:
    # glob skips hidden names unless the pattern spells them out; so does listing.glob's `**`.
    root = _glob_root(pattern).resolve()
    matches = sorted(set(listing.glob(os.path.expanduser(pattern), root)))
    if not matches:
        listing.reject(pattern, RejectReason.UNREADABLE, "glob matched nothing")
        return
    walked: set[Path] = set()
    for match in matches:
        path = Path(match)
        if path.is_dir():
            # "dir/**/*" matches folders inside folders it matched: walking one inside a
            # folder already walked would only repeat work (a look-up per parent, not a scan).
            if listing.escapes(path, root):
                continue
            if path not in walked and walked.isdisjoint(path.parents):
                walked.add(path)
                listing.walk(path)
        else:
            listing.add_found(path, root)


# ---------------------------------------------------------------------------
# Reading text safely
# ---------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "GZIP archive"),
)
# Longest first: a UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters (Unicode category Cc) other than \t \n \v \f \r: binary data's tell.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_STRAY_NULS_PER_KB = 1  # more NULs than this (and no UTF-16/32) is binary data
_MAX_MESS = 0.2  # charset-normalizer's own bar (from_bytes' threshold) for "reads as text"


def _is_utf8(path: Path) -> bool:
    """Streamed strict UTF-8 check, so a big file is never held in memory for it."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _guess_legacy_encoding(path: Path) -> str | None:
    """Best guess for text that is not UTF-8.

    charset-normalizer's ranking among single-byte code pages is close to a coin
    flip on short texts (it calls cp1252 curly quotes cp852). News in a legacy
    encoding is overwhelmingly Windows-1252, so cp1252 wins whenever it decodes the
    bytes and reads no messier than the guess; Cyrillic, Greek or Central European
    text decoded as cp1252 turns into accented soup with a high mess ratio, and
    keeps its own code page."""
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    # Non-UTF-8 files are rare and bounded by max_file_bytes: reading them whole is fine.
    # Stray NULs (tolerated by _detect_encoding, dropped by clean) would skew the measures.
    data = path.read_bytes().replace(b"\x00", b"")
    best = from_bytes(data).best()
    try:
        as_cp1252 = data.decode("cp1252")
    except UnicodeDecodeError:
        return best.encoding if best else None
    mess = mess_ratio(as_cp1252[:100_000], 1.0)
    if best is None:
        # Every byte decodes in cp1252, junk included: random high bytes come out as
        # accented-letter soup (mess ratio over 1). No code page reads as text: not text.
        return "cp1252" if mess <= _MAX_MESS else None
    return "cp1252" if mess <= best.chaos + 0.01 else best.encoding


def _nul_verdict(origin: str, head: bytes) -> str | Rejection | None:
    """For a head holding NUL bytes: its UTF-16/32 codec (NULs are normal there without
    a BOM); None when the NULs are few enough to be strays in text (a byte flipped in
    transit, a C string's end), which clean drops; else binary data."""
    from charset_normalizer import from_bytes

    guess = from_bytes(head).best()
    if guess is not None and guess.encoding.startswith(("utf_16", "utf_32")):
        return guess.encoding
    nuls = head.count(b"\x00")
    if nuls <= max(1, len(head) * _STRAY_NULS_PER_KB // 1024):
        return None
    return _reject(origin, RejectReason.NOT_TEXT, f"binary data: {nuls} NUL bytes in the first {len(head)} bytes")


def _detect_encoding(path: Path) -> str | Rejection:
    """The codec to read `path` with, or why it is not text at all."""
    origin = str(path)
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return _reject(origin, RejectReason.NOT_TEXT, f"binary data: {kind} signature {magic!r}")
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if encoding is None and b"\x00" in head:
        encoding = _nul_verdict(origin, head)
        if isinstance(encoding, Rejection):
            return encoding
    if encoding is None:
        encoding = "utf-8" if _is_utf8(path) else _guess_legacy_encoding(path)
        if encoding is None:
            return _reject(origin, RejectReason.ENCODING, "not UTF-8, and no known encoding decodes the bytes as readable text")
    sample = head.decode(encoding, errors="ignore")  # the head may cut a multi-byte char
    controls = len(_BINARY_CONTROLS.findall(sample))
    if sample and controls / len(sample) > 0.30:
        return _reject(origin, RejectReason.NOT_TEXT, f"binary data: {controls / len(sample):.0%} control characters in the first 8 KB")
    return encoding


def _read_text(path: Path) -> str | Rejection:
    """A whole-file text format, decoded, with newlines normalised to '\\n' and no BOM."""
    encoding = _detect_encoding(path)
    if isinstance(encoding, Rejection):
        return encoding
    # Text mode's universal newlines turn \r\n and \r into \n for every later stage.
    # Every BOM found above selects a codec that drops it (utf-8-sig, utf-16, utf-32).
    with path.open(encoding=encoding, errors="strict") as fh:
        text = fh.read()
    if not text.strip():
        return _reject(str(path), RejectReason.EMPTY, "file holds only whitespace")
    return text


# ---------------------------------------------------------------------------
# Field normalisation shared by the tabular formats (and HTML metadata)
# ---------------------------------------------------------------------------

_AND = re.compile(r"\s+(?:and|&)\s+", re.IGNORECASE)
_BY = re.compile(r"^by\s+", re.IGNORECASE)


def split_authors(value: Any) -> list[str]:
    """A list, or "A; B" / "A, B and C" -> ["A", "B", "C"]. Splits on ';' when present
    (so "Doe, Jane; Roe, Rick" survives), else on ','; "Doe, Jane" alone is
    ambiguous and comes out as two names."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value if v is not None]
    else:
        text = str(value)
        parts = [p for chunk in text.split(";" if ";" in text else ",") for p in _AND.split(chunk)]
    names = [_BY.sub("", p.strip()).strip() for p in parts]
    return list(dict.fromkeys(n for n in names if n))  # drop blanks and repeats, keep order


_YEAR = re.compile(r"\b\d{4}\b")


def normalise_date(value: Any) -> str | None:
    """ISO 8601 (YYYY-MM-DD, or a full datetime when the input has a time), else None:
    an unparseable date is lost metadata, not a reason to drop the article."""
    if isinstance(value, datetime):  # before date: datetime is a date subclass
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            return parse(text).isoformat()
        except ValueError:
            pass
    if not _YEAR.search(text):
        return None  # dateutil would fill a missing year with this year's: a made-up date
    try:
        from dateutil import parser as dateutil_parser
    except ImportError:
        return None
    try:
        parsed = dateutil_parser.parse(text, default=datetime(2000, 1, 1))
    except (ValueError, OverflowError):
        return None
    has_time = ":" in text or parsed.tzinfo is not None
    return parsed.isoformat() if has_time else parsed.date().isoformat()


def _opt_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    text = str(value).strip()
    return text or None


def _from_record(origin: str, record: Mapping[Any, Any], columns: TableColumns) -> Item:
    """One tabular record -> a document, or why it cannot be one."""
    if columns.text not in record:
        found = ", ".join(str(k) for k in record if k is not None)
        return _reject(origin, RejectReason.MISSING_FIELD, f"no '{columns.text}' field (found: {found or 'none'})")
    text = record[columns.text]
    if text is None:
        return _reject(origin, RejectReason.EMPTY, f"'{columns.text}' is null")
    if not isinstance(text, str):
        return _reject(origin, RejectReason.MISSING_FIELD, f"'{columns.text}' is a {type(text).__name__}, not text")
    if not text.strip():
        return _reject(origin, RejectReason.EMPTY, f"'{columns.text}' is empty")
    return RawDocument(
        origin=origin,
        text=text,
        title=_opt_str(record.get(columns.title)),
        authors=split_authors(record.get(columns.authors)),
        published=normalise_date(record.get(columns.published)),
        source=_opt_str(record.get(columns.source)),
        url=_opt_str(record.get(columns.url)),
    )


# ---------------------------------------------------------------------------
# One reader per format; each yields documents and rejections
# ---------------------------------------------------------------------------

_SENTENCE_END = (".", "!", "?", ":", "。", "！", "？")


def _looks_like_headline(line: str) -> bool:
    return not _BY.match(line) and count_words(line) <= 25 and not line.endswith(_SENTENCE_END)


def split_headline(text: str) -> tuple[str | None, str]:
    """(title, body): the first non-empty line is a title when it reads like a headline
    and something follows it. The body is otherwise left exactly as it was."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None, text
    headline, rest = lines[first].strip(), lines[first + 1 :]
    if not _looks_like_headline(headline) or not any(line.strip() for line in rest):
        return None, text
    while not rest[0].strip():  # the blank lines that separated title and body
        rest.pop(0)
    return headline, "\n".join(rest)


def _whole_text(parse: Callable[[Path, str, InputConfig], Iterator[Item]]) -> Callable[[Path, InputConfig], Iterator[Item]]:
    """A reader for a whole-file format: decode the file (or reject it), then parse the text."""

    def read(path: Path, config: InputConfig) -> Iterator[Item]:
        text = _read_text(path)
        if isinstance(text, Rejection):
            yield text
        else:
            yield from parse(path, text, config)

    return read


@_whole_text
def _read_txt(path: Path, text: str, config: InputConfig) -> Iterator[Item]:
    title, body = split_headline(text)
    yield RawDocument(origin=str(path), text=body, title=title)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_ATX_TITLE = re.compile(r"^ {0,3}#{1,2}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_HRULE = re.compile(r"^ {0,3}([-*_])[ \t]*(\1[ \t]*){2,}$")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}(>[ \t]?)+")
_BULLET = re.compile(r"^([ \t]*)[*+-][ \t]+")
_IMAGE = re.compile(r"!\[[^\]]*\](?:\((?:[^()]|\([^)]*\))*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]+)\](?:\((?:[^()]|\([^)]*\))*\)|\[[^\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_CODE = re.compile(r"`+([^`]+)`+")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"\*(?=\S)(.+?)(?<=\S)\*")
_EM_UNDER = re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")  # not inside snake_case words


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """Simple `key: value` YAML front matter (common in exported articles), so it
    becomes metadata instead of body text."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).split("\n"):
        key, sep, value = line.partition(":")
        if sep and value.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[match.end() :]


def _strip_markdown_line(line: str) -> str:
    line = _HEADING.sub(r"\1", line)
    line = _QUOTE.sub("", line)
    line = _BULLET.sub(r"\1", line)
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _CODE.sub(r"\1", line)
    line = _STRONG.sub(r"\2", line)
    line = _EM_STAR.sub(r"\1", line)
    return _EM_UNDER.sub(r"\1", line)


def strip_markdown(body: str) -> str:
    """Markdown -> plain text, keeping paragraph breaks; code inside fences is kept verbatim."""
    out: list[str] = []
    in_fence = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif in_fence:
            out.append(line)
        elif not (_HRULE.match(line) or _REF_DEF.match(line)):
            out.append(_strip_markdown_line(line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def _markdown_title(text: str) -> tuple[str | None, str]:
    """A leading level-1/2 heading (ATX `# T`, or `T` underlined with === / ---) -> title."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None, text
    if match := _ATX_TITLE.match(lines[first]):
        return _strip_markdown_line(match.group(1)).strip(), "\n".join(lines[first + 1 :])
    if first + 1 < len(lines) and _SETEXT_UNDERLINE.match(lines[first + 1]) and not _FENCE.match(lines[first]):
        return _strip_markdown_line(lines[first]).strip(), "\n".join(lines[first + 2 :])
    return None, text


@_whole_text
def _read_md(path: Path, text: str, config: InputConfig) -> Iterator[Item]:
    meta, text = _front_matter(text)
    title, body = _markdown_title(text)
    body = strip_markdown(body)
    if not body.strip():
        yield _reject(str(path), RejectReason.EMPTY, "no text besides the heading")
        return
    yield RawDocument(
        origin=str(path),
        text=body,
        title=title or meta.get("title"),
        authors=split_authors(meta.get("authors") or meta.get("author")),
        published=normalise_date(meta.get("published") or meta.get("date")),
        source=meta.get("source"),
        url=meta.get("url"),
    )


_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)


@_whole_text
def _read_html(path: Path, html: str, config: InputConfig) -> Iterator[Item]:
    import trafilatura  # heavy import, paid only by runs that read HTML

    origin = str(path)
    # Entity declarations are how "billion laughs" and external-entity attacks start;
    # no news page needs one, so refuse before any parser sees the document.
    if _ENTITY_DECL.search(html):
        yield _reject(origin, RejectReason.PARSE_ERROR, "DTD entity declarations are not allowed")
        return
    doc = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    text = getattr(doc, "text", None)
    if not text or not text.strip():
        yield _reject(origin, RejectReason.NOT_TEXT, "no article body found")
        return
    title = _opt_str(doc.title)
    # trafilatura keeps the page's <h1> as the body's first line; like the .txt reader,
    # hand the headline over as `title` only, so it is not summarised as a sentence.
    first, _, rest = text.partition("\n")
    if title and rest.strip() and first.strip().casefold() == title.casefold():
        text = rest
    yield RawDocument(
        origin=origin,
        text=text,
        title=title,
        authors=split_authors(doc.author),
        published=normalise_date(doc.date),
        source=_opt_str(doc.sitename),
        url=_opt_str(doc.url),
    )


def _read_jsonl(path: Path, config: InputConfig) -> Iterator[Item]:
    encoding = _detect_encoding(path)
    if isinstance(encoding, Rejection):
        yield encoding
        return
    # Streamed line by line: a JSONL file can hold millions of articles.
    with path.open(encoding=encoding, errors="strict") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            origin = f"{path}:{line_no}"
            record, error = _parse_json(line)
            if error is None and not isinstance(record, dict):
                error = _not_an_object(record)
            if error is not None:
                yield _reject(origin, RejectReason.PARSE_ERROR, f"line {line_no}: {error}")
            else:
                yield _from_record(origin, record, config.columns)


def _parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why it is not JSON)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # absurd nesting or number size
        return None, f"{type(exc).__name__}: {exc}"


def _not_an_object(value: Any) -> str:
    return f"expected a JSON object, got {type(value).__name__}"


@_whole_text
def _read_json(path: Path, text: str, config: InputConfig) -> Iterator[Item]:
    origin = str(path)
    data, error = _parse_json(text)
    if error is not None:
        yield _reject(origin, RejectReason.PARSE_ERROR, error)
        return
    if isinstance(data, dict):  # one article per file
        yield _from_record(origin, data, config.columns)
    elif isinstance(data, list):
        for row, record in enumerate(data):
            if isinstance(record, dict):
                yield _from_record(f"{path}#{row}", record, config.columns)
            else:
                yield _reject(f"{path}#{row}", RejectReason.PARSE_ERROR, _not_an_object(record))
    else:
        yield _reject(origin, RejectReason.PARSE_ERROR, f"expected an object or an array of objects, got {type(data).__name__}")


def _read_csv(path: Path, config: InputConfig) -> Iterator[Item]:
    origin = str(path)
    encoding = _detect_encoding(path)
    if isinstance(encoding, Rejection):
        yield encoding
        return
    # The csv module refuses fields over 128 KB by default; a long article is legitimate.
    # (A process-wide setting: it only ever grows, up to the configured file limit.)
    csv.field_size_limit(max(csv.field_size_limit(), config.max_file_bytes))
    text_column = config.columns.text
    with path.open(encoding=encoding, errors="strict", newline="") as fh:
        reader = csv.DictReader(fh)
        row = 0
        try:
            header = reader.fieldnames
            if not header:
                return  # no header, no rows: read_records reports the file as empty
            reader.fieldnames = [h.strip() for h in header]  # " text" is still the text column
            if text_column not in reader.fieldnames:
                yield _reject(origin, RejectReason.MISSING_FIELD, f"no '{text_column}' column (found: {', '.join(reader.fieldnames)})")
                return
            for record in reader:
                yield _from_record(f"{path}#{row}", record, config.columns)
                row += 1
        except csv.Error as exc:  # e.g. an unterminated quote: the rest cannot be trusted
            yield _reject(f"{path}#{row}", RejectReason.PARSE_ERROR, f"row {row}: {exc}")


def _is_string_type(arrow_type: Any) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type)


def _read_parquet(path: Path, config: InputConfig) -> Iterator[Item]:
    origin = str(path)
    columns = config.columns
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (FileNotFoundError, PermissionError) as exc:
        yield _reject(origin, RejectReason.UNREADABLE, str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        yield _reject(origin, RejectReason.PARSE_ERROR, f"not a readable Parquet file: {exc}")
        return
    if columns.text not in schema.names:
        yield _reject(origin, RejectReason.MISSING_FIELD, f"no '{columns.text}' column (found: {', '.join(schema.names)})")
        return
    text_type = schema.field(columns.text).type
    if not _is_string_type(text_type):
        yield _reject(origin, RejectReason.PARSE_ERROR, f"column '{columns.text}' has type {text_type}, not string")
        return
    wanted = [columns.text, columns.title, columns.published, columns.authors, columns.source, columns.url]
    present = [c for c in dict.fromkeys(wanted) if c in schema.names]  # read only what we map
    row = 0
    try:
        # Record batches keep memory flat however many rows the file holds.
        for batch in parquet.iter_batches(batch_size=1024, columns=present):
            for record in batch.to_pylist():
                yield _from_record(f"{path}#{row}", record, columns)
                row += 1
    except Exception as exc:  # noqa: BLE001 - a corrupt page mid-file
        yield _reject(f"{path}#{row}", RejectReason.PARSE_ERROR, f"row {row}: {exc}")


_READERS: dict[str, Callable[[Path, InputConfig], Iterator[Item]]] = {
    ".txt": _read_txt,
    ".md": _read_md,
    ".html": _read_html,
    ".htm": _read_html,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}
assert set(_READERS) == set(SUPPORTED_EXTENSIONS), "every extension the config allows needs a reader"


def read_records(path: Path, config: InputConfig) -> Iterator[RawDocument | Rejection]:
    """Yield one RawDocument or Rejection per input record of `path`; never raises for
    bad input, and a file that yields nothing at all is reported as EMPTY."""
    path = Path(path)
    origin = str(path)
    try:
        info = path.stat()
    except OSError as exc:
        yield _reject(origin, RejectReason.UNREADABLE, str(exc))
        return
    if not stat.S_ISREG(info.st_mode):  # from the stat just taken: no second one
        yield _reject(origin, RejectReason.UNREADABLE, _not_a_file(path, info.st_mode))
        return
    size = info.st_size
    if size > config.max_file_bytes:
        yield _reject(origin, RejectReason.TOO_LONG, f"{size} bytes, over max_file_bytes={config.max_file_bytes}")
        return
    if size == 0:
        yield _reject(origin, RejectReason.EMPTY, "zero-byte file")
        return
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        yield _reject(origin, RejectReason.UNSUPPORTED, f"no reader for '{path.suffix or '(none)'}' files")
        return
    produced = 0
    try:
        for item in reader(path, config):
            produced += 1
            yield item
    except OSError as exc:  # vanished, permissions changed, disk error mid-read
        produced += 1
        yield _reject(origin, RejectReason.UNREADABLE, str(exc))
    except UnicodeDecodeError as exc:  # the guessed encoding failed further into the file
        produced += 1
        yield _reject(origin, RejectReason.ENCODING, str(exc))
    except Exception as exc:  # noqa: BLE001 - bad input must become a rejection, never a crash
        produced += 1
        yield _reject(origin, RejectReason.PARSE_ERROR, f"{type(exc).__name__}: {exc}")
    if produced == 0:
        yield _reject(origin, RejectReason.EMPTY, "no records")


def without_excluded(files: list[Path], patterns: Sequence[str]) -> list[Path]:
    """Drop files whose name matches a pattern (a folder's README is not an article)."""
    return [f for f in files if not any(fnmatch.fnmatch(f.name, p) for p in patterns)]


# --- the ingest stage -------------------------------------------------------------------

GROUP_STRIDE = 100_000  # staging index = group * stride + shard within the group


def ingest_files(files: list[str], config: InputConfig, shard_size: int, staging_dir: str, group: int) -> list[ShardRef]:
    """Read a group of files into staging shards of at most `shard_size` records, so one
    huge CSV still becomes bounded shards. Rejections ride along with the shards."""
    refs: list[ShardRef] = []
    documents: list[dict] = []
    rejections: list[Rejection] = []
    started = time.perf_counter()

    def flush() -> None:
        nonlocal started
        if len(refs) >= GROUP_STRIDE:  # the next index would be another group's
            raise ValueError(f"file group {group} would need over {GROUP_STRIDE} shards: raise run.shard_size")
        index = group * GROUP_STRIDE + len(refs)
        refs.append(write_records_shard(Path(staging_dir), STAGE, index, documents, RAW_SCHEMA, rejections, started))
        documents.clear()
        rejections.clear()
        started = time.perf_counter()

    for file in files:
        for item in read_records(Path(file), config):
            if isinstance(item, Rejection):
                rejections.append(item)
            else:
                documents.append(item.to_row())
                if len(documents) >= shard_size:
                    flush()
    if documents or rejections or not refs:
        flush()
    return refs


ingest_task = task(ingest_files, name="ingest", cache_policy=NO_CACHE, persist_result=False, **stage_task_options())

"""WARC files (`.warc`, `.warc.gz`: Common Crawl's CC-NEWS, our own fetch archives, any
crawler's) as an input: `read_warc` streams the file record by record, never holding more
than one response body, so a 1 GB CC-NEWS file reads in flat memory.

Each `response` record is one input, numbered from 0 in file order: its origin is
`PATH#n`, which is how a run's per-file accounting maps it back to its file. A 200 HTML
response (text/html, application/xhtml+xml) becomes a document via `html_document`; any
other type is `not_article`, any other status `http_status`, a body (decoded) over
`input.max_file_bytes` `too_long`. `request`, `warcinfo`, `metadata`, `revisit` and other
records are not articles and not numbered.

The date window (`input.warc_after` <= WARC-Date < `input.warc_before`; a date alone means
its midnight, a time without a zone means UTC) selects which captures are the run's inputs:
a response outside it is skipped without a rejection row (it keeps its number, so origins
do not depend on the window). With a window set, a response without a readable WARC-Date
cannot be placed and is a `parse_error`.

Bodies: a Content-Encoding still on the payload (some crawls store it as sent: gzip,
deflate) and chunked transfer coding are undone with warcio's readers; one no installed
decoder undoes (br, zstd) is an `encoding` rejection. Text is decoded with the charset of
the HTTP headers, else of the page's own `<meta>`, else UTF-8 with replacement characters.

A damaged file (a gzip stream cut short or corrupt, a record shorter than its
Content-Length) gives one `parse_error` naming where, after the records read before it."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataReader
from warcio.recordloader import ArcWarcRecord

from tasks.config import InputConfig
from tasks.records import RejectReason
from tasks.stages.ingest.common import Item, _reject
from tasks.stages.ingest.html import html_document
from tasks.web.http import decode_body
from tasks.web.responses import HTML_TYPES, media_type

_READ_SIZE = 1 << 16
_SNIFF_BYTES = 4096  # where a <meta charset> or a doctype must be (the HTML spec looks at 1024)
_HTML_START = re.compile(rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE | re.DOTALL)
# Browsers read these labels as windows-1252 (WHATWG Encoding), and so do news sites'
# bytes: the curly quotes of "iso-8859-1" pages are cp1252.
_CODING_ALIASES = {"x-gzip": "gzip", "x-deflate": "deflate", "identity": ""}


class DamagedArchive(Exception):
    """The archive's bytes end or break before its records do."""


class _Gunzip:
    """A gzip stream (one member per record, or the whole file in one) as warcio reads it.
    Python's gzip module raises on a cut or corrupt stream where warcio's own decompression
    only warns and stops; and warcio takes EOFError for a clean end of file, so it is
    renamed here, or a truncated file would read as a short whole one. Reads are short
    (`read1`): a full-size read would fail on the cut before handing over the whole
    records ahead of it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gzip.read1(size)
        except EOFError as exc:
            raise DamagedArchive(f"gzip stream cut short ({exc})") from exc

    def tell(self) -> int:
        return self._gzip.tell()


@dataclass(frozen=True)
class _Page:
    """An HTML response ready for extraction (done outside the archive's error handling)."""

    origin: str
    url: str
    html: str


def _moment(value: str) -> datetime | None:
    """An ISO date or datetime as an aware UTC datetime (naive means UTC); None if unreadable."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class _Window:
    after: datetime | None
    before: datetime | None

    @classmethod
    def of(cls, config: InputConfig) -> _Window:
        return cls(_moment(config.warc_after) if config.warc_after else None, _moment(config.warc_before) if config.warc_before else None)

    @property
    def active(self) -> bool:
        return self.after is not None or self.before is not None

    def holds(self, moment: datetime) -> bool:
        return (self.after is None or moment >= self.after) and (self.before is None or moment < self.before)


def _open(raw: IO[bytes]) -> IO[bytes] | _Gunzip:
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    return _Gunzip(raw) if head == b"\x1f\x8b" else raw


def _payload(record: ArcWarcRecord) -> IO[bytes] | BufferedReader | None:
    """The payload with chunking and Content-Encoding undone (warcio's `content_stream`, also
    reading `x-gzip`), or None for an encoding no installed decoder undoes (br without brotli).
    A payload labelled gzip but stored decoded is passed through as it is."""
    http = record.http_headers
    coding = (http.get_header("Content-Encoding") or "").strip().lower()
    coding = _CODING_ALIASES.get(coding, coding)
    if coding and coding not in BufferedReader.get_supported_decompressors():
        return None
    if (http.get_header("Transfer-Encoding") or "").strip().lower() == "chunked":
        return ChunkedDataReader(record.raw_stream, decomp_type=coding or None)
    return BufferedReader(record.raw_stream, decomp_type=coding) if coding else record.raw_stream


def _read_body(stream: IO[bytes] | BufferedReader, limit: int) -> bytes | None:
    """The whole payload, or None when it is over `limit` bytes (reading stops there:
    a decompression bomb costs at most `limit` bytes)."""
    chunks, size = [], 0
    while chunk := stream.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _drain(record: ArcWarcRecord) -> None:
    """Read the rest of the record and check it had all its Content-Length promised."""
    if not (record.rec_headers.get_header("Content-Length") or "").strip().isdigit():  # mandatory: the headers were cut short
        raise DamagedArchive("record without a valid Content-Length")
    raw = record.raw_stream
    while raw.read(_READ_SIZE):
        pass
    missing = getattr(raw, "limit", 0)
    if missing:
        raise DamagedArchive(f"record ends {missing} bytes short of its Content-Length")


def _response(record: ArcWarcRecord, origin: str, window: _Window, limit: int) -> Item | _Page | None:
    """What one response record is: a page, a rejection, or None when outside the window."""
    headers = record.rec_headers
    uri = headers.get_header("WARC-Target-URI") or "(no WARC-Target-URI)"
    if window.active:
        fetched = _moment(headers.get_header("WARC-Date") or "")
        if fetched is None:
            return _reject(origin, RejectReason.PARSE_ERROR, f"{uri}: no readable WARC-Date to place in the date window")
        if not window.holds(fetched):
            return None
    http = record.http_headers
    if http is None:
        return _reject(origin, RejectReason.NOT_ARTICLE, f"{uri}: not an HTTP response ({record.content_type})")
    status = http.get_statuscode()
    if status != "200":
        return _reject(origin, RejectReason.HTTP_STATUS, f"{uri}: HTTP status {status}")
    content_type = http.get_header("Content-Type")
    # Common Crawl records the type it detected; a page sent without a type may still be HTML.
    declared = media_type(content_type) or media_type(headers.get_header("WARC-Identified-Payload-Type"))
    if declared and declared not in HTML_TYPES:
        return _reject(origin, RejectReason.NOT_ARTICLE, f"{uri}: content type {declared}")
    stream = _payload(record)
    if stream is None:
        return _reject(origin, RejectReason.ENCODING, f"{uri}: Content-Encoding {http.get_header('Content-Encoding')} cannot be undone here")
    body = _read_body(stream, limit)
    if body is None:
        return _reject(origin, RejectReason.TOO_LONG, f"{uri}: body over max_file_bytes={limit}")
    if not declared and not _HTML_START.match(body[:_SNIFF_BYTES]):
        return _reject(origin, RejectReason.NOT_ARTICLE, f"{uri}: no content type, and the body is not HTML")
    return _Page(origin, uri, decode_body(body, content_type))


def _records(path: Path, raw: IO[bytes], config: InputConfig) -> Iterator[Item | _Page]:
    """Each response record as a page or a rejection; a damaged archive ends in one parse_error."""
    window, index, whole = _Window.of(config), 0, 0
    stream = _open(raw)
    archive = ArchiveIterator(stream)
    try:
        for record in archive:
            item = None
            if record.rec_type == "response":
                item = _response(record, f"{path}#{index}", window, config.max_file_bytes)
                index += 1
            _drain(record)  # before yielding: a record cut short is no input
            whole += 1
            if item is not None:
                yield item
        # warcio takes a record cut off inside its headers for the end of the file: what it
        # left unread after the last whole record is such a cut.
        if (end := stream.tell()) > archive.offset:
            raise DamagedArchive(f"{end - archive.offset} bytes after the last whole record")
    except Exception as exc:  # noqa: BLE001 - zlib, gzip, warcio and our own checks each fail their own way
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):  # the disk, not the archive
            yield _reject(str(path), RejectReason.UNREADABLE, f"{type(exc).__name__}: {exc}")
            return
        where = "uncompressed byte" if isinstance(stream, _Gunzip) else "byte"
        detail = f"damaged WARC at {where} {archive.offset}, after {whole} whole records: {type(exc).__name__}: {exc}"
        yield _reject(str(path), RejectReason.PARSE_ERROR, detail)


def read_warc(path: Path, config: InputConfig) -> Iterator[Item]:
    """Documents and rejections for the response records of a WARC file (see the module
    docstring); never raises for bad input."""
    try:
        raw = Path(path).open("rb")
    except OSError as exc:
        yield _reject(str(path), RejectReason.UNREADABLE, str(exc))
        return
    with raw:
        for item in _records(Path(path), raw, config):
            # Extraction runs here, outside _records' error handling: a failure in it is
            # no sign of a damaged archive.
            yield html_document(item.html, item.origin, url=item.url) if isinstance(item, _Page) else item

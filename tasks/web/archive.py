"""An archive of what the fetcher got: `WarcArchive` writes one WARC 1.1 file (gzipped
per record, unless its name ends in plain `.warc`) holding a `warcinfo` record, then for
each archived response a `request`, a `response` and a `metadata` record.

The file is written under a hidden temporary name in the same folder (`.NAME.part`) and
renamed to its final name on close, so a reader listing the folder never sees half a file.
A `write` that fails part-way is cut back off the file, so the file only ever holds whole
records, and `close` (also on an exception inside the `with` block) keeps what was written.

Headers: `Response.body` holds the payload with its Content-Encoding already undone, so the
headers that described the bytes on the wire no longer describe the stored ones. As Common
Crawl does, each of `Content-Encoding`, `Transfer-Encoding` and `Content-Length` is kept
under the name `X-Crawler-<Name>` (the convention its WARC readers know), and a fresh
`Content-Length` giving the stored body's length is added, so a replay tool or
`warcio`'s `content_stream()` reads the payload as it is. Digests (sha1, base32, as warcio
and Common Crawl write them) are computed over the stored bytes, so the file validates.

HTTP/2 and later have no textual status line: such responses are written as `HTTP/1.1`
and the real version is noted in the `metadata` record, with the fetch time and any
redirects the request went through (the response record itself is the final hop's).
A 304 is not archived: it carries no body, nothing new to keep.

Not thread-safe, by design: one `WarcArchive` is used by one thread at a time (each fetch
batch writes its own file), so there is no lock."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from tasks.web.responses import Response

WARC_VERSION = "WARC/1.1"
CONFORMS_TO = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
# Headers describing the wire form of the body; kept renamed, as Common Crawl does.
_REWRITTEN = ("content-encoding", "transfer-encoding", "content-length")
_RENAMED_PREFIX = "X-Crawler-"
_NOT_ARCHIVED = frozenset({HTTPStatus.NOT_MODIFIED})


def payload_digest(body: bytes) -> str:
    """The `WARC-Payload-Digest` an archive writes for `body` ("sha1:" + base32), to find
    a body's record in an archive or tell two identical bodies apart from different ones."""
    digester = Digester("sha1")
    digester.update(body)
    return str(digester)


def _software() -> str:
    from importlib import metadata

    try:
        return f"newsflow/{metadata.version('newsflow')}"
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "newsflow"


def _warc_date(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds (WARC 1.1 allows them); a naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return datetime_to_iso_date(moment, use_micros=True)


def _clean(value: str) -> str:
    # A CR or LF inside a value would start a new header line (or end the block) in the record.
    return value.replace("\r", " ").replace("\n", " ")


def _archived_headers(response: Response) -> list[tuple[str, str]]:
    """The response's headers as stored: wire-form headers renamed, a true Content-Length added."""
    headers = []
    for name, value in response.headers:
        if name.lower() in _REWRITTEN:
            name = _RENAMED_PREFIX + name
        headers.append((_clean(name), _clean(value)))
    headers.append(("Content-Length", str(len(response.body))))
    return headers


def _protocol(http_version: str) -> str:
    return http_version if http_version in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:  # a code the standard library does not know (e.g. 520)
        return str(status)


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _fields(pairs: list[tuple[str, str]]) -> BytesIO:
    """An `application/warc-fields` block."""
    return BytesIO("".join(f"{name}: {_clean(value)}\r\n" for name, value in pairs).encode("utf-8"))


class WarcArchive:
    """One WARC file of fetched responses; use as a context manager, or call `close`."""

    def __init__(self, path: Path, run_id: str = "") -> None:
        self.path = Path(path)
        self.partial_path = self.path.with_name(f".{self.path.name}.part")
        self.records_written = 0  # WARC records in the file, the warcinfo record included
        self.responses_written = 0  # responses archived (each is a request+response+metadata triple)
        self.bytes_written = 0  # the file's size so far
        self._closed = False
        self._file: IO[bytes] = self.partial_path.open("wb")
        self._writer = WARCWriter(self._file, gzip=not self.path.name.endswith(".warc"), warc_version=WARC_VERSION)
        self._warcinfo_id = self._write_warcinfo(run_id)

    def __enter__(self) -> WarcArchive:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()

    def _write_warcinfo(self, run_id: str) -> str:
        info = {"software": _software(), "format": "WARC File Format 1.1", "conformsTo": CONFORMS_TO, "isPartOf": run_id}
        record = self._writer.create_warcinfo_record(self.path.name, info)
        self._write_records(record)
        return record.rec_headers.get_header("WARC-Record-ID")

    def write(self, response: Response) -> bool:
        """Archive one response; False when it is not archived (a 304)."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        if response.status in _NOT_ARCHIVED:
            return False
        uri, date = response.final_url, _warc_date(response.fetched_at)
        response_id = StatusAndHeadersParser.make_warc_id()
        http_headers = StatusAndHeaders(_status_line(response.status), _archived_headers(response), protocol=_protocol(response.http_version))
        archived = self._writer.create_warc_record(
            uri,
            "response",
            payload=BytesIO(response.body),
            length=len(response.body),
            http_headers=http_headers,
            warc_headers_dict=self._warc_headers("response", response_id, date, uri),
        )
        request_line = f"GET {_request_target(uri)} {_protocol(response.http_version)}"
        request_headers = [(_clean(name), _clean(value)) for name, value in response.request_headers]
        request = self._writer.create_warc_record(
            uri,
            "request",
            http_headers=StatusAndHeaders(request_line, request_headers, is_http_request=True),
            warc_headers_dict=self._warc_headers("request", StatusAndHeadersParser.make_warc_id(), date, uri, response_id),
        )
        metadata = self._metadata(response, self._warc_headers("metadata", StatusAndHeadersParser.make_warc_id(), date, uri, response_id))
        self._write_records(request, archived, metadata)
        self.responses_written += 1
        return True

    def _warc_headers(self, kind: str, record_id: str, date: str, uri: str, concurrent_to: str = "") -> dict[str, str]:
        """A record's WARC headers, in the usual order (type and id first)."""
        headers = {"WARC-Type": kind, "WARC-Record-ID": record_id, "WARC-Date": date, "WARC-Target-URI": uri, "WARC-Warcinfo-ID": self._warcinfo_id}
        if concurrent_to:  # the request and metadata belong to this response
            headers["WARC-Concurrent-To"] = concurrent_to
        return headers

    def _metadata(self, response: Response, headers: dict[str, str]) -> ArcWarcRecord:
        fields = [("fetchTimeMs", str(round(response.seconds * 1000)))]
        if _protocol(response.http_version) != response.http_version:
            fields.append(("httpVersion", response.http_version))
        if response.redirects:
            fields.append(("requestedURI", response.url))
            fields.extend(("redirectedVia", url) for url in response.redirects)
        block = _fields(fields)
        return self._writer.create_warc_record(
            response.final_url, "metadata", payload=block, length=len(block.getvalue()), warc_content_type="application/warc-fields", warc_headers_dict=headers
        )

    def _write_records(self, *records: ArcWarcRecord) -> None:
        """Write records as one unit: on any failure (a full disk, an interrupt) the file is cut
        back to where it was, so it never ends in half a record."""
        start = self._file.tell()
        try:
            for record in records:
                self._writer.write_record(record)
        except BaseException:
            self._file.seek(start)
            self._file.truncate()
            raise
        self.records_written += len(records)
        self.bytes_written = self._file.tell()

    def close(self) -> None:
        """Flush, sync and move the file to its final name (once; later calls do nothing).
        If that fails, the partial file is removed and the error raised."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
            os.fsync(self._file.fileno())  # the rename must not land before the data
            self._file.close()
            os.replace(self.partial_path, self.path)
        except BaseException:
            self._file.close()
            self.partial_path.unlink(missing_ok=True)
            raise

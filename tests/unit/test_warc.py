"""WARC: `WarcArchive` writes what the fetcher got, `read_warc` reads it back (and Common
Crawl-style files) as documents and rejections."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tasks.config import InputConfig
from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.ingest.warc import read_warc
from tasks.web.archive import WarcArchive, payload_digest
from tasks.web.http import decode_body
from tasks.web.responses import Response

CONFIG = InputConfig()


def page(outlet: str, headline: str, paragraphs: list[str], charset: str = "utf-8") -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="{charset}"><title>{headline} | {outlet}</title>'
        f'<meta property="og:title" content="{headline}"><meta property="og:site_name" content="{outlet}"></head>'
        f"<body><nav><a href='/'>Home</a> <a href='/local'>Local</a></nav><article><h1>{headline}</h1>\n{body}\n</article>"
        f"<footer><p>Copyright {outlet}. All rights reserved.</p></footer></body></html>"
    )


LIBRARY = page(
    "The Valley Courier",
    "Riverside library reopens after two-year restoration",
    [
        "The Riverside public library reopened its doors on Saturday morning after a two-year restoration that "
        "repaired the flood-damaged reading room and replaced the building’s leaking copper roof.",
        "More than four hundred residents queued outside before the opening, many of them carrying books they had "
        "borrowed before the closure and never managed to return, which the librarians accepted without fines.",
        "The café on the ground floor, run by volunteers from the local historical society, will open every weekday "
        "and serve as a meeting place for the reading groups that lost their home when the library shut.",
    ],
    charset="windows-1252",
)
TRAMS = page(
    "Northgate Herald",
    "City approves tram extension to the northern estates",
    [
        "Northgate city council approved on Wednesday a four-kilometre extension of the tram line that will connect "
        "the northern housing estates to the central station for the first time since the nineteen sixties.",
        "Residents of the estates have campaigned for a direct connection for more than a decade, arguing that the "
        "current bus service is too slow and too unreliable for people who work early shifts in the city centre.",
        "Work on the new tracks is due to start next spring, and the council expects the first trams to run on the "
        "extended line within three years if the national transport grant is confirmed this summer.",
    ],
)
SOLAR = page(
    "The Pine Ridge Sentinel",
    "Pine Ridge school roof now powers its classrooms",
    [
        "Pine Ridge primary school switched on two hundred solar panels on its roof this week, a project paid for by "
        "a parents' fundraising campaign and a grant from the regional energy agency.",
        "The head teacher said the panels should cover most of the school's electricity during the spring and summer "
        "terms, and that the savings will go towards new books and a second music teacher.",
        "Pupils from the oldest class will track the panels' output on a display in the entrance hall as part of their "
        "science lessons, comparing sunny and cloudy days over the rest of the school year.",
    ],
)


def response(url: str, status: int, content_type: str, body: bytes, day: int, **extra) -> Response:
    headers = (("Content-Type", content_type), ("Content-Encoding", "gzip"), ("Content-Length", "123"), ("Server", "nginx"))
    return Response(
        url=url,
        final_url=extra.pop("final_url", url),
        status=status,
        headers=headers,
        body=body,
        fetched_at=datetime(2024, 5, day, 8, 30, 15, 250000, tzinfo=UTC),
        seconds=0.4,
        request_headers=(("Host", url.split("/")[2]), ("User-Agent", "newsflow-test/1.0"), ("Accept-Encoding", "gzip, br")),
        **extra,
    )


RESPONSES = [
    response(
        "http://valley-courier.example/l/123",
        200,
        "text/html; charset=iso-8859-1",  # as labelled by the server; the bytes are cp1252 (curly quote)
        LIBRARY.encode("cp1252"),
        1,
        final_url="https://valley-courier.example/local/library-reopens",
        redirects=("http://valley-courier.example/l/123", "https://valley-courier.example/l/123"),
    ),
    response("https://northgate-herald.example/news/trams", 200, "text/html", TRAMS.encode(), 2),
    response("https://northgate-herald.example/budget.pdf", 200, "application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8, 3),
    response("https://northgate-herald.example/news/gone", 404, "text/html", b"<html><body><h1>Not found</h1></body></html>", 4),
]
NOT_MODIFIED = response("https://northgate-herald.example/news/trams", 304, "text/html", b"", 5)


def write_archive(path: Path) -> list[int]:
    """The archive of RESPONSES (and a 304) at `path`; returns the byte offsets where each response's records start."""
    starts = []
    with WarcArchive(path, run_id="run-2024-05-test") as archive:
        for item in RESPONSES:
            starts.append(archive.bytes_written)
            assert archive.write(item)
        assert not archive.write(NOT_MODIFIED)
        assert archive.records_written == 1 + 3 * len(RESPONSES)
        assert archive.responses_written == len(RESPONSES)
        assert not path.exists() and archive.partial_path.exists()  # nobody sees half a file
        size = archive.bytes_written
    assert path.stat().st_size == size and not archive.partial_path.exists()
    return starts


def check_read(items: list[RawDocument | Rejection], path: Path) -> None:
    library, trams, pdf, missing = items
    assert isinstance(library, RawDocument) and isinstance(trams, RawDocument)
    assert (library.origin, library.url) == (f"{path}#0", "https://valley-courier.example/local/library-reopens")
    assert (trams.origin, trams.url) == (f"{path}#1", "https://northgate-herald.example/news/trams")
    assert "building’s leaking copper roof" in library.text and "café" in library.text
    assert "northern housing estates" in trams.text
    assert library.title == "Riverside library reopens after two-year restoration"
    assert isinstance(pdf, Rejection) and pdf.reason == RejectReason.NOT_ARTICLE and pdf.origin == f"{path}#2"
    assert "budget.pdf" in pdf.detail and "application/pdf" in pdf.detail
    assert isinstance(missing, Rejection) and missing.reason == RejectReason.HTTP_STATUS and missing.origin == f"{path}#3"
    assert "news/gone" in missing.detail and "404" in missing.detail


@pytest.mark.parametrize("name", ["fetch.warc.gz", "fetch.warc"])
def test_an_archive_reads_back_as_documents_and_rejections(tmp_path: Path, name: str):
    path = tmp_path / name
    write_archive(path)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"WA")
    check_read(list(read_warc(path, CONFIG)), path)


def test_the_archive_validates_and_says_what_it_changed(tmp_path: Path):
    path = tmp_path / "fetch.warc.gz"
    write_archive(path)
    records = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh, check_digests="raise"):  # raises on a wrong digest
            records.append((record, record.content_stream().read()))
    kinds = [r.rec_type for r, _ in records]
    assert kinds == ["warcinfo"] + ["request", "response", "metadata"] * len(RESPONSES)
    assert all(r.rec_headers.protocol == "WARC/1.1" for r, _ in records)
    assert b"isPartOf: run-2024-05-test" in records[0][1] and b"software: newsflow" in records[0][1]
    request, first, metadata = (r for r, _ in records[1:4])
    assert request.http_headers.protocol == "GET" and request.http_headers.statusline == "/local/library-reopens HTTP/1.1"
    assert request.http_headers.get_header("User-Agent") == "newsflow-test/1.0"
    assert first.rec_headers.get_header("WARC-Target-URI") == "https://valley-courier.example/local/library-reopens"
    assert first.rec_headers.get_header("WARC-Date") == "2024-05-01T08:30:15.250000Z"
    assert request.rec_headers.get_header("WARC-Concurrent-To") == first.rec_headers.get_header("WARC-Record-ID")
    assert first.rec_headers.get_header("WARC-Payload-Digest") == payload_digest(RESPONSES[0].body)
    http = first.http_headers
    assert http.get_header("Content-Encoding") is None and http.get_header("X-Crawler-Content-Encoding") == "gzip"
    assert http.get_header("Content-Length") == str(len(RESPONSES[0].body)) and http.get_header("X-Crawler-Content-Length") == "123"
    assert records[2][1] == RESPONSES[0].body  # the stored body reads as it was fetched
    fields = records[3][1].decode()
    assert "requestedURI: http://valley-courier.example/l/123" in fields and "redirectedVia: https://valley-courier.example/l/123" in fields
    assert "fetchTimeMs: 400" in fields


def test_a_failed_write_leaves_only_whole_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "fetch.warc.gz"
    with WarcArchive(path) as archive:
        archive.write(RESPONSES[1])
        real = archive._writer.write_record
        calls = []

        def failing(record, params=None):
            calls.append(record)
            if len(calls) == 2:  # after the request record, inside the response record
                archive._file.write(b"half a record")
                raise OSError("disk full")
            real(record, params)

        monkeypatch.setattr(archive._writer, "write_record", failing)
        with pytest.raises(OSError, match="disk full"):
            archive.write(RESPONSES[0])
    items = list(read_warc(path, CONFIG))
    assert [type(i) for i in items] == [RawDocument] and items[0].origin == f"{path}#0"


@pytest.mark.parametrize(
    "after, before, kept",
    [
        ("2024-05-02", "", [1, 2, 3]),  # a date alone is its midnight, UTC
        ("", "2024-05-02", [0]),  # before is exclusive
        ("2024-05-01T08:30:15.250000+00:00", "2024-05-03T08:30:15.25", [0, 1]),  # at `after` is in, at `before` is out
        ("2024-05-02T10:00:00+02:00", "2024-05-04", [1, 2]),  # 08:00 UTC: the 08:30 capture is in
    ],
)
def test_the_date_window_selects_captures_by_warc_date(tmp_path: Path, after: str, before: str, kept: list[int]):
    path = tmp_path / "fetch.warc.gz"
    write_archive(path)
    items = list(read_warc(path, InputConfig(warc_after=after, warc_before=before)))
    # Outside the window: no row at all; inside: the same numbers as without a window.
    assert [i.origin for i in items] == [f"{path}#{n}" for n in kept]


@pytest.mark.parametrize("name", ["fetch.warc.gz", "fetch.warc"])
@pytest.mark.parametrize("into", [0.5, 0.01])  # halfway into the PDF's records; inside its first WARC headers
def test_a_file_cut_in_the_middle_keeps_what_came_before(tmp_path: Path, name: str, into: float):
    path = tmp_path / name
    starts = write_archive(path)
    data = path.read_bytes()
    path.write_bytes(data[: starts[2] + int((starts[3] - starts[2]) * into)])
    items = list(read_warc(path, CONFIG))
    assert [type(i) for i in items] == [RawDocument, RawDocument, Rejection]
    broken = items[-1]
    assert broken.reason == RejectReason.PARSE_ERROR and broken.origin == str(path) and "damaged WARC at" in broken.detail


def test_garbage_and_an_empty_file_do_not_raise(tmp_path: Path):
    garbage = tmp_path / "junk.warc.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    (item,) = read_warc(garbage, CONFIG)
    assert item.reason == RejectReason.PARSE_ERROR
    (item,) = read_warc(tmp_path / "missing.warc", CONFIG)
    assert item.reason == RejectReason.UNREADABLE
    for name in ("empty.warc.gz", "empty.warc"):
        (tmp_path / name).write_bytes(b"")
        assert list(read_warc(tmp_path / name, CONFIG)) == []  # read_records reports a zero-byte file as empty before any reader


def cc_style_warc(path: Path, html: bytes, headers: list[tuple[str, str]]) -> None:
    """A response record written the way some crawls store it: the payload as sent on the wire."""
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.0")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "some-crawler/2.0", "isPartOf": "CC-NEWS"}))
        http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
        record = writer.create_warc_record(
            "https://pineridge-sentinel.example/2024/05/solar-school",
            "response",
            payload=BytesIO(html),
            length=len(html),
            http_headers=http,
            warc_headers_dict={"WARC-Date": "2024-05-06T11:00:00Z", "WARC-Identified-Payload-Type": "text/html"},
        )
        writer.write_record(record)


def chunked(data: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 500]), data[i : i + 500]) for i in range(0, len(data), 500)) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "coding, wire",
    [
        ("gzip", gzip.compress),  # the payload as sent, still compressed
        ("x-gzip", gzip.compress),
        ("gzip", lambda data: data),  # labelled gzip, stored decoded
        ("gzip, chunked", lambda data: chunked(gzip.compress(data))),
    ],
)
def test_a_cc_news_style_record_with_an_encoded_payload(tmp_path: Path, coding: str, wire):
    path = tmp_path / "CC-NEWS-20240506110000-00001.warc.gz"
    payload = wire(SOLAR.replace('charset="utf-8"', 'charset="windows-1252"').encode("cp1252"))
    content_coding, _, transfer = coding.partition(", ")
    headers = [("Content-Type", "text/html"), ("Content-Encoding", content_coding)]
    headers.append(("Transfer-Encoding", transfer) if transfer else ("Content-Length", str(len(payload))))
    cc_style_warc(path, payload, headers)
    (doc,) = read_warc(path, CONFIG)
    assert isinstance(doc, RawDocument) and doc.origin == f"{path}#0"
    assert doc.url == "https://pineridge-sentinel.example/2024/05/solar-school"
    assert "two hundred solar panels" in doc.text and "parents' fundraising" in doc.text


def test_an_encoding_that_cannot_be_undone_is_rejected(tmp_path: Path):
    path = tmp_path / "zstd.warc.gz"
    cc_style_warc(path, b"\x1b\x00\xf8\x25" * 50, [("Content-Type", "text/html"), ("Content-Encoding", "zstd"), ("Content-Length", "200")])
    (item,) = read_warc(path, CONFIG)
    assert item.reason == RejectReason.ENCODING and "zstd" in item.detail


def test_a_response_without_a_content_type_is_sniffed(tmp_path: Path):
    path = tmp_path / "untyped.warc.gz"
    cc_style_warc(path, TRAMS.encode(), [("Content-Length", str(len(TRAMS.encode())))])
    (doc,) = read_warc(path, CONFIG)
    assert isinstance(doc, RawDocument) and "tram line" in doc.text


def test_a_body_over_the_size_limit_is_too_long(tmp_path: Path):
    path = tmp_path / "fetch.warc.gz"
    write_archive(path)
    items = list(read_warc(path, InputConfig(max_file_bytes=1000)))
    assert [i.reason for i in items[:2]] == [RejectReason.TOO_LONG, RejectReason.TOO_LONG]
    assert [i.origin for i in items] == [f"{path}#{n}" for n in range(4)]


@pytest.mark.parametrize(
    "body, content_type, text",
    [
        ("café “quoted”".encode("cp1252"), "text/html; charset=ISO-8859-1", "café “quoted”"),  # the label browsers read as cp1252
        ('<meta charset="koi8-r">Привет'.encode("koi8_r"), "text/html", "Привет"),
        ("\ufeffnaïve".encode(), "text/html; charset=cp1252", "naïve"),  # a BOM wins
        (
            "<p>Le café du port ouvre tous les jours de la semaine, sauf le dimanche.</p>".encode("cp1252"),
            "text/html; charset=no-such-codec",
            "café du port ouvre tous les jours de la semaine, sauf le dimanche.</p>",
        ),  # unknown label, not UTF-8: the guess reads windows-1252
    ],
)
def test_decode_body(body: bytes, content_type: str, text: str):
    assert decode_body(body, content_type).endswith(text)

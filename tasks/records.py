"""Record types shared by every stage: what a document is between stages, why one is
rejected, and the small reference that stages hand each other instead of data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import pyarrow as pa


class RejectReason(StrEnum):
    """The fixed vocabulary of reasons an input record is not kept."""

    EMPTY = "empty"  # nothing but whitespace after cleaning
    NOT_TEXT = "not_text"  # binary data, or a page with no article body
    ENCODING = "encoding"  # bytes that decode to no known text encoding
    PARSE_ERROR = "parse_error"  # malformed JSON/CSV/Parquet/HTML
    MISSING_FIELD = "missing_field"  # a tabular record without the configured text column
    UNREADABLE = "unreadable"  # the file vanished or cannot be opened
    UNSUPPORTED = "unsupported"  # a file extension no reader handles
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    LANGUAGE = "language"  # detected language not in the config's allowed list
    DUPLICATE = "duplicate"  # same normalised text as a document kept earlier in the run
    # Web inputs (feeds, sitemaps, pages):
    BLOCKED = "blocked"  # a URL refused before any request: not http(s), or a private, loopback or metadata address
    ROBOTS = "robots"  # the site's robots.txt disallows it for our user agent
    FETCH_ERROR = "fetch_error"  # DNS failure, refused connection, timeout, TLS error, redirect loop
    HTTP_STATUS = "http_status"  # the server answered 4xx or 5xx
    TOO_LARGE = "too_large"  # a response over fetch.max_bytes (decompressed)
    NOT_ARTICLE = "not_article"  # a body that is no article page (PDF, image, a bare listing)
    PAYWALLED = "paywalled"  # a paywall or consent page instead of the article


@dataclass(frozen=True)
class RawDocument:
    """One input record as read, before cleaning. `origin` says where it came from
    (file path, plus `:line` or `#row` inside tabular files)."""

    origin: str
    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published: str | None = None  # ISO 8601 date or datetime, when the input has one
    source: str | None = None  # the outlet (publisher), when known
    url: str | None = None
    wire: str | None = None  # a news agency credited for the story (AP, Reuters, AFP), kept out of authors
    field_sources: dict[str, str] = field(default_factory=dict)  # metadata field -> where it came from (jsonld, feed, ...)

    def to_row(self) -> dict:
        row = asdict(self)
        row["field_sources"] = json.dumps(self.field_sources, sort_keys=True) if self.field_sources else None
        return row

    @classmethod
    def from_row(cls, row: dict) -> RawDocument:
        """A staging row back into a document (field_sources travels as JSON text)."""
        sources = row.get("field_sources")
        return cls(**{**row, "field_sources": json.loads(sources) if sources else {}})


# Staging table of RawDocument rows; a test keeps it in step with the dataclass.
RAW_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("text", pa.string()),
        ("title", pa.string()),
        ("authors", pa.list_(pa.string())),
        ("published", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("wire", pa.string()),
        ("field_sources", pa.string()),
    ]
)


@dataclass(frozen=True)
class Rejection:
    origin: str
    reason: RejectReason
    detail: str
    stage: str

    def to_row(self) -> dict:
        return {"origin": self.origin, "reason": str(self.reason), "detail": self.detail, "stage": self.stage}


@dataclass(frozen=True)
class CleanDocument:
    """A document as cleaning keeps it: repaired text, metadata, sentences, content id."""

    doc_id: str  # sha256 hex of normalise_for_hash(text)
    origin: str
    source: str | None
    title: str | None
    authors: list[str]
    published: str | None
    url: str | None
    wire: str | None  # the news agency credited (AP, Reuters, AFP), when the page names one
    field_sources: str | None  # JSON: metadata field -> where it came from (jsonld, opengraph, feed, byline, ...)
    language: str  # ISO 639-1 code, 'und' when undetectable
    text: str  # paragraphs joined by "\n"
    sentences: list[str] = field(default_factory=list)  # exact substrings of `text`, in order

    def to_row(self) -> dict:
        return asdict(self)


# Staging table of CleanDocument rows.
CLEAN_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("origin", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
        ("authors", pa.list_(pa.string())),
        ("published", pa.string()),
        ("url", pa.string()),
        ("wire", pa.string()),
        ("field_sources", pa.string()),
        ("language", pa.string()),
        ("text", pa.string()),
        ("sentences", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class ShardRef:
    """What one stage hands the next for one shard: a staging file, not its data.

    Small and JSON-serialisable on purpose, so nothing large travels through Prefect."""

    stage: str
    index: int
    path: str
    rows: int
    content_hash: str
    parts: dict[str, str] = field(default_factory=dict)  # further named staging files of this shard
    rejected_path: str | None = None  # staging file of the records this stage rejected
    rejected_rows: int = 0
    seconds: float = 0.0
    cache_key: str = ""  # the shard cache's key for this result (tasks/dataset/shard_cache.py); empty when not cached
    cached: bool = False  # taken from the cache (an earlier, unfinished run computed it), not computed
    computed_by: str = ""  # host:pid of the process that computed it (a Dask worker, or the run's own process)


@dataclass
class StageOutput:
    """What a stage's computation returns for one shard: its main table, further named
    tables, and the records it rejected. The stage shell writes them to staging."""

    table: pa.Table
    parts: dict[str, pa.Table] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)

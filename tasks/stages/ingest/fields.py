"""Field normalisation shared by the tabular formats (and HTML metadata): author lists
(`split_authors`), dates to ISO 8601 (`normalise_date`), optional strings, and one
tabular record to a RawDocument, or the rejection saying why it cannot be one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from tasks.config import TableColumns
from tasks.records import RawDocument, RejectReason
from tasks.stages.ingest.common import Item, _reject

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
    if value is None or (isinstance(value, float) and value != value):  # noqa: PLR0124 - None or NaN
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

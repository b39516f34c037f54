"""One reader per format (.txt, .md, .html, .json, .jsonl, .csv, .parquet), each yielding
documents and rejections, and `read_records`, which picks the reader for a file, checks
its size and type first, and turns any error while reading into a rejection, so bad
input never raises. Line-based and tabular formats are streamed; whole-text formats
are decoded by `decoding` first."""

from __future__ import annotations

import csv
import json
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.config import STREAMED_EXTENSIONS, SUPPORTED_EXTENSIONS, InputConfig, extension_of
from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.ingest.common import Item, _reject
from tasks.stages.ingest.decoding import _detect_encoding, _read_text
from tasks.stages.ingest.fields import (
    _BY,
    _from_record,
    normalise_date,
    split_authors,
)
from tasks.stages.ingest.html import html_document
from tasks.stages.ingest.listing import _not_a_file
from tasks.stages.ingest.warc import read_warc
from tasks.text import count_words

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


@_whole_text
def _read_html(path: Path, html: str, config: InputConfig) -> Iterator[Item]:
    yield html_document(html, str(path))


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
    ".warc": read_warc,
    ".warc.gz": read_warc,
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
    extension = extension_of(path)
    if size > config.max_file_bytes and extension not in STREAMED_EXTENSIONS:
        yield _reject(origin, RejectReason.TOO_LONG, f"{size} bytes, over max_file_bytes={config.max_file_bytes}")
        return
    if size == 0:
        yield _reject(origin, RejectReason.EMPTY, "zero-byte file")
        return
    reader = _READERS.get(extension)
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

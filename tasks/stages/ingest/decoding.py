"""Reading text safely: tell text from binary data (magic numbers, NUL bytes, control
characters), pick the codec (a BOM, strict UTF-8 streamed, else the best legacy code
page, cp1252 first) and decode a whole file with newlines normalised and no BOM
(`_read_text`), or say in a rejection why the file is not readable text."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from tasks.records import Rejection, RejectReason
from tasks.stages.ingest.common import _reject

SNIFF_BYTES = 8192  # how much of a file we look at to tell text from binary
_CHUNK = 1 << 20  # read size for the streaming UTF-8 check

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

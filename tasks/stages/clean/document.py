"""The stage's per-document function: `clean_document` takes one RawDocument through
repair, byline extraction, length checks, language detection and sentence splitting to
a CleanDocument with its content id, or to a Rejection; it never raises. Text far too
long to come out under max_chars is rejected before any cleaning (`_far_too_long`)."""

from __future__ import annotations

import json

from tasks.config import CleanConfig
from tasks.records import CleanDocument, RawDocument, Rejection, RejectReason
from tasks.stages.clean.bylines import extract_byline, join_paragraphs
from tasks.stages.clean.language import detect_language
from tasks.stages.clean.repair import _CONTROLS, clean_text, doc_id_for
from tasks.stages.clean.sentences import split_sentences
from tasks.text import count_words

STAGE = "clean"


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
    from_record = {
        "authors": [a for a in map(_clean_field, raw.authors or []) if a],
        "source": _clean_field(raw.source),
        "published": _clean_field(raw.published),
    }
    from_byline = {"authors": byline.authors, "source": byline.source, "published": byline.published}
    sources = dict(raw.field_sources)
    sources.update({name: "byline" for name, value in from_record.items() if not value and from_byline[name]})
    chosen = {name: value or from_byline[name] for name, value in from_record.items()}
    return CleanDocument(
        doc_id=doc_id_for(text),
        origin=raw.origin,
        source=chosen["source"],
        title=_clean_field(raw.title),
        authors=chosen["authors"],
        published=chosen["published"],
        url=_clean_field(raw.url),
        wire=_clean_field(raw.wire),
        field_sources=json.dumps(sources, sort_keys=True) if sources else None,
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

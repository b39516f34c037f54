"""Recognised spans tidied before they become mentions: stray brackets and quotes cut off,
and "<organisation> of <place>" read as one organisation's name. Both recognisers need it
now and then; the token head more often, since it labels word pieces one by one."""

from __future__ import annotations

import re

from tasks.stages.entities.recognise import Found

OPENERS = "([{"
CLOSERS = ")]}"
EDGE_MARKS = "\"'‘’“”«»"
JOINER = re.compile(r"^(?: of| of the) $|^ $")  # what may stand between an organisation and its place
ORGANISATIONS = frozenset({"ORG", "FAC"})
PLACES = frozenset({"GPE", "LOC"})


def trimmed_span(sentence: str, found: Found) -> Found | None:
    """The span without an unmatched bracket and what lies beyond it ("UN) Human Rights
    Council" -> "Human Rights Council"), and without quotes at its edges; None if nothing is left."""
    start, end = found.start, found.end
    text = sentence[start:end]
    close = next((k for k, ch in enumerate(text) if ch in CLOSERS and OPENERS[CLOSERS.index(ch)] not in text[:k]), None)
    if close is not None:
        start += close + 1
    text = sentence[start:end]
    opened = next((k for k in range(len(text) - 1, -1, -1) if text[k] in OPENERS and CLOSERS[OPENERS.index(text[k])] not in text[k:]), None)
    if opened is not None:
        end = start + opened
    while start < end and (sentence[start].isspace() or sentence[start] in EDGE_MARKS):
        start += 1
    while end > start and (sentence[end - 1].isspace() or sentence[end - 1] in EDGE_MARKS):
        end -= 1
    if not any(ch.isalnum() for ch in sentence[start:end]):
        return None
    return Found(start, end, found.label) if (start, end) != (found.start, found.end) else found


def joined_spans(sentence: str, found: list[Found]) -> list[Found]:
    """Neighbouring spans read as one organisation where an organisation is followed by
    "of" and a place: "the Permanent Mission of" + "China" is the Permanent Mission of
    China, not a China mention (spaCy usually finds such names whole already)."""
    out: list[Found] = []
    for f in sorted(found, key=lambda f: f.start):
        if out and out[-1].label in ORGANISATIONS and f.label in PLACES:
            between = sentence[out[-1].end : f.start]
            ends_with_of = sentence[out[-1].start : out[-1].end].endswith(" of")
            if JOINER.match(between) and (between.strip() or ends_with_of):
                out[-1] = Found(out[-1].start, f.end, out[-1].label)
                continue
        out.append(f)
    return out


def tidied(sentence: str, found: list[Found]) -> list[Found]:
    """The recogniser's spans of one sentence, trimmed and joined."""
    return joined_spans(sentence, [t for f in found if (t := trimmed_span(sentence, f))])

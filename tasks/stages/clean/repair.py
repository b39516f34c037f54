"""Text repair: line breaks, control and invisible characters, mojibake (ftfy), NFC
and spacing (`clean_text`, idempotent), and the content id: text normalised for hashing
(`normalise_for_hash`: NFKC, casefold, straight quotes, collapsed whitespace) and its
SHA-256 (`doc_id_for`)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import ftfy

# Everything Unicode calls a line break becomes "\n" (ftfy handles \r\n and U+2028 only).
_LINE_BREAKS = re.compile(r"\r\n?|[\v\f\x1c-\x1e\x85\u2028\u2029]")
# C0 controls (NUL included) except \n and \t go before ftfy; C1 controls after it, since
# ftfy reads many of them as cp1252 quotes and dashes. Invisible format characters that
# only break tokenisation and hashing go too (zero-width space, BOM, soft hyphen, joiner).
_C0 = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b\u00ad\u2060\ufeff]")
_H_SPACE = re.compile(r"[^\S\n]+")  # any horizontal whitespace run (tabs, NBSP, thin spaces)
_BLANK_RUNS = re.compile(r"\n{3,}")
# An NBSP that is the 0xA0 continuation byte of UTF-8 read as cp1252 may be mojibake ("à"
# is "Ã\xa0", NBSP "Â\xa0", "†" "â€\xa0"): stripped or made a space first, ftfy could not
# repair it ("voilÃ" at a line end). Such text lets ftfy see its spacing as it came. Only
# an NBSP where a UTF-8 sequence can put it counts: after a 2-byte lead (Â-ß), or after a
# 3/4-byte lead (à-ô) and its continuations; French "«\xa0texte\xa0»" takes the normal path.
# A continuation byte 0x80-0xBF as cp1252 shows it, or as Latin-1 does (C1 controls).
_CP1252_CONT = "[\x80-\xbf" + re.escape(bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")) + "]"
_MOJIBAKE_NBSP = re.compile(
    rf"[\u00c2-\u00df]\xa0|[\u00e0-\u00f4](?:\xa0(?={_CP1252_CONT})|{_CP1252_CONT}\xa0)"
    rf"|[\u00f0-\u00f4]{_CP1252_CONT}{{2}}\xa0"
)
_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, explain=False)  # keep the outlet's typography


def _normalise_spacing(text: str) -> str:
    text = _H_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _repair(text: str) -> str:
    return _normalise_spacing(_CONTROLS.sub("", unicodedata.normalize("NFC", ftfy.fix_text(text, _FTFY))))


def clean_text(raw: str) -> str:
    """Repair encoding (ftfy), NFC, drop control characters and NULs, collapse spaces and
    blank-line runs, strip lines. Idempotent: a second pass changes nothing."""
    # Spacing is made final before ftfy, so clean input costs one ftfy pass (~1.2 ms),
    # not two. ftfy's fixes can expose another (rare): repeat until nothing changes.
    text = _C0.sub("", _LINE_BREAKS.sub("\n", raw))
    if "\xa0" not in text or not _MOJIBAKE_NBSP.search(text):  # the `in`: a C-speed scan
        text = _normalise_spacing(text)
    for _ in range(5):
        fixed = _repair(text)
        if fixed == text:
            break
        text = fixed
    return text


_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"'})


def normalise_for_hash(text: str) -> str:
    """NFKC, casefold, collapse all whitespace, strip. Curly quotes are folded to straight
    ones too: clean_text keeps them, and the same story arrives both ways from feeds."""
    folded = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return " ".join(folded.split())


def doc_id_for(text: str) -> str:
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()

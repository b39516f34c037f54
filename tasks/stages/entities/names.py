"""Names as written, and the keys that tell when two of them name the same entity."""

from __future__ import annotations

import re
import unicodedata

# Words that come before a name and are not part of it ("President Lula", "Dr. Sidney Blair").
HONORIFICS = frozenset(
    """mr mrs ms miss mx dr prof sir dame lord lady rev fr sr sra president vice prime minister premier chancellor
    secretary secretary-general general gen col lt capt sgt adm senator sen rep representative gov governor mayor
    judge justice ambassador king queen prince princess pope sheikh emir chairman chairwoman chair ceo
    commissioner director spokesman spokeswoman spokesperson deputy foreign former late""".split()
)
# Words an acronym skips: "International Atomic Energy Agency" -> IAEA, "Bank of England" -> BoE.
ACRONYM_SKIPS = frozenset("of the and for on in to at de du des la le el y".split())
LEADING_ARTICLE = re.compile(r"^(?:the|The|THE)\s+")
POSSESSIVE = re.compile(r"(?:['’]s|(?<=s)['’])$")
SPACES = re.compile(r"\s+")


def visible_text(text: str) -> str:
    """The text without control and format characters (zero-width spaces, joiners, soft
    hyphens, direction marks), its spaces collapsed: what a reader sees of a name."""
    kept = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text if unicodedata.category(ch) != "Cf")
    return SPACES.sub(" ", kept).strip()


def bare_name(surface: str) -> str:
    """A mention as a name: visible text, without a leading "the" or a trailing possessive."""
    name = POSSESSIVE.sub("", LEADING_ARTICLE.sub("", visible_text(surface))).strip(" -–—,;:")
    words = name.split()
    while len(words) > 1 and words[-1].lower() in ACRONYM_SKIPS:  # "the Ministry of Foreign Affairs of"
        words.pop()
    return " ".join(words)


def without_honorifics(name: str) -> str:
    """A person's name without the titles before it; a title alone stays as it is."""
    words = name.split()
    while len(words) > 1 and words[0].lower().rstrip(".") in HONORIFICS:
        words = words[1:]
    return " ".join(words)


def fold(text: str) -> str:
    """The comparison key of a name: accents removed, case folded, punctuation dropped
    ("António Guterres" and "Antonio Guterres", "U.S." and "US" fold alike)."""
    decomposed = unicodedata.normalize("NFKD", visible_text(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return SPACES.sub(" ", re.sub(r"[^\w\s]", "", plain.replace("-", " "))).strip()


def is_acronym(name: str) -> bool:
    """UN, U.N., IAEA, WHO: two to seven capitals, with or without dots."""
    letters = name.replace(".", "")
    return 2 <= len(letters) <= 7 and letters.isalpha() and letters.isupper()


def acronym_of(name: str) -> str:
    """The initials of a long name's words, skipping small words: United Nations -> UN."""
    words = [w for w in re.split(r"[\s\-]+", name) if w and w.lower() not in ACRONYM_SKIPS]
    return "".join(w[0] for w in words if w[0].isalpha()).upper() if len(words) > 1 else ""

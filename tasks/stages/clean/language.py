"""Language detection (`detect_language`): a fast path for text that is plainly English
(`clearly_english`, counting function words), else langdetect, with its seed fixed so
the same text gives the same language in every run and a lock so parallel threads do
not race on its lazy profile load; 'und' (`UNDETERMINED`) when there is nothing to go on."""

from __future__ import annotations

import re
import threading

from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException

UNDETERMINED = "und"

# langdetect samples n-grams at random: a fixed seed makes the same text give the same
# language in every run (it seeds a Random of its own, not the global one).
DetectorFactory.seed = 0
# langdetect loads its profiles lazily into a global factory; shards cleaned in parallel
# threads race on that load and then call everything Polish. One detection at a time.
_LANGDETECT_LOCK = threading.Lock()

_LANGUAGE_SAMPLE = 1000
# English function words that are not also common words of the other languages written
# in Latin script (no "in", "is", "was", "will", "a", "die"...). In English news they are
# about a quarter of all words; in other languages next to none.
_ENGLISH_MARKERS = frozenset(
    "the and of to that with for this from which would their they been said but its by at are who have has were".split()  # noqa: SIM905
)
_ENGLISH_MIN_WORDS = 30
_ENGLISH_MIN_SHARE = 0.12
_WORDS = re.compile(r"[^\W\d_]+")


def clearly_english(sample: str) -> bool:
    """A fast path for the common case: langdetect costs about 8 ms an article here, most
    of the cleaning stage; counting function words costs a few microseconds."""
    words = _WORDS.findall(sample.lower())
    return len(words) >= _ENGLISH_MIN_WORDS and sum(w in _ENGLISH_MARKERS for w in words) >= _ENGLISH_MIN_SHARE * len(words)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language from its first ~1000 characters: 'en' at once
    where English function words make it plain, else langdetect (about 8 ms); 'und' when
    there is nothing to go on."""
    sample = text[:_LANGUAGE_SAMPLE]
    if len(text) > _LANGUAGE_SAMPLE and (cut := sample.rfind(" ")) > _LANGUAGE_SAMPLE // 2:
        sample = sample[:cut]  # a cut word is noise for the n-gram profile
    if not any(ch.isalpha() for ch in sample):
        return UNDETERMINED
    if clearly_english(sample):
        return "en"
    try:
        with _LANGDETECT_LOCK:
            code = detect(sample)
    except LangDetectException:
        return UNDETERMINED
    return code.split("-")[0]  # 'zh-cn' -> 'zh'

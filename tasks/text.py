"""Small text helpers that more than one stage needs: `count_words`, the word count that
ingest uses to tell a headline from a sentence, clean for min_words and summarize for the
shortest sentence it keeps, with the rules it counts Chinese and Japanese words by."""

from __future__ import annotations

import re

# Chinese and Japanese put no spaces between words: each Han ideograph counts as a word
# (as word processors count it; a Chinese word averages under two characters), and so does
# each run of hiragana or of katakana (a particle, a verb ending, a loanword). CJK
# punctuation separates words, like a space.
_CJK_WORD = re.compile(
    r"[\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
    r"|[\u3040-\u309f]+|[\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]+"
)
_CJK_ANY = re.compile(rf"{_CJK_WORD.pattern}|[\u3000-\u303f\uff01-\uff65]+")


def count_words(text: str) -> int:
    """Whitespace-separated words, with Chinese and Japanese words counted as above."""
    if not _CJK_ANY.search(text):
        return len(text.split())
    cjk = sum(1 for _ in _CJK_WORD.finditer(text))
    return cjk + len(_CJK_ANY.sub(" ", text).split())

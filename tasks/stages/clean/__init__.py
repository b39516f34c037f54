"""The clean stage: repair the text (`repair`), pull bylines and datelines into metadata
and drop page debris (`bylines`), detect the language (`language`), split sentences
(`sentences`), and give each kept document a content id; `document` chains these for
one record (`clean_document`) and `stage` applies it to every record of a shard
(`clean_records`).

Everything is regex- and index-based and linear in the input: cleaning runs once per
document on the CPU beside the encoder, so it must stay a small share of its budget."""

from tasks.records import CleanDocument
from tasks.stages.clean.bylines import (
    Byline,
    extract_byline,
    is_byline,
    join_paragraphs,
    remove_debris,
)
from tasks.stages.clean.document import STAGE, clean_document
from tasks.stages.clean.language import UNDETERMINED, clearly_english, detect_language
from tasks.stages.clean.repair import clean_text, doc_id_for, normalise_for_hash
from tasks.stages.clean.sentences import split_sentences
from tasks.stages.clean.stage import clean_records
from tasks.text import count_words

__all__ = [
    "STAGE",
    "UNDETERMINED",
    "Byline",
    "CleanDocument",
    "clean_document",
    "clean_records",
    "clean_text",
    "clearly_english",
    "count_words",
    "detect_language",
    "doc_id_for",
    "extract_byline",
    "is_byline",
    "join_paragraphs",
    "normalise_for_hash",
    "remove_debris",
    "split_sentences",
]

"""Near-duplicate quality: precision and recall of the pipeline's copy test (`is_copy` over
MinHash signatures) on pairs built from a file of news articles.

Positives pair each article with an edited copy of itself, one edit a wire story goes
through between outlets per variant (a dateline prefixed, trimmed, reordered, a sentence
changed, and all but trimming at once). Negatives are every pair of distinct articles, and
for each article a follow-up: a new article (another one of the file) that opens by quoting
the story's first sentences.

Articles and every edited text go through exactly what a run does to a body
(clean_document: repair, byline and dateline removal, the pipeline's sentence splitter),
then `signatures`, the index's candidate search and `is_copy` with the configured
`duplicates` settings: a pair is called a copy only when the run's index would find the
story as a candidate and `is_copy` agrees. Pairs are drawn with a fixed seed: the same file
gives the same pairs. Plain functions: no Prefect."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.config import DuplicatesConfig, PipelineConfig
from tasks.evaluation.data_files import read_rows, require_columns
from tasks.records import RawDocument, Rejection, RejectReason
from tasks.stages.clean import clean_document
from tasks.stages.near_duplicates import Known, NearDuplicateIndex, is_copy, lean, signatures

SEED = 13  # fixed: the same file must give the same pairs, run after run
ID_COLUMN = "id"
STAGE = "evaluate"
DATELINE = "WASHINGTON (AP) — "
TRIM_SHARE = 0.6  # a trimmed copy keeps this share of the story's sentences, from the top
QUOTED_SENTENCES = 3  # a follow-up quotes this many sentences of the story
POSITIVE, NEGATIVE = "positive", "negative"
COPY, NOT_COPY = "copy", "not_copy"  # labels as text: evaluation_examples holds text labels for every kind
VARIANTS = ("dateline", "trimmed", "reordered", "sentence_changed", "combined")
NEGATIVE_KINDS = ("distinct_articles", "follow_up")
# Written for this evaluation: what an outlet's editor might put in place of a sentence.
NEW_SENTENCES = (
    "A spokesperson for the regional authority said further details would be published later this week.",
    "Neither side responded to several requests for comment before this edition went to press.",
    "Local officials have scheduled a public meeting next month to answer questions from residents.",
    "Analysts contacted on Thursday said it was too early to judge the long-term consequences.",
    "The newspaper has asked to see the full documents under freedom of information rules.",
)


@dataclass(frozen=True)
class Story:
    """An article as a run keeps it: its file id, its content id and its cleaned sentences."""

    id: str
    doc_id: str
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Pair:
    """Two documents by key (a story's key is its position; an edited text's is
    '<position>/<variant>'), with whether they are copies of one story."""

    pair_kind: str  # positive | negative
    variant: str  # one of VARIANTS for a positive, of NEGATIVE_KINDS for a negative
    first: str
    second: str
    id: str  # the story the pair is about
    other_id: str  # the other article in a negative pair; "" for a copy

    @property
    def gold(self) -> bool:
        return self.pair_kind == POSITIVE


# ---------------------------------------------------------------------------------------
# Reading and cleaning


def _rejection_row(row_id: str, origin: str, reason: str, detail: str, stage: str) -> dict[str, str]:
    return {"id": row_id, "origin": origin, "reason": reason, "detail": detail, "stage": stage}


def read_stories(data: Path, article_column: str, config: PipelineConfig) -> tuple[list[Story], list[dict[str, str]], int]:
    """(the articles a run would keep, a row per article it would not, articles read).
    An article with the same cleaned text as an earlier one is a duplicate, as in a run's
    exact deduplication: pairing it with its twin would be neither a copy nor distinct."""
    data = Path(data)
    rows = read_rows(data)
    require_columns(data, rows, (article_column,))
    stories: list[Story] = []
    rejected: list[dict[str, str]] = []
    seen: dict[str, str] = {}  # doc_id -> id of the article kept with it
    for index, row in enumerate(rows):
        row_id = str(row.get(ID_COLUMN) if row.get(ID_COLUMN) is not None else index)
        origin, text = f"{data}#{index}", row.get(article_column)
        if not isinstance(text, str) or not text.strip():
            rejected.append(_rejection_row(row_id, origin, str(RejectReason.EMPTY), "no article text", STAGE))
            continue
        cleaned = clean_document(RawDocument(origin=origin, text=text), config.clean)
        if isinstance(cleaned, Rejection):
            rejected.append(_rejection_row(row_id, origin, str(cleaned.reason), cleaned.detail, cleaned.stage))
        elif cleaned.doc_id in seen:
            rejected.append(_rejection_row(row_id, origin, str(RejectReason.DUPLICATE), f"same text as {seen[cleaned.doc_id]}", STAGE))
        else:
            seen[cleaned.doc_id] = row_id
            stories.append(Story(row_id, cleaned.doc_id, tuple(cleaned.sentences)))
    return stories, rejected, len(rows)


def clean_sentences(key: str, sentences: list[str], config: PipelineConfig) -> tuple[str, list[str]] | Rejection:
    """(content id, sentences) of an edited text as a run would read it: one sentence per
    paragraph, so that joining adds no boundary and removes none, then clean_document
    (which, as in a run, takes a dateline off the top)."""
    cleaned = clean_document(RawDocument(origin=key, text="\n\n".join(sentences)), config.clean)
    return cleaned if isinstance(cleaned, Rejection) else (cleaned.doc_id, list(cleaned.sentences))


# ---------------------------------------------------------------------------------------
# Edits: each returns a new list, the story's own sentences untouched


def dateline(sentences: list[str]) -> list[str]:
    return [DATELINE + sentences[0], *sentences[1:]] if sentences else []


def trimmed(sentences: list[str]) -> list[str]:
    return sentences[: max(1, math.ceil(TRIM_SHARE * len(sentences)))]


def reordered(sentences: list[str]) -> list[str]:
    """The second half moved before the first, as when an outlet leads with a later paragraph."""
    half = len(sentences) // 2
    return sentences[half:] + sentences[:half]


def sentence_changed(sentences: list[str], new_sentence: str) -> list[str]:
    """The middle sentence replaced by another."""
    middle = len(sentences) // 2
    return [*sentences[:middle], new_sentence, *sentences[middle + 1 :]] if sentences else []


def combined(sentences: list[str], new_sentence: str) -> list[str]:
    """A sentence changed, then reordered, then a dateline on top: a wire copy reworked."""
    return dateline(reordered(sentence_changed(sentences, new_sentence)))


def edited_copies(sentences: list[str], new_sentence: str) -> dict[str, list[str]]:
    """Every positive variant of one story, by name (VARIANTS)."""
    return {
        "dateline": dateline(sentences),
        "trimmed": trimmed(sentences),
        "reordered": reordered(sentences),
        "sentence_changed": sentence_changed(sentences, new_sentence),
        "combined": combined(sentences, new_sentence),
    }


def follow_up(story: list[str], other: list[str]) -> list[str]:
    """A new article (`other`) that opens by quoting the story: same topic, not a copy."""
    return [*story[:QUOTED_SENTENCES], *other]


# ---------------------------------------------------------------------------------------
# Pairs


def build_pairs(stories: list[Story], seed: int = SEED) -> tuple[list[Pair], dict[str, list[str]]]:
    """(every pair, the edited texts by key, before cleaning). The replacement sentence and
    the article a follow-up goes on with are drawn from `seed`, story by story."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    edited: dict[str, list[str]] = {}
    for i, story in enumerate(stories):
        sentences = list(story.sentences)
        for variant, copy in edited_copies(sentences, rng.choice(NEW_SENTENCES)).items():
            edited[f"{i}/{variant}"] = copy
            pairs.append(Pair(POSITIVE, variant, str(i), f"{i}/{variant}", story.id, ""))
        if len(stories) > 1:
            j = rng.choice([k for k in range(len(stories)) if k != i])
            edited[f"{i}/follow_up"] = follow_up(sentences, list(stories[j].sentences))
            pairs.append(Pair(NEGATIVE, "follow_up", str(i), f"{i}/follow_up", story.id, stories[j].id))
    pairs += [Pair(NEGATIVE, "distinct_articles", str(i), str(j), stories[i].id, stories[j].id) for i, j in combinations(range(len(stories)), 2)]
    return pairs, edited


def clean_edited(edited: dict[str, list[str]], config: PipelineConfig) -> tuple[dict[str, tuple[str, list[str]]], list[dict[str, str]]]:
    """Each edited text as a run would keep it, and a row per text cleaning would reject
    (a trimmed copy of a short article can fall under clean.min_words)."""
    kept: dict[str, tuple[str, list[str]]] = {}
    rejected: list[dict[str, str]] = []
    for key, sentences in edited.items():
        result = clean_sentences(key, sentences, config)
        if isinstance(result, Rejection):
            rejected.append(_rejection_row(key, key, str(result.reason), result.detail, result.stage))
        else:
            kept[key] = result
    return kept, rejected


# ---------------------------------------------------------------------------------------
# Scoring


def sign(documents: dict[str, list[str]], settings: DuplicatesConfig) -> tuple[dict[str, Known], float]:
    """(each document as the index would hold it, seconds per document for its signature)."""
    signatures([], settings)  # imports datasketch: a one-off cost, not a per-document one
    keys = list(documents)
    started = time.perf_counter()
    found, counts = signatures([documents[key] for key in keys], settings)
    seconds = (time.perf_counter() - started) / len(keys) if keys else 0.0
    known = {key: Known(key, found[row], int(counts[row]), key, "", row) for row, key in enumerate(keys)}
    return known, seconds


def candidates(known: dict[str, Known], stories: list[str], settings: DuplicatesConfig) -> dict[str, set[str]]:
    """For each document, the stories a run's index would look at for it: a run tests only
    the candidates locality-sensitive hashing finds, so a copy it misses is never tested."""
    index = NearDuplicateIndex(settings, [known[key] for key in stories])
    return {key: set(index.lsh.query(lean(doc.signature))) if doc.n_shingles else set() for key, doc in known.items()}


def score_pairs(pairs: list[Pair], known: dict[str, Known], found: dict[str, set[str]], content: dict[str, str], settings: DuplicatesConfig) -> pd.DataFrame:
    """One row per pair: what it is, the run's verdict (a candidate of the index, and a copy
    by `is_copy`) and the estimated Jaccard similarity; `identical` when cleaning left both
    texts the same (a run's exact deduplication drops such a copy before this test)."""
    rows = []
    for pair in pairs:
        copy, jaccard = is_copy(known[pair.first], known[pair.second], settings)
        candidate = pair.first in found[pair.second]
        rows.append(
            {
                "pair_kind": pair.pair_kind,
                "variant": pair.variant,
                "id": pair.id,
                "other_id": pair.other_id,
                "gold": COPY if pair.gold else NOT_COPY,
                "predicted": COPY if candidate and copy else NOT_COPY,
                "jaccard": round(jaccard, 4),
                "candidate": candidate,
                "identical": content[pair.first] == content[pair.second],
            }
        )
    columns = ["pair_kind", "variant", "id", "other_id", "gold", "predicted", "jaccard", "candidate", "identical"]
    return pd.DataFrame(rows, columns=columns)


def ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def overall_scores(frame: pd.DataFrame) -> dict[str, Any]:
    """Precision, recall and F1 of the copy verdict over every pair."""
    gold, predicted = frame["gold"] == COPY, frame["predicted"] == COPY
    tp, fp, fn = int((gold & predicted).sum()), int((~gold & predicted).sum()), int((gold & ~predicted).sum())
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_positives": tp, "false_positives": fp, "false_negatives": fn}


def recall_per_variant(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """For each edit: copies found, of how many, the lowest similarity, how many the index's
    hashing never offered, and how many cleaning had already made identical to the story."""
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        rows = frame[(frame["pair_kind"] == POSITIVE) & (frame["variant"] == variant)]
        found = int((rows["predicted"] == COPY).sum())
        out[variant] = {
            "recall": ratio(found, len(rows)),
            "found": found,
            "n": len(rows),
            "min_jaccard": float(rows["jaccard"].min()) if len(rows) else None,
            "not_candidates": int((~rows["candidate"]).sum()),
            "identical_after_cleaning": int(rows["identical"].sum()),
        }
    return out


def false_positives_per_kind(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """For each kind of negative: pairs wrongly called copies, of how many, the highest similarity."""
    out: dict[str, dict[str, Any]] = {}
    for kind in NEGATIVE_KINDS:
        rows = frame[(frame["pair_kind"] == NEGATIVE) & (frame["variant"] == kind)]
        wrong = int((rows["predicted"] == COPY).sum())
        out[kind] = {
            "false_positives": wrong,
            "n": len(rows),
            "rate": ratio(wrong, len(rows)),
            "max_jaccard": float(rows["jaccard"].max()) if len(rows) else None,
        }
    return out


def evaluate_duplicates(data: Path, config: PipelineConfig, article_column: str = "article") -> tuple[dict[str, Any], pd.DataFrame]:
    """Precision and recall of the pipeline's near-duplicate test on pairs built from the
    articles in `data` (CSV, JSONL or Parquet): (metrics, one row per pair). Articles and
    edited texts that cleaning rejects are listed with their reasons, never paired."""
    settings = config.duplicates
    stories, rejected, n_read = read_stories(Path(data), article_column, config)
    pairs, edited = build_pairs(stories)
    cleaned, copies_rejected = clean_edited(edited, config)
    documents = {str(i): list(story.sentences) for i, story in enumerate(stories)} | {key: s for key, (_, s) in cleaned.items()}
    content = {str(i): story.doc_id for i, story in enumerate(stories)} | {key: doc_id for key, (doc_id, _) in cleaned.items()}
    pairs = [pair for pair in pairs if pair.second in documents]  # a rejected edit has no pair: a run would not keep it
    known, seconds = sign(documents, settings)
    frame = score_pairs(pairs, known, candidates(known, [str(i) for i in range(len(stories))], settings), content, settings)
    return {
        "data": str(data),
        "n_read": n_read,
        "n_articles": len(stories),
        "n_rejected": len(rejected),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected)),
        "rejected": rejected,
        "copies_rejected": copies_rejected,
        "n": len(frame),
        "n_pairs": len(frame),
        "n_positive": int((frame["gold"] == COPY).sum()),
        "n_negative": int((frame["gold"] == NOT_COPY).sum()),
        "seed": SEED,
        "settings": settings.model_dump(),
        **overall_scores(frame),
        "recall_per_variant": recall_per_variant(frame),
        "false_positives_per_kind": false_positives_per_kind(frame),
        "signature_ms_per_doc": round(1000 * seconds, 3),
        "n_signed": len(documents),
    }, frame

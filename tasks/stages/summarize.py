"""Summarize stage: extractive summaries from the encoder's sentence embeddings
(centroid relevance plus a lead prior, chosen with MMR, kept in document order), or
abstractive ones from a seq2seq model (`summary.kind = "abstractive"`)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from tasks.arrow import column_vectors, row_ranges
from tasks.config import PipelineConfig, SummaryConfig
from tasks.records import StageOutput
from tasks.stages.clean.bylines import is_byline
from tasks.text import count_words

METHOD = "extractive:centroid-mmr-lead"
MIN_SUMMARY_WORDS = 4  # fragments and captions make poor summary sentences
LEAD_DECAY = 3.0  # sentences; the prior halves about every two sentences
NEAR_DUPLICATE = 0.9  # cosine above which a sentence restates one already chosen (captions often do)

# Photo captions that a flattened page leaves among the sentences. They describe a picture
# the reader of a summary cannot see, and often restate the lead: never summary sentences.
# Two tells: a sentence that points at a picture ("(pictured)", "(left)", ", right,"), and
# the Daily Mail "Label: what the photo shows" form (not "He said: ...", not a quote).
_PHOTO_POINTER = re.compile(
    r"\((?:pictured|(?:far |second )?(?:left|right)|centre|center|above|below|inset|top|bottom)\)"
    r"|\bpictured\b|, (?:left|right|above|below|centre|center),",
    re.IGNORECASE,
)
_CAPTION_LABEL = re.compile(r"[A-Z][\w'’&-]*(?: [\w'’&-]+){0,4}: (?=[A-Z0-9])")
_SPEECH_VERB = re.compile(
    r"\b(?:said|says|say|told|tells|added|adds|asked|asks|explained|explains|wrote|writes|reads?|tweeted"
    r"|posted|admitted|insisted|revealed|continued|claimed|claims|stated|warned|replied|according)\b",
    re.IGNORECASE,
)


def looks_like_caption(sentence: str) -> bool:
    """A photo caption or a sentence about a photo, as news pages flatten them into the text."""
    if _PHOTO_POINTER.search(sentence):
        return True
    label = _CAPTION_LABEL.match(sentence)
    return bool(label) and not _SPEECH_VERB.search(label[0])


def summary_candidates(texts: list[str]) -> list[int]:
    """Indexes of the sentences a summary may use: no fragments, no bylines, and no captions
    unless nothing else is left (a photo gallery is all captions)."""
    # Cleaning moves bylines into metadata; one it could not place is still never a summary.
    usable = [i for i, t in enumerate(texts) if count_words(t) >= MIN_SUMMARY_WORDS and not is_byline(t)]
    prose = [i for i in usable if not looks_like_caption(texts[i])]
    return prose or usable


def select_summary_sentences(embeddings: np.ndarray, texts: list[str], config: SummaryConfig) -> list[int]:
    """Indices of the summary sentences, in document order."""
    eligible = summary_candidates(texts)
    if len(eligible) <= config.sentences:
        return eligible
    vectors = embeddings[eligible]
    centroid = vectors.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    relevance = vectors @ centroid
    lead = np.exp(-np.array(eligible, dtype=np.float64) / LEAD_DECAY)
    score = (1 - config.lead_weight) * relevance + config.lead_weight * lead
    chosen: list[int] = []
    while len(chosen) < config.sentences:
        redundancy = (vectors @ vectors[chosen].T).max(axis=1) if chosen else np.zeros(len(eligible))
        mmr = (1 - config.diversity) * score - config.diversity * redundancy
        mmr[chosen] = -np.inf
        mmr[redundancy > NEAR_DUPLICATE] = -np.inf
        if not np.isfinite(mmr).any():
            break
        chosen.append(int(np.argmax(mmr)))
    return sorted(eligible[i] for i in chosen)


def summarize_sentences(sentences: pa.Table, config: SummaryConfig) -> pa.Table:
    """One summary per document of a shard's sentence table (rows grouped by document)."""
    doc_ids = sentences.column("doc_id").to_pylist()
    texts = sentences.column("text").to_pylist()
    vectors = column_vectors(sentences, "embedding")
    out: dict[str, list] = {"doc_id": [], "summary": [], "summary_sentences": []}
    for doc_id, rows in row_ranges(doc_ids):
        picked = select_summary_sentences(vectors[rows], texts[rows], config)
        out["doc_id"].append(doc_id)
        out["summary"].append(" ".join(texts[rows][i] for i in picked))
        out["summary_sentences"].append(picked)
    return pa.table(
        {
            "doc_id": pa.array(out["doc_id"], pa.string()),
            "summary": pa.array(out["summary"], pa.string()),
            "summary_sentences": pa.array(out["summary_sentences"], pa.list_(pa.int32())),
            "summary_method": pa.array([METHOD] * len(out["doc_id"]), pa.string()),
        }
    )


def abstractive_summaries(sentences: pa.Table, config: PipelineConfig) -> pa.Table:
    """One generated summary per document (map-reduce over long ones), same columns as the
    extractive table; `summary_sentences` is empty because no sentence is copied."""
    from tasks.models.backends import abstractive_summarizer

    summarizer = abstractive_summarizer(config)
    texts = sentences.column("text").to_pylist()
    ranges = row_ranges(sentences.column("doc_id").to_pylist())
    summaries = summarizer.summarize_many([texts[rows] for _, rows in ranges])
    return pa.table(
        {
            "doc_id": pa.array([d for d, _ in ranges], pa.string()),
            "summary": pa.array([s.text for s in summaries], pa.string()),
            "summary_sentences": pa.array([[] for _ in ranges], pa.list_(pa.int32())),
            "summary_method": pa.array([f"abstractive:{config.summary.model}"] * len(ranges), pa.string()),
        }
    )


def summarize_shard(sentences: pa.Table, config: PipelineConfig) -> StageOutput:
    """The summarize stage over a shard's encoded sentences (doc_id, text, embedding)."""
    if config.summary.kind == "abstractive":
        return StageOutput(abstractive_summaries(sentences, config))
    return StageOutput(summarize_sentences(sentences, config.summary))

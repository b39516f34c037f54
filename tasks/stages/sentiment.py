"""Sentiment stage: each sentence through the sentiment head; each document's
probabilities are its sentences', weighted by how opinionated each is, and its label
their argmax (see `opinion_weighted_mean`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tasks.arrow import column_vectors, row_ranges
from tasks.config import PipelineConfig
from tasks.models.heads import cached_head, opinion_weighted_mean
from tasks.records import StageOutput


def probability_columns(labels: list[str], probs: np.ndarray, predicted: list[str]) -> dict[str, pa.Array]:
    return {
        "sentiment": pa.array(predicted, pa.string()),
        **{f"p_{label}": pa.array(probs[:, k], pa.float32()) for k, label in enumerate(labels)},
    }


def sentence_probabilities(sentences: pa.Table, config: PipelineConfig) -> tuple[np.ndarray, list[str]]:
    """(probabilities per sentence, their labels) from the configured backend: the head over
    the encoder's embeddings, or a classifier over the sentences' text."""
    if config.sentiment.kind == "classifier":
        from tasks.models.backends import sentiment_classifier

        classifier = sentiment_classifier(config)
        return classifier.predict_proba(sentences.column("text").to_pylist()), classifier.labels
    head = cached_head(config.sentiment.head)
    return head.predict_proba(column_vectors(sentences, "embedding")), head.labels


def classify_sentiment(sentences: pa.Table, probs: np.ndarray, labels: list[str]) -> tuple[pa.Table, pa.Table]:
    """(per-sentence table, per-document table) for a shard's sentences."""
    per_sentence = pa.table(
        {
            "doc_id": sentences.column("doc_id"),
            "sentence_index": sentences.column("sentence_index"),
            **probability_columns(labels, probs, [labels[i] for i in probs.argmax(axis=1)]),
        }
    )
    ranges = row_ranges(sentences.column("doc_id").to_pylist())
    neutral = labels.index("neutral")
    doc_probs = np.array([opinion_weighted_mean(probs[rows], neutral) for _, rows in ranges]).reshape(-1, len(labels))
    doc_labels = [labels[i] for i in doc_probs.argmax(axis=1)]
    per_document = pa.table({"doc_id": pa.array([d for d, _ in ranges], pa.string()), **probability_columns(labels, doc_probs, doc_labels)})
    return per_sentence, per_document


def sentiment_shard(sentences: pa.Table, config: PipelineConfig) -> StageOutput:
    """The sentiment stage over a shard's encoded sentences: one row per document, and the
    per-sentence rows as the `sentences` part."""
    per_sentence, per_document = classify_sentiment(sentences, *sentence_probabilities(sentences, config))
    return StageOutput(per_document, parts={"sentences": per_sentence})

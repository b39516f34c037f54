"""Sentiment stage: each sentence through the sentiment head; each document's
probabilities are its sentences', weighted by how opinionated each is, and its label
their argmax (see `opinion_weighted_mean`)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import SentimentConfig
from tasks.encode import column_vectors, row_ranges
from tasks.models.heads import Head, cached_head, opinion_weighted_mean
from tasks.records import ShardRef
from tasks.staging import read_shard, write_shard


def probability_columns(labels: list[str], probs: np.ndarray, predicted: list[str]) -> dict[str, pa.Array]:
    return {
        "sentiment": pa.array(predicted, pa.string()),
        **{f"p_{label}": pa.array(probs[:, k], pa.float32()) for k, label in enumerate(labels)},
    }


def classify_sentiment(sentences: pa.Table, head: Head) -> tuple[pa.Table, pa.Table]:
    """(per-sentence table, per-document table) for a shard's sentences."""
    vectors = column_vectors(sentences, "embedding")
    probs = head.predict_proba(vectors)
    per_sentence = pa.table({
        "doc_id": sentences.column("doc_id"), "sentence_index": sentences.column("sentence_index"),
        **probability_columns(head.labels, probs, [head.labels[i] for i in probs.argmax(axis=1)]),
    })
    doc_ids = sentences.column("doc_id").to_pylist()
    ranges = row_ranges(doc_ids)
    neutral = head.labels.index("neutral")
    doc_probs = np.array([opinion_weighted_mean(probs[rows], neutral) for _, rows in ranges]).reshape(-1, len(head.labels))
    doc_labels = [head.labels[i] for i in doc_probs.argmax(axis=1)]
    per_document = pa.table({"doc_id": pa.array([d for d, _ in ranges], pa.string()), **probability_columns(head.labels, doc_probs, doc_labels)})
    return per_sentence, per_document


def sentiment_shard(encoded: ShardRef, config: SentimentConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    per_sentence, per_document = classify_sentiment(read_shard(encoded, ["doc_id", "sentence_index", "embedding"]), cached_head(config.head))
    return write_shard(Path(staging_dir), "sentiment", encoded.index, per_document, parts={"sentences": per_sentence}, started=started)


sentiment_task = task(sentiment_shard, name="sentiment", cache_policy=NO_CACHE, persist_result=False)

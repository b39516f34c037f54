"""Stance stage: each target mention through the stance head, then one stance per
document and target from all its mentions, with the sentence that shows it best."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import StanceConfig
from tasks.encode import column_vectors
from tasks.models.heads import Head, cached_head, net_polarity_label
from tasks.records import ShardRef
from tasks.staging import read_shard, write_shard

NEUTRAL = "neutral"


def sentence_rows(sentences: pa.Table, mentions: pa.Table) -> list[int]:
    """For each mention, the row of its sentence in the sentences table."""
    row_of = {key: row for row, key in enumerate(zip(sentences.column("doc_id").to_pylist(), sentences.column("sentence_index").to_pylist()))}
    return [row_of[key] for key in zip(mentions.column("doc_id").to_pylist(), mentions.column("sentence_index").to_pylist())]


def mention_features(sentences: pa.Table, mentions: pa.Table, rows: list[int]) -> np.ndarray:
    """sentence embedding + mention span + mention window, one row per mention."""
    return np.hstack([
        column_vectors(sentences, "embedding")[rows],
        column_vectors(mentions, "span_embedding"),
        column_vectors(mentions, "window_embedding"),
    ])


def document_stance(probs: np.ndarray, labels: list[str], margin: float) -> tuple[str, float, np.ndarray, int]:
    """Aggregate one target's mention probabilities in one document: the mean over its
    mentions, labelled by net polarity. Returns (label, confidence = the label's mean
    probability, mean probabilities, row of the mention that shows the label best)."""
    mean = probs.mean(axis=0)
    label = net_polarity_label(mean, labels, "against", "favor", NEUTRAL, margin)
    column = labels.index(label)
    return label, float(mean[column]), mean, int(np.argmax(probs[:, column]))


def stances_schema(labels: list[str]) -> pa.Schema:
    return pa.schema([
        ("doc_id", pa.string()), ("target", pa.string()), ("label", pa.string()), ("confidence", pa.float32()),
        ("n_mentions", pa.int32()), ("evidence", pa.string()), ("evidence_sentence", pa.int32()),
        *[(f"p_{label}", pa.float32()) for label in labels],
    ])


def classify_stances(sentences: pa.Table, mentions: pa.Table, head: Head, margin: float) -> pa.Table:
    """One row per document and target mentioned in it."""
    schema = stances_schema(head.labels)
    if not mentions.num_rows:
        return schema.empty_table()
    rows = sentence_rows(sentences, mentions)
    probs = head.predict_proba(mention_features(sentences, mentions, rows))
    texts = sentences.column("text").to_pylist()
    indexes = mentions.column("sentence_index").to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for mention, key in enumerate(zip(mentions.column("doc_id").to_pylist(), mentions.column("target").to_pylist())):
        groups.setdefault(key, []).append(mention)
    out = []
    for (doc_id, target), group in groups.items():
        label, confidence, mean, best = document_stance(probs[group], head.labels, margin)
        evidence = group[best]
        out.append({"doc_id": doc_id, "target": target, "label": label, "confidence": confidence, "n_mentions": len(group),
                    "evidence": texts[rows[evidence]], "evidence_sentence": indexes[evidence],
                    **{f"p_{name}": float(mean[k]) for k, name in enumerate(head.labels)}})
    return pa.Table.from_pylist(out, schema=schema)


def stance_shard(encoded: ShardRef, config: StanceConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    table = classify_stances(read_shard(encoded), read_shard(encoded, part="mentions"), cached_head(config.head), config.polarity_margin)
    return write_shard(Path(staging_dir), "stance", encoded.index, table, started=started)


stance_task = task(stance_shard, name="stance", cache_policy=NO_CACHE, persist_result=False)

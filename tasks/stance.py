"""Stance stage: each target mention through the stance head, then one stance per
document and target from all its mentions, with the sentence that shows it best."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import StanceConfig, resolve_resource
from tasks.encode import column_vectors
from tasks.models.heads import Head, cached_head, net_polarity_label
from tasks.records import ShardRef
from tasks.staging import read_shard, write_shard

NEUTRAL = "neutral"


def stance_head(config: StanceConfig) -> Head:
    return cached_head(resolve_resource(config.head))


def mention_features(sentences: pa.Table, mentions: pa.Table) -> np.ndarray:
    """sentence embedding + mention span + mention window, one row per mention."""
    dim = sentences.schema.field("embedding").type.list_size
    sentence_vectors = column_vectors(sentences.column("embedding"), dim)
    row_of = {key: row for row, key in enumerate(zip(sentences.column("doc_id").to_pylist(), sentences.column("sentence_index").to_pylist()))}
    rows = [row_of[key] for key in zip(mentions.column("doc_id").to_pylist(), mentions.column("sentence_index").to_pylist())]
    return np.hstack([
        sentence_vectors[rows].reshape(len(rows), dim),
        column_vectors(mentions.column("span_embedding"), dim),
        column_vectors(mentions.column("window_embedding"), dim),
    ])


def document_stance(probs: np.ndarray, labels: list[str], margin: float) -> tuple[str, float, np.ndarray, int]:
    """Aggregate one target's mention probabilities in one document: the mean over its
    mentions, labelled by net polarity. Returns (label, confidence = the label's mean
    probability, mean probabilities, row of the mention that shows the label best)."""
    mean = probs.mean(axis=0)
    label = net_polarity_label(mean, labels, "against", "favor", NEUTRAL, margin)
    column = labels.index(label)
    return label, float(mean[column]), mean, int(np.argmax(probs[:, column]))


def classify_stances(sentences: pa.Table, mentions: pa.Table, head: Head, margin: float) -> pa.Table:
    probs = head.predict_proba(mention_features(sentences, mentions)) if mentions.num_rows else np.zeros((0, len(head.labels)))
    text_of = {key: text for key, text in zip(zip(sentences.column("doc_id").to_pylist(), sentences.column("sentence_index").to_pylist()), sentences.column("text").to_pylist())}
    doc_ids = mentions.column("doc_id").to_pylist()
    targets = mentions.column("target").to_pylist()
    sentence_indexes = mentions.column("sentence_index").to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for row, key in enumerate(zip(doc_ids, targets)):
        groups.setdefault(key, []).append(row)
    out: dict[str, list] = {k: [] for k in ("doc_id", "target", "label", "confidence", "n_mentions", "evidence", "evidence_sentence", *[f"p_{l}" for l in head.labels])}
    for (doc_id, target), rows in groups.items():
        label, confidence, mean, evidence_row = document_stance(probs[rows], head.labels, margin)
        evidence_index = sentence_indexes[rows[evidence_row]]
        for key, value in (("doc_id", doc_id), ("target", target), ("label", label), ("confidence", confidence),
                           ("n_mentions", len(rows)), ("evidence", text_of[(doc_id, evidence_index)]), ("evidence_sentence", evidence_index)):
            out[key].append(value)
        for k, name in enumerate(head.labels):
            out[f"p_{name}"].append(float(mean[k]))
    types = {"n_mentions": pa.int32(), "evidence_sentence": pa.int32(), "confidence": pa.float32(), **{f"p_{l}": pa.float32() for l in head.labels}}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in out.items()})


def stance_shard(encoded: ShardRef, config: StanceConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    table = classify_stances(read_shard(encoded), read_shard(encoded, part="mentions"), stance_head(config), config.polarity_margin)
    return write_shard(Path(staging_dir), "stance", encoded.index, table, started=started)


stance_task = task(stance_shard, name="stance", cache_policy=NO_CACHE, persist_result=False)

"""Summarize stage: extractive summaries from the encoder's sentence embeddings
(centroid relevance plus a lead prior, chosen with MMR, kept in document order)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.clean import is_byline
from tasks.config import SummaryConfig
from tasks.encode import column_vectors, row_ranges
from tasks.records import ShardRef
from tasks.staging import read_shard, write_shard

METHOD = "extractive:centroid-mmr-lead"
MIN_SUMMARY_WORDS = 4  # fragments and captions make poor summary sentences
LEAD_DECAY = 3.0  # sentences; the prior halves about every two sentences
NEAR_DUPLICATE = 0.9  # cosine above which a sentence restates one already chosen (captions often do)


def select_summary_sentences(embeddings: np.ndarray, texts: list[str], config: SummaryConfig) -> list[int]:
    """Indices of the summary sentences, in document order."""
    # Cleaning moves bylines into metadata; one it could not place is still never a summary.
    eligible = [i for i, t in enumerate(texts) if len(t.split()) >= MIN_SUMMARY_WORDS and not is_byline(t)]
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
    return pa.table({
        "doc_id": pa.array(out["doc_id"], pa.string()), "summary": pa.array(out["summary"], pa.string()),
        "summary_sentences": pa.array(out["summary_sentences"], pa.list_(pa.int32())),
        "summary_method": pa.array([METHOD] * len(out["doc_id"]), pa.string()),
    })


def summarize_shard(encoded: ShardRef, config: SummaryConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    table = summarize_sentences(read_shard(encoded, ["doc_id", "text", "embedding"]), config)
    return write_shard(Path(staging_dir), "summarize", encoded.index, table, started=started)


summarize_task = task(summarize_shard, name="summarize", cache_policy=NO_CACHE, persist_result=False)

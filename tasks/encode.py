"""Encode stage: one transformer pass over every sentence of a shard, plus pooled token
states over each target mention. Every head reads what this stage writes."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.config import PipelineConfig
from tasks.models.encoder import Span, get_encoder
from tasks.records import ShardRef
from tasks.staging import read_shard, write_shard
from tasks.targets import TargetMatcher


def vector_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def column_vectors(table: pa.Table, name: str) -> np.ndarray:
    """The inverse of vector_column: a table's fixed-size-list column as an (n, dim) matrix."""
    dim = table.schema.field(name).type.list_size
    return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def row_ranges(doc_ids: list[str]) -> list[tuple[str, slice]]:
    """(doc_id, slice of its rows) for tables that keep each document's rows together,
    as every table this stage writes does."""
    ranges, start = [], 0
    for i in range(1, len(doc_ids) + 1):
        if i == len(doc_ids) or doc_ids[i] != doc_ids[start]:
            ranges.append((doc_ids[start], slice(start, i)))
            start = i
    return ranges


def encode_documents(documents: pa.Table, config: PipelineConfig) -> tuple[pa.Table, pa.Table]:
    """The sentences and the target mentions of the given documents, with their vectors."""
    encoder = get_encoder(config.encoder.model, config.encoder.max_length, config.encoder.max_tokens_per_batch, config.encoder.threads)
    matcher = TargetMatcher(config.stance.targets)
    doc_ids, indexes, texts = [], [], []
    mention_rows: dict[str, list] = {"doc_id": [], "sentence_index": [], "target": [], "surface": [], "start": [], "end": []}
    spans: list[Span] = []
    for doc_id, sentences in zip(documents.column("doc_id").to_pylist(), documents.column("sentences").to_pylist()):
        for index, sentence in enumerate(sentences):
            for mention in matcher.find(sentence):
                spans.append(Span(len(texts), mention.start, mention.end))
                for key, value in zip(mention_rows, (doc_id, index, mention.target, mention.surface, mention.start, mention.end)):
                    mention_rows[key].append(value)
            doc_ids.append(doc_id)
            indexes.append(index)
            texts.append(sentence)
    encoded = encoder.encode(texts, spans)
    sentences_table = pa.table({
        "doc_id": pa.array(doc_ids, pa.string()), "sentence_index": pa.array(indexes, pa.int32()),
        "text": pa.array(texts, pa.string()), "embedding": vector_column(encoded.sentence_vectors),
    })
    mentions_table = pa.table({
        "doc_id": pa.array(mention_rows["doc_id"], pa.string()),
        "sentence_index": pa.array(mention_rows["sentence_index"], pa.int32()),
        "target": pa.array(mention_rows["target"], pa.string()),
        "surface": pa.array(mention_rows["surface"], pa.string()),
        "start": pa.array(mention_rows["start"], pa.int32()),
        "end": pa.array(mention_rows["end"], pa.int32()),
        "span_embedding": vector_column(encoded.span_vectors),
        "window_embedding": vector_column(encoded.window_vectors),
    })
    return sentences_table, mentions_table


def encode_shard(clean: ShardRef, config: PipelineConfig, staging_dir: str) -> ShardRef:
    started = time.perf_counter()
    sentences, mentions = encode_documents(read_shard(clean, ["doc_id", "sentences"]), config)
    return write_shard(Path(staging_dir), "encode", clean.index, sentences, parts={"mentions": mentions}, started=started)


encode_task = task(encode_shard, name="encode", cache_policy=NO_CACHE, persist_result=False)

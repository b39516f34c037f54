"""Stance stage: a stance probability for each mention the entities stage chose, then one
stance per document and entity from all its mentions, with the sentence that shows it best.

A linear head reads the mention's pooled encoder features here; a tuned head has
already run inside the encoder pass (it shares its lower layers) and left its
probabilities in the mentions table's `stance_probs` column."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tasks.arrow import column_vectors
from tasks.config import PipelineConfig, resolve_resource
from tasks.models.heads import cached_head, opinion_weighted_mean, read_card
from tasks.records import StageOutput
from tasks.stages.encode import STANCE_PROBS

NEUTRAL = "neutral"


def sentence_rows(sentences: pa.Table, mentions: pa.Table) -> list[int]:
    """For each mention, the row of its sentence in the sentences table."""
    row_of = {key: row for row, key in enumerate(zip(sentences.column("doc_id").to_pylist(), sentences.column("sentence_index").to_pylist()))}
    return [row_of[key] for key in zip(mentions.column("doc_id").to_pylist(), mentions.column("sentence_index").to_pylist())]


def mention_features(sentences: pa.Table, mentions: pa.Table, rows: list[int]) -> np.ndarray:
    """sentence embedding + mention span + mention window, one row per mention."""
    return np.hstack(
        [
            column_vectors(sentences, "embedding")[rows],
            column_vectors(mentions, "span_embedding"),
            column_vectors(mentions, "window_embedding"),
        ]
    )


def document_stance(probs: np.ndarray, labels: list[str]) -> tuple[str, float, np.ndarray, int]:
    """Aggregate one target's mention probabilities in one document (see
    `opinion_weighted_mean`). Returns (label, confidence = the label's aggregate
    probability, the aggregate probabilities, row of the mention most sure of the label)."""
    mean = opinion_weighted_mean(probs, labels.index(NEUTRAL))
    column = int(np.argmax(mean))
    return labels[column], float(mean[column]), mean, int(np.argmax(probs[:, column]))


def stances_schema(labels: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("entity_id", pa.string()),
            ("target", pa.string()),
            ("type", pa.string()),
            ("label", pa.string()),
            ("confidence", pa.float32()),
            ("n_mentions", pa.int32()),
            ("evidence", pa.string()),
            ("evidence_sentence", pa.int32()),
            *[(f"p_{label}", pa.float32()) for label in labels],
        ]
    )


def mentions_schema(labels: list[str]) -> pa.Schema:
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("entity_id", pa.string()),
            ("sentence_index", pa.int32()),
            ("start", pa.int32()),
            ("end", pa.int32()),
            ("surface", pa.string()),
            *[(f"p_{label}", pa.float32()) for label in labels],
        ]
    )


def judged_mentions(mentions: pa.Table, probs: np.ndarray, labels: list[str]) -> pa.Table:
    """The `mentions` output table: each mention with the probabilities behind its entity's stance."""
    schema = mentions_schema(labels)
    columns = [mentions.column(name).cast(schema.field(name).type) for name in schema.names[: -len(labels)]]
    columns += [pa.array(probs[:, k] if len(probs) else [], pa.float32()) for k in range(len(labels))]
    return pa.Table.from_arrays(columns, schema=schema)


def mention_probabilities(sentences: pa.Table, mentions: pa.Table, config: PipelineConfig) -> tuple[np.ndarray, list[str]]:
    """(probabilities per mention, their labels) from the configured backend: a tuned head
    (already run in the encoder pass), a linear head, or an NLI model over each mention's
    sentence and target, batched across the shard's documents and targets."""
    if config.stance.kind == "nli":
        from tasks.models.backends import nli_stance

        model = nli_stance(config)
        texts = sentences.column("text").to_pylist()
        premises = [texts[row] for row in sentence_rows(sentences, mentions)] if mentions.num_rows else []
        return model.predict_proba(premises, mentions.column("target").to_pylist()), model.labels
    if STANCE_PROBS in mentions.column_names:
        return column_vectors(mentions, STANCE_PROBS), read_card(resolve_resource(config.stance.head))["labels"]
    head = cached_head(config.stance.head)
    if not mentions.num_rows:
        return np.zeros((0, len(head.labels)), np.float32), head.labels
    return head.predict_proba(mention_features(sentences, mentions, sentence_rows(sentences, mentions))), head.labels


def classify_stances(sentences: pa.Table, mentions: pa.Table, probs: np.ndarray, labels: list[str]) -> pa.Table:
    """One row per document and entity mentioned in it, from per-mention probabilities."""
    schema = stances_schema(labels)
    if not mentions.num_rows:
        return schema.empty_table()
    rows = sentence_rows(sentences, mentions)
    texts = sentences.column("text").to_pylist()
    indexes = mentions.column("sentence_index").to_pylist()
    targets, types = mentions.column("target").to_pylist(), mentions.column("type").to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for mention, key in enumerate(zip(mentions.column("doc_id").to_pylist(), mentions.column("entity_id").to_pylist())):
        groups.setdefault(key, []).append(mention)
    out = []
    for (doc_id, entity_id), group in groups.items():
        label, confidence, mean, best = document_stance(probs[group], labels)
        evidence = group[best]
        out.append(
            {
                "doc_id": doc_id,
                "entity_id": entity_id,
                "target": targets[group[0]],
                "type": types[group[0]],
                "label": label,
                "confidence": confidence,
                "n_mentions": len(group),
                "evidence": texts[rows[evidence]],
                "evidence_sentence": indexes[evidence],
                **{f"p_{name}": float(mean[k]) for k, name in enumerate(labels)},
            }
        )
    return pa.Table.from_pylist(out, schema=schema)


def stance_shard(sentences: pa.Table, mentions: pa.Table, config: PipelineConfig) -> StageOutput:
    """The stance stage over a shard's encoded sentences and mentions: the `stances` table,
    and the `mentions` part with each mention's probabilities."""
    probs, labels = mention_probabilities(sentences, mentions, config)
    return StageOutput(classify_stances(sentences, mentions, probs, labels), parts={"mentions": judged_mentions(mentions, probs, labels)})

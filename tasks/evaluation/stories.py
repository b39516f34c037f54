"""Story evaluation: articles labelled with the event they report, placed in stories by the
pipeline's own code (cleaning, the encoder's sentence vectors, the configured recogniser's
entities, StoryIndex in order of time), scored against the labels.

Reported: purity (each predicted story's share of its largest label), inverse purity (each
label's share in its largest story), B-cubed precision, recall and F1 (per article: how
much of its story shares its label, and how much of its label shares its story), and the
story counts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.config import PipelineConfig
from tasks.dataset.story_index import WINDOW_DAYS, utc_time
from tasks.evaluation.data_files import read_rows, require_columns
from tasks.records import RawDocument, Rejection
from tasks.stages.clean import clean_document
from tasks.stages.encode import find_names, pipeline_encoder
from tasks.stages.entities.known import AliasTable
from tasks.stages.entities.stage import document_entities
from tasks.stages.stories import StoryDocument, StoryIndex, document_vector

LABEL_COLUMN = "story"


def labelled_documents(data: Path, config: PipelineConfig) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(articles a run would keep, each with its cleaned sentences and label; rejected ones)."""
    rows = read_rows(data)
    require_columns(data, rows, ("text", LABEL_COLUMN))
    kept, rejected = [], []
    for index, row in enumerate(rows):
        origin = f"{data}#{index}"
        cleaned = clean_document(RawDocument(origin=origin, text=str(row.get("text") or "")), config.clean)
        if isinstance(cleaned, Rejection):
            rejected.append({"origin": origin, "reason": str(cleaned.reason), "detail": cleaned.detail})
            continue
        kept.append({**row, "origin": origin, "doc_id": cleaned.doc_id, "sentences": list(cleaned.sentences)})
    return kept, rejected


def story_documents(documents: list[dict[str, Any]], config: PipelineConfig) -> list[StoryDocument]:
    """What a run's commit would place: each article's vector, entity ids, time and outlet."""
    sentences = [s for d in documents for s in d["sentences"]]
    vectors = np.asarray(pipeline_encoder(config).encode(sentences).sentence_vectors)
    found = find_names(sentences, config)
    aliases, types = AliasTable(config.entities.known), set(config.entities.types)
    now, out, start = datetime.now(UTC).isoformat(), [], 0
    for d in documents:
        end = start + len(d["sentences"])
        entities = document_entities(d["sentences"], found[start:end], aliases, types)
        ids = frozenset(e.entity_id for e in entities)
        out.append(
            StoryDocument(
                d["doc_id"],
                document_vector(vectors[start:end]),
                ids,
                utc_time(d.get("published"), now),
                str(d.get("source") or ""),
                str(d.get("title") or ""),
                d["doc_id"],
            )
        )
        start = end
    return out


def purity(clusters: list[list[str]]) -> float:
    """Share of items in the most common label of their cluster."""
    total = sum(len(c) for c in clusters)
    return sum(Counter(c).most_common(1)[0][1] for c in clusters if c) / total if total else 0.0


def bcubed(predicted: list[str], gold: list[str]) -> tuple[float, float]:
    """(precision, recall): per item, the share of its predicted story with its label, and of its label in its story."""
    precision = recall = 0.0
    for p, g in zip(predicted, gold):
        same_story = [gold[j] for j in range(len(gold)) if predicted[j] == p]
        same_label = [predicted[j] for j in range(len(predicted)) if gold[j] == g]
        precision += same_story.count(g) / len(same_story)
        recall += same_label.count(p) / len(same_label)
    return (precision / len(gold), recall / len(gold)) if gold else (0.0, 0.0)


def story_metrics(predicted: list[str], gold: list[str]) -> dict[str, Any]:
    by_story: dict[str, list[str]] = {}
    by_label: dict[str, list[str]] = {}
    for p, g in zip(predicted, gold):
        by_story.setdefault(p, []).append(g)
        by_label.setdefault(g, []).append(p)
    precision, recall = bcubed(predicted, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "purity": round(purity(list(by_story.values())), 4),
        "inverse_purity": round(purity(list(by_label.values())), 4),
        "bcubed_precision": round(precision, 4),
        "bcubed_recall": round(recall, 4),
        "bcubed_f1": round(f1, 4),
        "n_stories": len(by_story),
        "n_labels": len(by_label),
    }


def evaluate_stories(data: Path, config: PipelineConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """(metrics, one row per article: its label and its story) on a labelled file
    (text, story; and as a run reads them, published, source, title)."""
    documents, rejected = labelled_documents(Path(data), config)
    placed = sorted(zip(story_documents(documents, config), documents), key=lambda pair: pair[0].time)
    index = StoryIndex(WINDOW_DAYS)
    predicted = [index.assign(document) for document, _ in placed]
    gold = [str(row[LABEL_COLUMN]) for _, row in placed]
    metrics = {"n": len(placed), **story_metrics(predicted, gold), "window_days": WINDOW_DAYS, "rejected": rejected}
    examples = pd.DataFrame(
        {
            "origin": [row["origin"] for _, row in placed],
            "title": [d.title for d, _ in placed],
            "gold": gold,
            "predicted": predicted,
            "time": [d.time for d, _ in placed],
        }
    )
    return metrics, examples

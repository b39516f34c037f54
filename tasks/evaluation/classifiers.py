"""Stance and sentiment measured through the pipeline's own code paths: the same encoder
pass, the same configured heads, the same document aggregation as `newsflow run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.config import PipelineConfig, resolve_resource
from tasks.evaluation.classification import classification_report
from tasks.evaluation.data_files import read_rows, require_columns
from tasks.models.backends import backend_provenance
from tasks.models.encoder import model_folder, weights_sha256
from tasks.models.heads import head_sha256
from tasks.stages.clean import split_sentences
from tasks.stages.encode import SentencesToEncode, encode_sentences, find_names
from tasks.stages.entities.stage import lone_sentence_mentions
from tasks.stages.sentiment import classify_sentiment, sentence_probabilities
from tasks.stages.stance import classify_stances, mention_probabilities
from tasks.training.newsmtsc import distinct_sentences, read_newsmtsc, sentence_polarity_labels
from tasks.training.train_heads import SENTIMENT_LABELS

SENTIMENT_NAMES = {"-1": "negative", "0": "neutral", "1": "positive", "negative": "negative", "neutral": "neutral", "positive": "positive"}


def model_ids(config: PipelineConfig, task: str) -> dict:
    """The models behind one task's numbers: a Hugging Face backend's provenance, or the
    encoder and head with their weight sha256."""
    backend = backend_provenance(config, (task,)).get(task)
    if backend:
        return backend
    head = resolve_resource(getattr(config, task).head)
    encoder = model_folder(config.encoder.model)
    return {
        "encoder": config.encoder.model,
        "encoder_weights_sha256": weights_sha256(encoder),
        "head": head.name,
        "head_path": str(head),
        "head_weights_sha256": head_sha256(head),
    }


def evaluate_stance(data: Path, config: PipelineConfig) -> tuple[dict, pd.DataFrame]:
    """Stance toward each row's mention (NewsMTSC format) with the configured head, labelled
    by the run's own document rule (`classify_stances`) over a one-mention document.
    Returns (metrics, one row per example with gold and predicted labels)."""
    rows = read_newsmtsc(data)
    batch = SentencesToEncode()
    # The other mentions the entities stage would judge in each sentence ride along, as in a
    # run: a head that marks every mention of a sentence at once must see them. Only the
    # row's own mention (entity_id "") is scored.
    texts = [row["sentence"] for row in rows]
    others = lone_sentence_mentions(texts, find_names(texts, config), config)
    for k, row in enumerate(rows):
        sentence = batch.add_sentence(f"row-{k}", 0, row["sentence"])
        labelled = (row["from"], row["to"])
        context = [span for span in others[k] if span[1] <= labelled[0] or span[0] >= labelled[1]]
        for entity_id, (start, end) in [("", labelled), *(("context", span) for span in context)]:
            surface = row["sentence"][start:end]
            batch.add_mention(
                sentence,
                {
                    "doc_id": f"row-{k}",
                    "sentence_index": 0,
                    "entity_id": entity_id,
                    "target": row["mention"] if entity_id == "" else surface,
                    "type": "",
                    "surface": surface,
                    "start": start,
                    "end": end,
                },
            )
    sentences, mentions = encode_sentences(batch, config)
    probs, labels = mention_probabilities(sentences, mentions, config)
    stances = classify_stances(sentences, mentions, probs, labels).to_pandas()
    stances = stances[stances["entity_id"] == ""].set_index("doc_id").loc[[f"row-{k}" for k in range(len(rows))]]
    gold = np.array([row["polarity"] + 1 for row in rows])  # -1/0/1 -> against/neutral/favor
    predicted = np.array([labels.index(label) for label in stances["label"]], dtype=np.int64)
    metrics = {"task": "stance", **classification_report(gold, predicted, labels), "models": model_ids(config, "stance")}
    examples = pd.DataFrame(
        {
            "sentence": [r["sentence"] for r in rows],
            "mention": [r["mention"] for r in rows],
            "gold": [labels[g] for g in gold],
            "predicted": stances["label"].to_list(),
            "confidence": stances["confidence"].to_numpy(),
        }
    )
    return metrics, examples


def read_sentiment_examples(data: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """(texts, labels) from CSV / JSONL / Parquet; labels as negative/neutral/positive or -1/0/1.
    A NewsMTSC file is read as its distinct sentences, each labelled by the rounded mean
    polarity toward its targets (the same rule the sentiment head was trained with)."""
    rows = read_rows(data)
    if rows and {"sentence", "mention", "polarity"} <= set(rows[0]) and text_column not in rows[0]:
        sentences, sentence_of = distinct_sentences(rows)
        labels = sentence_polarity_labels(sentence_of, np.array([int(r["polarity"]) + 1 for r in rows]), len(sentences))
        return sentences, [SENTIMENT_LABELS[k] for k in labels]
    require_columns(data, rows, (text_column, label_column))
    labels = []
    for row in rows:
        value = row.get(label_column)
        key = str(int(value)) if isinstance(value, (int, float)) else str(value).strip().lower()
        if key not in SENTIMENT_NAMES:
            raise ValueError(f"{data}: label {value!r} is not negative/neutral/positive or -1/0/1")
        labels.append(SENTIMENT_NAMES[key])
    return [str(row.get(text_column) or "") for row in rows], labels


def evaluate_sentiment(data: Path, config: PipelineConfig, text_column: str = "text", label_column: str = "label") -> tuple[dict, pd.DataFrame]:
    """Each text's document sentiment, exactly as the pipeline labels a document: split into
    sentences, sentence head, opinion-weighted mean, argmax. An empty text is not scored:
    it is counted under `n_rejected` (a run would reject it as `empty`)."""
    all_texts, all_gold = read_sentiment_examples(data, text_column, label_column)
    kept = [k for k, text in enumerate(all_texts) if text.strip()]
    texts, gold_names = [all_texts[k] for k in kept], [all_gold[k] for k in kept]
    batch = SentencesToEncode()
    for k, text in enumerate(texts):
        for index, sentence in enumerate(split_sentences(text) or [text.strip()]):
            batch.add_sentence(f"text-{k:08d}", index, sentence)
    sentences, _ = encode_sentences(batch, config)
    probs, labels = sentence_probabilities(sentences, config)
    _, documents = classify_sentiment(sentences, probs, labels)
    predicted_names = documents.column("sentiment").to_pylist()  # one row per text, in order
    gold = np.array([labels.index(g) for g in gold_names], dtype=np.int64)
    predicted = np.array([labels.index(p) for p in predicted_names], dtype=np.int64)
    metrics = {
        "task": "sentiment",
        **classification_report(gold, predicted, labels),
        "n_rejected": len(all_texts) - len(kept),
        "rejected_by_reason": {"empty": len(all_texts) - len(kept)} if len(kept) < len(all_texts) else {},
        "models": model_ids(config, "sentiment"),
    }
    return metrics, pd.DataFrame({"text": texts, "gold": gold_names, "predicted": predicted_names})

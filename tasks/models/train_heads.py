"""Train the embedded default's sentiment and stance heads on NewsMTSC.

    python -m tasks.models.train_heads [--data ../shared/data/newsmtsc] [--out data/models]

Features come from the pipeline's own encoder pass, so training and inference read the
same vectors. Regularisation is chosen on dev.jsonl only. Training is deterministic for
a given seed and thread count. (The full `newsflow train` flow builds on this.)"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.config import PROJECT_ROOT, EncoderConfig
from tasks.models.encoder import Span, get_encoder, weights_sha256
from tasks.models.heads import LinearHead

STANCE_LABELS = ["against", "neutral", "favor"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


@dataclass
class MentionSet:
    features: np.ndarray  # stance features: sentence + span + window
    labels: np.ndarray  # 0 against/negative, 1 neutral, 2 favor/positive
    sentence_features: np.ndarray  # one row per distinct sentence
    sentence_labels: np.ndarray


def read_newsmtsc(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pipeline_encoder():
    """The encoder exactly as the pipeline's default config loads it, so features match."""
    settings = EncoderConfig()
    return get_encoder(settings.model, settings.max_length, settings.max_tokens_per_batch)


def featurise(rows: list[dict]) -> MentionSet:
    encoder = pipeline_encoder()
    sentences = sorted({r["sentence"] for r in rows})
    index = {s: i for i, s in enumerate(sentences)}
    spans = [Span(index[r["sentence"]], r["from"], r["to"]) for r in rows]
    enc = encoder.encode(sentences, spans)
    sentence_of = np.array([s.sentence for s in spans])
    features = np.hstack([enc.sentence_vectors[sentence_of], enc.span_vectors, enc.window_vectors])
    labels = np.array([r["polarity"] + 1 for r in rows])
    # A sentence's overall tone: the rounded mean polarity toward the targets it mentions.
    polarity_sum = np.zeros(len(sentences))
    np.add.at(polarity_sum, sentence_of, labels - 1)
    counts = np.bincount(sentence_of, minlength=len(sentences))
    mean_polarity = polarity_sum / np.maximum(counts, 1)
    sentence_labels = np.where(mean_polarity >= 0.5, 2, np.where(mean_polarity <= -0.5, 0, 1))
    return MentionSet(features, labels, enc.sentence_vectors, sentence_labels)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> float:
    scores = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        precision = tp / max(np.sum(y_pred == c), 1)
        recall = tp / max(np.sum(y_true == c), 1)
        scores.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class-balanced multinomial logistic regression on standardised features (L-BFGS)."""
    torch.manual_seed(seed)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.tensor((x - mean) / scale, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.long)
    counts = np.bincount(y, minlength=3)
    class_weight = torch.tensor(len(y) / (3 * np.maximum(counts, 1)), dtype=torch.float64)
    weight = torch.zeros((3, x.shape[1]), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=500, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ weight.T + bias, yt, weight=class_weight) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach().numpy(), bias.detach().numpy(), mean, scale


def select_and_fit(x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, labels: list[str], features: str) -> tuple[LinearHead, dict]:
    best: tuple[float, float] | None = None
    grid = {}
    for l2 in L2_GRID:
        head = LinearHead(*fit_logistic(x, y, l2), labels=labels, features=features)
        score = macro_f1(y_dev, head.predict_proba(x_dev).argmax(axis=1))
        grid[str(l2)] = round(score, 4)
        if best is None or score > best[0]:
            best = (score, l2)
    head = LinearHead(*fit_logistic(x, y, best[1]), labels=labels, features=features)
    pred = head.predict_proba(x_dev).argmax(axis=1)
    metrics = {"dev_macro_f1": round(macro_f1(y_dev, pred), 4), "dev_accuracy": round(float(np.mean(pred == y_dev)), 4),
               "l2": best[1], "l2_grid_dev_macro_f1": grid, "n_train": int(len(y)), "n_dev": int(len(y_dev))}
    return head, metrics


def train_heads(data_dir: Path, out_dir: Path, seed: int = 0) -> dict:
    started = time.perf_counter()
    torch.manual_seed(seed)
    train_path, dev_path = data_dir / "train.jsonl", data_dir / "dev.jsonl"
    train, dev = featurise(read_newsmtsc(train_path)), featurise(read_newsmtsc(dev_path))
    encoder = pipeline_encoder()
    provenance = {
        "data": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (train_path, dev_path)},
        "data_credit": "NewsMTSC (Hamborg and Donnay, EACL 2021), newsmtsc-rw split, MIT licence",
        "encoder": EncoderConfig().model, "encoder_weights_sha256": weights_sha256(encoder.folder),
        "method": "class-balanced multinomial logistic regression on frozen all-MiniLM-L6-v2 features, L2 chosen on dev",
        "seed": seed, "threads": torch.get_num_threads(),
    }
    stance, stance_metrics = select_and_fit(train.features, train.labels, dev.features, dev.labels, STANCE_LABELS, "sentence+span+window")
    sentiment, sentiment_metrics = select_and_fit(train.sentence_features, train.sentence_labels, dev.sentence_features, dev.sentence_labels, SENTIMENT_LABELS, "sentence")
    report = {}
    for name, head, metrics, task in (
        ("stance-linear", stance, stance_metrics, "sentiment toward a target mention (stance)"),
        ("sentiment-linear", sentiment, sentiment_metrics, "sentence sentiment (rounded mean polarity of the sentence's NewsMTSC targets)"),
    ):
        head.card = {"name": name, "task": task, **provenance, "metrics": metrics,
                     "training_seconds": round(time.perf_counter() - started, 1)}
        head.save(out_dir / name)
        report[name] = metrics
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "newsmtsc")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "data" / "models")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(train_heads(args.data, args.out, args.seed), indent=2))


if __name__ == "__main__":
    main()

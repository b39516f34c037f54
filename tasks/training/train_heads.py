"""Train the sentiment and stance heads on NewsMTSC-format JSONL (what `newsflow train` runs).

Two paths, both selected on dev only:
- linear heads: class-balanced logistic regressions on the pipeline's own frozen encoder
  features (so training and inference read the same vectors), L2 chosen on dev;
- the tuned stance head (`--finetune`): MiniLM's top layers fine-tuned with the target
  marked (see tasks/models/tuned_stance.py), best epoch chosen on dev, temperature fitted on dev.
Training is deterministic for a given seed and thread count."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.config import EncoderConfig
from tasks.dataset.staging import file_sha256
from tasks.evaluation.classification import dev_metrics, macro_f1
from tasks.models.encoder import SentenceEncoder, Span, get_encoder, weights_sha256
from tasks.models.heads import LinearHead
from tasks.models.model_card import NEWSMTSC_CREDIT
from tasks.training.finetune_stance import FinetuneSettings, Progress, finetune_stance
from tasks.training.newsmtsc import distinct_sentences, read_newsmtsc, sentence_polarity_labels

STANCE_LABELS = ["against", "neutral", "favor"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


@dataclass
class TrainingData:
    train_path: Path
    dev_path: Path
    train: list[dict]
    dev: list[dict]


def load_training_data(train_path: Path, dev_path: Path, limit: int | None = None) -> TrainingData:
    """The train and dev rows; `limit` keeps the first rows of train only (quick trials)."""
    train = read_newsmtsc(train_path)
    return TrainingData(train_path, dev_path, train[:limit] if limit else train, read_newsmtsc(dev_path))


def pipeline_encoder() -> SentenceEncoder:
    """The encoder exactly as the pipeline's default config loads it, so features match."""
    settings = EncoderConfig()
    return get_encoder(settings.model, settings.max_length, settings.max_tokens_per_batch)


def provenance(data: TrainingData, encoder: SentenceEncoder, seed: int) -> dict:
    return {
        "data": {str(data.train_path.name): file_sha256(data.train_path), str(data.dev_path.name): file_sha256(data.dev_path)},
        "data_credit": NEWSMTSC_CREDIT,
        "n_train_rows": len(data.train),
        "encoder": EncoderConfig().model,
        "encoder_weights_sha256": weights_sha256(encoder.folder),
        "seed": seed,
        "threads": torch.get_num_threads(),
    }


@dataclass
class MentionSet:
    features: np.ndarray  # stance features: sentence + span + window
    labels: np.ndarray  # 0 against/negative, 1 neutral, 2 favor/positive
    sentence_features: np.ndarray  # one row per distinct sentence
    sentence_labels: np.ndarray


def featurise(rows: list[dict], encoder: SentenceEncoder) -> MentionSet:
    sentences, sentence_of = distinct_sentences(rows)
    spans = [Span(int(i), r["from"], r["to"]) for r, i in zip(rows, sentence_of)]
    enc = encoder.encode(sentences, spans)
    features = np.hstack([enc.sentence_vectors[sentence_of], enc.span_vectors, enc.window_vectors])
    labels = np.array([r["polarity"] + 1 for r in rows])
    return MentionSet(features, labels, enc.sentence_vectors, sentence_polarity_labels(sentence_of, labels, len(sentences)))


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


def select_and_fit(x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, labels: list[str], features: str) -> tuple[LinearHead, dict, dict]:
    """The L2 penalty with the best dev macro-F1; returns (head, metrics, hyper-parameters)."""
    grid = {}
    for l2 in L2_GRID:
        head = LinearHead(*fit_logistic(x, y, l2), labels=labels, features=features)
        grid[str(l2)] = round(macro_f1(y_dev, head.predict_proba(x_dev).argmax(axis=1)), 4)
    best = max(L2_GRID, key=lambda l2: grid[str(l2)])  # first of equals: the smallest penalty
    head = LinearHead(*fit_logistic(x, y, best), labels=labels, features=features)
    metrics = {**dev_metrics(y_dev, head.predict_proba(x_dev).argmax(axis=1), labels), "n_train": len(y), "n_dev": len(y_dev)}
    return head, metrics, {"l2": best, "l2_grid_dev_macro_f1": grid, "class_weight": "balanced", "optimiser": "L-BFGS"}


def train_linear_heads(data: TrainingData, out_dir: Path, seed: int = 0) -> dict[str, dict]:
    """Fit and write `stance-linear` and `sentiment-linear`; returns their dev metrics."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    encoder = pipeline_encoder()
    train, dev = featurise(data.train, encoder), featurise(data.dev, encoder)
    common = {
        **provenance(data, encoder, seed),
        "command": "newsflow train",
        "method": "class-balanced multinomial logistic regression on frozen all-MiniLM-L6-v2 features, L2 chosen on dev",
    }
    report = {}
    for name, x, y, x_dev, y_dev, labels, features, task in (
        (
            "stance-linear",
            train.features,
            train.labels,
            dev.features,
            dev.labels,
            STANCE_LABELS,
            "sentence+span+window",
            "Stance: sentiment toward a target mention in a sentence (against / neutral / favor).",
        ),
        (
            "sentiment-linear",
            train.sentence_features,
            train.sentence_labels,
            dev.sentence_features,
            dev.sentence_labels,
            SENTIMENT_LABELS,
            "sentence",
            "Sentence sentiment (label: the rounded mean NewsMTSC polarity toward the sentence's targets).",
        ),
    ):
        head, metrics, hyperparameters = select_and_fit(x, y, x_dev, y_dev, labels, features)
        head.card = {
            "name": name,
            "task": task,
            **common,
            "hyperparameters": hyperparameters,
            "metrics": metrics,
            "training_seconds": round(time.perf_counter() - started, 1),
        }
        head.save(out_dir / name)
        report[name] = metrics
    return report


def train_tuned_stance(data: TrainingData, out_dir: Path, settings: FinetuneSettings, progress: Progress | None = None) -> dict:
    """Fine-tune and write `stance-tuned`; returns its dev metrics."""
    started = time.perf_counter()
    encoder = pipeline_encoder()
    head, metrics = finetune_stance(data.train, data.dev, encoder, STANCE_LABELS, settings, progress)
    head.card = {
        "name": "stance-tuned",
        "task": "Stance: sentiment toward a target mention in a sentence (against / neutral / favor).",
        **provenance(data, encoder, settings.seed),
        "command": f"newsflow train --finetune --epochs {settings.epochs} --layers {settings.n_layers} --seed {settings.seed}",
        "method": f"all-MiniLM-L6-v2's top {settings.n_layers} layers fine-tuned with a learned target-marker vector, "
        "[sentence mean; mention mean] -> linear; class-balanced cross-entropy, AdamW, best epoch on dev, temperature on dev",
        "hyperparameters": asdict(settings),
        "metrics": metrics,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    head.save(out_dir / "stance-tuned")
    return metrics

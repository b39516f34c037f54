"""Classification heads over encoder features, behind one small interface.

A head maps a feature matrix to class probabilities. The shipped heads are
multinomial logistic regressions stored as safetensors plus a JSON model card."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import load_file, save_file

from tasks.config import resolve_resource
from tasks.models.model_card import CARD_FILE, write_card

WEIGHTS_FILE = "head.safetensors"
LINEAR_KIND = "linear"


class Head(Protocol):
    labels: list[str]
    features: str  # which encoder features it reads, e.g. "sentence" or "sentence+span+window"

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class LinearHead:
    """softmax((x - mean) / scale @ weight.T + bias)."""

    weight: np.ndarray  # (n_classes, n_features)
    bias: np.ndarray  # (n_classes,)
    mean: np.ndarray  # (n_features,)
    scale: np.ndarray  # (n_features,)
    labels: list[str]
    features: str
    card: dict = field(default_factory=dict)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(((x - self.mean) / self.scale) @ self.weight.T + self.bias).astype(np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight, "bias": self.bias, "mean": self.mean, "scale": self.scale}
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(folder / WEIGHTS_FILE))
        write_card(folder, {**self.card, "kind": LINEAR_KIND, "labels": self.labels, "features": self.features})


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def weights_file(folder: Path) -> Path:
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no head weights at {path} (train them with `python -m tasks.training.train_heads`)")
    return path


def read_card(folder: Path) -> dict:
    """A head's card.json: labels, features, kind, training data and metrics."""
    weights_file(folder)  # a folder without weights is not a head, whatever else it holds
    return json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))


def head_kind(folder: Path) -> str:
    """'linear' (a logistic regression over encoder features) or 'tuned-top-layers'."""
    return read_card(folder).get("kind", LINEAR_KIND)


def load_linear_head(folder: Path) -> LinearHead:
    tensors = load_file(str(weights_file(folder)))
    card = read_card(folder)
    if card.get("kind", LINEAR_KIND) != LINEAR_KIND:
        raise ValueError(f"{folder} holds a {card['kind']} head; this stage needs a linear head over encoder features")
    return LinearHead(
        weight=tensors["weight"],
        bias=tensors["bias"],
        mean=tensors["mean"],
        scale=tensors["scale"],
        labels=list(card["labels"]),
        features=card["features"],
        card=card,
    )


def opinion_weighted_mean(probs: np.ndarray, neutral: int) -> np.ndarray:
    """The aggregate of several sentences' (or mentions') class probabilities: their mean,
    each weighted by how opinionated it is (1 - p_neutral).

    Most news sentences are neutral; in a plain mean they drown the few that carry the
    tone, and nearly every article comes out neutral. Weighted, a single sentence keeps its
    own probabilities (so its label is the head's argmax, as measured on dev), a document's
    tone comes from the sentences that have one, and a document of neutral sentences stays
    neutral."""
    weights = 1.0 - probs[:, neutral].astype(np.float64)
    if weights.sum() <= 1e-9:
        return probs.mean(axis=0)
    return (weights[:, None] * probs).sum(axis=0) / weights.sum()


@lru_cache(maxsize=8)
def cached_head(path: str) -> LinearHead:
    """The head at a config path, loaded once per process."""
    return load_linear_head(resolve_resource(path))


def head_sha256(folder: Path) -> str:
    return hashlib.sha256(weights_file(folder).read_bytes()).hexdigest()

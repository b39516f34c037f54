"""Classification metrics: macro-F1, accuracy, per-class precision/recall/F1, confusion."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: the true class; columns: the predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> list[tuple[float, float, float, int]]:
    """(precision, recall, F1, support) per class; 0 where a class is never predicted or present."""
    scores = []
    for c in range(matrix.shape[0]):
        tp = float(matrix[c, c])
        predicted, support = float(matrix[:, c].sum()), int(matrix[c, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        scores.append((precision, recall, f1, support))
    return scores


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> float:
    return float(np.mean([f1 for _, _, f1, _ in per_class_scores(confusion_matrix(y_true, y_pred, n_classes))]))


def dev_metrics(y_dev: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """The report under the `dev_` names a model card's metrics use."""
    report = classification_report(y_dev, predicted, labels)
    return {
        "dev_macro_f1": report["macro_f1"],
        "dev_accuracy": report["accuracy"],
        "dev_per_class": report["per_class"],
        "dev_confusion_matrix": report["confusion_matrix"],
    }


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Every metric `newsflow evaluate` reports for a classifier, JSON-ready."""
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    scores = per_class_scores(matrix)
    n = int(matrix.sum())
    return {
        "n": n,
        "macro_f1": round(float(np.mean([s[2] for s in scores])), 4),
        "accuracy": round(float(np.trace(matrix)) / n, 4) if n else 0.0,
        "per_class": {
            label: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": support} for label, (p, r, f, support) in zip(labels, scores)
        },
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }

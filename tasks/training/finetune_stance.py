"""Fine-tune the stance head's top transformer layers on NewsMTSC-format rows.

The layers below the split are frozen and shared with the pipeline's encoder pass, so
their states are computed once per sentence up front; each epoch then runs only the
tuned layers. The epoch with the best dev macro-F1 is kept, and a softmax temperature
is fitted on dev so the probabilities (and the document confidences built on them)
are calibrated."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tasks.evaluation.classification import dev_metrics, macro_f1
from tasks.models.encoder import SentenceEncoder, Span, span_tokens
from tasks.models.tuned_stance import MentionBatch, TunedStanceHead, pad_mentions
from tasks.training.newsmtsc import distinct_sentences

Progress = Callable[[int, int, float], None]  # (step, total steps, seconds elapsed)


@dataclass
class FinetuneSettings:
    n_layers: int = 2
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4  # the copied transformer layers
    head_learning_rate: float = 1e-3  # marker and classifier, trained from scratch
    weight_decay: float = 0.01
    dropout: float = 0.1
    seed: int = 0


@dataclass
class MentionData:
    states: list[torch.Tensor]  # one per mention (shared tensors for a shared sentence)
    tokens: list[list[int]]
    labels: np.ndarray  # 0 against, 1 neutral, 2 favor


def mention_data(rows: list[dict], encoder: SentenceEncoder, split_layer: int) -> MentionData:
    """Split-layer states of each row's sentence (each distinct sentence encoded once)."""
    sentences, sentence_of = distinct_sentences(rows)
    computed = encoder.token_states(sentences, split_layer)
    states, tokens = [], []
    for r, i in zip(rows, sentence_of):
        states.append(computed.states[i])
        tokens.append(span_tokens(computed.offsets[i], Span(int(i), r["from"], r["to"])))
    return MentionData(states, tokens, np.array([r["polarity"] + 1 for r in rows]))


def length_bucketed_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffled batches of similar lengths: less padding, still a different order every epoch."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * 20
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def batch_of(data: MentionData, rows: list[int]) -> MentionBatch:
    return pad_mentions([data.states[i] for i in rows], [data.tokens[i] for i in rows])


def predict_logits(head: TunedStanceHead, data: MentionData, batch_size: int = 128) -> torch.Tensor:
    head.eval()
    lengths = [s.shape[0] for s in data.states]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    logits = torch.zeros((len(order), len(head.labels)))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits[rows] = head.logits(batch_of(data, rows))
    return logits


def fit_temperature(logits: torch.Tensor, labels: np.ndarray) -> float:
    """The softmax temperature that minimises dev negative log-likelihood (Guo et al. 2017)."""
    log_t = torch.zeros((), requires_grad=True)
    target = torch.tensor(labels, dtype=torch.long)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), target)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            error += inside.mean() * abs(float((predicted[inside] == labels[inside]).mean()) - float(confidence[inside].mean()))
    return float(error)


def finetune_stance(
    train: list[dict], dev: list[dict], encoder: SentenceEncoder, labels: list[str], settings: FinetuneSettings, progress: Progress | None = None
) -> tuple[TunedStanceHead, dict]:
    """Train, keep the best epoch on dev, calibrate; returns the head and its dev metrics."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    head = TunedStanceHead(encoder.model, settings.n_layers, labels, settings.dropout)
    train_data = mention_data(train, encoder, head.split_layer)
    dev_data = mention_data(dev, encoder, head.split_layer)
    counts = np.bincount(train_data.labels, minlength=len(labels))
    # Class-balanced loss: macro-F1 weighs the rare favour class as much as the others.
    class_weight = torch.tensor(len(train_data.labels) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    optimiser = torch.optim.AdamW(
        [
            {"params": head.layers.parameters(), "lr": settings.learning_rate},
            {"params": [head.marker, *head.classifier.parameters()], "lr": settings.head_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )
    lengths = [s.shape[0] for s in train_data.states]
    steps_per_epoch = -(-len(lengths) // settings.batch_size)
    total = steps_per_epoch * settings.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1 - step / total))
    target = torch.tensor(train_data.labels, dtype=torch.long)
    started, step = time.perf_counter(), 0
    best: tuple[float, dict, int] | None = None
    history = []
    for epoch in range(settings.epochs):
        head.train()
        for rows in length_bucketed_batches(lengths, settings.batch_size, generator):
            loss = nn.functional.cross_entropy(head.logits(batch_of(train_data, rows)), target[rows], weight=class_weight)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            if progress:
                progress(step, total, time.perf_counter() - started)
        score = macro_f1(dev_data.labels, predict_logits(head, dev_data).argmax(dim=1).numpy(), len(labels))
        history.append(round(score, 4))
        if best is None or score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in head.state_dict().items()}, epoch + 1)
    head.load_state_dict(best[1])
    dev_logits = predict_logits(head, dev_data)
    head.temperature.fill_(fit_temperature(dev_logits, dev_data.labels))
    probs = torch.softmax(dev_logits / head.temperature, dim=-1).numpy()
    metrics = {
        **dev_metrics(dev_data.labels, probs.argmax(axis=1), labels),
        "best_epoch": best[2],
        "dev_macro_f1_per_epoch": history,
        "temperature": round(float(head.temperature), 4),
        "dev_ece_before_calibration": round(expected_calibration_error(torch.softmax(dev_logits, -1).numpy(), dev_data.labels), 4),
        "dev_ece": round(expected_calibration_error(probs, dev_data.labels), 4),
        "n_train": len(train),
        "n_dev": len(dev),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return head, metrics

"""Fine-tune the stance head's top transformer layers on NewsMTSC-format rows.

The layers below the split are frozen and shared with the pipeline's encoder pass, so
their states are computed once per sentence up front; each epoch then runs only the
tuned layers. The epoch with the best dev macro-F1 is kept, and a softmax temperature
is fitted on dev so the probabilities (and the document confidences built on them)
are calibrated.

Options beyond one head (each recorded in the card):
- `seeds`: an ensemble, one member per seed, trained one after the other on the same
  split-layer states exactly as a single head with that seed would be; the ensemble's
  probabilities are the mean of the members' calibrated probabilities.
- `augment="swap"`: each swappable row (a named person, organisation, place or group) has
  one entity-swapped copy (tasks/training/stance_augment.py); every epoch shows a random
  `swap_probability` share of those rows as their copy instead, so an epoch costs the same.
- `cues="repeat"`: rows whose mention is the object of a criticism or praise verb are shown
  `cue_repeats` extra times per epoch.
- `marking="all-mentions"`: every row's sentence carries the marker on all its labelled
  targets and on every mention the entities stage would judge in it, as the pipeline's
  one pass per sentence sees it; the row's own mention is the one pooled."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tasks.evaluation.classification import dev_metrics, macro_f1
from tasks.models.encoder import SentenceEncoder, Span, span_tokens
from tasks.models.tuned_stance import MARKINGS, MentionBatch, TunedStanceEnsemble, TunedStanceHead, pad_rows
from tasks.training.newsmtsc import distinct_sentences
from tasks.training.stance_augment import Tagger, entity_swaps, mention_entities, opinion_cue, spacy_tagger

Progress = Callable[[int, int, float], None]  # (step, total steps, seconds elapsed)
Marker = Callable[[list[str]], list[list[tuple[int, int]]]]  # sentences -> the spans the pipeline would judge in each


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
    seeds: tuple[int, ...] = ()  # an ensemble with one member per seed; empty: a single head (`seed`)
    augment: str = "none"  # "swap": entity-swapped copies of the training rows
    swap_probability: float = 0.5  # per epoch, the share of swappable rows shown as their copy
    swap_seed: int = 0  # which names the copies get (shared by all members)
    cues: str = "none"  # "repeat": opinion-cue rows shown `cue_repeats` extra times per epoch
    cue_repeats: int = 2
    marking: str = "target"  # "all-mentions": one pass per sentence with every judged mention marked

    def member_seeds(self) -> list[int]:
        return list(self.seeds) or [self.seed]

    def is_plain(self) -> bool:
        """One head, no augmentation, no cues: what `newsflow train --finetune` has always trained."""
        return len(self.member_seeds()) == 1 and self.augment == "none" and self.cues == "none" and self.marking == "target"


AUGMENTATIONS = ("none", "swap")
CUES = ("none", "repeat")


@dataclass
class MentionData:
    states: list[torch.Tensor]  # one per mention (shared tensors for a shared sentence)
    tokens: list[list[int]]  # the mention's tokens (pooled)
    marked: list[list[int]]  # the tokens that get the marker: the mention's own, or all of its sentence's
    labels: np.ndarray  # 0 against, 1 neutral, 2 favor


def concatenate(first: MentionData, second: MentionData) -> MentionData:
    return MentionData(first.states + second.states, first.tokens + second.tokens, first.marked + second.marked, np.concatenate([first.labels, second.labels]))


def mention_data(rows: list[dict], encoder: SentenceEncoder, split_layer: int, marker: Marker | None = None) -> MentionData:
    """Split-layer states of each row's sentence (each distinct sentence encoded once). With
    a marker ("all-mentions" heads), each sentence is marked on every labelled target and
    on every span the marker finds; else each row marks only its own mention."""
    sentences, sentence_of = distinct_sentences(rows)
    computed = encoder.token_states(sentences, split_layer)
    tokens = [span_tokens(computed.offsets[i], Span(int(i), r["from"], r["to"])) for r, i in zip(rows, sentence_of)]
    marked = tokens
    if marker is not None:
        spans = marker(sentences)
        for r, i in zip(rows, sentence_of):
            spans[i].append((r["from"], r["to"]))
        sentence_marks = [sorted({t for a, b in spans[i] for t in span_tokens(computed.offsets[i], Span(i, a, b))}) for i in range(len(sentences))]
        marked = [sentence_marks[i] for i in sentence_of]
    states = [computed.states[i] for i in sentence_of]
    return MentionData(states, tokens, marked, np.array([r["polarity"] + 1 for r in rows]))


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
    """One batch row per mention (a sentence judged for two targets appears twice)."""
    return pad_rows([data.states[i] for i in rows], [data.marked[i] for i in rows], [(p, data.tokens[i]) for p, i in enumerate(rows)])


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


@dataclass
class TrainingSet:
    """The original rows (first `n`), any swapped copies after them, and what each epoch shows."""

    data: MentionData
    n: int
    copy_of: np.ndarray  # per original row: the index of its swapped copy in `data`, or -1
    cue_rows: np.ndarray  # original rows repeated each epoch
    settings: FinetuneSettings

    def rows_per_epoch(self) -> int:
        return self.n + (len(self.cue_rows) * self.settings.cue_repeats if self.settings.cues == "repeat" else 0)

    def epoch_rows(self, generator: torch.Generator) -> list[int]:
        rows = np.arange(self.n)
        if self.settings.augment == "swap":  # drawn only when swapping: plain training keeps its random stream
            shown = (torch.rand(self.n, generator=generator).numpy() < self.settings.swap_probability) & (self.copy_of >= 0)
            rows = np.where(shown, self.copy_of, rows)
        return rows.tolist() + np.tile(rows[self.cue_rows], self.settings.cue_repeats if self.settings.cues == "repeat" else 0).tolist()


def training_set(
    train: list[dict], encoder: SentenceEncoder, split_layer: int, settings: FinetuneSettings, tagger: Tagger | None = None, marker: Marker | None = None
) -> tuple[TrainingSet, dict]:
    """The training mentions with their augmentation; returns it and a summary for the card."""
    if settings.augment not in AUGMENTATIONS or settings.cues not in CUES or settings.marking not in MARKINGS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, cues one of {CUES} and marking one of {MARKINGS}")
    data = mention_data(train, encoder, split_layer, marker)
    copy_of = np.full(len(train), -1, dtype=np.int64)
    summary: dict = {}
    if settings.augment == "swap":
        entities = mention_entities(train, tagger or spacy_tagger())
        swaps = entity_swaps(train, entities, settings.swap_seed)
        swapped = [i for i, row in enumerate(swaps) if row is not None]
        if swapped:
            data = concatenate(data, mention_data([swaps[i] for i in swapped], encoder, split_layer, marker))
            copy_of[swapped] = len(train) + np.arange(len(swapped))
        summary["swap"] = {
            "rows_with_a_copy": len(swapped),
            "by_kind": dict(sorted(Counter(entities[i].kind for i in swapped).items())),
            "swap_probability": settings.swap_probability,
            "examples": [f"{swaps[i]['swapped_from']} -> {swaps[i]['mention']}" for i in swapped[:5]],
        }
    cue_rows = np.array([i for i, row in enumerate(train) if opinion_cue(row)], dtype=np.int64) if settings.cues == "repeat" else np.zeros(0, np.int64)
    if settings.cues == "repeat":
        summary["cues"] = {
            "rows": len(cue_rows),
            "repeats": settings.cue_repeats,
            "by_cue": dict(sorted(Counter(opinion_cue(train[i]) for i in cue_rows).items())),
        }
    return TrainingSet(data, len(train), copy_of, cue_rows, settings), summary


def train_member(
    seed: int,
    encoder: SentenceEncoder,
    labels: list[str],
    training: TrainingSet,
    dev_data: MentionData,
    settings: FinetuneSettings,
    progress: Progress | None = None,
) -> tuple[TunedStanceHead, dict]:
    """One head: train, keep the best epoch on dev, calibrate; returns it and its dev metrics."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = TunedStanceHead(encoder.model, settings.n_layers, labels, settings.dropout, settings.marking)
    train_labels = training.data.labels[: training.n]
    counts = np.bincount(train_labels, minlength=len(labels))
    # Class-balanced loss: macro-F1 weighs the rare favour class as much as the others.
    class_weight = torch.tensor(len(train_labels) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)
    optimiser = torch.optim.AdamW(
        [
            {"params": head.layers.parameters(), "lr": settings.learning_rate},
            {"params": [head.marker, *head.classifier.parameters()], "lr": settings.head_learning_rate},
        ],
        weight_decay=settings.weight_decay,
    )
    steps_per_epoch = -(-training.rows_per_epoch() // settings.batch_size)
    total = steps_per_epoch * settings.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1 - step / total))
    target = torch.tensor(training.data.labels, dtype=torch.long)
    all_lengths = [s.shape[0] for s in training.data.states]
    started, step = time.perf_counter(), 0
    best: tuple[float, dict, int] | None = None
    history = []
    for epoch in range(settings.epochs):
        head.train()
        shown = training.epoch_rows(generator)
        for positions in length_bucketed_batches([all_lengths[i] for i in shown], settings.batch_size, generator):
            rows = [shown[p] for p in positions]
            loss = nn.functional.cross_entropy(head.logits(batch_of(training.data, rows)), target[rows], weight=class_weight)
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
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    return head, metrics


def calibrated_probs(head: TunedStanceHead, data: MentionData) -> np.ndarray:
    return torch.softmax(predict_logits(head, data) / head.temperature, dim=-1).numpy()


def stance_command(settings: FinetuneSettings) -> str:
    """The command that trains a head with these settings (at the current thread count)."""
    parts = ["newsflow train --finetune", f"--epochs {settings.epochs}", f"--layers {settings.n_layers}"]
    seeds = settings.member_seeds()
    parts.append(f"--seeds {','.join(str(s) for s in seeds)}" if len(seeds) > 1 else f"--seed {seeds[0]}")
    if settings.augment != "none":
        parts.append(f"--augment {settings.augment}")
    if settings.cues != "none":
        parts.append(f"--cues {settings.cues}")
    if settings.marking != "target":
        parts.append(f"--marking {settings.marking}")
    return " ".join([*parts, f"--threads {torch.get_num_threads()}"])


def stance_method(settings: FinetuneSettings) -> str:
    seeds = settings.member_seeds()
    text = (
        f"all-MiniLM-L6-v2's top {settings.n_layers} layers fine-tuned with a learned target-marker vector, "
        "[sentence mean; mention mean] -> linear; class-balanced cross-entropy, AdamW, best epoch on dev, temperature on dev"
    )
    if settings.augment == "swap":
        text += f"; entity-swap augmentation (a same-kind name in place of the mention, {settings.swap_probability:g} of swappable rows per epoch)"
    if settings.cues == "repeat":
        text += f"; rows whose mention is the object of a criticism/praise verb repeated {settings.cue_repeats}x per epoch"
    if settings.marking == "all-mentions":
        text += "; every mention the entities stage would judge in the sentence carries the marker (one pass per sentence), the judged one is pooled"
    if len(seeds) > 1:
        text += f"; ensemble of {len(seeds)} such heads (seeds {', '.join(map(str, seeds))}) averaging their calibrated probabilities"
    return text


def pipeline_marker() -> Marker:
    """The default config's entities stage, run over each sentence alone."""
    from tasks.config import load_config
    from tasks.stages.encode import find_names
    from tasks.stages.entities.stage import lone_sentence_mentions

    config = load_config(None)
    return lambda sentences: lone_sentence_mentions(sentences, find_names(sentences, config), config)


def finetune_stance(
    train: list[dict],
    dev: list[dict],
    encoder: SentenceEncoder,
    labels: list[str],
    settings: FinetuneSettings,
    progress: Progress | None = None,
    tagger: Tagger | None = None,
    marker: Marker | None = None,
) -> tuple[TunedStanceHead | TunedStanceEnsemble, dict]:
    """Train one head per seed (see `train_member`), an ensemble when there are several;
    returns the head and its dev metrics."""
    started = time.perf_counter()
    split_layer = int(encoder.model.config.num_hidden_layers) - settings.n_layers
    if settings.marking == "all-mentions" and marker is None:
        marker = pipeline_marker()
    marker = marker if settings.marking == "all-mentions" else None
    training, augmentation = training_set(train, encoder, split_layer, settings, tagger, marker)
    dev_data = mention_data(dev, encoder, split_layer, marker)
    seeds = settings.member_seeds()
    members, member_metrics = [], []
    training_started = time.perf_counter()
    for k, seed in enumerate(seeds):

        def member_progress(step: int, total: int, elapsed: float, k: int = k) -> None:
            if progress:  # one count over all members, timed from the first member's first step
                progress(k * total + step, total * len(seeds), time.perf_counter() - training_started)

        head, metrics = train_member(seed, encoder, labels, training, dev_data, settings, member_progress)
        members.append(head)
        member_metrics.append({"seed": seed, **metrics})
    common = {"n_train": len(train), "n_dev": len(dev), **({"augmentation": augmentation} if augmentation else {})}
    if len(members) == 1:
        head, metrics = members[0], {**member_metrics[0], **common}
        metrics.pop("seed")
    else:
        head = TunedStanceEnsemble(members)
        probs = np.mean([calibrated_probs(m, dev_data) for m in members], axis=0)
        metrics = {
            **dev_metrics(dev_data.labels, probs.argmax(axis=1), labels),
            "dev_ece": round(expected_calibration_error(probs, dev_data.labels), 4),
            "members": [
                {
                    "seed": m["seed"],
                    "dev_macro_f1": m["dev_macro_f1"],
                    "dev_f1_per_class": {label: s["f1"] for label, s in m["dev_per_class"].items()},
                    "best_epoch": m["best_epoch"],
                    "dev_macro_f1_per_epoch": m["dev_macro_f1_per_epoch"],
                    "temperature": m["temperature"],
                    "dev_ece": m["dev_ece"],
                    "train_seconds": m["train_seconds"],
                }
                for m in member_metrics
            ],
            **common,
            "train_seconds": round(time.perf_counter() - started, 1),
        }
    if not settings.is_plain():
        head.card_from_training = {
            "method": stance_method(settings),
            "command": stance_command(settings),
            "seeds": seeds,
            "augmentation": settings.augment,
            "cues": settings.cues,
            "marking": settings.marking,
        }
    return head, metrics

"""Train the token NER head (tasks/models/token_ner.py): what `newsflow train --ner` runs.

The project has no hand-labelled NER data to train on. The head therefore learns to agree
with spaCy's NER (the entities stage's `spacy` recogniser, loaded as the stage loads it: only
tok2vec and ner), over the distinct sentences of a NewsMTSC-format file. It reads the encoder
states the pipeline computes anyway: the final states, plus the states entering layer 4 from
the same pass. 10% of the sentences are held out, and the epoch whose spans agree best with
spaCy's on them (exact span and type) is kept. Sentences that also appear in the dev file are
never trained on, so dev can still measure the head. For a given seed and thread count the
result is the same on every run.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tasks.config import EntitiesConfig
from tasks.dataset.staging import file_sha256
from tasks.models.encoder import PACKAGED_MINILM, SentenceEncoder, get_encoder, on_inference_thread, weights_sha256
from tasks.models.model_card import NEWSMTSC_CREDIT
from tasks.models.token_ner import FEATURES, LABELS, TYPES, HeadConfig, Offsets, Span, TokenNer, TokenNerHead, bio_labels, inputs, pad
from tasks.stages.entities.recognise import folder_sha256, ner_pipeline, recognise
from tasks.training.newsmtsc import read_newsmtsc

HEAD_NAME = "ner-tokens"
TEACHER = EntitiesConfig().model  # the spaCy pipeline the entities stage would otherwise run
# The pass the pipeline makes: the packaged MiniLM in fp32, sentences cut at 256 tokens. The
# token budget only groups sentences into batches; the shipped head was encoded with 8192.
MAX_LENGTH = 256
TOKENS_PER_BATCH = 8192
SPACY_BATCH = 64
Progress = Callable[[str], None]  # one line per step, e.g. the flow's logger.info


@dataclass(frozen=True)
class NerSettings:
    """The recipe of the shipped head ("conv_l6_l4" in the comparison of head variants): an
    MLP with one residual 3-token convolution, over the final and layer-4 states plus the shape
    features. Training stops after `patience` epochs without a better held-out F1."""

    kind: str = "conv"
    layers: tuple[int, ...] = (6, 4)
    hidden: int = 256
    dropout: float = 0.2
    epochs: int = 14
    patience: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    holdout_share: float = 0.1
    seed: int = 13

    @property
    def variant(self) -> str:
        return "_".join([self.kind, *(f"l{n}" for n in self.layers)])

    def head_config(self) -> HeadConfig:
        return HeadConfig(kind=self.kind, layers=self.layers, hidden=self.hidden, dropout=self.dropout)


@dataclass
class NerData:
    """The sentences, their silver spans, and the head's input rows and targets."""

    sentences: list[str]
    offsets: list[Offsets]
    silver: list[list[Span]]
    rows: list[torch.Tensor]  # per sentence: tokens x (states of each layer; shape features)
    targets: list[torch.Tensor]  # per sentence: a label index per token


def training_sentences(train_path: Path, dev_path: Path | None = None, limit: int | None = None) -> list[str]:
    """The file's distinct sentences in file order, without any that dev also holds (the first
    `limit` only, for a quick trial). File order, not sorted: the held-out split is drawn over
    these positions, and the shipped head's split was drawn over file order."""
    held = {r["sentence"] for r in read_newsmtsc(dev_path)} if dev_path else set()
    sentences = [s for s in dict.fromkeys(r["sentence"] for r in read_newsmtsc(train_path)) if s not in held]
    return sentences[:limit] if limit else sentences


def silver_spans(sentences: list[str], teacher: str = TEACHER) -> list[list[Span]]:
    """spaCy's spans of the head's types in each sentence, raw (a leading "the" included), from
    the stage's own recogniser code."""
    found = recognise(sentences, teacher, SPACY_BATCH)
    return [[(f.start, f.end, f.label) for f in names if f.label in TYPES] for names in found]


def teacher_provenance(teacher: str = TEACHER) -> dict[str, str]:
    """The teacher's package, version, components and weights' sha256 (not its folder, which
    differs on every machine)."""
    import spacy

    nlp = ner_pipeline(teacher)
    return {
        "id": teacher,
        "name": f"{nlp.meta.get('lang', '')}_{nlp.meta.get('name', '')}",
        "version": str(nlp.meta.get("version", "")),
        "spacy": spacy.__version__,
        "components": ",".join(nlp.pipe_names),
        "weights_sha256": folder_sha256(Path(nlp.path)),
        "kept_labels": ",".join(TYPES),
    }


def training_encoder() -> SentenceEncoder:
    """The packaged MiniLM in fp32: the states the head is trained on."""
    return get_encoder(PACKAGED_MINILM, MAX_LENGTH, TOKENS_PER_BATCH, 0, "fp32")


def token_states(encoder: SentenceEncoder, sentences: list[str], layers: tuple[int, ...]) -> tuple[list[list[torch.Tensor]], list[Offsets]]:
    """(for each of `layers`, in order, each sentence's token states; each sentence's offsets).
    They come from one forward pass per batch, the pass the pipeline makes. Layer 6 means the
    final states, any other the states entering that layer."""
    on_inference_thread(torch.set_num_threads, torch.get_num_threads())  # the pass runs at the caller's thread count
    _, passes = encoder.forward_passes(sentences, tuple(n for n in layers if n != 6))
    states = [[torch.from_numpy(p.final) if n == 6 else p.kept[n] for p in passes] for n in layers]
    return states, [p.offsets for p in passes]


def prepare(sentences: list[str], silver: list[list[Span]], encoder: SentenceEncoder, layers: tuple[int, ...]) -> tuple[NerData, list[list[torch.Tensor]]]:
    """(the head's rows and BIO targets, and the states they were built from)."""
    states, offsets = token_states(encoder, sentences, layers)
    rows = inputs(states, offsets, sentences)  # the same rows the head reads at inference
    targets = [torch.tensor(bio_labels(o, s)) for o, s in zip(offsets, silver)]
    return NerData(sentences, offsets, silver, rows, targets), states


def split_holdout(n: int, share: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices), both ascending: a seeded shuffle's first `share`
    is held out, with at least one sentence on each side."""
    if n < 2:
        raise ValueError(f"need at least 2 sentences to hold some out, got {n}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[: min(n - 1, max(1, int(n * share)))])
    return [i for i in range(n) if i not in held], sorted(held)


def agreement(reference: list[list[Span]], predicted: list[list[Span]]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of exact (start, end, type) matches, per type and for "all"."""
    out = {}
    for kind in (*TYPES, "all"):
        ref = [{s for s in spans if kind in ("all", s[2])} for spans in reference]
        pred = [{s for s in spans if kind in ("all", s[2])} for spans in predicted]
        hits = sum(len(r & p) for r, p in zip(ref, pred))
        n_pred, n_ref = sum(map(len, pred)), sum(map(len, ref))
        precision, recall = hits / n_pred if n_pred else 0.0, hits / n_ref if n_ref else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[kind] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "support": n_ref}
    return out


def standardise(head: TokenNerHead, rows: list[torch.Tensor]) -> None:
    """The head's input mean and std from the training rows. The std is floored at 0.01, so a
    feature that is rare in training cannot blow up."""
    every = torch.cat(rows)
    head.mean.copy_(every.mean(0))
    head.std.copy_(every.std(0).clamp_min(1e-2))


def run_epoch(head: TokenNerHead, data: NerData, train_idx: list[int], optimiser: torch.optim.Optimizer, batch_size: int, rng: random.Random) -> float:
    """One pass over the training sentences; returns the mean loss per sentence. Batches hold
    sentences of similar length, so there is little padding, and they come in random order."""
    head.train()
    loss_fn = nn.CrossEntropyLoss()
    by_length = sorted(train_idx, key=lambda i: (len(data.rows[i]), rng.random()))
    batches = [by_length[b : b + batch_size] for b in range(0, len(by_length), batch_size)]
    rng.shuffle(batches)
    total = 0.0
    for batch in batches:
        x, mask = pad([data.rows[i] for i in batch])
        y = torch.full(mask.shape, -100, dtype=torch.long)  # padding: ignored by the loss
        for j, i in enumerate(batch):
            y[j, : len(data.targets[i])] = data.targets[i]
        loss = loss_fn(head(x, mask).reshape(-1, len(head.config.labels)), y.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * len(batch)
    head.eval()
    return total / len(train_idx)


def fit_head(
    data: NerData,
    train_idx: list[int],
    score: Callable[[TokenNer], float],
    settings: NerSettings,
    progress: Progress | None = None,
) -> tuple[TokenNer, list[dict[str, float]]]:
    """Train with AdamW, keeping the epoch with the best held-out `score`; returns the head in
    that state and one log entry per epoch. The seed is set just before the head is built, so
    the head is the same whatever ran earlier in the process."""
    torch.manual_seed(settings.seed)
    head = TokenNerHead(settings.head_config())
    standardise(head, [data.rows[i] for i in train_idx])
    optimiser = torch.optim.AdamW(head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    ner, rng = TokenNer(head), random.Random(settings.seed)
    best, best_state, stale, log = -1.0, None, 0, []
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        loss = run_epoch(head, data, train_idx, optimiser, settings.batch_size, rng)
        f1 = score(ner)
        log.append({"epoch": epoch, "loss": round(loss, 4), "holdout_f1": f1, "seconds": round(time.perf_counter() - started, 1)})
        if progress:
            progress(f"token NER: epoch {epoch}/{settings.epochs}, loss {loss:.4f}, held-out F1 {f1:.4f} (best so far {max(best, f1):.4f})")
        if f1 > best:
            best, best_state, stale = f1, {k: v.clone() for k, v in head.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= settings.patience:
                break
    head.load_state_dict(best_state)
    return TokenNer(head), log


def predict(ner: TokenNer, sentences: list[str], offsets: list[Offsets], states: list[list[torch.Tensor]]) -> list[list[Span]]:
    """The head's spans through predict_spans, as at inference; `states` as token_states gives them."""
    by_layer = dict(zip(ner.config.layers, states))
    return ner.predict_spans(by_layer[6], offsets, sentences, by_layer.get(4))


def ner_command(seed: int, epochs: int, limit: int | None) -> str:
    """The command that trains this head again, at the current thread count."""
    parts = ["newsflow train --ner", f"--seed {seed}"]
    if epochs != NerSettings.epochs:
        parts.append(f"--epochs {epochs}")
    if limit:
        parts.append(f"--limit {limit}")
    return " ".join([*parts, f"--threads {torch.get_num_threads()}"])


def holdout_metrics(per_type: dict[str, dict[str, float]], log: list[dict[str, float]], n_train: int, n_held: int) -> dict[str, Any]:
    """The card's metrics: the kept epoch's held-out agreement, overall and per type, and the run's course."""
    best = max(log, key=lambda e: e["holdout_f1"])  # the first of equals, as fit_head keeps it
    return {
        "holdout_f1": per_type["all"]["f1"],
        "holdout_precision": per_type["all"]["precision"],
        "holdout_recall": per_type["all"]["recall"],
        "holdout_per_type": {k: v for k, v in per_type.items() if k != "all"},
        "holdout_spans": per_type["all"]["support"],
        "best_epoch": best["epoch"],
        "epochs_run": len(log),
        "holdout_f1_per_epoch": [e["holdout_f1"] for e in log],
        "loss_per_epoch": [e["loss"] for e in log],
        "n_train_sentences": n_train,
        "n_holdout_sentences": n_held,
    }


def ner_card(settings: NerSettings, train_path: Path, dev_path: Path | None, limit: int | None, teacher: str, encoder: SentenceEncoder) -> dict[str, Any]:
    """What the card says of how the head was made (the caller adds metrics and timings)."""
    return {
        "name": HEAD_NAME,
        "task": f"Named entities ({', '.join(TYPES)}) as character spans of a sentence, read from the sentence encoder's own token states.",
        "kind": "token-classification",
        "variant": settings.variant,
        "method": "BIO tagging over WordPiece tokens: [final states; states entering layer 4 (same pass); "
        f"{len(FEATURES)} shape features] -> standardised -> {settings.hidden}-unit GELU MLP with a residual 3-token convolution -> "
        f"{len(LABELS)} labels; cross-entropy, AdamW, silver labels from spaCy, best epoch on the held-out {settings.holdout_share:.0%}; "
        "spans decoded from the labels' marginals (tasks/models/token_ner.py)",
        "data": {train_path.name: file_sha256(train_path), **({dev_path.name: file_sha256(dev_path)} if dev_path else {})},
        "data_use": f"{train_path.name}: its distinct sentences, labelled by the teacher, {settings.holdout_share:.0%} held out for early stopping"
        + (f"; {dev_path.name}: its sentences are never trained on" if dev_path else "")
        + (f"; the first {limit} sentences only" if limit else ""),
        "data_credit": NEWSMTSC_CREDIT,
        "teacher": teacher_provenance(teacher),
        "label_types": list(TYPES),
        "labels": list(LABELS),
        "features": list(FEATURES),
        "encoder": PACKAGED_MINILM,
        "encoder_weights_sha256": weights_sha256(encoder.folder),
        "encoder_settings": {"max_length": MAX_LENGTH, "max_tokens_per_batch": TOKENS_PER_BATCH, "precision": "fp32"},
        "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
        "seed": settings.seed,
        "threads": torch.get_num_threads(),
        "command": ner_command(settings.seed, settings.epochs, limit),
    }


def train_token_ner(
    train_path: Path,
    out_dir: Path,
    seed: int = NerSettings.seed,
    epochs: int = NerSettings.epochs,
    progress: Progress | None = None,
    dev_path: Path | None = None,
    limit: int | None = None,
    teacher: str = TEACHER,
) -> dict[str, Any]:
    """Label, encode and train, then write out_dir/ner-tokens (weights, card.json, README.md).
    Returns the held-out metrics, which are also the card's "metrics"."""
    settings = NerSettings(epochs=epochs, seed=seed)
    say = progress or (lambda _: None)
    sentences = training_sentences(train_path, dev_path, limit)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    silver = silver_spans(sentences, teacher)
    seconds["labelling_seconds"] = round(time.perf_counter() - started, 1)
    say(f"token NER: {len(sentences)} sentences labelled by {teacher} in {seconds['labelling_seconds']}s")
    encoder = training_encoder()
    started = time.perf_counter()
    data, states = prepare(sentences, silver, encoder, settings.layers)
    seconds["encoding_seconds"] = round(time.perf_counter() - started, 1)
    say(f"token NER: encoded in {seconds['encoding_seconds']}s; training for at most {settings.epochs} epochs")
    train_idx, held_idx = split_holdout(len(sentences), settings.holdout_share, settings.seed)
    held_states = [[layer[i] for i in held_idx] for layer in states]  # the training sentences' states live on in data.rows
    del states
    held_sentences, held_offsets, held_silver = [sentences[i] for i in held_idx], [data.offsets[i] for i in held_idx], [silver[i] for i in held_idx]

    def score(ner: TokenNer) -> float:
        return agreement(held_silver, predict(ner, held_sentences, held_offsets, held_states))["all"]["f1"]

    started = time.perf_counter()
    ner, log = fit_head(data, train_idx, score, settings, progress)
    seconds["training_seconds"] = round(time.perf_counter() - started, 1)
    per_type = agreement(held_silver, predict(ner, held_sentences, held_offsets, held_states))
    metrics = holdout_metrics(per_type, log, len(train_idx), len(held_idx))
    folder = out_dir / HEAD_NAME
    ner.save(folder, {**ner_card(settings, train_path, dev_path, limit, teacher, encoder), **seconds, "metrics": metrics})
    (folder / "README.md").write_text(render_markdown(ner.card), encoding="utf-8")
    say(f"token NER: held-out F1 {metrics['holdout_f1']:.4f} (epoch {metrics['best_epoch']} of {metrics['epochs_run']}); wrote {folder}")
    return metrics


def prf_row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {m['precision']} | {m['recall']} | {m['f1']} | {m.get('support', '')} |"


def render_markdown(card: dict[str, Any]) -> str:
    """README.md for people, written from the same card the code reads."""
    metrics, teacher = card.get("metrics", {}), card.get("teacher", {})
    lines = [
        f"# {card.get('name', HEAD_NAME)}",
        "",
        card.get("task", ""),
        "",
        card.get("data_credit", NEWSMTSC_CREDIT),
        "",
        "| | |",
        "| --- | --- |",
        f"| kind | {card.get('kind', '')} ({card.get('variant', '')}) |",
        f"| method | {card.get('method', '')} |",
        f"| labels | {', '.join(card.get('labels', []))} |",
        f"| features | {', '.join(card.get('features', []))} |",
        f"| teacher | {teacher.get('id', '')} {teacher.get('version', '')} (spaCy {teacher.get('spacy', '')}; {teacher.get('components', '')}; "
        f"weights sha256 `{teacher.get('weights_sha256', '')}`), labels kept: {teacher.get('kept_labels', '')} |",
        f"| encoder | {card.get('encoder', '')} (weights sha256 `{card.get('encoder_weights_sha256', '')}`) |",
        f"| training time | {card.get('training_seconds', '')} s on {card.get('threads', '')} thread{'' if card.get('threads') == 1 else 's'}, seed {card.get('seed', '')} "
        f"(labelling {card.get('labelling_seconds', '')} s, encoding {card.get('encoding_seconds', '')} s) |",
        f"| data use | {card.get('data_use', '')} |",
    ]
    lines += [f"| data: {name} | sha256 `{digest}` |" for name, digest in card.get("data", {}).items()]
    if card.get("note"):
        lines += ["", card["note"]]
    lines += ["", "## Hyper-parameters", "", "```json", json.dumps(card.get("hyperparameters", {}), indent=2), "```", ""]
    lines += [
        "## Held-out agreement with the teacher (used for selection)",
        "",
        f"Exact span and type against spaCy's raw spans on the {metrics.get('n_holdout_sentences', '')} held-out training sentences "
        f"(trained on {metrics.get('n_train_sentences', '')}); best epoch {metrics.get('best_epoch', '')} of {metrics.get('epochs_run', '')}. "
        "This measures agreement with spaCy, not correctness.",
        "",
        "| type | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [prf_row(kind, m) for kind, m in metrics.get("holdout_per_type", {}).items()]
    if "holdout_f1" in metrics:
        lines.append(f"| all | {metrics['holdout_precision']} | {metrics['holdout_recall']} | {metrics['holdout_f1']} | {metrics.get('holdout_spans', '')} |")
    lines += ["", f"Held-out F1 per epoch: {', '.join(str(f) for f in metrics.get('holdout_f1_per_epoch', []))}"]
    if metrics.get("holdout_f1_per_epoch_as_trained"):  # a head selected with an earlier decoder (see the note)
        lines += ["", f"Held-out F1 per epoch, as trained: {', '.join(str(f) for f in metrics['holdout_f1_per_epoch_as_trained'])}"]
    evaluation = card.get("evaluation")
    if evaluation:
        lines += ["", "## Evaluation (measured after training, not by it)", "", evaluation.get("summary", "")]
        for title, table in evaluation.get("tables", {}).items():
            lines += ["", f"{title}:", "", "| type | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
            lines += [prf_row(kind, m) for kind, m in table.items()]
        if evaluation.get("ms_per_sentence"):
            lines += ["", "Milliseconds per sentence (1 thread): " + ", ".join(f"{k} {v}" for k, v in evaluation["ms_per_sentence"].items())]
    caveat = "; see the note above" if card.get("note") else ""
    lines += ["", f"Regenerate: `{card.get('command', 'newsflow train --ner')}` (deterministic for the same seed and thread count{caveat}).", ""]
    return "\n".join(lines)
